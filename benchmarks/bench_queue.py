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

Runs are made, reused and resumed by :mod:`benchmarks.arm_runs`. Writes the tables to
benchmarks/RESULTS.md and the curves to benchmarks/queue_curves.png.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.arm_runs import ArmArgs, Comparison, RunResult, arm_table, run_table, settings_line, wall_line
from benchmarks.arm_runs import main as run_comparison

ARMS = {"no-queue": ["--no_use_queue"], "own": ["--no_queue_demonstrations"],
        "demos": ["--no_queue_admit_online"], "both": []}
CURVES = Path(__file__).resolve().parent / "queue_curves.png"
COLOURS = {"no-queue": "tab:red", "own": "tab:orange", "demos": "tab:green", "both": "tab:blue"}
ARM_NOTES = [
    "- **no-queue**: `--no_use_queue`: no cache; every chosen task gets a full group of fresh rollouts.",
    "- **own**: `--no_queue_demonstrations`: the paper's queue, only the policy's own verified successes.",
    "- **demos**: `--no_queue_admit_online`: only the pool's demonstrations are cached, never the policy's "
    "own successes.",
    "- **both**: the defaults: demonstrations and the policy's own successes.",
]


def report(results: list[RunResult], args: ArmArgs, wall: dict[str, float]) -> str:
    """The markdown body: per-arm table, per-run table, what each arm is, settings, and the wall time."""
    return "\n".join([arm_table(results, args.arms or list(ARMS)), "", run_table(results), "", *ARM_NOTES, "",
                      settings_line(args, results, CURVES.name), wall_line(wall)])


COMPARISON = Comparison(ARMS, report, "Dynamic sample queue: four arms on held-out tasks (bench_queue.py)", CURVES,
                        COLOURS, __doc__ or "")


def main(argv: list[str] | None = None) -> None:
    """Run every arm and seed, then print and write the comparison (arguments after ``--`` go to training)."""
    run_comparison(COMPARISON, argv)


if __name__ == "__main__":
    main()
