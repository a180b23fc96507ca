"""What a batch of episodes says about multi-step behaviour and degeneration, as flat metrics.

* **Recovery** (Tool-R1's reflection on errors): an episode *recovers* when some turn's code failed (an
  execution error, a timeout, or no code at all: a format error) and the episode still ended with a
  correct answer. ``recovered`` is their share of all episodes, ``recovery_rate`` their share of the
  episodes that hit an error (0 when none did), ``had_error`` the share that hit one.
* **Degeneration**: ``repeat_ngram_rate`` is the mean, over generated turns, of the share of a turn's
  token n-grams (n = :data:`NGRAM`) that already occurred earlier in the same turn: 0 for text that never
  repeats itself, close to 1 for ``final_answer(final_answer(final_answer(...``. ``turn_length_cut`` is the
  share of turns that ran into the per-turn token limit (``finish_reason == "length"``) and
  ``token_limit_cut`` the share of episodes cut by the episode's token budget (``metadata["token_limit"]``).
* **Turns**: ``multi_turn`` is the share of episodes with more than one code action.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agents.learner.records import Trajectory

#: n of the repeated-n-gram rate (token n-grams).
NGRAM = 4


def repeated_ngram_rate(tokens: Sequence[int], n: int = NGRAM) -> float:
    """Share of the n-grams of ``tokens`` that already occurred earlier in ``tokens`` (0 when too short)."""
    total = len(tokens) - n + 1
    if total <= 0:
        return 0.0
    seen: set[tuple[int, ...]] = set()
    repeats = 0
    for i in range(total):
        gram = tuple(tokens[i: i + n])
        repeats += gram in seen
        seen.add(gram)
    return repeats / total


def recovered(trajectory: Trajectory) -> bool:
    """True when a turn before the last hit an execution error and the episode ended correct."""
    errors = [turn.execution_error for turn in trajectory.turns[:-1]]
    return any(errors) and trajectory.reward_components.get("answer_score", 0.0) >= 1.0


def episode_stats(trajectories: Sequence[Trajectory], prefix: str) -> dict[str, float]:
    """The metrics of the module docstring for ``trajectories``, keys ``<prefix>/<name>`` ({} when empty)."""
    if not trajectories:
        return {}
    count = float(len(trajectories))
    with_error = [t for t in trajectories if any(turn.execution_error for turn in t.turns)]
    rescued = sum(recovered(t) for t in trajectories)
    turn_rates = [repeated_ngram_rate(t.token_ids[turn.gen_start: turn.gen_end])
                  for t in trajectories for turn in t.turns]
    turns = [turn for t in trajectories for turn in t.turns]
    return {
        f"{prefix}/had_error": len(with_error) / count,
        f"{prefix}/recovered": rescued / count,
        f"{prefix}/recovery_rate": rescued / len(with_error) if with_error else 0.0,
        f"{prefix}/repeat_ngram_rate": sum(turn_rates) / len(turn_rates) if turn_rates else 0.0,
        f"{prefix}/turn_length_cut": sum(turn.finish_reason == "length" for turn in turns) / max(len(turns), 1),
        f"{prefix}/token_limit_cut": sum(bool(t.metadata.get("token_limit")) for t in trajectories) / count,
        f"{prefix}/multi_turn": sum(t.num_turns > 1 for t in trajectories) / count,
    }


def episode_record(trajectory: Trajectory) -> dict[str, Any]:
    """A readable record of one episode (task, outcome, and each turn's action, error and observation)."""
    return {
        "task_id": trajectory.task_id, "level": trajectory.level, "reward": trajectory.reward,
        "correct": trajectory.reward_components.get("answer_score", 0.0) >= 1.0,
        "final_answer": trajectory.final_answer, "ground_truth": trajectory.metadata.get("ground_truth"),
        "recovered": recovered(trajectory), "truncated": trajectory.truncated,
        "token_limit": bool(trajectory.metadata.get("token_limit")),
        "turns": [{"action": turn.action, "error": turn.execution_error, "finish_reason": turn.finish_reason,
                   "observation": turn.observation} for turn in trajectory.turns],
    }
