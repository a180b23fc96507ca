"""SkyRL: ToolR1-GAIA-v0 as a SkyRL-Gym text environment (``BaseTextEnv``: an LLM reply in, chat messages out).

    from skyrl_gym.envs import register
    register(id="toolr1", entry_point="toolr1_env.integrations.skyrl:ToolR1TextEnv")
    # dataset rows: toolr1_env.integrations.skyrl.skyrl_rows("train", size=1000); env config: generator.env_config

SkyRL builds one env per trajectory as ``ToolR1TextEnv(env_config, extras)``: ``env_config`` holds ``tasks`` (any
task spec we accept, default ``"warmup"``) and any :class:`~toolr1_env.env.ToolR1Env` argument, and ``extras`` is
the dataset row (the task id sits in ``extra_info``). ``init`` swaps the row's empty user message for the env's
task prompt; each ``step`` is one env step on the model's whole reply (its fenced code runs in the sandbox), and
the observation returns as a user message. The reward arrives at the last step.

Environment servers: with ``env_config["remote"]`` (a ``ws://host:port`` or a list of them) the episodes run on
``toolr1-serve`` processes (:mod:`toolr1_env.serving`) instead of in the SkyRL worker, so the sandboxes live on CPU
nodes; ``tasks`` then names a task set the servers offer.

Infrastructure failures: SkyRL has no "unscorable" outcome, so an episode whose judge, sandbox or environment
server failed ends with reward 0 and ``metadata["infra_error"]`` (and ``metadata["infra_kind"]``) set; filter such
trajectories before training (do not train on them as wrong).

Subclasses SkyRL's ``BaseTextEnv`` when ``skyrl_gym`` is installed; without it the class is a plain object with
the same methods (so it can be tested, and used by anything that speaks the same protocol).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from toolr1_env.env import TasksSpec, ToolR1Env, resolve_tasks
from toolr1_env.integrations.tasks import select_tasks
from toolr1_env.tasks import TaskSet

try:
    from skyrl_gym.envs.base_text_env import BaseTextEnv as _TextEnvBase
except ImportError:  # SkyRL is optional: keep the protocol without the base class
    _TextEnvBase = object

ENV_CLASS = "toolr1"


def skyrl_rows(tasks: TasksSpec, size: int | None = None, env_class: str = ENV_CLASS) -> list[dict[str, Any]]:
    """SkyRL dataset rows (``prompt``, ``env_class``, ``reward_spec``, ``extra_info``) for the tasks of
    :func:`~toolr1_env.integrations.tasks.select_tasks`; write them to parquet for SkyRL's data loader."""
    return [{"prompt": [{"role": "user", "content": ""}], "env_class": env_class,
             "reward_spec": {"method": "env", "ground_truth": t.answer},
             "extra_info": {"task_id": t.task_id, "level": t.level}} for t in select_tasks(tasks, size)]


@functools.lru_cache(maxsize=8)
def _task_set(spec: str) -> TaskSet:
    return resolve_tasks(spec)  # SkyRL builds one env per trajectory: resolve a named split once


class ToolR1TextEnv(_TextEnvBase):  # type: ignore[misc, valid-type]
    """One ToolR1-GAIA-v0 episode behind SkyRL's ``BaseTextEnv`` protocol (see the module docstring).

    Args:
        env_config: ``{"tasks": ..., **ToolR1Env arguments}`` (an OmegaConf node or a dict); with ``"remote"``, the
            servers to play on (:class:`~toolr1_env.serving.remote_env.RemoteToolR1Env` arguments).
        extras: the dataset row; ``extras["extra_info"]["task_id"]`` (or ``extras["task_id"]``) picks the task.
    """

    def __init__(self, env_config: Mapping[str, Any] | None = None, extras: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        config = {key: (env_config or {})[key] for key in (env_config or {})}
        tasks = config.pop("tasks", "warmup")
        extras = extras or {}
        self.task_id: str | None = (extras.get("extra_info") or {}).get("task_id") or extras.get("task_id")
        remote = config.pop("remote", None)
        if remote is not None:  # episodes on environment servers: the task set is named, resolved there
            from toolr1_env.serving.remote_env import RemoteToolR1Env

            servers = remote if isinstance(remote, str) else [str(r) for r in remote]  # OmegaConf ListConfig too
            self.env: ToolR1Env | RemoteToolR1Env = RemoteToolR1Env(servers, tasks=tasks, **config)
        else:
            self.env = ToolR1Env(tasks=_task_set(tasks) if isinstance(tasks, str) else tasks, **config)
        self.turns = 0
        self.max_turns = self.env.max_turns

    def init(self, prompt: Sequence[Mapping[str, str]]) -> tuple[list[dict[str, str]], dict[str, Any]]:
        """Open the episode: the row's system messages, then the env's task prompt as the user message."""
        observation, info = self.env.reset(options={"task_id": self.task_id} if self.task_id else None)
        messages = [dict(m) for m in prompt if m.get("role") == "system"]
        return [*messages, {"role": "user", "content": observation}], {"task_id": info["task_id"]}

    def step(self, action: str) -> dict[str, Any]:
        """One env step on the model's reply: ``{"observations", "reward", "done", "metadata"}``."""
        self.turns += 1
        observation, reward, terminated, truncated, info = self.env.step(action)
        done = bool(terminated or truncated)
        metadata = {key: info[key] for key in ("task_id", "error_type", "final_answer", "reward_components",
                                               "infra_error", "infra_kind") if key in info}
        return {"observations": [] if done else [{"role": "user", "content": observation}],
                "reward": float(reward), "done": done, "metadata": metadata}

    def close(self) -> None:
        """Stop the episode's sandbox."""
        self.env.close()
