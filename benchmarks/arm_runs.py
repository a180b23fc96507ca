"""Training arms compared on held-out tasks, several seeds each: the machinery shared by the benchmarks that
change one training switch and measure what it does (``bench_queue``, ``bench_truncation``).

An *arm* is a name and the ``agents/train_grpo.py`` flags that make it; every arm of a comparison gets the
same other arguments, seeds and iteration budget. Each run is the real entry point in a subprocess, and
its held-out greedy success (``--eval_tasks``, evaluated at the start and every ``--eval_every``
iterations) is read back from its ``metrics.jsonl``.

Runs live in ``<runs_dir>/seed<k>-<key>``, where ``key`` hashes the run's *resolved* training settings
(``agents.learner.train.Args`` after presets and defaults, all but the iteration count and where the run
goes) and the code version (:func:`code_version`: the content of every Python file of ``agents/`` and
``toolr1_env/``, uncommitted edits included): a finished run of at least ``--iterations`` with the same
settings and code is reused, so arms that resolve alike share one run (``--no_mask_truncated`` and no flag,
while that is the default), an unfinished or shorter one continues with ``--resume``, and a run with other
settings, or trained by other code, never is. The report names the commit its runs were trained at.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agents.cli import arg, parse_with_extra
from benchmarks import results_file
from benchmarks.results_file import markdown_table, write_section

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class ArmArgs:
    """The settings every arm of a comparison shares."""

    seeds: list[int] = arg([0, 1, 2], "seeds; each arm runs once per seed")
    arms: list[str] = arg([], "arms to run (default: all of the benchmark's arms)")
    iterations: int = arg(6, "training iterations per run (same budget for every arm)")
    eval_tasks: str = arg("warmup-eval", "held-out fixed split (disjoint from the training pool)")
    eval_size: int = arg(32, "held-out tasks in each greedy evaluation")
    eval_every: int = arg(2, "evaluate every N iterations")
    threshold: float = arg(0.125, "held-out success to reach (4 of 32 tasks)")
    runs_dir: str = arg(str(ROOT / "runs" / "bench-arms"), "where the runs live (shared by the arm benchmarks)")
    no_write: bool = arg(False, "print only; do not touch RESULTS.md")
    train_args: list[str] = arg([], "internal: the arguments after -- (extra agents/train_grpo.py arguments)")


@dataclass
class RunResult:
    """One training run's held-out success curve (at its evaluation points) and where it reached the threshold.

    ``final`` holds the run's last logged row with an evaluation (every metric of it, for reports that
    read more than success: degeneration, answered share).
    """

    arm: str
    seed: int
    rollouts: list[float]  # cumulative online rollouts at each evaluation (0 at the start)
    seconds: list[float]  # wall seconds since training started, at each evaluation
    success: list[float]  # greedy held-out success
    reached_at: int | None  # index of the first evaluation at or above the threshold
    final: dict[str, float] = field(default_factory=dict)
    training: list[dict[str, float]] = field(default_factory=list)  # the rows of the training iterations

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
    evals = [r for r in rows if "eval/success" in r]
    if not evals:
        raise ValueError(f"{run_dir}/metrics.jsonl holds no evaluation")
    rollouts = [r.get("rollout/online_total", 0.0) for r in evals]
    seconds = [r.get("time/elapsed_s", 0.0) for r in evals]
    success = [r["eval/success"] for r in evals]
    reached = next((i for i, s in enumerate(success) if s >= threshold - 1e-9), None)
    training = [r for r in rows if r.get("step", 0) > 0]
    return RunResult(arm, seed, rollouts, seconds, success, reached, evals[-1], training)


def training_command(flags: Sequence[str], seed: int, args: ArmArgs) -> list[str]:
    """The ``agents/train_grpo.py`` arguments of one run of an arm with ``flags``, ``--iterations`` and
    ``--output_dir`` excluded."""
    # These benchmarks measured the one-turn run: its preset first (a --preset in train_args comes later and wins).
    return ["--preset", "single-step", "--seed", str(seed), "--eval_tasks", args.eval_tasks,
            "--eval_every", str(args.eval_every), "--eval_size", str(args.eval_size), *args.train_args, *flags]


#: Training settings that do not change what a run learns (left out of its key).
UNKEYED = frozenset({"iterations", "output_dir", "resume", "results_file"})


#: The folders holding the code a training run executes (and evaluates with).
CODE_DIRS = ("agents", "toolr1_env")


@functools.cache
def code_version() -> str:
    """8 hex digits of the content of every Python file under :data:`CODE_DIRS` (uncommitted edits included).

    Content, not the commit: a commit that only touches documentation keeps the runs, any code change drops them.
    """
    digest = hashlib.sha256()
    for folder in CODE_DIRS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:8]


def code_commit() -> str:
    """The checkout's short commit, with ``+uncommitted`` when files under :data:`CODE_DIRS` differ from it."""
    return results_file.code_commit(CODE_DIRS)


