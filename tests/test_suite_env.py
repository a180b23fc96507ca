"""The bundled suite through the real sandboxed environment: every fixed task is solvable, no shortcut."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolr1_env.env import ToolR1Env
from toolr1_env.sandbox import available_layers
from toolr1_env.suite import SPLITS, default_cache_dir, load_split
from toolr1_env.suite import world as suite_world

WORLD_SOURCE = Path(suite_world.__file__).resolve()
FIXED = [name for name, spec in SPLITS.items() if spec.is_fixed]
STEP = "# --- step ---"


@pytest.mark.parametrize("split", FIXED)
def test_every_reference_solution_reaches_full_reward_in_the_real_env(split):
    task_set = load_split(split)
    env = ToolR1Env(tasks=task_set, max_turns=20)
    failures = []
    try:
        for task in task_set.tasks:
            env.reset(options={"task_id": task.task_id})
            reward, info, observation = 0.0, {}, ""
            for step in task.reference_solution.split(STEP):
                observation, reward, terminated, truncated, info = env.step(step)
                if terminated or truncated:
                    break
            if reward != pytest.approx(1.2):
                parts = info.get("reward_components")
                failures.append(f"{task.task_id}: reward {reward}, {parts}, {observation[-200:]}")
    finally:
        env.close()
    assert not failures, "\n".join(failures[:5])


@pytest.mark.skipif(not (available_layers()["bwrap"] or available_layers()["landlock_fs"]),
                    reason="no filesystem isolation layer on this machine")
def test_agent_code_cannot_reach_the_generator_the_world_or_other_tasks_files():
    task_set = load_split("validation")
    env = ToolR1Env(tasks=task_set, max_turns=20)
    try:
        env.reset(options={"task_id": task_set.tasks[0].task_id})
        other = next(t for t in task_set.tasks if t.files)
        attempts = {
            "import toolr1_env": "import toolr1_env",
            "import the suite": "from toolr1_env.suite import load_split",
            "read another task's file": f"open({other.files[0]!r}, 'rb').read(10)",
            "list the suite cache": f"import pathlib\nlist(pathlib.Path({str(default_cache_dir())!r}).iterdir())",
            "read the generator source": f"import pathlib\npathlib.Path({str(WORLD_SOURCE)!r}).read_text()",
        }
        for what, code in attempts.items():
            observation, *_ , info = env.step(code)
            assert info["error_type"] in {"ImportError", "ModuleNotFoundError", "PermissionError",
                                          "FileNotFoundError"}, f"{what} succeeded: {observation[:200]}"
    finally:
        env.close()
