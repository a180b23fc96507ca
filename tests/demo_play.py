"""Play demonstration scripts through the real sandboxed env (shared by the demonstration tests)."""

from __future__ import annotations

import pytest

from toolr1_env.env import ToolR1Env


def play_scripts(task_set, tasks, scripts) -> None:
    """Each script, turn by turn, raises no execution error and ends its episode with full reward (1.2)."""
    env = ToolR1Env(tasks=task_set, max_turns=4, max_observation_chars=800, prompt_style="compact")
    try:
        for task, script in zip(tasks, scripts, strict=True):
            env.reset(options={"task": task})
            for turn in script:
                _, reward, terminated, _, info = env.step(f"```py\n{turn}\n```\n")
                assert info["error_type"] is None, (task.metadata["template"], turn, info)
            assert terminated and reward == pytest.approx(1.2), (task.metadata["template"], script, info)
    finally:
        env.close()
