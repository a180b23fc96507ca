"""The environment server (OpenEnv) and its gymnasium client: parity with the local env, OpenEnv's own client,
bad input and session limits. All on loopback; skipped without the ``openenv`` extra."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings

import gymnasium as gym
import pytest

pytest.importorskip("openenv")
pytest.importorskip("websockets")

from gymnasium.utils.env_checker import check_env  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

import toolr1_env  # noqa: E402,F401
from toolr1_env import suite  # noqa: E402
from toolr1_env.sandbox import SandboxConfig  # noqa: E402
from toolr1_env.serving.local_server import LocalServer  # noqa: E402
from toolr1_env.serving.remote_env import RemoteEnvError, RemoteToolR1Env, ServerUnavailable  # noqa: E402
from toolr1_env.vector import ThreadVectorEnv  # noqa: E402

TASKS = "warmup-eval"
LIGHT = SandboxConfig(preload=())


@pytest.fixture(scope="module")
def server():
    process = LocalServer("--max-sessions", "6", "--tasks", TASKS, "--step-timeout", "5")
    yield process
    process.stop()


def raw_session(server):
    """A bare WebSocket session: what any client in any language sends."""
    ws = connect(f"{server.url}/ws", max_size=None).__enter__()
    return ws


def ask(ws, message) -> dict:
    ws.send(message if isinstance(message, str) else json.dumps(message))
    return json.loads(ws.recv(timeout=30))


def episode(env, actions, task_id):
    steps = [env.reset(options={"task_id": task_id})]
    for action in actions:
        steps.append(env.step(action))
    return steps


def test_remote_episodes_equal_local_ones_observation_reward_and_info(server):
    task = suite.load_split(TASKS).tasks[5]
    solved = ["Thought: compute.\n```py\nx = 6 * 7\nprint(x)\n```", "```py\n1 / 0\n```",
              f"```py\nfinal_answer({task.answer!r})\n```"]
    unsolved = ["```py\nprint('a')\n```", "no code here", "```py\nprint('b')\n```"]
    local = gym.make("ToolR1-GAIA-v0", tasks=TASKS, sandbox=LIGHT, step_timeout=5, max_turns=3)
    remote = gym.make("ToolR1-GAIA-v0", remote=server.url, tasks=TASKS, step_timeout=5, max_turns=3)
    try:
        for actions in (solved, unsolved):
            here, there = episode(local, actions, task.task_id), episode(remote, actions, task.task_id)
            assert there == here
        assert here[-1][3] is True  # the unsolved episode was truncated at the turn limit on both sides
        first = episode(remote, solved, task.task_id)
        assert first[-1][1] == pytest.approx(1.0 + 0.2 * 2 / 3) and first[-1][2] is True
        assert first[-1][4]["reward_components"]["answer_score"] == 1.0 and "infra_error" not in first[-1][4]
        assert remote.observation_space == local.observation_space
        assert remote.action_space == local.action_space
        assert remote.reset(seed=11) == local.reset(seed=11)  # seeds pick the same task
    finally:
        local.close()
        remote.close()


def test_check_env_passes_on_the_remote_env_without_warnings(server):
    env = gym.make("ToolR1-GAIA-v0", remote=server.url, tasks=TASKS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()


def test_max_episode_steps_reaches_the_server(server):
    env = gym.make("ToolR1-GAIA-v0", remote=server.url, tasks=TASKS, max_episode_steps=2)
    env.reset(seed=0)
    env.step("```py\nprint(1)\n```")
    _, reward, terminated, truncated, info = env.step("```py\nprint(2)\n```")
    assert (terminated, truncated) == (False, True)
    assert reward == pytest.approx(0.2) and info["reward_components"]["steps"] == 2  # paid on the same step
    env.close()


def test_thread_vector_env_runs_remote_envs_unchanged(server):
    envs = ThreadVectorEnv([lambda: gym.make("ToolR1-GAIA-v0", remote=server.url, tasks=TASKS)] * 3)
    try:
        observations, infos = envs.reset(seed=[0, 1, 2])
        local = gym.make("ToolR1-GAIA-v0", tasks=TASKS, sandbox=LIGHT)
        assert list(infos["task_id"]) == [local.reset(seed=s)[1]["task_id"] for s in (0, 1, 2)]
        local.close()
        observations, rewards, terminated, truncated, infos = envs.step(["```py\nprint(7 * 6)\n```"] * 3)
        assert list(observations) == ["42"] * 3
    finally:
        envs.close()


def test_openenv_generic_client_with_none_of_our_code_plays_a_whole_episode(server):
    task = suite.load_split(TASKS).tasks[0]
    script = f"""
import json, sys
from openenv.core import GenericEnvClient
with GenericEnvClient(base_url="http://127.0.0.1:{server.port}", message_timeout_s=300).sync() as env:
    first = env.reset(task_id={task.task_id!r}, config={{"tasks": {TASKS!r}, "max_turns": 4}})
    assert "final_answer" in first.observation["text"] and first.done is False
    step = env.step({{"code": "```py\\nanswer = {task.answer!r}\\nprint(len(answer))\\n```"}})
    assert step.done is False and step.reward == 0.0
    last = env.step({{"code": "final_answer(answer)"}})
    info = last.observation["info"]
    print(json.dumps([last.done, last.reward, last.observation["terminated"], info["final_answer"],
                      info["reward_components"]["answer_score"]]))