def run_key(command: list[str]) -> str:
    """8 hex digits naming a run's resolved settings and the code version (so neither a changed configuration
    nor changed code ever reuses an old run)."""
    from agents.learner.train import parse_args

    settings = {k: v for k, v in dataclasses.asdict(parse_args(command)).items() if k not in UNKEYED}
    settings["code_version"] = code_version()
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]


def run_training(flags: Sequence[str], seed: int, args: ArmArgs) -> tuple[Path, float]:
    """Run (or reuse, or resume) one training run; return its folder and the wall seconds spent now."""
    command = training_command(flags, seed, args)
    run_dir = Path(args.runs_dir) / f"seed{seed}-{run_key(command)}"
    summary = run_dir / "summary.json"
    done = json.loads(summary.read_text()).get("iterations", 0) if summary.exists() else 0
    if done >= args.iterations:
        print(f"[arm_runs] reusing {run_dir}", flush=True)
        return run_dir, 0.0
    full = [sys.executable, str(ROOT / "agents" / "train_grpo.py"), *command, "--iterations", str(args.iterations),
            "--output_dir", str(run_dir)]
    if (run_dir / "checkpoints" / "latest").exists():
        full.append("--resume")
    print("[arm_runs] " + " ".join(full[1:]), flush=True)
    start = time.perf_counter()
    subprocess.run(full, check=True, cwd=ROOT)
    return run_dir, time.perf_counter() - start


def run_arms(arms: Mapping[str, Sequence[str]], args: ArmArgs) -> tuple[list[RunResult], dict[str, float]]:
    """Every chosen arm once per seed (seed-major, so a cut-short invocation still compares arms); returns
    the results and the wall seconds each run took now (0: reused)."""
    chosen = args.arms or list(arms)
    unknown = sorted(set(chosen) - set(arms))
    if unknown:
        raise ValueError(f"unknown arms {unknown}; this benchmark has {list(arms)}")
    results, wall = [], {}
    for seed in args.seeds:
        for arm in chosen:
            run_dir, seconds = run_training(arms[arm], seed, args)
            wall[f"{arm}-{seed}"] = seconds
            results.append(read_run(run_dir, arm, seed, args.threshold))
    return results, wall


def fmt(value: float | None, digits: int = 0) -> str:
    """A number, or "not reached" for None."""
    return "not reached" if value is None else f"{value:.{digits}f}"


def spread(values: Sequence[float], digits: int) -> str:
    """``mean [min, max]``."""
    mean = statistics.fmean(values)
    return f"{mean:.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


def arm_row(arm: str, runs: list[RunResult], budget: float) -> list[object]:
    """One line of the per-arm table: seeds reaching the threshold, rollouts to it, final and best success."""
    reached = sum(r.reached_at is not None for r in runs)
    to_threshold = [r.rollouts_to_threshold if r.reached_at is not None else budget for r in runs]
    bound = "" if reached == len(runs) else " (lower bound)"
    final = [r.success[-1] for r in runs]
    best = [max(r.success) for r in runs]
    return [arm, f"{reached}/{len(runs)}", spread(to_threshold, 0) + bound, spread(final, 3),
            f"{statistics.pstdev(final):.3f}", spread(best, 3)]


