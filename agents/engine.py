"""The one episode engine: keep N episodes in flight over a vector env, act for all live ones, refill.

Training rollouts (:mod:`agents.learner.rollout`), evaluation (:mod:`agents.evaluation.run`), TRL's
rollout function and the benchmarks all play episodes through :func:`play_episodes`. The contract:

* **Slots.** Env ``i`` of the :class:`~toolr1_env.vector.ThreadVectorEnv` is slot ``i``; at most
  ``envs.num_envs`` episodes are live at once. Requests are played in order: each free slot takes the
  next pending request (one ``reset_some`` call for all free slots), and the returned list follows the
  request order whatever order the episodes end in.
* **A turn.** ``player.act(live)`` is called once per turn with every live episode (``{slot: episode}``),
  so a model generates one batch for all of them. It returns, for every slot it was given, either an
  action (the text the env receives) or a :class:`Halt` (end this episode now, without stepping: the
  token budget ran out, or the agent failed). All actions then run at once (``step_live``: every
  episode's code in its own sandbox), ``player.observe`` sees each step, and ended slots refill.
* **Endings.** Every episode ends exactly once, through ``player.finish(episode, ending)``, with an
  :class:`Ending`: the env's last step (reward, terminated/truncated, info), or a halt. Infrastructure
  failures are never scored: ``ending.infra_kind`` is ``"agent"`` for an
  :class:`~agents.players.api.AgentError` (from ``begin`` or as a halt), or the env's own
  ``info["infra_kind"]`` (``"judge"``, ``"sandbox"``, ``"web"``) when it reported an ``infra_error``.
  A halted episode's env is abandoned (``envs.abandon``); its next reset starts clean.
* **Failures of one episode stay in that episode**: an agent error or an env-reported outage ends that
  episode only. Anything else raised by the player or the env is a bug and propagates.

``on_end(index, episode)`` (optional) is called as each episode ends, with its request index: the
evaluation appends records to disk there, so a killed run loses only the episodes in flight.
``on_round(rounds, ended)`` (optional) is called after each round of actions (one turn of every live
episode) with the rounds played and the episodes ended so far: the trainer's progress lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from agents.players.api import AgentError
from toolr1_env.tasks import Task
from toolr1_env.vector import StepOutcome, ThreadVectorEnv

E = TypeVar("E")


@dataclass(frozen=True)
class EpisodeRequest:
    """One episode to play: which task, which group it belongs to, and the env seed.

    ``task`` (optional) is the task itself, for tasks outside the envs' own task set (an evaluation split
    played in the training envs); otherwise the envs look ``task_id`` up in their task set.
    """

    task_id: str
    group_id: str = ""
    seed: int | None = None
    task: Task | None = None

    @classmethod
    def of(cls, task: Task, group_id: str = "", seed: int | None = None) -> EpisodeRequest:
        """A request to play ``task`` itself (looked up by nobody)."""
        return cls(task.task_id, group_id or task.task_id, seed, task)

    def reset_options(self) -> dict[str, Any]:
        """The ``options`` of the env reset that opens this episode."""
        return {"task": self.task} if self.task is not None else {"task_id": self.task_id}


@dataclass(frozen=True)
class Halt:
    """End an episode without stepping the env.

    Args:
        reason: why, for records (``"token_limit"``, ``"agent_error"``...).
        infra_error: set when the reason lies outside the policy (an agent server failed): the episode is
            then an ``"agent"`` infrastructure error, left out of training and accuracy.
    """

    reason: str
    infra_error: str | None = None


@dataclass(frozen=True)
class Ending:
    """How an episode ended (see the module docstring).

    Args:
        reward: the env's final reward (0.0 for a halt).
        terminated, truncated: as the env reported them; a halt is ``truncated``.
        info: the env's final info (``{}`` for a halt).
        halt: the :class:`Halt` that ended the episode, or None when the env ended it.
        infra_kind: ``"agent"``, ``"judge"``, ``"sandbox"``, ``"web"``... or None when the episode is scorable.
        infra_error: the message of that infrastructure error.
    """

    reward: float = 0.0
    terminated: bool = False
    truncated: bool = True
    info: Mapping[str, Any] = field(default_factory=dict)
    halt: Halt | None = None
    infra_kind: str | None = None
    infra_error: str | None = None

    @classmethod
    def from_step(cls, outcome: StepOutcome) -> Ending:
        """The ending of an episode whose last env step returned ``outcome``."""
        error = outcome.info.get("infra_error")
        kind = (outcome.info.get("infra_kind") or "judge") if error else None
        return cls(float(outcome.reward), bool(outcome.terminated), bool(outcome.truncated), outcome.info,
                   infra_kind=kind, infra_error=None if error is None else str(error))

    @classmethod
    def from_halt(cls, halt: Halt) -> Ending:
        """The ending of an episode the player halted."""
        return cls(halt=halt, infra_kind="agent" if halt.infra_error else None, infra_error=halt.infra_error)


@dataclass
class EngineStats:
    """Where one :func:`play_episodes` call spent its time (pass one in to have it filled)."""

    episodes: int = 0
    env_steps: int = 0
    env_seconds: float = 0.0
    act_seconds: float = 0.0
    wall_seconds: float = 0.0


class Player(Protocol, Generic[E]):
    """What :func:`play_episodes` drives: it builds one episode record of type ``E`` per request."""

    def begin(self, slot: int, index: int, request: EpisodeRequest, observation: str, info: Mapping[str, Any]) -> E:
        """Open the record of episode ``index`` (its request's position) in ``slot`` from the env's reset
        observation (the task prompt).

        Raising :class:`~agents.players.api.AgentError` ends the episode as an ``"agent"`` infra error;
        the record is then built by :meth:`failed`.
        """
        ...

    def failed(self, request: EpisodeRequest, error: Exception) -> E:
        """The record of an episode whose ``begin`` raised an agent error (it never acted)."""
        ...

    def act(self, live: Mapping[int, E]) -> Mapping[int, str | Halt]:
        """The next action (or a :class:`Halt`) for every live episode."""
        ...

    def observe(self, episode: E, action: str, outcome: StepOutcome) -> None:
        """Record one env step of ``episode`` (called for every step, the last one included)."""
        ...

    def finish(self, episode: E, ending: Ending) -> None:
        """Close the record: the episode has ended (called exactly once per episode)."""
        ...


def play_episodes(player: Player[E], envs: ThreadVectorEnv, requests: Sequence[EpisodeRequest], *,
                  on_end: Callable[[int, E], None] | None = None, stats: EngineStats | None = None,
                  on_round: Callable[[int, int], None] | None = None) -> list[E]:
    """Play every request to its end, ``envs.num_envs`` at a time; return the records in request order.

    ``stats`` (optional) is filled with counts and the time spent in the envs and in ``player.act``.
    """
    stats = stats if stats is not None else EngineStats()
    started = time.perf_counter()
    pending = list(enumerate(requests))[::-1]  # pop() from the end keeps request order
    live: dict[int, tuple[int, E]] = {}  # slot -> (request index, episode)
    done: dict[int, E] = {}

    def end(slot: int | None, index: int, episode: E, ending: Ending) -> None:
        player.finish(episode, ending)
        done[index] = episode
        if slot is not None:
            live.pop(slot, None)
        if on_end is not None:
            on_end(index, episode)

    def refill() -> None:
        while pending:
            free = [i for i in range(envs.num_envs) if i not in live][: len(pending)]
            if not free:
                return
            chosen = [pending.pop() for _ in free]
            t0 = time.perf_counter()
            resets = envs.reset_some(free, seeds=[r.seed for _, r in chosen],
                                     options=[r.reset_options() for _, r in chosen])
            stats.env_seconds += time.perf_counter() - t0
            for slot, (index, request) in zip(free, chosen, strict=True):
                observation, info = resets[slot]
                try:
                    live[slot] = (index, player.begin(slot, index, request, observation, info))
                except AgentError as exc:
                    envs.abandon(slot)
                    message = f"{type(exc).__name__}: {exc}"
                    end(None, index, player.failed(request, exc), Ending.from_halt(Halt("agent_error", message)))

    refill()
    rounds = 0
    while live:
        t0 = time.perf_counter()
        actions = player.act({slot: episode for slot, (_, episode) in live.items()})
        stats.act_seconds += time.perf_counter() - t0
        missing = set(live) - set(actions)
        if missing:
            raise RuntimeError(f"{type(player).__name__}.act returned nothing for slot(s) {sorted(missing)}")
        to_step: dict[int, str] = {}
        for slot in sorted(live):
            action = actions[slot]
            if isinstance(action, Halt):
                envs.abandon(slot)
                end(slot, *live[slot], Ending.from_halt(action))
            else:
                to_step[slot] = action
        t0 = time.perf_counter()
        outcomes = envs.step_live(to_step) if to_step else {}
        stats.env_seconds += time.perf_counter() - t0
        stats.env_steps += len(outcomes)
        for slot, outcome in outcomes.items():
            index, episode = live[slot]
            player.observe(episode, to_step[slot], outcome)
            if outcome.done:
                end(slot, index, episode, Ending.from_step(outcome))
        rounds += 1
        if on_round is not None:
            on_round(rounds, len(done))
        refill()
    stats.episodes += len(done)
    stats.wall_seconds += time.perf_counter() - started
    return [done[i] for i in range(len(requests))]
