"""The SkyRL text-env adapter speaks SkyRL's ``BaseTextEnv`` protocol over the real env (SkyRL not needed)."""

from __future__ import annotations

import pytest

from toolr1_env import Task
from toolr1_env.integrations.skyrl import ToolR1TextEnv, skyrl_rows

TASK = Task("mul", "What is 17 * 23?", "391", level=0, reference_solution="final_answer(17 * 23)")


def test_rows_name_the_env_and_the_task():
    (row,) = skyrl_rows([TASK])
    assert row["env_class"] == "toolr1" and row["extra_info"]["task_id"] == "mul"
    assert row["reward_spec"]["ground_truth"] == "391"


def test_text_env_runs_a_multi_turn_episode_and_pays_at_the_end():
    env = ToolR1TextEnv({"tasks": [TASK], "max_turns": 3}, extras={"extra_info": {"task_id": "mul"}})
    try:
        messages, meta = env.init([{"role": "system", "content": "be brief"}, {"role": "user", "content": ""}])
        assert messages[0] == {"role": "system", "content": "be brief"} and meta == {"task_id": "mul"}
        assert messages[1]["role"] == "user" and "17 * 23" in messages[1]["content"]
        first = env.step("Thought: compute.\n```py\nx = 17 * 23\nprint(x)\n```")
        assert first["done"] is False and first["reward"] == 0.0
        (observation,) = first["observations"]
        assert observation["role"] == "user" and observation["content"].strip() == "391"
        last = env.step("```py\nfinal_answer(x)\n```")
        assert last["done"] is True and last["observations"] == []
        assert last["reward"] == pytest.approx(1.2) and last["metadata"]["final_answer"] == "391"
        assert env.turns == 2
    finally:
        env.close()
