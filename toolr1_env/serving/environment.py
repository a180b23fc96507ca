"""ToolR1-GAIA as an OpenEnv ``Environment``: one instance per WebSocket session, each with its own sandbox.

OpenEnv's ``HTTPEnvServer`` creates one :class:`ToolR1OpenEnv` per session (``SUPPORTS_CONCURRENT_SESSIONS``),
runs its ``reset``/``step`` on a thread of its own, and closes it when the session ends (the client closed, its
connection dropped, or it sat idle past the session timeout). Each instance drives one in-process
:class:`~toolr1_env.env.ToolR1Env`, so the server plays exactly the episodes a local env plays: same prompts,
same sandbox, same reward and ``info``.

What a client chooses and what the server operator fixes: see :mod:`toolr1_env.serving.wire`. Host tools (the
judge, the real web, vision and transcription models) and their API keys live in :class:`ServerSettings`, on the
server; a client names a task set and limits, never an endpoint or a path.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any

from openenv.core.env_server import Action, Environment, Observation, State
from openenv.core.env_server.types import EnvironmentMetadata
from pydantic import Field

from toolr1_env.env import ToolR1Env, resolve_tasks
from toolr1_env.sandbox import SandboxConfig
from toolr1_env.serving.wire import MAX_ACTION_CHARS, SESSION_CLOSED, check_client_config, json_safe
from toolr1_env.tasks import Task, TaskSet


class CodeAction(Action):
    """One agent action: Python code, or a whole LLM completion whose fenced code runs (as in the local env)."""

    code: str = Field(..., max_length=MAX_ACTION_CHARS,
                      description="Python source, or an LLM completion with ```py fenced code")


class EpisodeObservation(Observation):
    """What one ``reset`` or ``step`` returns: the env's observation text and its ``info``.

    ``done`` (OpenEnv's field) is ``terminated or truncated``; both are kept apart as in gymnasium. ``reward`` is
    the step's reward (0 until the last step; ``None`` after ``reset``); ``info["reward_components"]`` holds its
    parts at the end of the episode.
    """

    text: str = Field(default="", description="the task prompt after reset; the execution output after a step")
    info: dict[str, Any] = Field(default_factory=dict, description="the in-process env's info dict")
    terminated: bool = Field(default=False, description="final_answer was called")
    truncated: bool = Field(default=False, description="the turn limit, or an infrastructure failure")


class EpisodeState(State):
    """The session's episode: which task, how many turns, whether it has ended, and its env options."""

    task_id: str | None = None
    level: int | None = None
    done: bool = True
    config: dict[str, Any] = Field(default_factory=dict)


@dataclasses.dataclass
class ServerSettings:
    """What the server operator fixes for every session (``toolr1-serve``'s flags build one).

    Args:
        tasks: the default task set (a bundled split name) when a client names none.
        task_sets: extra task sets clients may name, ``{name: path}`` (a GAIA copy, a task JSONL) on the server.
        judge, web, vision, transcription: host-side services, as ``gym.make`` takes them (with their API keys);
            ``web``, ``vision`` and ``transcription`` apply to the operator's task sets, not to bundled splits
            (which bring their own offline web).
        tools: extra host tools clients may ask for by name (``config["tools"]``).
        sandbox: the sandbox limits of every session.
        step_timeout: default seconds per code action; ``max_step_timeout`` caps what a client may ask for.
    """

    tasks: str = "train"
    task_sets: dict[str, str] = dataclasses.field(default_factory=dict)
    judge: Any = None
    web: Any = None
    vision: Any = None
    transcription: Any = None
    tools: dict[str, Callable[..., Any]] = dataclasses.field(default_factory=dict)
    sandbox: SandboxConfig = dataclasses.field(default_factory=SandboxConfig)
    step_timeout: float = 10.0
    max_step_timeout: float = 120.0

    def __post_init__(self) -> None:
        self._task_cache: dict[str, TaskSet] = {}
        self._lock = threading.Lock()  # sessions resolve task sets from their own threads

    def task_set(self, name: str) -> TaskSet:
        """The task set a client named: the operator's own, or a bundled split (resolved once per server)."""
        from toolr1_env import suite

        if name not in self.task_sets and name not in suite.SPLITS:
            raise ValueError(f"unknown task set {name!r}: this server offers "
                             f"{', '.join([*suite.SPLITS, *self.task_sets])}")
        with self._lock:
            if name not in self._task_cache:
                self._task_cache[name] = resolve_tasks(self.task_sets.get(name, name))
            return self._task_cache[name]

    def task(self, name: str, task_id: str) -> Task:
        """Task ``task_id`` of the task set ``name`` (as :meth:`task_set` resolves it): how a client's ``Task``
        object is played here, rebuilt from the server's own copy of its set, never from client data.

        Raises:
            ValueError: the server offers no set ``name``, or the set has no such task.
        """
        try:
            return self.task_set(name).get(task_id)
        except KeyError as exc:
            raise ValueError(exc.args[0] if exc.args else str(exc)) from None  # a KeyError's str() is a repr

    def env_kwargs(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """``ToolR1Env`` arguments for a client's checked ``config``: the client's limits, the operator's services."""
        from toolr1_env import suite

        kwargs = dict(config)
        name = kwargs.pop("tasks", self.tasks)
        split, level = kwargs.pop("split", None), kwargs.pop("level", None)
        if split is not None or level is not None:  # a part of the operator's GAIA copy: resolve it apart
            if name not in self.task_sets:
                raise ValueError("split and level choose part of a GAIA copy the server offers, "
                                 f"not of {name!r}")
            tasks: Any = resolve_tasks(self.task_sets[name], split, level)
        else:
            tasks = self.task_set(name)
        unknown = [t for t in kwargs.pop("tools", []) if t not in self.tools]
        if unknown:
            raise ValueError(f"unknown tools {unknown}: this server offers {sorted(self.tools) or 'none'}")
        timeout = float(kwargs.pop("step_timeout", self.step_timeout))
        if not 0 < timeout <= self.max_step_timeout:
            raise ValueError(f"step_timeout must be in (0, {self.max_step_timeout}] on this server, got {timeout}")
        services = {} if name in suite.SPLITS else {"web": self.web, "vision": self.vision,
                                                     "transcription": self.transcription}
        tools = {t: self.tools[t] for t in config.get("tools", [])}
        return {"tasks": tasks, "judge": self.judge, "sandbox": self.sandbox, "step_timeout": timeout,
                "tools": tools, **services, **kwargs}


class ToolR1OpenEnv(Environment[CodeAction, EpisodeObservation, EpisodeState]):
    """One session's ToolR1-GAIA episodes behind OpenEnv's ``Environment`` API (see the module docstring).

    ``reset(seed=, task_id=, task_set=, episode_id=, config=)``: ``config`` holds ``gym.make`` options a client may
    set (:data:`~toolr1_env.serving.wire.CLIENT_OPTIONS`); a new ``config`` rebuilds the session's env, the same one
    keeps its sandbox. ``task_set`` names the set of ``task_id`` when it is another than ``config["tasks"]`` (how
    a client's ``Task`` object travels). ``step(CodeAction(code=...))`` is one ``ToolR1Env.step``.
    """

    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self, settings: ServerSettings) -> None:
        super().__init__()
        self.settings = settings
        self._env: ToolR1Env | None = None  # built at the first reset: OpenEnv also builds instances for /metadata
        self._config: dict[str, Any] | None = None
        self._state = EpisodeState()
        self._closed = False

    def reset(self, seed: int | None = None, episode_id: str | None = None, task_id: str | None = None,
              config: Mapping[str, Any] | None = None, task_set: str | None = None,
              **unknown: Any) -> EpisodeObservation:
        """Start an episode: ``task_id`` picks the task (of ``task_set`` when given), else ``seed`` (as
        ``ToolR1Env.reset``)."""
        self._check_open()
        if unknown:
            raise ValueError(f"unknown reset fields {sorted(unknown)}: use seed, task_id, task_set, episode_id, "
                             "config")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        if task_set is not None and (not isinstance(task_set, str) or task_id is None):
            raise ValueError("task_set names the task set of task_id: a string, sent together with task_id")
        clean = check_client_config(config or {})
        task = None
        if task_set is not None and task_set != clean.get("tasks", self.settings.tasks):
            task = self.settings.task(task_set, str(task_id))  # raises before the session's env changes
        if self._env is None or clean != self._config:
            env = ToolR1Env(**self.settings.env_kwargs(clean))  # raises before the old env is dropped
            self._close_env()
            self._env, self._config = env, clean
        options: dict[str, Any] | None = None
        if task is not None:
            options = {"task": task}
        elif task_id is not None:
            options = {"task_id": str(task_id)}
        try:
            prompt, info = self._env.reset(seed=seed, options=options)
        except KeyError as exc:  # an unknown task_id: the set's readable message, not a KeyError's repr
            raise ValueError(exc.args[0] if exc.args else str(exc)) from None
        self._state = EpisodeState(episode_id=episode_id, step_count=0, task_id=info["task_id"],
                                   level=info["level"], done=False, config=clean)
        return EpisodeObservation(text=prompt, info=json_safe(info), done=False, reward=None)

    def step(self, action: CodeAction, timeout_s: float | None = None, **kwargs: Any) -> EpisodeObservation:
        """Run the action's code in the session's sandbox (the server's ``step_timeout`` applies, not ``timeout_s``)."""
        self._check_open()
        if self._env is None:
            raise RuntimeError("call reset before step")
        observation, reward, terminated, truncated, info = self._env.step(action.code)
        done = bool(terminated or truncated)
        self._state.step_count += 1
        self._state.done = done
        return EpisodeObservation(text=observation, info=json_safe(info), terminated=bool(terminated),
                                  truncated=bool(truncated), done=done, reward=float(reward))

    @property
    def state(self) -> EpisodeState:
        """The session's episode (task, turns taken, ended or not, its options)."""
        return self._state

    def get_metadata(self) -> EnvironmentMetadata:
        """Name and description shown by OpenEnv's ``/metadata``."""
        return EnvironmentMetadata(name="ToolR1-GAIA-v0", version="0",
                                   description="GAIA-style questions solved by writing Python in a persistent "
                                               "sandbox; action {'code': str}, observation {'text', 'info'}.")

    def close(self) -> None:
        """Stop the session's sandbox; later calls are refused (the session is gone)."""
        self._closed = True
        self._close_env()

    def _close_env(self) -> None:
        if self._env is not None:
            self._env.close()
            self._env = None

    def _check_open(self) -> None:
        if self._closed:  # OpenEnv's idle reaper closes the env while the socket may still be open
            raise RuntimeError(f"{SESSION_CLOSED} (idle past its session timeout); open a new session")
