"""Scores over repeated runs, as papers report GAIA: avg@k, pass@k, best of k, and 95% intervals.

With ``--repeats k`` every task is played ``k`` times (run ``r`` with env and sampling seed ``seed + r``):

* **avg@k**: the mean score over all ``k x n`` scored episodes (the expected single-run accuracy).
* **pass@k**: the share of tasks that at least one of their ``k`` runs got right (for a judge's fractional
  score: the task's best score); an upper bound no single run reaches, reported by papers that say
  "best of k" per question.
* **best run / runs**: each run's accuracy and the best of them ("the best of 3 runs" of some papers: a
  selection on the test set, optimistic by construction; shown so the comparison can be made knowingly).
* **95% intervals**: a percentile bootstrap over *tasks* (2,000 resamples, seed 0): the ``k`` runs of a task
  are resampled together, because they are not independent of each other. With one run it is the usual
  bootstrap interval of the accuracy. On GAIA's 165 tasks a 30% accuracy carries about +/- 7 points.

Only scored episodes count (no infrastructure error, a ground truth); a task none of whose runs was scored
is left out of pass@k and of the intervals.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from agents.evaluation.records import EpisodeRecord

#: Bootstrap resamples and seed of the 95% intervals (fixed: the same records always give the same interval).
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


def per_task_scores(records: Sequence[EpisodeRecord]) -> dict[str, list[float]]:
    """The scores of each task's scored runs, in first-seen task order."""
    scores: dict[str, list[float]] = defaultdict(list)
    for record in records:
        if record.scored:
            scores[record.task_id].append(float(record.correct))
    return dict(scores)


def bootstrap_interval(values: Sequence[float], *, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED) -> list[float] | None:
    """The 2.5th and 97.5th percentiles of the mean of ``values`` resampled with replacement (None: empty)."""
    if not values:
        return None
    rng = random.Random(seed)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return [means[int(0.025 * (resamples - 1))], means[int(0.975 * (resamples - 1))]]


def repeat_summary(records: Sequence[EpisodeRecord], repeats: int) -> dict[str, Any]:
    """avg@k, pass@k, per-run accuracies and 95% intervals over ``records`` (see the module docstring)."""
    tasks = per_task_scores(records)
    task_means = [sum(s) / len(s) for s in tasks.values()]
    task_best = [max(s) for s in tasks.values()]
    runs: dict[int, list[float]] = defaultdict(list)
    for record in records:
        if record.scored:
            runs[record.repeat].append(float(record.correct))
    run_accuracy = {str(r): sum(v) / len(v) for r, v in sorted(runs.items())}
    scored = sum(len(s) for s in tasks.values())
    return {
        "k": repeats,
        "tasks": len(tasks),
        "episodes_scored": scored,
        "avg_at_k": sum(sum(s) for s in tasks.values()) / scored if scored else None,
        "avg_at_k_ci95": bootstrap_interval(task_means),
        "pass_at_k": sum(task_best) / len(task_best) if task_best else None,
        "pass_at_k_ci95": bootstrap_interval(task_best),
        "run_accuracy": run_accuracy,
        "best_run_accuracy": max(run_accuracy.values()) if run_accuracy else None,
        "incomplete_tasks": sum(len(s) < repeats for s in tasks.values()),
        "interval": f"percentile bootstrap over tasks, {BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}",
    }


def format_repeats(summary: dict[str, Any]) -> str:
    """One line for the terminal: ``avg@3 31.2% [24.1, 38.5] | pass@3 ...``."""
    rep = summary.get("repeats")
    if not rep or rep["avg_at_k"] is None:
        return ""

    def pct(value: float | None, ci: list[float] | None) -> str:
        interval = f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else ""
        return f"{100 * value:.1f}%{interval}" if value is not None else "n/a"

    k = rep["k"]
    runs = ", ".join(f"{100 * v:.1f}%" for v in rep["run_accuracy"].values())
    return (f"avg@{k} {pct(rep['avg_at_k'], rep['avg_at_k_ci95'])} | pass@{k} "
            f"{pct(rep['pass_at_k'], rep['pass_at_k_ci95'])} | runs {runs} | 95% intervals: {rep['interval']}")
