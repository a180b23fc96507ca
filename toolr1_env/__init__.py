"""toolr1_env: a gymnasium environment in which an LLM agent solves GAIA-style tasks by writing Python.

Importing this package registers ``ToolR1-GAIA-v0`` with gymnasium.
"""

from __future__ import annotations

from toolr1_env.tasks import LEVELS, Task, TaskSet

__all__ = ["LEVELS", "Task", "TaskSet"]
