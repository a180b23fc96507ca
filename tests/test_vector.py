"""Vector envs: our thread-backed one (step only live episodes) and gymnasium's Sync/Async ones."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import toolr1_env  # noqa: F401
from toolr1_env import Task
from toolr1_env.sandbox import SandboxConfig
from toolr1_env.vector import ThreadVectorEnv

TASKS = [Task("mul", "What is 17 * 23?", "391", level=0), Task("cap", "Capital of France?", "Paris")]


def make_env() -> gym.Env:
    return gym.make("ToolR1-GAIA-v0", tasks=TASKS, sandbox=SandboxConfig(preload=()))


def test_step_live_steps_only_the_given_envs_and_keeps_ended_ones_ended():
    vec = ThreadVectorEnv([make_env] * 3)
    try:
        resets = vec.reset_some([0, 1, 2], options=[{"task_id": "mul"}] * 3)
        assert [resets[i][1]["task_id"] for i in range(3)] == ["mul"] * 3
        out = vec.step_live({0: "final_answer(391)", 1: "x = 1", 2: "final_answer(0)"})
        assert out[0].done and out[0].reward == pytest.approx(1.2)
        assert not out[1].done and out[2].done and out[2].reward == pytest.approx(0.2)
        assert vec.live == [False, True, False]
        with pytest.raises(gym.error.ResetNeeded):
            vec.step_live({0: "print(1)"})
        out = vec.step_live({1: "final_answer(x + 390)"})
        assert list(out) == [1] and out[1].reward == pytest.approx(1.2)
    finally:
        vec.close()


def test_code_of_all_envs_runs_concurrently():
    import time

    vec = ThreadVectorEnv([make_env] * 4)
    try:
        vec.reset(seed=0)
        started = time.monotonic()
        vec.step_live({i: "import time\ntime.sleep(1)" for i in range(4)})
        assert time.monotonic() - started < 3.5  # serial execution would take 4 s or more
    finally:
        vec.close()


def test_same_step_autoreset_wastes_no_action():
    vec = ThreadVectorEnv([make_env] * 2)
    try:
        vec.reset(seed=0)
        obs, rewards, terminated, truncated, info = vec.step(["final_answer(391)", "y = 2"])
        assert terminated.tolist() == [True, False]
        assert info["final_obs"][0] == "final_answer received: 391"
        assert obs[0].startswith("You solve tasks")  # already the next episode's prompt
        assert vec.live == [True, True]
    finally:
        vec.close()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_gymnasium_vector_envs_work_with_same_step_autoreset(kind):
    mode = gym.vector.AutoresetMode.SAME_STEP
    if kind == "sync":
        vec = gym.vector.SyncVectorEnv([make_env] * 2, autoreset_mode=mode)
    else:
        vec = gym.vector.AsyncVectorEnv([make_env] * 2, shared_memory=False, autoreset_mode=mode)
    try:
        obs, info = vec.reset(seed=3)
        assert all(o.startswith("You solve tasks") for o in obs)
        task_ids = list(info["task_id"])
        answers = ["final_answer(391)" if t == "mul" else "final_answer('Paris')" for t in task_ids]
        obs, rewards, terminated, truncated, info = vec.step(answers)
        np.testing.assert_allclose(rewards, [1.2, 1.2])
        assert terminated.all() and not truncated.any()
    finally:
        vec.close()