assert not any(name.startswith(("toolr1_env", "agents")) for name in sys.modules)
"""
    # -I: isolated mode, nothing from this checkout on sys.path; the assertion checks none of our modules loaded.
    # Generous: importing openenv-core (gradio and all) takes minutes on a busy shared machine.
    result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=900,
                            cwd="/")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout) == [True, pytest.approx(1.2), True, str(task.answer), 1.0]


def test_bad_input_gets_a_clear_protocol_error_and_other_sessions_keep_working(server):
    healthy = gym.make("ToolR1-GAIA-v0", remote=server.url, tasks=TASKS)
    healthy.reset(seed=3)
    ws = raw_session(server)
    try:
        assert ask(ws, "{not json")["data"]["code"] == "INVALID_JSON"
        assert ask(ws, {"type": "dance"})["data"]["code"] == "UNKNOWN_TYPE"
        assert ask(ws, {"type": "step", "data": {"code": "print(1)"}})["data"]["message"] == "call reset before step"
        reply = ask(ws, {"type": "reset", "data": {"task_id": "no-such-task"}})
        assert reply["type"] == "error" and "no-such-task" in reply["data"]["message"]
        reply = ask(ws, {"type": "reset", "data": {"config": {"judge": {"base_url": "http://evil"}}}})
        assert "not settable by a client" in reply["data"]["message"]
        reply = ask(ws, {"type": "reset", "data": {"config": {"tasks": "/etc"}}})
        assert "unknown task set '/etc'" in reply["data"]["message"]
        assert ask(ws, {"type": "reset", "data": {"seed": 1}})["type"] == "observation"
        reply = ask(ws, {"type": "step", "data": {"cod": "print(1)"}})  # malformed action
        assert reply["data"]["code"] == "VALIDATION_ERROR"
        reply = ask(ws, {"type": "step", "data": {"code": "x" * 900_000}})  # longer than the action space
        assert reply["data"]["code"] == "VALIDATION_ERROR"
        assert ask(ws, {"type": "step", "data": {"code": "print(5)"}})["data"]["observation"]["text"] == "5"
        ws.send(json.dumps({"type": "step", "data": {"code": "y" * (5 << 20)}}))  # a frame above 4 MiB
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009  # "message too big"
    finally:
        ws.close()
    assert healthy.step("```py\nprint('still served')\n```")[0] == "still served"
    healthy.close()
    client = RemoteToolR1Env(server.url, tasks=TASKS)
    with pytest.raises(RemoteEnvError, match="no-such-task"):
        client.reset(options={"task_id": "no-such-task"})
    assert client.reset(options={"task_id": "warmup-eval-0001"})[1]["task_id"] == "warmup-eval-0001"  # same session
    client.close()
    with pytest.raises(TypeError, match="set by the server operator"):
        gym.make("ToolR1-GAIA-v0", remote=server.url, judge={"base_url": "http://x"})


def test_a_closed_session_is_closed_for_good(server):
    ws = raw_session(server)
    assert ask(ws, {"type": "reset", "data": {"seed": 0}})["type"] == "observation"
    ws.send(json.dumps({"type": "close"}))
    with pytest.raises(ConnectionClosed):
        ws.recv(timeout=30)
    with pytest.raises(ConnectionClosed):
        ws.send(json.dumps({"type": "step", "data": {"code": "print(1)"}}))
    env = RemoteToolR1Env(server.url, tasks=TASKS)
    env.reset(seed=0)
    env.close()
    with pytest.raises(gym.error.ResetNeeded):  # the client knows its session is gone
        env.step("print(1)")


def test_an_unreachable_server_is_a_clear_error():
    env = RemoteToolR1Env("ws://127.0.0.1:9", tasks=TASKS)  # nothing listens: the error must say so
    with pytest.raises(ServerUnavailable, match="cannot connect"):
        env.reset(seed=0)
    with pytest.raises(gym.error.ResetNeeded):
        env.step("print(1)")


def test_more_sessions_than_allowed_get_a_clear_refusal_not_a_hang():
    small = LocalServer("--max-sessions", "2", "--tasks", TASKS)
    envs = [RemoteToolR1Env(small.url, tasks=TASKS) for _ in range(3)]
    try:
        envs[0].reset(seed=0)
        envs[1].reset(seed=1)
        assert small.status()["active_sessions"] == 2
        start = time.monotonic()
        with pytest.raises(ServerUnavailable, match="full"):
            envs[2].reset(seed=2)
        assert time.monotonic() - start < 30  # a refusal, not a queue (generous: a busy shared machine)
        envs[0].close()  # a freed slot serves the next session
        deadline = time.monotonic() + 10
        while small.status()["active_sessions"] > 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert envs[2].reset(options={"task_id": "warmup-eval-0002"})[1]["task_id"] == "warmup-eval-0002"
    finally:
        for env in envs:
            env.close()
        small.stop()
