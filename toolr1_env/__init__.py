"""toolr1_env: a gymnasium environment in which an LLM agent solves GAIA-style tasks by writing Python.

Importing this package registers ``ToolR1-GAIA-v0`` with gymnasium (a string entry point: nothing heavy
is imported until ``gym.make``)::

    import gymnasium as gym
    import toolr1_env  # noqa: F401

    env = gym.make("ToolR1-GAIA-v0", tasks="validation", step_timeout=10)
    prompt, info = env.reset(seed=0)
    observation, reward, terminated, truncated, info = env.step("```py\\nprint(6 * 7)\\n```")

``gym.make(ENV_ID, remote="ws://host:port")`` (or a list of servers) plays the same episodes on environment
servers started with ``toolr1-serve`` (``toolr1_env.serving``, ``docs/serving.md``).
"""

from __future__ import annotations

from gymnasium.envs.registration import WrapperSpec, register, registry

from toolr1_env.tasks import LEVELS, Task, TaskSet

ENV_ID = "ToolR1-GAIA-v0"
#: The default turn limit, applied as ``max_episode_steps`` (truncation).
DEFAULT_MAX_EPISODE_STEPS = 8

if ENV_ID not in registry:
    # One id for both: the entry point builds the local env, or with remote= its client (toolr1_env.serving).
    register(id=ENV_ID, entry_point="toolr1_env.serving.remote_env:make_env",
             max_episode_steps=DEFAULT_MAX_EPISODE_STEPS, disable_env_checker=False,
             additional_wrappers=(WrapperSpec("TurnLimitSync", "toolr1_env.serving.remote_env:TurnLimitSync", {}),))

__all__ = ["DEFAULT_MAX_EPISODE_STEPS", "ENV_ID", "LEVELS", "Task", "TaskSet"]
