"""The README's main command itself over several seeds: wall time, peak memory and held-out success.

    python -m benchmarks.bench_main                       # seeds 0 1 2, one after another
    python -m benchmarks.bench_main --seeds 0 --no_write  # one seed, print only
    python -m benchmarks.bench_main --report_only         # tabulate the runs already on disk
    python -m benchmarks.bench_main -- --iterations 8     # flags after -- go to every run
    python -m benchmarks.bench_main --runs_dir runs/bench-main-avx2 --label "AVX2-only CPU"  # a section of its own

Each seed runs exactly ``bash scripts/train.sh --seed <k> --output_dir runs/bench-main/seed<k>`` (the set-up
included, which only checks on a machine already set up), watched by :class:`benchmarks.memory.MemoryWatch`:
peak proportional set size of the whole process tree (trainer plus sandboxes), and which of the two held it.
The report gives, per seed and as ``mean [min, max]`` over the seeds, held-out success at the start (base
model), after the warm-up and at the end, the wall time and the time of each phase, and the paired per-task
change from after the warm-up to the end (McNemar's exact test over all seeds' tasks).

A finished seed (``bench.json`` in its folder) is reused; delete the folder to rerun it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from agents.cli import arg, parse_with_extra  # noqa: E402
from benchmarks.arm_runs import code_commit, spread  # noqa: E402
from benchmarks.bench_rl import mcnemar  # noqa: E402
from benchmarks.memory import MemoryWatch  # noqa: E402
from benchmarks.results_file import machine, markdown_table, write_section  # noqa: E402

TITLE = "The main command, over seeds (bench_main.py)"
PHASES = {"base evaluation": "time/eval_base_s", "warm-up": "time/warmup_s"}


@dataclass
class MainArgs:
    """Seeds and where the runs go."""

    seeds: list[int] = arg([0, 1, 2], "seeds of the main command")
    runs_dir: str = arg(str(ROOT / "runs" / "bench-main"), "where the runs live")
    report_only: bool = arg(False, "do not train; tabulate what is on disk")
    no_write: bool = arg(False, "print only; do not touch benchmarks/RESULTS.md")
    label: str = arg("", "added to the RESULTS.md section title, so that runs on another machine or code (another "
                         "--runs_dir) get a section of their own")
    extra: list[str] = arg([], "internal: filled from the arguments after -- (agents/train_grpo.py flags)")


def run_seed(seed: int, args: MainArgs) -> dict:
    """Run the main command for one seed (reused when ``bench.json`` exists); returns what was measured."""
    run_dir = Path(args.runs_dir) / f"seed{seed}"
    result_file = run_dir / "bench.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    command = ["bash", str(ROOT / "scripts" / "train.sh"), "--seed", str(seed), "--output_dir", str(run_dir),
               *args.extra]
    print("$", " ".join(command), flush=True)
    commit = code_commit()
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT)
    watch = MemoryWatch(process.pid).start()
    process.wait()
    watch.stop()
    if process.returncode != 0:
        raise RuntimeError(f"the main command failed for seed {seed} (exit status {process.returncode})")
    peak = watch.peak
    result = {"seed": seed, "command": command, "commit": commit, "wall_s": time.perf_counter() - start,
              "peak_gib": watch.peak_gib, "peak_at_s": peak.seconds, "peak_trainer_mib": peak.root_mib,
              "peak_sandboxes_mib": peak.descendants_mib,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    (run_dir / "memory.json").write_text(json.dumps(watch.timeline()))
    result_file.write_text(json.dumps(result, indent=2))
    return result


def _metrics(run_dir: Path) -> dict[str, float]:
    """Every logged metric, later rows overriding earlier ones (the last value of each key)."""
    merged: dict[str, float] = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        if line.strip():
            merged.update(json.loads(line))
    return merged


def _outcomes(path: Path) -> dict[str, bool]:
    return {r["task_id"]: bool(r["correct"]) for r in map(json.loads, path.read_text().splitlines())}


def _end_episodes(run_dir: Path) -> Path:
    """The last held-out evaluation's episodes (``eval-<iteration>.jsonl`` with the largest iteration)."""
    numbered = [p for p in (run_dir / "episodes").glob("eval-*.jsonl") if p.stem.split("-", 1)[1].isdigit()]
    return max(numbered, key=lambda p: int(p.stem.split("-", 1)[1]))


