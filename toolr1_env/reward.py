"""The Tool-R1 outcome reward, as we read the paper: answer correctness combined with execution success.

The paper rewards an episode for an LLM-judged correct answer and for code that executed, without
publishing the weights. Our choice, configurable through :class:`RewardWeights`::

    reward = answer_weight * answer_score + exec_weight * exec_success                  # exec_bonus="always"
    reward = answer_weight * answer_score + exec_weight * exec_success * answer_score   # exec_bonus="correct"

``exec_bonus="correct"`` pays for clean execution only on a correct answer (in the spirit of rStar2-Agent's
GRPO-RoC, which prefers correct rollouts with few tool errors and never rewards a clean wrong one): a clean
wrong answer, a wrong answer with errors and no answer at all then tie at 0, so inside a group the reward
differences that remain are correctness first. The learner's default recipe uses it
(``docs/training_result.md``); the env's default stays ``"always"``.

* ``answer_score`` in [0, 1]: the judge's score (exact match by default, so 0 or 1). 0 without an answer.
* ``exec_success`` in [0, 1]: the share of the episode's steps whose action held code that ran without an
  error, a timeout or a worker crash. Actions without code count as failed steps.
* ``exec_weight < answer_weight`` is enforced, so an episode without a (correct) answer can never
  out-score one with a correct answer, however clean its code was.

Intermediate steps get reward 0; the whole reward arrives at the step that ends the episode.
"""

from __future__ import annotations

from dataclasses import dataclass

#: When clean execution earns its bonus: on every episode, or only on a correct answer.
EXEC_BONUS = ("always", "correct")


@dataclass(frozen=True)
class RewardWeights:
    """Weights of the two reward components (defaults: 1.0 for the answer, 0.2 for clean execution)."""

    answer_weight: float = 1.0
    exec_weight: float = 0.2
    exec_bonus: str = "always"
    """``"always"``: clean execution earns ``exec_weight`` on any episode; ``"correct"``: only in proportion to
    the answer score."""

    def __post_init__(self) -> None:
        if self.exec_bonus not in EXEC_BONUS:
            raise ValueError(f"exec_bonus must be one of {EXEC_BONUS}, got {self.exec_bonus!r}")
        if self.answer_weight <= 0:
            raise ValueError(f"answer_weight must be positive, got {self.answer_weight}")
        if not 0 <= self.exec_weight < self.answer_weight:
            raise ValueError(f"exec_weight must be in [0, answer_weight={self.answer_weight}) so that an "
                             f"episode without a correct answer never out-scores one with it; got {self.exec_weight}")


def exec_success(steps: int, errors: int) -> float:
    """Share of steps whose code ran cleanly (0 when there were no steps)."""
    return (steps - errors) / steps if steps else 0.0


def episode_reward(answer_score: float, exec_success_rate: float, weights: RewardWeights) -> float:
    """Combine the two components into the episode's scalar reward."""
    bonus = weights.exec_weight * exec_success_rate
    if weights.exec_bonus == "correct":
        bonus *= answer_score
    return weights.answer_weight * answer_score + bonus
