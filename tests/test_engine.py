"""The one episode engine (agents/engine.py): slots, refill, request order, halts, failures of one episode."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from agents.engine import Ending, EngineStats, EpisodeRequest, Halt, play_episodes
from agents.players.api import AgentError
from toolr1_env import Task
from toolr1_env.env import ToolR1Env
from toolr1_env.sandbox import SandboxConfig
from toolr1_env.vector import StepOutcome, ThreadVectorEnv

TASKS = [Task(f"t{i}", f"What is {i} + {i}?", str(2 * i)) for i in range(5)]


@dataclass
class Episode:
    index: int
    slot: int
    actions: list[str] = field(default_factory=list)
    ending: Ending | None = None


class CountingPlayer:
    """Answers task i after i wrong steps; halts 'halt' tasks; fails to begin 'fail' tasks."""

    def __init__(self, halt: set[int] = frozenset(), fail: set[int] = frozenset()) -> None:
        self.halt, self.fail = halt, fail
        self.batches: list[list[int]] = []
        self.ended: list[int] = []

    def begin(self, slot: int, index: int, request: EpisodeRequest, observation: str,
              info: Mapping[str, Any]) -> Episode:
        assert "Task:" in observation or "What is" in observation
        if index in self.fail:
            raise AgentError("model server unreachable (test)")
        return Episode(index, slot)

    def failed(self, request: EpisodeRequest, error: Exception) -> Episode:
        return Episode(int(request.task_id[1:]), -1)

    def act(self, live: Mapping[int, Episode]) -> dict[int, str | Halt]:
        self.batches.append(sorted(e.index for e in live.values()))
        out: dict[int, str | Halt] = {}
        for slot, episode in live.items():
            if episode.index in self.halt:
                out[slot] = Halt("token_limit")
            elif len(episode.actions) < episode.index:
                out[slot] = "print('thinking')"
            else:
                out[slot] = f"final_answer({2 * episode.index})"
        return out

    def observe(self, episode: Episode, action: str, outcome: StepOutcome) -> None:
        episode.actions.append(action)

    def finish(self, episode: Episode, ending: Ending) -> None:
        assert episode.ending is None, "an episode ends exactly once"
        episode.ending = ending
        self.ended.append(episode.index)


def make_envs(n: int) -> ThreadVectorEnv:
    return ThreadVectorEnv([lambda: ToolR1Env(tasks=TASKS, max_turns=8, sandbox=SandboxConfig(preload=()))] * n)


def test_slots_refill_and_records_come_back_in_request_order() -> None:
    player, stats, rounds = CountingPlayer(), EngineStats(), []
    with make_envs(2) as envs:
        episodes = play_episodes(player, envs, [EpisodeRequest.of(t) for t in TASKS], stats=stats,
                                 on_round=lambda played, ended: rounds.append((played, ended)))
    assert [e.index for e in episodes] == [0, 1, 2, 3, 4]  # request order, whatever order they ended in
    assert player.ended[:2] == [0, 1]  # task 0 ends first, its slot takes task 2 at once
    assert player.batches[0] == [0, 1] and player.batches[1] == [1, 2]
    assert all(len(b) <= 2 for b in player.batches)  # never more live episodes than envs
    assert all(e.ending.terminated and e.ending.reward == pytest.approx(1.2) for e in episodes)
    assert [len(e.actions) for e in episodes] == [1, 2, 3, 4, 5]
    assert stats.episodes == 5 and stats.env_steps == 15 and stats.env_seconds > 0
    # A progress hook after every round of actions: rounds played, episodes ended so far.
    assert [r for r, _ in rounds] == list(range(1, len(player.batches) + 1))
    assert rounds[0] == (1, 1) and rounds[-1][1] == 5  # task 0 answers on its first action
    assert all(a[1] <= b[1] for a, b in zip(rounds, rounds[1:], strict=False))


def test_a_halt_ends_only_that_episode_and_frees_its_env() -> None:
    player = CountingPlayer(halt={1})
    with make_envs(1) as envs:
        episodes = play_episodes(player, envs, [EpisodeRequest.of(t) for t in TASKS[:3]])
        assert envs.live == [False]
    halted = episodes[1].ending
    assert halted.halt == Halt("token_limit") and halted.truncated and halted.infra_kind is None
    assert episodes[1].actions == [] and episodes[2].ending.reward == pytest.approx(1.2)


def test_an_agent_error_is_an_agent_infra_error_of_that_episode_only() -> None:
    player = CountingPlayer(fail={0})
    ended: list[int] = []
    with make_envs(1) as envs:
        episodes = play_episodes(player, envs, [EpisodeRequest.of(t) for t in TASKS[:2]],
                                 on_end=lambda i, e: ended.append(i))
    assert episodes[0].ending.infra_kind == "agent" and "unreachable" in episodes[0].ending.infra_error
    assert episodes[1].ending.terminated and ended == [0, 1]


def test_a_player_that_skips_a_live_slot_is_a_bug_and_raises() -> None:
    class Forgetful(CountingPlayer):
        def act(self, live: Mapping[int, Episode]) -> dict[int, str | Halt]:
            return {}

    with make_envs(1) as envs, pytest.raises(RuntimeError, match="returned nothing for slot"):
        play_episodes(Forgetful(), envs, [EpisodeRequest.of(TASKS[0])])
