"""The gymnasium client of ToolR1-GAIA servers: ``gym.make("ToolR1-GAIA-v0", remote="ws://host:port")``.

:class:`RemoteToolR1Env` has the local env's spaces, ``info`` keys, rewards and ``check_env`` behaviour; each
episode runs in a session on a server (``toolr1-serve``), so any trainer that steps the local env (our learner's
episode loop, :class:`~toolr1_env.vector.ThreadVectorEnv`, TRL's rollout function) steps remote ones unchanged.

It speaks OpenEnv's WebSocket session protocol (:mod:`toolr1_env.serving.wire`) with the small ``websockets``
package rather than through ``openenv-core``'s client, so a GPU trainer node needs neither OpenEnv nor gradio.

Many servers (``remote=["ws://a:8000", "ws://b:8000"]``): each env of a process starts on the next server in
turn, so a vector of envs spreads evenly. Faults:

* A server that dies or stops answering mid-episode: that step returns truncated, reward 0, with
  ``info["infra_kind"] = "env_server"`` and ``info["infra_error"]`` (an infrastructure error, never a wrong
  answer: our learner and evaluation leave such episodes out), and the next ``reset`` moves to a live server.
  The server is skipped by every env of this process for ``retry_after`` seconds.
* A full server (``CAPACITY_REACHED``): ``reset`` tries the next one; when all are full or down it raises
  :class:`ServerUnavailable` naming each server's reason.
* Bad requests (an unknown ``task_id``, a setting the server refuses) raise :class:`RemoteEnvError` with the
  server's message, as the local env would raise.

``reset(options={"task": task})`` (a :class:`~toolr1_env.tasks.Task` object, as our held-out evaluation sends)
travels as the task's id plus the name of its task set (:func:`task_set_name`); the server plays its own copy of
that task (files included) in the session's env, and refuses a set it does not offer. A server whose copy asks
another question (client and server hold different versions of the set) is an error, never a silent swap.

A trainer's pool of servers: :func:`parse_servers` reads ``--env_servers ws://a:8000,ws://b:8000`` and
:func:`remote_vector_env` builds a :class:`~toolr1_env.vector.ThreadVectorEnv` of remote envs over it.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
from gymnasium.error import ResetNeeded

from toolr1_env.env import ToolR1Env
from toolr1_env.env import TurnLimitSync as LocalTurnLimitSync
from toolr1_env.serving.wire import CAPACITY_REACHED, CLIENT_OPTIONS, ENV_SERVER, MAX_ACTION_CHARS, SESSION_CLOSED
from toolr1_env.spaces import UnicodeText
from toolr1_env.tasks import Task, TaskSet
from toolr1_env.vector import ThreadVectorEnv

_spread = itertools.count()  # which server the next env of this process starts on
_down: dict[str, float] = {}  # server url -> monotonic time until which it is skipped (shared by this process)
_down_lock = threading.Lock()


class RemoteEnvError(RuntimeError):
    """The server refused a request (bad ``task_id``, a setting it does not allow, ...); ``code`` is OpenEnv's."""

    def __init__(self, message: str, code: str = "") -> None:
        self.code = code
        super().__init__(message)


class ServerUnavailable(ConnectionError):
    """No listed server could open a session (each full, down or unreachable); the message says which and why."""


class _Lost(Exception):
    """The connection to the current server broke or timed out."""


def ws_url(remote: str) -> str:
    """``ws://host:port/ws`` for ``host:port``, ``http://host:port`` or ``ws://host:port[/ws]``."""
    url = remote if "://" in remote else f"ws://{remote}"
    url = url.replace("https://", "wss://", 1).replace("http://", "ws://", 1).rstrip("/")
    return url if url.endswith("/ws") else url + "/ws"


def parse_servers(spec: str | Sequence[str]) -> list[str]:
    """The servers of ``--env_servers``: ``"ws://a:8000,ws://b:8000"`` (or a list) -> ``["ws://a:8000", ...]``.

    Raises:
        ValueError: no server is named.
    """
    parts = spec.split(",") if isinstance(spec, str) else list(spec)
    servers = [p.strip() for p in parts if p.strip()]
    if not servers:
        raise ValueError(f"no environment server in {spec!r}: give ws://host:port[,ws://host:port...]")
    return servers


