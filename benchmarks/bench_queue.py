"""Sample efficiency of the dynamic sample queue: the same GRPO run with the queue on and off, several seeds.

    python -m benchmarks.bench_queue                     # 2 arms x 3 seeds x 6 iterations (~45 min, 2 cores)
    python -m benchmarks.bench_queue --seeds 0 --iterations 2 --no_write        # a smoke run

Each run is the real entry point, ``agents/train_grpo.py``, with its defaults except ``--iterations``,
``--seed`` and the evaluation (below); the ``no-queue`` arm adds ``--no_use_queue`` (no cache, no
demonstrations, a full group of fresh rollouts for every chosen task). Runs live in
``runs/bench-queue/<arm>-seed<k>``; a finished run of at least ``--iterations`` is reused, and an unfinished
or shorter one continues with ``--resume`` (so a larger ``--iterations`` extends earlier runs).

The measure. *Training success* is the greedy success rate on the first ``--eval_size`` tasks of the
training pool (``--eval_tasks pool``), evaluated at the start and every ``--eval_every`` iterations. For
each run we report the online rollouts and wall seconds spent until it first reaches ``--threshold``, and
each arm's mean over seeds. A run that never reaches it counts its whole budget, so that mean is a lower
bound and the saving is reported as "at least". Greedy success on fixed tasks is used instead of the
success of the sampled rollouts because the queue changes which rollouts are sampled (it skips mastered
tasks and samples fewer fresh episodes for tasks it holds successes for), which would bias the online
rate against it, and because temperature-1 samples are noisy.

Writes the table to benchmarks/RESULTS.md and the curves to benchmarks/queue_curves.png.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from agents.cli import arg, parse_with_extra
from benchmarks.results_file import markdown_table, write_section

ROOT = Path(__file__).resolve().parents[1]

ARMS = {"queue": [], "no-queue": ["--no_use_queue"]}
CURVES = Path(__file__).resolve().parent / "queue_curves.png"


@dataclass
class RunResult:
    """One training run's success curve (at its evaluation points) and where it reached the threshold."""

    arm: str
    seed: int
    rollouts: list[float]  # cumulative online rollouts at each evaluation (0 at the start)
    seconds: list[float]  # wall seconds since training started, at each evaluation
    success: list[float]  # greedy success on the evaluated pool tasks
    reached_at: int | None  # index of the first evaluation at or above the threshold

    @property
    def rollouts_to_threshold(self) -> float | None:
        """Online rollouts spent until the threshold (None: not reached)."""
        return None if self.reached_at is None else self.rollouts[self.reached_at]

    @property
    def seconds_to_threshold(self) -> float | None:
        """Wall seconds until the threshold (None: not reached)."""
        return None if self.reached_at is None else self.seconds[self.reached_at]


