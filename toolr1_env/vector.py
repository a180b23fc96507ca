"""A thread-backed vector env for code actions: every live episode's code runs at the same time.

Why threads and not subprocesses (``AsyncVectorEnv``)? The expensive part of a step already runs in
another process (the sandbox worker), so a host thread per env only waits on a socket and the GIL is
free; threads avoid pickling observations through pipes and starting one Python per env. Both
``SyncVectorEnv`` and ``AsyncVectorEnv(shared_memory=False)`` work with ``ToolR1-GAIA-v0`` too.

Beyond the gymnasium ``VectorEnv`` API (``step`` with SAME_STEP autoreset: the action sent after an episode
ends is never wasted), two methods serve multi-turn RL rollouts, where episodes end at different turns:

* :meth:`ThreadVectorEnv.reset_some`: reset chosen envs, each with its own seed and options
  (``{"task_id": ...}`` puts G envs on the same task for a GRPO group).
* :meth:`ThreadVectorEnv.step_live`: step only the envs given an action; ended episodes stay ended.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class StepOutcome:
    """One env's step result, as returned by :meth:`ThreadVectorEnv.step_live`."""

    observation: str
    reward: float
    terminated: bool
    truncated: bool
    info: dict[str, Any]

    @property
    def done(self) -> bool:
        """The episode ended (terminated or truncated)."""
        return self.terminated or self.truncated


class ThreadVectorEnv(gym.vector.VectorEnv):
    """``num_envs`` copies of an env stepped concurrently from a thread pool.

    Args:
        env_fns: one constructor per sub-env, e.g. ``[lambda: gym.make("ToolR1-GAIA-v0")] * 8``.
    """

    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]]) -> None:
        if not env_fns:
            raise ValueError("ThreadVectorEnv needs at least one env constructor")
        self.envs = [fn() for fn in env_fns]
        self.num_envs = len(self.envs)
        self.single_action_space = self.envs[0].action_space
        self.single_observation_space = self.envs[0].observation_space
        self.action_space = gym.spaces.Tuple([self.single_action_space] * self.num_envs)
        self.observation_space = gym.spaces.Tuple([self.single_observation_space] * self.num_envs)
        self._pool = ThreadPoolExecutor(max_workers=self.num_envs, thread_name_prefix="toolr1-env")
        self._live = [False] * self.num_envs
        self.closed = False

    @property
    def live(self) -> list[bool]:
        """Which sub-envs are inside an episode (reset and not yet ended)."""
        return list(self._live)

    def reset_some(self, indices: Sequence[int], seeds: Sequence[int | None] | None = None,
                   options: Sequence[dict[str, Any] | None] | None = None) -> dict[int, tuple[str, dict]]:
        """Reset the chosen envs concurrently; returns ``{index: (observation, info)}``."""
        seeds = list(seeds) if seeds is not None else [None] * len(indices)
        options = list(options) if options is not None else [None] * len(indices)
        if not len(seeds) == len(options) == len(indices):
            raise ValueError("indices, seeds and options must have the same length")
        futures = {i: self._pool.submit(self.envs[i].reset, seed=s, options=o)
                   for i, s, o in zip(indices, seeds, options, strict=True)}
        results = {i: f.result() for i, f in futures.items()}
        for i in results:
            self._live[i] = True
        return results

    def step_live(self, actions: Mapping[int, str]) -> dict[int, StepOutcome]:
        """Step only the envs named in ``actions`` (each must be live); returns their outcomes."""
        for i in actions:
            if not self._live[i]:
                raise gym.error.ResetNeeded(f"sub-env {i} is not in an episode: reset it first")
        futures = {i: self._pool.submit(self.envs[i].step, a) for i, a in actions.items()}
        outcomes = {i: StepOutcome(*f.result()) for i, f in futures.items()}
        for i, outcome in outcomes.items():
            if outcome.done:
                self._live[i] = False
        return outcomes

    def abandon(self, index: int) -> None:
        """Give up sub-env ``index``'s episode (e.g. its token budget ran out); reset it before reuse."""
        self._live[index] = False

    def reset(self, *, seed: int | Sequence[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[tuple[str, ...], dict[str, Any]]:
        """Reset every sub-env (gymnasium API); an int seed gives sub-env i the seed ``seed + i``."""
        if seed is None or isinstance(seed, int):
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
        results = self.reset_some(range(self.num_envs), seeds, [options] * self.num_envs)
        observations = tuple(results[i][0] for i in range(self.num_envs))
        return observations, self._merge_infos([results[i][1] for i in range(self.num_envs)])

    def step(self, actions: Sequence[str]) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, dict]:
        """Step every sub-env (gymnasium API, SAME_STEP autoreset: a finished env restarts at once and its
        last observation and info move to ``info["final_obs"]`` / ``info["final_info"]``)."""
        outcomes = self.step_live(dict(enumerate(actions)))
        done = [i for i in range(self.num_envs) if outcomes[i].done]
        restarted = self.reset_some(done) if done else {}
        observations, infos = [], []
        for i in range(self.num_envs):
            if i in restarted:
                observations.append(restarted[i][0])
                infos.append({**restarted[i][1], "final_obs": outcomes[i].observation,
                              "final_info": outcomes[i].info})
            else:
                observations.append(outcomes[i].observation)
                infos.append(outcomes[i].info)
        rewards = np.array([outcomes[i].reward for i in range(self.num_envs)], dtype=np.float64)
        terminated = np.array([outcomes[i].terminated for i in range(self.num_envs)], dtype=np.bool_)
        truncated = np.array([outcomes[i].truncated for i in range(self.num_envs)], dtype=np.bool_)
        return tuple(observations), rewards, terminated, truncated, self._merge_infos(infos)

    def _merge_infos(self, infos: list[dict[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for i, info in enumerate(infos):
            merged = self._add_info(merged, info, i)
        return merged

    def __enter__(self) -> ThreadVectorEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close_extras(self, **kwargs: Any) -> None:
        """Close every sub-env and the thread pool."""
        for env in self.envs:
            env.close()
        self._pool.shutdown(wait=True)