def task_set_name(tasks: Task | TaskSet) -> str | None:
    """The name a server knows a task (or a task set) by: the bundled split its tasks come from.

    A training pool or an evaluation subset of a bundled split (``train-easy-pool@0``, ``train-easy@100000``) is
    named after the split, which every server offers. Anything else (a GAIA copy, a task file) has no such name:
    None for a task, the set's own name for a set (a server operator registers a set under a name with
    ``toolr1-serve --task-set NAME=PATH``; the trainer must then call its set by that name).
    """
    from toolr1_env.suite import SPLITS

    def split_of(task: Task) -> str | None:
        split = task.metadata.get("split")  # bundled tasks also carry their world; user metadata may say "split"
        return split if split in SPLITS and "world" in task.metadata else None

    if isinstance(tasks, Task):
        return split_of(tasks)
    splits = {split_of(t) for t in tasks.tasks}
    if len(splits) == 1 and None not in splits:
        return splits.pop()
    return tasks.name


def remote_vector_env(servers: str | Sequence[str], num_envs: int, tasks: str, **options: Any) -> ThreadVectorEnv:
    """``num_envs`` :class:`RemoteToolR1Env` over a pool of servers, spread round-robin (env ``i`` starts on
    server ``i mod len(servers)``; each fails over to the others), in a :class:`ThreadVectorEnv`.

    Args:
        servers: ``--env_servers``' text or a list of addresses (:func:`parse_servers`).
        num_envs: the envs (one server session each).
        tasks: the task set every env plays, by the name the servers know it (:func:`task_set_name`).
        options: the other ``RemoteToolR1Env`` arguments (``max_turns``, ``step_timeout``...).
    """
    pool = parse_servers(servers)

    def factory(start: int) -> RemoteToolR1Env:
        return RemoteToolR1Env(pool[start:] + pool[:start], tasks, first_server=0, **options)

    return ThreadVectorEnv([functools.partial(factory, i % len(pool)) for i in range(num_envs)])


