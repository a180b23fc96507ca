"""How episodes cut by a limit should be scored, decided by measurement: two arms, several seeds each.

    python -m benchmarks.bench_truncation                              # 2 arms x 3 seeds x 6 iterations
    python -m benchmarks.bench_truncation --seeds 0 --iterations 2 --no_write     # a smoke run
    python -m benchmarks.bench_truncation -- --preset multistep        # another training configuration

An episode is *truncated* when it hit the turn limit (``--max_turns``) or the episode's token budget
(``--max_episode_tokens``) before ``final_answer``; its last turn is often one cut by the per-turn token
limit (``--max_new_tokens``), the shape of ``final_answer(final_answer(final_answer(...``. The arms
(``agents/train_grpo.py`` with the same arguments but these):

* ``scored``: ``--no_mask_truncated``. A truncated episode keeps its reward (no answer: at most the
  execution-success part) and stays in the loss, so GRPO pushes its tokens down against the group's better
  members.
* ``masked``: ``--mask_truncated``. Truncated episodes leave the loss (DAPO's overlong masking: a cut episode
  is not evidence that its tokens were wrong), though they still count in their group's mean and std.

Measured per arm: held-out greedy success (as ``bench_queue``: :mod:`benchmarks.arm_runs`), and the
degeneration of the trained policy: on the held-out evaluation at the end, the repeated-4-gram rate of a
turn, the share of turns cut by the per-turn token limit, the share of episodes truncated, and the share
answered; in training (the last half of the iterations, sampled), the same rates. Runs share
``runs/bench-arms`` with ``bench_queue``: the arm that resolves to the trainer's defaults is
``bench_queue``'s ``both`` arm, and a run one benchmark made is reused by the other. Writes RESULTS.md's section and
benchmarks/truncation_curves.png.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from benchmarks.arm_runs import (
    ArmArgs,
    Comparison,
    RunResult,
    arm_table,
    run_table,
    settings_line,
    spread,
    wall_line,
)
from benchmarks.arm_runs import main as run_comparison
from benchmarks.results_file import markdown_table

ARMS = {"scored": ["--no_mask_truncated"], "masked": ["--mask_truncated"]}
CURVES = Path(__file__).resolve().parent / "truncation_curves.png"
COLOURS = {"scored": "tab:blue", "masked": "tab:purple"}
#: (column title, metric name without its prefix) of the degeneration table.
DEGENERATION = [("repeated 4-grams", "repeat_ngram_rate"), ("turns cut at the token limit", "turn_length_cut"),
                ("episodes truncated", "truncated"), ("answered", "answered")]


def _late_training_mean(run: RunResult, name: str) -> float:
    """Mean of ``reward/<name>`` over the last half of the run's training iterations."""
    rows = run.training[len(run.training) // 2:]
    values = [r[f"reward/{name}"] for r in rows if f"reward/{name}" in r]
    return statistics.fmean(values) if values else float("nan")


def degeneration_table(results: list[RunResult], arms: list[str]) -> str:
    """Per arm, mean [min, max] over seeds of each degeneration measure, held-out (final) and in training."""
    header = ["arm"] + [f"held-out {title}" for title, _ in DEGENERATION] + [
        f"training {title}" for title, _ in DEGENERATION[:3]]
    rows = []
    for arm in arms:
        runs = [r for r in results if r.arm == arm]
        if not runs:
            continue
        held_out = [spread([r.final.get(f"eval/{name}", float("nan")) for r in runs], 3) for _, name in DEGENERATION]
        training = [spread([_late_training_mean(r, name) for r in runs], 3) for _, name in DEGENERATION[:3]]
        rows.append([arm, *held_out, *training])
    return markdown_table(header, rows)


def verdict(results: list[RunResult]) -> str:
    """Which arm ended with the higher mean held-out success, with both spreads (the measurement, not a rule)."""
    finals = {arm: [r.success[-1] for r in results if r.arm == arm] for arm in ARMS}
    if not all(finals.values()):
        return "Only one arm ran: no comparison."
    means = {arm: statistics.fmean(v) for arm, v in finals.items()}
    better = max(means, key=lambda arm: means[arm])
    other = min(means, key=lambda arm: means[arm])
    overlap = min(finals[better]) <= max(finals[other])
    return (f"Final held-out success, mean over {len(finals[better])} seeds: **{better} {means[better]:.3f}** vs "
            f"{other} {means[other]:.3f}" + (" (the seeds' ranges overlap)." if overlap else " (ranges disjoint)."))


def report(results: list[RunResult], args: ArmArgs, wall: dict[str, float]) -> str:
    """The markdown body: success per arm, degeneration per arm, per-run curves, what the arms are."""
    arms = args.arms or list(ARMS)
    return "\n".join([
        arm_table(results, arms), "", degeneration_table(results, arms), "", verdict(results), "",
        run_table(results), "",
        "- **scored**: `--no_mask_truncated`: a truncated episode keeps its reward and stays in the loss (the "
        "trainer's default until this benchmark).",
        "- **masked**: `--mask_truncated`: truncated episodes leave the loss (they still count in their group's "
        "mean and std); the trainer's default since this benchmark.",
        "Held-out degeneration columns: the final evaluation's episodes; training columns: the sampled episodes "
        "of the last half of the iterations. Each cell: mean [min, max] over seeds.",
        "", settings_line(args, results, CURVES.name), wall_line(wall)])


COMPARISON = Comparison(ARMS, report, "Truncated episodes: scored or masked (bench_truncation.py)", CURVES, COLOURS,
                        __doc__ or "")


def main(argv: list[str] | None = None) -> None:
    """Run both arms for every seed, then print and write the comparison (arguments after ``--`` go to training)."""
    run_comparison(COMPARISON, argv)


if __name__ == "__main__":
    main()
