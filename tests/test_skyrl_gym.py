"""The SkyRL adapter against the real ``skyrl-gym`` package: registered, made and played through SkyRL's own API,
in process and on an environment server. Skipped where ``skyrl-gym`` is not installed (``pip install
'toolr1[skyrl]'``)."""

from __future__ import annotations

import pytest

skyrl_gym = pytest.importorskip("skyrl_gym")

from skyrl_gym.envs.base_text_env import BaseTextEnv  # noqa: E402

from toolr1_env.integrations.skyrl import ENV_CLASS, ToolR1TextEnv, skyrl_rows  # noqa: E402
from toolr1_env.suite import load_split  # noqa: E402

TASKS = "warmup-eval"


@pytest.fixture(scope="module", autouse=True)
def registered():
    if ENV_CLASS not in skyrl_gym.envs.registration.registry:
        skyrl_gym.register(id=ENV_CLASS, entry_point="toolr1_env.integrations.skyrl:ToolR1TextEnv")
    yield


def play(env_config: dict) -> tuple[list, dict]:
    (row,) = skyrl_rows(TASKS, size=1)
    task = load_split(TASKS).get(row["extra_info"]["task_id"])
    env = skyrl_gym.make(row["env_class"], env_config=env_config, extras=row)
    try:
        assert isinstance(env, BaseTextEnv) and isinstance(env, ToolR1TextEnv)
        messages, meta = env.init([{"role": "system", "content": "Answer with code."}, *row["prompt"]])
        assert [m["role"] for m in messages] == ["system", "user"] and meta == {"task_id": task.task_id}
        first = env.step("```py\nanswer = " + repr(task.answer) + "\nprint('ok')\n```")
        assert first == {"observations": [{"role": "user", "content": "ok"}], "reward": 0.0, "done": False,
                         "metadata": {"task_id": task.task_id, "error_type": None}}
        return [first, env.step("```py\nfinal_answer(answer)\n```")], {"answer": task.answer}
    finally:
        env.close()


def test_skyrl_gym_makes_and_plays_the_adapter_in_process():
    (_, last), task = play({"tasks": TASKS, "max_turns": 3})
    assert last["done"] is True and last["observations"] == [] and last["reward"] == pytest.approx(1.2)
    assert last["metadata"]["final_answer"] == str(task["answer"]) and "infra_error" not in last["metadata"]


def test_skyrl_gym_plays_on_an_environment_server():
    pytest.importorskip("openenv")
    from omegaconf import OmegaConf

    from toolr1_env.serving.local_server import LocalServer

    server = LocalServer("--tasks", TASKS)
    try:
        # SkyRL hands env_config over as an OmegaConf node: a ListConfig of servers must work.
        (_, last), task = play(OmegaConf.create({"tasks": TASKS, "max_turns": 3, "remote": [server.url]}))
        assert last["done"] is True and last["reward"] == pytest.approx(1.2)
        assert last["metadata"]["reward_components"]["answer_score"] == 1.0
    finally:
        server.stop()