class RemoteToolR1Env(gym.Env[str, str]):
    """ToolR1-GAIA-v0 played on environment servers; see the module docstring and ``docs/serving.md``.

    Args:
        remote: a server (``"ws://host:port"``) or a list of them.
        tasks, split, level, max_turns, step_timeout, max_observation_chars, answer_weight, exec_weight,
            text_answers, prompt_style: as for the local env; sent with every ``reset`` (``tasks`` names a bundled
            split or a task set the server offers).
        tools: names of host tools the server registered (callables never cross the wire).
        connect_timeout: seconds to open a connection. ``message_timeout``: seconds to wait for a reply before the
            server counts as lost (default: ``3 * step_timeout + 60``, room for the judge and a slow sandbox start).
        retry_after: seconds a lost server is skipped by this process's envs.
        first_server: the index of the server the env starts on (default: the next in turn for this process,
            so envs made one after another spread evenly).
    """

    metadata = ToolR1Env.metadata

    def __init__(self, remote: str | Sequence[str], tasks: str = "train", *, max_turns: int | None = None,
                 step_timeout: float = 10.0, connect_timeout: float = 10.0, message_timeout: float | None = None,
                 retry_after: float = 30.0, render_mode: str | None = None, first_server: int | None = None,
                 **options: Any) -> None:
        servers = [remote] if isinstance(remote, str) else list(remote)
        if not servers:
            raise ValueError("remote= needs at least one server address")
        local_only = sorted(k for k in options if k not in CLIENT_OPTIONS)
        if local_only:
            raise TypeError(f"{local_only} cannot be sent to a server: the judge, web, vision, transcription, sandbox "
                            "and tool callables are set by the server operator (toolr1-serve flags)")
        if max_turns is not None and max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        start = (next(_spread) if first_server is None else first_server) % len(servers)
        self.servers = [ws_url(s) for s in servers[start:] + servers[:start]]
        self._options = {"tasks": tasks, "step_timeout": float(step_timeout), **options}
        self._max_turns_arg, self._time_limit = max_turns, None
        self.connect_timeout, self.retry_after = connect_timeout, retry_after
        self.message_timeout = message_timeout if message_timeout is not None else 3 * float(step_timeout) + 60
        self.render_mode = render_mode
        self.action_space = UnicodeText(MAX_ACTION_CHARS)  # the local env's: 4 x SandboxConfig.max_code_chars
        self.observation_space = UnicodeText(1 << 20)
        self.server: str | None = None  # the server of the open session
        self._lost_server: str | None = None
        self._ws: Any = None
        self._info: dict[str, Any] = {}
        self._turn, self._done, self._history = 0, True, []

    @property
    def max_turns(self) -> int:
        """The turn limit: ``max_turns`` and ``gym.make``'s ``max_episode_steps``, whichever is smaller."""
        limits = [v for v in (self._max_turns_arg, self._time_limit) if v]
        return min(limits) if limits else 8

    def set_time_limit(self, max_episode_steps: int | None) -> None:
        """Take ``gym.make``'s ``max_episode_steps`` (called by ``TurnLimitSync``), as the local env does."""
        self._time_limit = max_episode_steps if max_episode_steps and max_episode_steps > 0 else None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """Start an episode on a live server (``options={"task_id": ...}`` or ``{"task": Task}`` picks a task, else
        ``seed``); a ``Task`` travels as its id and its set's name (see the module docstring)."""
        super().reset(seed=seed)
        options = dict(options or {})
        data: dict[str, Any] = {"config": {**self._options, "max_turns": self.max_turns}}
        if seed is not None:
            data["seed"] = int(seed)
        task = options.get("task")
        if "task" in options:
            if not isinstance(task, Task):
                raise TypeError(f"options['task'] must be a toolr1_env.Task, got {type(task).__name__}")
            data["task_id"] = task.task_id
            home = task_set_name(task)
            if home is not None and home != self._options["tasks"]:
                data["task_set"] = home
        elif "task_id" in options:
            data["task_id"] = str(options["task_id"])
        reasons: list[str] = []
        for server in self._candidates():
            try:
                if self.server != server:
                    self._connect(server)
                # A reset may start the session's sandbox (up to SandboxConfig.startup_timeout, 60 s): wait longer.
                reply = self._exchange({"type": "reset", "data": data}, self.message_timeout + 120)
            except _Lost as exc:
                self._mark_down(server)
                reasons.append(f"{server}: {exc}")
                continue
            if reply.get("type") == "error" and reply.get("data", {}).get("code") == CAPACITY_REACHED:
                reasons.append(f"{server}: full ({reply['data'].get('message', '')})")
                self._disconnect()
                continue
            result = self._result(reply, task)
            self._turn, self._done, self._info = 0, False, dict(result["info"])
            self._history = [result["text"]]
            return result["text"], dict(result["info"])
        raise ServerUnavailable("no environment server could open a session: " + "; ".join(reasons or
                                                                                               ["all are down"]))

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """Run the action on the episode's server; a lost server ends the episode as an infrastructure error."""
        if self._done:
            raise ResetNeeded("call reset() before step()" if not self._history else
                              "the episode has ended: call reset() before step()")
        if isinstance(action, bytes):
            action = action.decode("utf-8", errors="replace")
        if not isinstance(action, str):
            raise TypeError(f"an action is a str of code or an LLM completion, got {type(action).__name__}")
        self._turn += 1
        try:
            reply = self._exchange({"type": "step", "data": {"code": action}}, self.message_timeout)
        except _Lost as exc:
            return self._server_outage(str(exc))
        if reply.get("type") == "error" and SESSION_CLOSED in str(reply.get("data", {}).get("message", "")):
            return self._server_outage(str(reply["data"]["message"]), server_alive=True)
        result = self._result(reply)
        self._done = bool(result["terminated"] or result["truncated"])
        self._history += [action, result["text"]]
        return (result["text"], float(reply["data"].get("reward") or 0.0), bool(result["terminated"]),
                bool(result["truncated"]), dict(result["info"]))

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: the episode so far as text (prompt, actions, observations)."""
        return "\n\n".join(self._history) if self.render_mode == "ansi" else None

    def close(self) -> None:
        """Close the session (the server stops its sandbox at once); a later ``step`` needs a ``reset``."""
        self._disconnect()
        self._done = True

    # -- the connection --------------------------------------------------------------------------------------

    def _candidates(self) -> list[str]:
        now = time.monotonic()
        with _down_lock:
            live = [s for s in self.servers if _down.get(s, 0.0) <= now]
        if self.server in live:  # stay on the open session's server: it keeps its sandbox warm
            live.remove(self.server)
            live.insert(0, self.server)
        return live

    def _connect(self, server: str) -> None:
        from websockets.sync.client import connect

        self._disconnect()
        self.server = server
        try:
            connection = connect(server, open_timeout=self.connect_timeout, max_size=None, close_timeout=2,
                                 ping_interval=20, ping_timeout=20)
            # The connection outlives this call (one session per env): enter it as the context manager that
            # websockets >= 17.1 asks for, and leave it in _disconnect.
            self._ws = connection.__enter__()
        except (OSError, TimeoutError, Exception) as exc:  # refused, unreachable, bad handshake
            self._ws = None
            raise _Lost(f"cannot connect: {type(exc).__name__}: {exc}") from exc

    def _exchange(self, message: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        from websockets.exceptions import ConnectionClosed

        if self._ws is None:
            raise _Lost("no open session (the server was lost earlier in this episode)")
        try:
            try:
                self._ws.send(json.dumps(message))
            except ConnectionClosed:
                pass  # a refused session closes at once; its reason may still be waiting to be read
            return json.loads(self._ws.recv(timeout=timeout))
        except (ConnectionClosed, OSError) as exc:
            self._disconnect()
            raise _Lost(f"connection lost: {type(exc).__name__}: {exc}") from exc
        except TimeoutError as exc:
            self._disconnect()
            raise _Lost(f"no reply within {timeout:.0f} s") from exc

    def _disconnect(self) -> None:
        self._lost_server = self.server  # kept for the outage report after the connection is gone
        if self._ws is not None:
            try:
                self._ws.send(json.dumps({"type": "close"}))
                self._ws.close()
            except Exception:  # already broken: nothing left to close politely
                pass
        self._ws, self.server = None, None

    def _mark_down(self, server: str | None) -> None:
        if server is not None:
            with _down_lock:
                _down[server] = time.monotonic() + self.retry_after

    def _result(self, reply: Mapping[str, Any], task: Task | None = None) -> dict[str, Any]:
        data = reply.get("data") or {}
        if reply.get("type") != "observation":
            hint = ""
            if task is not None:
                hint = (f" (options['task'] {task.task_id!r} was sent as its id and task set "
                        f"{task_set_name(task) or self._options['tasks']!r}: a server plays only tasks of sets it "
                        "offers)")
            raise RemoteEnvError(f"server error ({data.get('code', '?')}): {data.get('message', reply)}{hint}",
                                 str(data.get("code", "")))
        observation = data.get("observation") or {}
        if task is not None and task.question not in str(observation.get("text", "")):
            self._disconnect()  # the session holds an episode of another task: leave it
            raise RemoteEnvError(f"the server's task {task.task_id!r} asks another question than the Task given: "
                                 "client and server hold different versions of its task set")
        return observation

    def _server_outage(self, why: str, server_alive: bool = False) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """End the episode on a lost server (or session), as the local env ends one on a sandbox failure."""
        if server_alive:  # the server closed this session (idle too long): it still serves new ones
            self._disconnect()
        else:
            self._mark_down(self._lost_server)
        lost = self._lost_server
        self._done = True
        message = f"EnvServerError: {lost}: {why}"
        info: dict[str, Any] = {"task_id": self._info.get("task_id"), "level": self._info.get("level"),
                                "turn": self._turn, "error_type": "EnvServerError", "infra_error": message,
                                "infra_kind": ENV_SERVER, "final_answer": None, "ground_truth": None, "scored": True,
                                "reward_components": {"answer_score": 0.0, "exec_success": 0.0, "steps": self._turn,
                                                      "errors": 0, "answered": False}}
        observation = "The environment server failed (not your code); the episode was stopped."
        self._history += ["", observation]
        return observation, 0.0, False, True, info


def make_env(remote: str | Sequence[str] | None = None, **kwargs: Any) -> gym.Env:
    """Entry point of ``ToolR1-GAIA-v0``: a local :class:`ToolR1Env`; with ``remote=``, a :class:`RemoteToolR1Env`."""
    if remote is None:
        return ToolR1Env(**kwargs)
    return RemoteToolR1Env(remote, **kwargs)


make_env.metadata = ToolR1Env.metadata  # type: ignore[attr-defined]  # gym.make checks render_mode against it


class TurnLimitSync(LocalTurnLimitSync):
    """The registration's outer wrapper for both envs: hands ``gym.make``'s ``max_episode_steps`` to the env.

    :class:`toolr1_env.env.TurnLimitSync` does it for the local env; this adds the remote one, which sends the
    limit to its server with every ``reset`` (so the server pays the final reward on the same step).
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        layer: Any = env
        while isinstance(layer, gym.Wrapper) and isinstance(env.unwrapped, RemoteToolR1Env):
            if isinstance(layer, gym.wrappers.TimeLimit):
                env.unwrapped.set_time_limit(layer._max_episode_steps)
                break
            layer = layer.env
