"""Faults through the environment server: a server killed mid-episode, a client that vanishes, hostile code.

Each test attacks one property on loopback; skipped without the ``openenv`` extra.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import gymnasium as gym
import pytest

pytest.importorskip("openenv")
pytest.importorskip("websockets")


import toolr1_env  # noqa: E402,F401
from toolr1_env import suite  # noqa: E402
from toolr1_env.sandbox import available_layers  # noqa: E402
from toolr1_env.serving.local_server import LocalServer  # noqa: E402
from toolr1_env.serving.remote_env import RemoteToolR1Env  # noqa: E402

TASKS = "warmup-eval"
LAYERS = available_layers()
OS = "import pathlib\nos = pathlib.os\n"  # os in hand in one line: the allowlist is a guide rail, not the boundary


def wait_until(predicate, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - start


def test_killed_server_mid_episode_is_an_infra_error_and_the_client_moves_on():
    servers = [LocalServer("--tasks", TASKS), LocalServer("--tasks", TASKS)]
    task = suite.load_split(TASKS).tasks[3]
    try:
        env = gym.make("ToolR1-GAIA-v0", remote=[s.url for s in servers], tasks=TASKS, max_turns=4)
        other = RemoteToolR1Env([s.url for s in servers], tasks=TASKS)  # starts on the other server
        env.reset(options={"task_id": task.task_id})
        other.reset(options={"task_id": task.task_id})
        victim = next(s for s in servers if f"{s.url}/ws" == env.unwrapped.server)
        survivor = next(s for s in servers if s is not victim)
        assert other.server == f"{survivor.url}/ws"
        assert env.step("```py\nx = 1\nprint(x)\n```")[0] == "1"
        other.step("```py\npartial = 'kept'\n```")
        victim.kill()
        observation, reward, terminated, truncated, info = env.step(f"```py\nfinal_answer({task.answer!r})\n```")
        assert (reward, terminated, truncated) == (0.0, False, True)
        assert info["infra_kind"] == "env_server" and victim.url in info["infra_error"]
        assert info["final_answer"] is None and info["reward_components"]["answer_score"] == 0.0  # not "wrong"
        # The next episode runs on the live server, and the episode already there lost nothing.
        env.reset(options={"task_id": task.task_id})
        assert env.unwrapped.server == f"{survivor.url}/ws"
        _, reward, terminated, _, info = env.step(f"```py\nfinal_answer({task.answer!r})\n```")
        assert terminated and info["reward_components"]["answer_score"] == 1.0 and "infra_error" not in info
        assert other.step("```py\nprint(partial)\n```")[0] == "kept"
        env.close()
        other.close()
    finally:
        for server in servers:
            server.stop()


def test_a_client_that_vanishes_frees_its_sandbox_in_bounded_time():
    server = LocalServer("--tasks", TASKS, "--ping-interval", "2")
    script = (f"import sys, time\nfrom toolr1_env.serving.remote_env import RemoteToolR1Env\n"
              f"env = RemoteToolR1Env({server.url!r}, tasks={TASKS!r})\nenv.reset(seed=0)\n"
              "env.step('```py\\nx = 1\\n```')\nprint('ready', flush=True)\ntime.sleep(600)\n")
    client = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert client.stdout.readline().strip() == "ready"
        assert server.status()["active_sessions"] == 1 and len(server.children()) == 1  # the session's sandbox
        client.send_signal(signal.SIGKILL)  # no close frame: the kernel drops the socket
        client.wait(timeout=10)
        # A generous bound for a busy shared machine; idle, the socket's close frees the session at once.
        elapsed = wait_until(lambda: server.status()["active_sessions"] == 0 and not server.children(), 60)
        assert elapsed < 60
    finally:
        if client.poll() is None:
            client.kill()
        server.stop()


def test_an_idle_session_is_closed_after_the_session_timeout():
    server = LocalServer("--tasks", TASKS, "--session-timeout", "1")
    try:
        env = RemoteToolR1Env(server.url, tasks=TASKS)
        env.reset(seed=0)
        assert len(server.children()) == 1
        # The reaper looks every 5 s; 60 s leaves room for a busy machine.
        wait_until(lambda: server.status()["active_sessions"] == 0 and not server.children(), 60)
        observation, reward, terminated, truncated, info = env.step("```py\nprint(1)\n```")
        assert truncated and info["infra_kind"] == "env_server" and "session timeout" in info["infra_error"]
        env.close()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def hostile():
    server = LocalServer("--tasks", TASKS, "--step-timeout", "3",
                           env={"TOOLR1_JUDGE_API_KEY": "sk-never-leaks", "TOOLR1_TEST_SECRET": "sk-never-leaks"})
    env = RemoteToolR1Env(server.url, tasks=TASKS, step_timeout=3, max_turns=50)
    env.reset(seed=0)
    yield server, env
    env.close()
    server.stop()


def run(env, code: str) -> tuple[str, dict]:
    observation, _, _, _, info = env.step(f"```py\n{code}\n```")
    return observation, info


def test_server_secrets_do_not_reach_agent_code(hostile):
    _, env = hostile
    observation, info = run(env, OS + "print('sk-never-leaks' in str(dict(os.environ)))")
    assert observation == "False" and info["error_type"] is None


@pytest.mark.skipif(not (LAYERS["bwrap"] or LAYERS["landlock_fs"]), reason="no filesystem isolation layer")
def test_writes_outside_the_episode_directory_fail_through_the_server(hostile):
    _, env = hostile
    target = Path(f"/tmp/escaped-{uuid.uuid4().hex}.txt")
    _, info = run(env, f"open({str(target)!r}, 'w').write('x')")
    assert info["error_type"] in {"PermissionError", "FileNotFoundError", "OSError"} and not target.exists()


@pytest.mark.skipif(not (LAYERS["bwrap"] or LAYERS["landlock_fs"]), reason="no filesystem isolation layer")
def test_the_server_process_and_project_files_are_unreadable(hostile):
    server, env = hostile
    for leaf in ("environ", "cmdline", "mem"):
        _, info = run(env, f"open('/proc/{server.proc.pid}/{leaf}', 'rb').read(100)")
        assert info["error_type"] is not None, leaf
    _, info = run(env, f"open({str(Path(toolr1_env.__file__).resolve())!r}).read()")
    assert info["error_type"] in {"PermissionError", "FileNotFoundError"}


@pytest.mark.skipif(not (LAYERS["bwrap"] or LAYERS["landlock_net"]), reason="no network isolation layer")
def test_agent_code_cannot_reach_the_server_over_the_network(hostile):
    server, env = hostile
    # socket is off the import allowlist, but sys.modules hands it over: the network layer must hold.
    _, info = run(env, OS + "socket = os.sys.modules['socket']\n"
                  f"socket.create_connection(('127.0.0.1', {server.port}), timeout=2)")
    assert info["error_type"] in {"ConnectionRefusedError", "PermissionError", "OSError"}, info


@pytest.mark.skipif(not (LAYERS["bwrap"] or LAYERS["landlock_signal_scope"] or os.getuid() == 0),
                    reason="no layer stops signals to the host")
def test_agent_cannot_kill_the_server(hostile):
    server, env = hostile
    _, info = run(env, OS + f"os.kill({server.proc.pid}, 9)")  # SIGKILL
    assert info["error_type"] in {"ProcessLookupError", "PermissionError"}
    assert server.proc.poll() is None and server.status()["active_sessions"] == 1


def test_a_hang_is_killed_and_the_session_goes_on(hostile):
    server, env = hostile
    start = time.monotonic()
    observation, info = run(env, "while True:\n    pass")
    assert time.monotonic() - start < 30 and info["error_type"] == "TimeoutError", observation
    assert run(env, "print('alive')")[0] == "alive"
    assert server.status()["active_sessions"] == 1