def report(args: MainArgs) -> str:
    """The per-seed table, the spread and the paired warm-up -> end test, from the runs on disk."""
    rows, spreads, wins, losses, done = [], {k: [] for k in range(6)}, 0, 0, []
    autocast: list[str] = []  # the preset turns bf16 on only where bfloat16 is native: say what each seed ran
    for seed in args.seeds:
        run_dir = Path(args.runs_dir) / f"seed{seed}"
        if not (run_dir / "bench.json").exists():
            continue
        bench = json.loads((run_dir / "bench.json").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
        metrics = _metrics(run_dir)
        values = [100 * summary["eval_success_base"], 100 * summary["eval_success_start"],
                  100 * summary["eval_success_end"], bench["wall_s"] / 60, bench["peak_gib"],
                  (bench["wall_s"] - sum(metrics.get(k, 0.0) for k in PHASES.values())) / 60]
        for k, v in enumerate(values):
            spreads[k].append(v)
        after_warmup = _outcomes(run_dir / "episodes" / "eval-0.jsonl")
        end = _outcomes(_end_episodes(run_dir))
        wins += sum(end[t] and not after_warmup.get(t, False) for t in end)
        losses += sum(after_warmup.get(t, False) and not end[t] for t in end)
        rows.append([f"seed {seed}", *(f"{v:.1f}" for v in values[:3]), f"{values[3]:.1f}",
                     *(f"{metrics.get(key, 0.0) / 60:.1f}" for key in PHASES.values()), f"{values[5]:.1f}",
                     f"{values[4]:.1f} ({bench['peak_trainer_mib'] / 1024:.1f} + "
                     f"{bench['peak_sandboxes_mib'] / 1024:.1f}) at {bench['peak_at_s'] / 60:.0f} min",
                     bench["commit"], bench["date"]])
        done.append(seed)
        run_args = json.loads((run_dir / "args.json").read_text()) if (run_dir / "args.json").is_file() else {}
        autocast.append(f"seed {seed} {({True: 'bf16', False: 'fp32'}).get(run_args.get('bf16'), '?')}")
    if not rows:
        return "no finished seed on disk"
    if len(rows) > 1:
        rows.append(["mean [min, max]", *(spread(spreads[k], 1) for k in range(4)), "", "", spread(spreads[5], 1),
                     spread(spreads[4], 1), "", ""])
    table = markdown_table(["seed", "start %", "after warm-up %", "end %", "wall min", "base eval min",
                            "warm-up min", "rest min (RL, evals, load)", "peak GiB (trainer + sandboxes)",
                            "commit", "date"], rows)
    paired = (f"After the warm-up -> end, per held-out task over seeds {done}: {wins} won, {losses} lost, "
              f"McNemar p = {mcnemar(wins, losses):.3f}.")
    notes = ("- command: `bash scripts/train.sh --seed <k>` (the README's main command; `--preset multistep`), "
             "one seed after another\n"
             f"- machine: {machine()}\n"
             f"- arithmetic (`bf16` in each run's args.json): {', '.join(autocast)}\n"
             "- held-out: the run's own `--eval_tasks` (the recipe: 32 level-1 tasks of `level1-eval`, greedy); "
             "start = the base model\n"
             "- peak GiB = PSS of the whole process tree (trainer + sandbox processes), sampled every 2 s")
    if len(done) < 3:
        notes += f"\n- seeds finished: {done}: fewer than 3 seeds is an anecdote, not a spread"
    return f"{table}\n\n{paired}\n\n{notes}\n"


def section_title(args: MainArgs) -> str:
    """The RESULTS.md section the report goes to: :data:`TITLE`, with ``--label`` after it when given."""
    return f"{TITLE}, {args.label}" if args.label else TITLE


def main(argv: list[str] | None = None) -> str:
    """Run the missing seeds (unless ``--report_only``), print the report and write it to RESULTS.md."""
    args, extra = parse_with_extra(MainArgs, argv, description=__doc__)
    args.extra = extra
    if not args.report_only:
        for seed in args.seeds:
            run_seed(seed, args)
    text = report(args)
    print(text)
    if not args.no_write:
        print("written to", write_section(section_title(args), text))
    return text


if __name__ == "__main__":
    main()