def read_run(run_dir: Path, arm: str, seed: int, threshold: float) -> RunResult:
    """Parse ``metrics.jsonl`` of a finished run: one point per evaluation."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    points = [(r.get("rollout/online_total", 0.0), r.get("time/elapsed_s", 0.0), r["eval/success"])
              for r in rows if "eval/success" in r]
    rollouts, seconds, success = (list(column) for column in zip(*points, strict=True))
    reached = next((i for i, s in enumerate(success) if s >= threshold - 1e-9), None)
    return RunResult(arm, seed, rollouts, seconds, success, reached)


def run_training(arm: str, seed: int, args: BenchArgs) -> Path:
    """Run (or reuse, or resume) one training run and return its folder."""
    run_dir = Path(args.runs_dir) / f"{arm}-seed{seed}"
    done = json.loads((run_dir / "summary.json").read_text()).get("iterations", 0) if (
        run_dir / "summary.json").exists() else 0
    if done >= args.iterations:
        print(f"[bench_queue] reusing {run_dir}", flush=True)
        return run_dir
    command = [sys.executable, str(ROOT / "agents" / "train_grpo.py"), "--seed", str(seed),
               "--iterations", str(args.iterations), "--eval_tasks", "pool", "--eval_every", str(args.eval_every),
               "--eval_size", str(args.eval_size),
               "--output_dir", str(run_dir), *ARMS[arm], *args.train_args]
    if (run_dir / "checkpoints").exists():
        command.append("--resume")
    print("[bench_queue] " + " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    return run_dir


def _fmt(value: float | None, digits: int = 0) -> str:
    return "not reached" if value is None else f"{value:.{digits}f}"


def arm_summary(results: list[RunResult], budget: float) -> tuple[float, int]:
    """Mean rollouts to the threshold over seeds (an unreached run counts its whole budget) and the count
    of runs that reached it."""
    values = [r.rollouts_to_threshold if r.reached_at is not None else budget for r in results]
    return statistics.fmean(values), sum(r.reached_at is not None for r in results)


def report(results: list[RunResult], args: BenchArgs) -> str:
    """The markdown body: per-run table, per-arm means, the reduction and how to read it."""
    header = ["arm", "seed", "rollouts to threshold", "wall s to threshold", "success curve",
              "online rollouts (all)", "wall s (all)"]
    rows = [[r.arm, r.seed, _fmt(r.rollouts_to_threshold), _fmt(r.seconds_to_threshold),
             " ".join(f"{v:.2f}" for v in r.success), f"{r.rollouts[-1]:.0f}", f"{r.seconds[-1]:.0f}"]
            for r in results]
    by_arm = {arm: [r for r in results if r.arm == arm] for arm in args.arms}
    budget = max(r.rollouts[-1] for r in results)
    means = {arm: arm_summary(runs, budget) for arm, runs in by_arm.items() if runs}
    lines = [markdown_table(header, rows), ""]
    for arm, (mean, reached) in means.items():
        lines.append(f"- **{arm}**: mean online rollouts to a training success of {args.threshold:.3f}: "
                     f"{mean:.0f} ({reached}/{len(by_arm[arm])} runs reached it; an unreached run counts its "
                     f"whole budget of {budget:.0f}, so the mean is then a lower bound).")
    if "queue" in means and "no-queue" in means:
        saved = 1.0 - means["queue"][0] / means["no-queue"][0]
        if means["queue"][1] < len(by_arm["queue"]):
            verdict = "undetermined: not every queue run reached the threshold within the budget"
        elif means["no-queue"][1] < len(by_arm["no-queue"]):
            verdict = f"at least {100 * saved:.0f}% (some no-queue runs never reached the threshold)"
        else:
            verdict = f"{100 * saved:.0f}%"
        lines.append(f"- **Online rollouts saved by the queue:** {verdict} (target: 30%).")
        if all(max(r.success) == 0 for r in by_arm["no-queue"]):
            lines.append("- The no-queue arm solved no evaluated task at any evaluation: its rollouts to the "
                         "threshold are unbounded within this budget, so the percentage above is a floor set by "
                         "the budget, not a measured saving. Without cached successes every group of this small "
                         "model carries only the execution-success signal, never an answer signal.")
    extra = f", extra arguments `{' '.join(args.train_args)}`" if args.train_args else ""
    lines += ["", f"Settings: `agents/train_grpo.py` defaults{extra}, {args.iterations} iterations, seeds "
              f"{' '.join(map(str, args.seeds))}. Training success = greedy exact-match success on the first "
              f"{args.eval_size} tasks of the training pool, evaluated at the start and every {args.eval_every} "
              "iterations (the success curve column, in order). Curves: [queue_curves.png](queue_curves.png)."]
    return "\n".join(lines)


def plot(results: list[RunResult], threshold: float) -> None:
    """Windowed training success against online rollouts, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"queue": "tab:blue", "no-queue": "tab:red"}
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.plot(r.rollouts, r.success, marker="o", markersize=3, color=colours.get(r.arm, "grey"),
                label=f"{r.arm} (seed {r.seed})", alpha=0.8)
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    ax.set_xlabel("online rollouts")
    ax.set_ylabel("greedy success on training tasks")
    ax.set_title("Dynamic sample queue on vs off")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(CURVES, dpi=120)
    plt.close(fig)


@dataclass
class BenchArgs:
    """Sample efficiency of the dynamic sample queue: training runs with each arm, several seeds."""

    seeds: list[int] = arg([0, 1, 2], "seeds; each arm runs once per seed")
    arms: list[str] = arg(list(ARMS), "arms to run", list(ARMS))
    iterations: int = arg(6, "training iterations per run (same budget)")
    eval_size: int = arg(16, "training-pool tasks in each greedy evaluation")
    eval_every: int = arg(2, "evaluate every N iterations")
    threshold: float = arg(0.125, "training success to reach (2 of 16 tasks)")
    runs_dir: str = arg(str(ROOT / "runs" / "bench-queue"), "where the runs live")
    no_write: bool = arg(False, "print only; do not touch RESULTS.md")
    train_args: list[str] = arg([], "internal: the arguments after -- (extra agents/train_grpo.py arguments)")


def main(argv: list[str] | None = None) -> None:
    """Run every arm and seed, then print and write the comparison (arguments after ``--`` go to training)."""
    args, extra = parse_with_extra(BenchArgs, argv, description=__doc__)
    args.train_args = extra
    results = []
    for seed in args.seeds:
        for arm in args.arms:
            results.append(read_run(run_training(arm, seed, args), arm, seed, args.threshold))
    body = report(results, args)
    print(body)
    if not args.no_write:
        plot(results, args.threshold)
        print(f"wrote {write_section('Dynamic sample queue: sample efficiency (bench_queue.py)', body)}")


if __name__ == "__main__":
    main()
