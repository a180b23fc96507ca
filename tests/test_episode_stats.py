"""Multi-step and degeneration metrics (agents/learner/episode_stats.py) on hand-built trajectories."""

from __future__ import annotations

import pytest

from agents.learner.episode_stats import episode_stats, recovered, repeated_ngram_rate
from agents.learner.records import Trajectory, Turn


def episode(turns: list[tuple[list[int], str | None, str]], correct: bool, token_limit: bool = False) -> Trajectory:
    """A trajectory whose turns generate the given tokens, with the given errors and finish reasons."""
    traj = Trajectory.start("t", "g", [1, 2, 3])
    for k, (tokens, error, reason) in enumerate(turns):
        start, end = traj.append_generated(tokens, [-0.1] * len(tokens))
        traj.turns.append(Turn(start, end, end, execution_error=error, finish_reason=reason))  # type: ignore[arg-type]
        traj.num_turns += 1
        if k + 1 < len(turns):
            _, traj.turns[-1].obs_end = traj.append_forced([9, 9])
    traj.reward_components = {"answer_score": 1.0 if correct else 0.0}
    if token_limit:
        traj.metadata["token_limit"] = True
    return traj


def test_repeated_ngram_rate():
    assert repeated_ngram_rate([1, 2, 3, 4, 5, 6]) == 0.0
    assert repeated_ngram_rate([1, 2, 3]) == 0.0  # shorter than one 4-gram
    # final_answer(final_answer(...: a period-2 loop repeats every 4-gram after the first two.
    assert repeated_ngram_rate([7, 8] * 10) == pytest.approx(15 / 17)
    assert repeated_ngram_rate([1, 2, 1, 2], n=2) == pytest.approx(1 / 3)


def test_recovery_needs_an_error_before_the_last_turn_and_a_correct_answer():
    assert recovered(episode([([1, 2], "NameError", "stop"), ([3, 4], None, "stop")], correct=True))
    assert not recovered(episode([([1, 2], "NameError", "stop"), ([3, 4], None, "stop")], correct=False))
    assert not recovered(episode([([1, 2], None, "stop"), ([3, 4], None, "stop")], correct=True))
    assert not recovered(episode([([1, 2], "SyntaxError", "stop")], correct=True))  # the error was the last turn


def test_episode_stats_values():
    batch = [
        episode([([1, 2], "NameError", "stop"), ([3, 4], None, "eos")], correct=True),  # recovers
        episode([([5, 6], "KeyError", "stop"), ([7, 8] * 10, None, "length")], correct=False, token_limit=True),
        episode([([1, 2, 3, 4, 5], None, "stop")], correct=True),
        episode([([1, 2], None, "stop")], correct=False),
    ]
    stats = episode_stats(batch, "eval")
    assert stats["eval/had_error"] == 0.5
    assert stats["eval/recovered"] == 0.25
    assert stats["eval/recovery_rate"] == 0.5
    assert stats["eval/turn_length_cut"] == pytest.approx(1 / 6)
    assert stats["eval/token_limit_cut"] == 0.25
    assert stats["eval/multi_turn"] == 0.5
    assert stats["eval/repeat_ngram_rate"] == pytest.approx((15 / 17) / 6)
    assert episode_stats([], "eval") == {}
