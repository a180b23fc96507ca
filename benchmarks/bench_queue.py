"""What the dynamic sample queue does, measured on held-out tasks: four arms, several seeds each.

    python -m benchmarks.bench_queue                                   # 4 arms x 3 seeds x 6 iterations
    python -m benchmarks.bench_queue --seeds 0 --iterations 2 --no_write          # a smoke run
    python -m benchmarks.bench_queue -- --preset multistep             # another training configuration

The arms (each is the real entry point, ``agents/train_grpo.py``, with the same arguments but these):

* ``no-queue``: ``--no_use_queue``. No cache at all: every chosen task gets a full group of fresh rollouts,
  and a group whose members all scored the same teaches nothing.
* ``own``: ``--no_queue_demonstrations``. The paper's queue: the policy's *own* verified successes are cached
  and replayed into zero-signal (or success-free) groups of the same task; nothing else enters.
* ``demos``: ``--no_queue_admit_online``. The queue holds only the pool's demonstrations (verified reference
  solutions, ``--demonstrations``); the policy's own successes are not cached.
* ``both``: the trainer's defaults: demonstrations and own successes.

The measure is *held-out* greedy success: ``--eval_tasks`` (default ``warmup-eval``, a world and questions the
training pool never shows), its first ``--eval_size`` tasks, evaluated at the start and every
``--eval_every`` iterations inside each run. For each run: the online rollouts (and wall seconds) spent
until held-out success first reaches ``--threshold``, and the final held-out success. Per arm: how many
seeds reached the threshold, the mean and the range over seeds of both measures. A run that never reaches
the threshold counts its whole budget, so that mean is then a lower bound, marked as such. Online
rollouts are the episodes the learner played itself (the queue's replays and demonstrations are not
rollouts); the queue can ask for fewer fresh episodes per group (``SampleQueue.rollouts_needed``), so arms
spend different numbers of rollouts per iteration, which is why rollouts, not iterations, are the axis.

Runs live in ``runs/bench-queue/<arm>-seed<k>-<key>``, where ``key`` hashes the run's arguments other than
``--iterations``: a finished run of at least ``--iterations`` with the same arguments is reused, an
unfinished or shorter one continues with ``--resume``, and a run with other arguments never is.
Writes the tables to benchmarks/RESULTS.md and the curves to benchmarks/queue_curves.png.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from agents.cli import arg, parse_with_extra
from benchmarks.results_file import markdown_table, write_section

ROOT = Path(__file__).resolve().parents[1]

ARMS = {"no-queue": ["--no_use_queue"], "own": ["--no_queue_demonstrations"],
        "demos": ["--no_queue_admit_online"], "both": []}
CURVES = Path(__file__).resolve().parent / "queue_curves.png"


@dataclass
class RunResult:
    """One training run's held-out success curve (at its evaluation points) and where it reached the threshold."""

    arm: str
    seed: int
    rollouts: list[float]  # cumulative online rollouts at each evaluation (0 at the start)
    seconds: list[float]  # wall seconds since training started, at each evaluation
    success: list[float]  # greedy held-out success
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


def training_command(arm: str, seed: int, args: BenchArgs) -> list[str]:
    """The ``agents/train_grpo.py`` arguments of one run, ``--iterations`` and ``--output_dir`` excluded."""
    return ["--seed", str(seed), "--eval_tasks", args.eval_tasks, "--eval_every", str(args.eval_every),
            "--eval_size", str(args.eval_size), *args.train_args, *ARMS[arm]]


def run_key(command: list[str]) -> str:
    """8 hex digits naming a run's arguments (so a changed configuration never reuses an old run)."""
    return hashlib.sha256(json.dumps(command).encode()).hexdigest()[:8]


def run_training(arm: str, seed: int, args: BenchArgs) -> tuple[Path, float]:
    """Run (or reuse, or resume) one training run; return its folder and the wall seconds spent now."""
    command = training_command(arm, seed, args)
    run_dir = Path(args.runs_dir) / f"{arm}-seed{seed}-{run_key(command)}"
    summary = run_dir / "summary.json"
    done = json.loads(summary.read_text()).get("iterations", 0) if summary.exists() else 0
    if done >= args.iterations:
        print(f"[bench_queue] reusing {run_dir}", flush=True)
        return run_dir, 0.0
    full = [sys.executable, str(ROOT / "agents" / "train_grpo.py"), *command, "--iterations", str(args.iterations),
            "--output_dir", str(run_dir)]
    if (run_dir / "checkpoints" / "latest").exists():
        full.append("--resume")
    print("[bench_queue] " + " ".join(full[1:]), flush=True)
    start = time.perf_counter()
    subprocess.run(full, check=True, cwd=ROOT)
    return run_dir, time.perf_counter() - start


def _fmt(value: float | None, digits: int = 0) -> str:
    return "not reached" if value is None else f"{value:.{digits}f}"


def _spread(values: list[float], digits: int) -> str:
    mean = statistics.fmean(values)
    return f"{mean:.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


def arm_row(arm: str, runs: list[RunResult], budget: float) -> list[object]:
    """One line of the per-arm table: seeds reaching the threshold, rollouts to it, final success."""
    reached = sum(r.reached_at is not None for r in runs)
    to_threshold = [r.rollouts_to_threshold if r.reached_at is not None else budget for r in runs]
    bound = "" if reached == len(runs) else " (lower bound)"
    final = [r.success[-1] for r in runs]
    best = [max(r.success) for r in runs]
    return [arm, f"{reached}/{len(runs)}", _spread(to_threshold, 0) + bound, _spread(final, 3),
            f"{statistics.pstdev(final):.3f}", _spread(best, 3)]