def arm_table(results: list[RunResult], arms: Sequence[str]) -> str:
    """The per-arm table (spreads over seeds; an unreached threshold counts the whole budget)."""
    budget = max(r.rollouts[-1] for r in results)
    header = ["arm", "seeds reaching threshold", "online rollouts to threshold: mean [min, max]",
              "final held-out success: mean [min, max]", "final: std", "best held-out success: mean [min, max]"]
    return markdown_table(header, [arm_row(arm, [r for r in results if r.arm == arm], budget) for arm in arms
                                   if any(r.arm == arm for r in results)])


def run_table(results: list[RunResult]) -> str:
    """The per-run table: the held-out curve, rollouts and seconds to the threshold and in all."""
    header = ["arm", "seed", "rollouts to threshold", "wall s to threshold", "held-out success curve",
              "online rollouts (all)", "wall s (all)"]
    return markdown_table(header, [[r.arm, r.seed, fmt(r.rollouts_to_threshold), fmt(r.seconds_to_threshold),
                                    " ".join(f"{v:.2f}" for v in r.success), f"{r.rollouts[-1]:.0f}",
                                    f"{r.seconds[-1]:.0f}"] for r in results])


def settings_line(args: ArmArgs, results: list[RunResult], curves: str) -> str:
    """What every run shared, and what the counts mean."""
    extra = f" plus `{' '.join(args.train_args)}`" if args.train_args else ""
    budget = max(r.rollouts[-1] for r in results)
    return (f"Settings: `agents/train_grpo.py` defaults{extra}, {args.iterations} iterations, seeds "
            f"{' '.join(map(str, args.seeds))}. Held-out success = greedy exact-match success on the first "
            f"{args.eval_size} tasks of `{args.eval_tasks}` (never in the training pool), evaluated at the start and "
            f"every {args.eval_every} iterations (the curve column, in order); threshold {args.threshold:.3f}. "
            f"Online rollouts count the learner's own episodes only; an unreached threshold counts the whole budget "
            f"({budget:.0f}), marked lower bound. Curves: [{curves}]({curves}). Code: commit {code_commit()} "
            f"(code version {code_version()}, part of every run's key: runs reused here were trained by this code).")


def wall_line(wall: Mapping[str, float]) -> str:
    """How long this invocation trained, and how many runs it reused."""
    trained = sum(v > 0 for v in wall.values())
    return (f"Wall time of this invocation: {sum(wall.values()) / 60:.1f} min for {trained} runs trained now "
            f"({len(wall) - trained} reused).")


def plot(results: list[RunResult], threshold: float, path: Path, title: str, colours: Mapping[str, str]) -> None:
    """Held-out success against online rollouts, one line per run, coloured by arm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.plot(r.rollouts, r.success, marker="o", markersize=3, color=colours.get(r.arm, "grey"),
                label=f"{r.arm} (seed {r.seed})", alpha=0.8)
    ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label="threshold")
    ax.set_xlabel("online rollouts")
    ax.set_ylabel("greedy held-out success")
    ax.set_title(title)
    ax.legend(fontsize=6, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@dataclass(frozen=True)
class Comparison:
    """One arm benchmark: its arms, how its report reads, and where it writes."""

    arms: Mapping[str, Sequence[str]]
    report: Callable[[list[RunResult], ArmArgs, dict[str, float]], str]
    title: str  # RESULTS.md section and plot title
    curves: Path
    colours: Mapping[str, str]
    description: str = ""


def main(comparison: Comparison, argv: list[str] | None = None) -> list[RunResult]:
    """Run every arm and seed of ``comparison``, then print its report and write it (RESULTS.md section and
    curves) unless ``--no_write``; arguments after ``--`` go to every training run."""
    args, extra = parse_with_extra(ArmArgs, argv, description=comparison.description)
    args.train_args = extra
    results, wall = run_arms(comparison.arms, args)
    body = comparison.report(results, args, wall)
    print(body)
    if not args.no_write:
        plot(results, args.threshold, comparison.curves, comparison.title, comparison.colours)
        print(f"wrote {write_section(comparison.title, body)}")
    return results
