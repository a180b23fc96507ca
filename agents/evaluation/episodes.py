"""Playing the episodes of an evaluation: a batch agent on a vector of envs, one record per episode.

:func:`run_episodes` drives :func:`agents.engine.play_episodes` (the one episode loop that training,
evaluation and benchmarks share) with :class:`AgentPlayer`, which turns the turns of a
:class:`~agents.players.api.BatchAgent` into records (:class:`~agents.evaluation.records.EpisodeRecord`).
Agent failures are infrastructure errors, never wrong answers; too many in a row abort the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.engine import Ending, EpisodeRequest, Halt, play_episodes
from agents.evaluation.records import EpisodeRecord, TurnRecord, attachment_type
from agents.players.api import AgentError, BatchAgent
from toolr1_env.tasks import Task
from toolr1_env.vector import StepOutcome, ThreadVectorEnv


class EvaluationAborted(RuntimeError):
    """The agent failed too many episodes in a row (its server is probably down)."""



@dataclass
class _Live:
    task: Task
    record: EpisodeRecord
    observation: str
    started: float
    slot: int | None = None  # None: the agent failed at reset


class AgentPlayer:
    """A :class:`~agents.players.api.BatchAgent` as a :class:`~agents.engine.Player` of evaluation records.

    Engine slot ``i`` is agent slot ``i``. Agent errors (from ``reset_slot`` or as ``act_batch`` values)
    become ``"agent"`` infrastructure errors; env-reported outages keep the env's kind.
    """

    def __init__(self, agent: BatchAgent, tasks: Sequence[Task], tool_names: Sequence[str] = (),
                 repeats: Mapping[str, int] | None = None) -> None:
        self.agent = agent
        self.tasks = tasks
        self.tool_names = frozenset(tool_names) | {"final_answer"}
        self.repeats = dict(repeats or {})  # request group id -> which repeat it plays

    def begin(self, slot: int, index: int, request: EpisodeRequest, observation: str,
              info: Mapping[str, Any]) -> _Live:
        """Open the record and reset the agent's slot (engine hook)."""
        task = self.tasks[index]
        self.agent.reset_slot(slot, observation)
        return _Live(task, _new_record(task, self.repeats.get(request.group_id, 0)), observation, time.perf_counter(),
                     slot)

    def failed(self, request: EpisodeRequest, error: Exception) -> _Live:
        """The record of an episode whose agent failed at reset (engine hook)."""
        task = request.task
        assert task is not None
        return _Live(task, _new_record(task, self.repeats.get(request.group_id, 0)), "", time.perf_counter())

    def act(self, live: Mapping[int, _Live]) -> dict[int, str | Halt]:
        """One ``act_batch`` call for every live episode (engine hook)."""
        actions = self.agent.act_batch({slot: episode.observation for slot, episode in live.items()})
        return {slot: Halt("agent_error", f"{type(a).__name__}: {a}") if isinstance(a, AgentError) else a
                for slot, a in actions.items()}

    def observe(self, episode: _Live, action: str, outcome: StepOutcome) -> None:
        """Record the turn (engine hook)."""
        episode.record.turns.append(TurnRecord.from_step(action, outcome.observation, outcome.info.get("error_type"),
                                                         self.tool_names))
        episode.observation = outcome.observation

    def finish(self, episode: _Live, ending: Ending) -> None:
        """Fill the record's outcome, usage and wall time (engine hook)."""
        record = episode.record
        if episode.slot is not None:
            record.usage = self.agent.usage(episode.slot).to_dict()
        record.wall_seconds = time.perf_counter() - episode.started
        if ending.halt is None:
            _fill_end(record, ending)
        record.infra_kind, record.infra_error = ending.infra_kind, ending.infra_error


def run_episodes(agent: BatchAgent, envs: ThreadVectorEnv, tasks: Sequence[Task],
                 on_record: Callable[[EpisodeRecord], None], *, seed: int = 0,
                 max_agent_failures: int = 0, repeats: Sequence[int] | None = None) -> list[EpisodeRecord]:
    """Play every task once through :func:`agents.engine.play_episodes`, ``envs.num_envs`` at a time;
    call ``on_record`` as each episode ends. Returns the records in task order.

    ``repeats[i]`` (default 0) is which repeat ``tasks[i]`` plays: its env seed is ``seed + repeats[i]`` and its
    record carries it, so one task may appear once per repeat.

    Raises:
        EvaluationAborted: ``max_agent_failures`` (> 0) consecutive episodes ended in agent errors.
    """
    streak = 0

    def on_end(index: int, episode: _Live) -> None:
        nonlocal streak
        record = episode.record
        streak = streak + 1 if record.infra_kind == "agent" else 0
        on_record(record)
        if max_agent_failures and streak >= max_agent_failures:
            raise EvaluationAborted(f"{streak} episodes in a row ended in agent errors; last: {record.infra_error}")

    rounds = list(repeats) if repeats is not None else [0] * len(tasks)
    requests = [EpisodeRequest.of(task, f"{task.task_id}@{r}", seed=seed + r) for task, r in zip(tasks, rounds,
                                                                                                   strict=True)]
    env = envs.envs[0].unwrapped
    tool_names = [*getattr(env, "tools", {}), *getattr(env, "hidden_tools", {})]
    player = AgentPlayer(agent, tasks, tool_names, {q.group_id: r for q, r in zip(requests, rounds, strict=True)})
    return [e.record for e in play_episodes(player, envs, requests, on_end=on_end)]


def _new_record(task: Task, repeat: int = 0) -> EpisodeRecord:
    return EpisodeRecord(task.task_id, task.level, task.question, task.answer,
                         attachments=[attachment_type(f) for f in task.files], has_ground_truth=task.scored,
                         repeat=repeat)


def _fill_end(record: EpisodeRecord, ending: Ending) -> None:
    components = dict(ending.info.get("reward_components", {}))
    answer = ending.info.get("final_answer")
    record.final_answer = None if answer is None else str(answer)
    record.correct = float(components.get("answer_score", 0.0))
    record.reward = float(ending.reward)
    record.reward_components = components
    record.truncated = bool(ending.truncated)