def report(results: list[RunResult], args: BenchArgs, wall: dict[str, float]) -> str:
    """The markdown body: per-run table, per-arm table, what each arm is, settings, and the wall time."""
    header = ["arm", "seed", "rollouts to threshold", "wall s to threshold", "held-out success curve",
              "online rollouts (all)", "wall s (all)"]
    rows = [[r.arm, r.seed, _fmt(r.rollouts_to_threshold), _fmt(r.seconds_to_threshold),
             " ".join(f"{v:.2f}" for v in r.success), f"{r.rollouts[-1]:.0f}", f"{r.seconds[-1]:.0f}"]
            for r in results]
    budget = max(r.rollouts[-1] for r in results)
    arm_header = ["arm", "seeds reaching threshold", "online rollouts to threshold: mean [min, max]",
                  "final held-out success: mean [min, max]", "final: std", "best held-out success: mean [min, max]"]
    arm_rows = [arm_row(arm, [r for r in results if r.arm == arm], budget) for arm in args.arms
                if any(r.arm == arm for r in results)]
    extra = f" plus `{' '.join(args.train_args)}`" if args.train_args else ""
    lines = [
        markdown_table(arm_header, arm_rows), "", markdown_table(header, rows), "",
        "- **no-queue**: `--no_use_queue`: no cache; every chosen task gets a full group of fresh rollouts.",
        "- **own**: `--no_queue_demonstrations`: the paper's queue, only the policy's own verified successes.",
        "- **demos**: `--no_queue_admit_online`: only the pool's demonstrations are cached, never the policy's "
        "own successes.",
        "- **both**: the defaults: demonstrations and the policy's own successes.",
        "",
        f"Settings: `agents/train_grpo.py` defaults{extra}, {args.iterations} iterations, seeds "
        f"{' '.join(map(str, args.seeds))}. Held-out success = greedy exact-match success on the first "
        f"{args.eval_size} tasks of `{args.eval_tasks}` (never in the training pool), evaluated at the start and "
        f"every {args.eval_every} iterations (the curve column, in order); threshold {args.threshold:.3f}. "
        f"Online rollouts count the learner's own episodes only; an unreached threshold counts the whole budget "
        f"({budget:.0f}), marked lower bound. Curves: [queue_curves.png](queue_curves.png).",
        f"Wall time of this invocation: {sum(wall.values()) / 60:.1f} min for {sum(v > 0 for v in wall.values())} "
        f"runs trained now ({len(wall) - sum(v > 0 for v in wall.values())} reused).",
    ]
    return "\n".join(lines)


def plot(results: list[RunResult], threshold: float) -> None:
    """Held-out success against online rollouts, one line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"no-queue": "tab:red", "own": "tab:orange", "demos": "tab:green", "both": "tab:blue"}
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.plot(r.rollouts, r.success, marker="o", markersize=3, color=colours.get(r.arm, "grey"),
                label=f"{r.arm} (seed {r.seed})", alpha=0.8)
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    ax.set_xlabel("online rollouts")
    ax.set_ylabel("greedy held-out success")
    ax.set_title("Dynamic sample queue: four arms")
    ax.legend(fontsize=6, ncol=3)
    fig.tight_layout()
    fig.savefig(CURVES, dpi=120)
    plt.close(fig)


@dataclass
class BenchArgs:
    """What the dynamic sample queue does, on held-out tasks: four arms, several seeds each."""

    seeds: list[int] = arg([0, 1, 2], "seeds; each arm runs once per seed")
    arms: list[str] = arg(list(ARMS), "arms to run", list(ARMS))
    iterations: int = arg(6, "training iterations per run (same budget for every arm)")
    eval_tasks: str = arg("warmup-eval", "held-out fixed split (disjoint from the training pool)")
    eval_size: int = arg(32, "held-out tasks in each greedy evaluation")
    eval_every: int = arg(2, "evaluate every N iterations")
    threshold: float = arg(0.125, "held-out success to reach (4 of 32 tasks)")
    runs_dir: str = arg(str(ROOT / "runs" / "bench-queue"), "where the runs live")
    no_write: bool = arg(False, "print only; do not touch RESULTS.md")
    train_args: list[str] = arg([], "internal: the arguments after -- (extra agents/train_grpo.py arguments)")


def main(argv: list[str] | None = None) -> None:
    """Run every arm and seed, then print and write the comparison (arguments after ``--`` go to training)."""
    args, extra = parse_with_extra(BenchArgs, argv, description=__doc__)
    args.train_args = extra
    results, wall = [], {}
    for seed in args.seeds:
        for arm in args.arms:
            run_dir, seconds = run_training(arm, seed, args)
            wall[f"{arm}-{seed}"] = seconds
            results.append(read_run(run_dir, arm, seed, args.threshold))
    body = report(results, args, wall)
    print(body)
    if not args.no_write:
        plot(results, args.threshold)
        print(f"wrote {write_section('Dynamic sample queue: four arms on held-out tasks (bench_queue.py)', body)}")


if __name__ == "__main__":
    main()
