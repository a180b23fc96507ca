"""Accuracy per level on the validation split, through the evaluation command (``agents/evaluate.py``).

    python -m benchmarks.bench_accuracy [--tasks validation] [--run runs/default-cpu] [--concurrency 8]
                                        [--max_turns N] [--threads N] [--limit N] [--no_write]

One ``agents/evaluate.py`` subprocess per row, exactly the command a user would type (each is printed
before it runs and listed in RESULTS.md):

* ``reference``: the scripted reference agent, playing each task's bundled reference solution (a ceiling
  for the tools and the judge, not for a model);
* ``scripted-empty``: answers ``""`` at once (a floor);
* ``local (base)``: the bundled model without an adapter;
* ``local + adapter``: the bundled model with the LoRA adapter of the training run ``--run`` (its latest
  checkpoint). Skipped, with a message, when that folder does not exist.

The two local rows share every setting: the training run's base model, prompt style, system prompt and
response prefix, turn limit, tokens per turn, episode context budget and observation cap (read from the
run's ``args.json``; ``--max_turns`` overrides the turn limit), so they differ only by the adapter.
Outputs go to ``<output_root>/<row>-<identity>/`` (default ``runs/bench-accuracy-<tasks>``; the identity is
12 hex digits of a hash of the adapter's weights and the evaluation's arguments, ``agents.evaluation.identity``)
with ``--resume``: a killed benchmark continues where it stopped, and a retrained adapter is evaluated afresh.
The table (accuracy per level, episodes, mean turns, wall seconds)
is printed and written to benchmarks/RESULTS.md unless ``--no_write``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.cli import arg, parse
from agents.evaluation.records import load_records
from agents.evaluation.run import evaluate_argv_key
from benchmarks.results_file import markdown_table, write_section

ROOT = Path(__file__).resolve().parents[1]

TITLE = "Accuracy on the {tasks} split (bench_accuracy.py)"
LEVELS = ("1", "2", "3")
#: Training-run arguments (``args.json`` key) passed to both local rows as evaluate.py options.
LOCAL_SETTINGS = (("model", "--model"), ("prompt_style", "--prompt_style"), ("system_prompt", "--system_prompt"),
                  ("response_prefix", "--response_prefix"), ("max_new_tokens", "--max_tokens"),
                  ("max_episode_tokens", "--max_episode_tokens"),
                  ("max_observation_chars", "--max_observation_chars"))
WALL_FILE = "bench_wall.json"


@dataclass
class Row:
    """One evaluation: its table label, output folder name and the evaluate.py arguments."""

    label: str
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    skipped: str = ""
    outcome: dict[str, Any] = field(default_factory=dict)


def shell_quote(arg: str) -> str:
    """Quote one argument for bash, writing newlines and tabs as ``$'...'`` escapes (readable in markdown)."""
    if arg and all(c.isalnum() or c in "@%+=:,./-_" for c in arg):
        return arg
    if "\n" in arg or "\t" in arg or "'" in arg:
        escaped = arg.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\t", "\\t")
        return f"$'{escaped}'"
    return f"'{arg}'"


def display_path(path: Path) -> str:
    """``path`` relative to the repository root when inside it (the commands run from there), else absolute."""
    path = path.resolve()
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def command_line(argv: list[str], env: dict[str, str] | None = None) -> str:
    """The shell command a user types from the repository root to run ``argv`` (with ``env`` set)."""
    prefix = "".join(f"{k}={shell_quote(v)} " for k, v in (env or {}).items())
    return prefix + "python " + " ".join(shell_quote(a) for a in argv)


def training_args(run: Path) -> dict[str, Any]:
    """The training run's ``args.json`` (the run folder's, else its latest checkpoint's); ``{}`` when none."""
    candidates = [run / "args.json", run.parent / "args.json"]
    pointer = run / "checkpoints" / "latest"
    if pointer.is_file():
        candidates.append(run / "checkpoints" / pointer.read_text().strip() / "args.json")
    for path in candidates:
        if path.is_file():
            return json.loads(path.read_text())
    return {}


def local_options(train: dict[str, Any], max_turns: int) -> list[str]:
    """evaluate.py options shared by both local rows: the training run's settings (those it recorded)."""
    options: list[str] = []
    for key, flag in LOCAL_SETTINGS:
        value = train.get(key)
        if value not in (None, ""):
            options += [flag, str(value)]
    turns = max_turns or train.get("max_turns")
    if turns is not None:
        options += ["--max_turns", str(turns)]
    return options


def plan_rows(args: BenchArgs, out_root: Path) -> tuple[list[Row], dict[str, Any]]:
    """The four rows' evaluate.py command lines; returns (rows, the training run's args)."""
    run = Path(args.run).expanduser()
    train = training_args(run) if run.exists() else {}
    common = ["--tasks", args.tasks, "--concurrency", str(args.concurrency), "--resume"]
    if args.limit:
        common += ["--limit", str(args.limit)]
    local = local_options(train, args.max_turns)
    specs = [("reference", "reference", ["--agent", "reference"]),
             ("scripted-empty", "scripted-empty", ["--agent", "scripted-empty"]),
             ("local (base model)", "local-base", ["--agent", "local", *local]),
             ("local + adapter", "local-trained", ["--agent", "local", "--adapter", display_path(run), *local])]
    threads = {"OMP_NUM_THREADS": str(args.threads)} if args.threads else {}
    rows = []
    for label, name, agent_args in specs:
        argv = ["agents/evaluate.py", *agent_args, *common]
        skipped = "" if run.exists() or name != "local-trained" else \
            f"training run folder {display_path(run)} does not exist"
        # The folder is named by the evaluation's identity (adapter weights + arguments), so --resume never
        # continues another adapter's records: retraining --run gives a new folder.
        folder = f"{name}-{evaluate_argv_key(argv[1:])}" if not skipped else name
        argv += ["--output_dir", display_path(out_root / folder)]
        rows.append(Row(label, folder, argv, threads if name.startswith("local") else {}, skipped=skipped))
    return rows, train


def finished_tasks(out: Path) -> int:
    """How many tasks ``out`` already holds a scored record of (what ``--resume`` will skip)."""
    return sum(r.scored for r in load_records(out / "trajectories.jsonl"))


def run_row(row: Row, out: Path) -> None:
    """Run the row's evaluation (streaming its output); fill ``row.outcome`` from its ``summary.json``."""
    before = finished_tasks(out)
    print(f"\n[bench_accuracy] {row.label}:\n  {command_line(row.argv, row.env)}", flush=True)
    code = subprocess.call([sys.executable, *row.argv], cwd=ROOT, env={**os.environ, **row.env})
    summary_path = out / "summary.json"
    if code != 0 or not summary_path.is_file():
        hint = " (set-up error: see the message above)" if code == 2 else " (stopped early: agent failures)" \
            if code == 3 else ""
        print(f"[bench_accuracy] {row.label}: evaluate.py exited with status {code}{hint}", flush=True)
        row.outcome = {"failed": code}
        return
    summary = json.loads(summary_path.read_text())
    wall_path = out / WALL_FILE
    wall = json.loads(wall_path.read_text()) if wall_path.is_file() else {"seconds": 0.0, "episodes": 0}
    played = max(0, summary["episodes"] - before)
    if played:  # a resumed run adds its time; a run with nothing left to play leaves the total as it was
        wall = {"seconds": wall["seconds"] + summary["run_wall_seconds"], "episodes": wall["episodes"] + played}
        wall_path.write_text(json.dumps(wall, indent=2))
    row.outcome = {"summary": summary, "wall": wall}


def _acc(level: dict[str, Any] | None) -> str:
    if not level or level.get("accuracy") is None:
        return "n/a"
    return f"{100 * level['accuracy']:.1f}% ({level['correct']:g}/{level['scored']})"


def table_row(row: Row) -> list[object]:
    """The row's cells: agent, accuracy per level and overall, episodes, mean turns, wall seconds."""
    if row.skipped:
        return [row.label, *["skipped"] * 4, "-", "-", "-"]
    if "failed" in row.outcome:
        return [row.label, *[f"failed (exit {row.outcome['failed']})"] * 4, "-", "-", "-"]
    summary, wall = row.outcome["summary"], row.outcome["wall"]
    episodes = str(summary["episodes"])
    if summary["infra_errors"]["total"]:
        episodes += f" ({summary['infra_errors']['total']} infra errors, unscored)"
    seconds = f"{wall['seconds']:.0f}" + ("" if wall["episodes"] >= summary["episodes"] else
                                          f" ({wall['episodes']} of {summary['episodes']} episodes timed)")
    overall = {"accuracy": summary["accuracy"], "correct": summary["correct"], "scored": summary["scored"]}
    return [row.label, *[_acc(summary["levels"].get(level)) for level in LEVELS], _acc(overall), episodes,
            f"{summary['mean_turns']:.2f}", seconds]


def describe(rows: list[Row], train: dict[str, Any], args: BenchArgs) -> str:
    """The paragraph under the table: rows, judge, tasks per level, local settings, commands."""
    summaries = [r.outcome["summary"] for r in rows if "summary" in r.outcome]
    per_level = ", ".join(f"level {k}: {v['tasks']}" for k, v in summaries[0]["levels"].items()) if summaries else "?"
    total = summaries[0]["tasks_selected"] if summaries else "?"
    limit = f" (the first {args.limit}: `--limit {args.limit}`)" if args.limit else ""
    local = local_options(train, args.max_turns)
    settings = ", ".join(f"`{flag} {shell_quote(value)}`" for flag, value in zip(local[::2], local[1::2], strict=True))
    shared = (f"Both local rows use the training run's settings ({settings}), so they differ only by the adapter."
              if train else "The local rows use evaluate.py's defaults (no training-run args.json to copy)" +
              (f" with {settings}." if settings else "."))
    trained = rows[-1]
    if trained.skipped:
        trained_text = f"**skipped**: {trained.skipped} (train one with `bash scripts/train.sh`)."
    else:
        trained_text = (f"the same model with the LoRA adapter of the training run `{display_path(Path(args.run))}` "
                        f"(its latest checkpoint; trained on `{train.get('tasks', '?')}` tasks for "
                        f"{train.get('iterations', '?')} iterations).")
    lines = [
        f"Tasks: `{args.tasks}`{limit}, {total} tasks ({per_level}). Judge: GAIA's exact match (normalised "
        "numbers, strings and lists; no LLM judge). Cells are accuracy (correct/scored); infrastructure errors "
        "are left out of accuracy and counted under episodes. Mean turns: code actions per scored episode. "
        "Wall s: the evaluation command's episode time (model loading excluded), summed over resumed runs.",
        "",
        "- **reference**: the scripted reference agent playing each task's bundled reference solution, one "
        "`# --- step ---` per turn (checks the tools and the judge; an upper bound of the suite, not a model).",
        "- **scripted-empty**: answers `\"\"` on the first turn (the floor).",
        "- **local (base model)**: the bundled model (SmolLM2-135M-Instruct) without an adapter, greedy.",
        f"- **local + adapter**: {trained_text}",
        "",
        f"{shared} Reference and scripted-empty use evaluate.py's defaults (8 turns).",
        "",
        "Commands (from the repository root; `--resume` continues a killed run):",
        "",
        "```bash",
        *[("# skipped: " if r.skipped else "") + command_line(r.argv, r.env) for r in rows],
        "```",
    ]
    return "\n".join(lines)


@dataclass
class BenchArgs:
    """Accuracy per level through the evaluation command: reference agent, model before and after training."""

    tasks: str = arg("validation", "bundled split name, GAIA folder or task JSONL")
    limit: int = arg(0, "only the first N tasks (0 = all; for smoke runs)")
    run: str = arg("runs/default-cpu", "training run folder whose adapter is evaluated")
    concurrency: int = arg(8, "episodes in flight per evaluation")
    max_turns: int = arg(0, "turn limit of the local rows (0 = the training run's, else evaluate.py's)")
    threads: int = arg(0, "torch threads of the local rows (OMP_NUM_THREADS; 0 = torch's default). Use 1 on a "
                          "machine shared with another job: oversubscribed cores slow generation many times")
    output_root: str = arg("", "one evaluation folder per row below (default runs/bench-accuracy-<tasks>)")
    no_write: bool = arg(False, "print the table only")


def main(argv: list[str] | None = None) -> None:
    """Run every row, print the table and write it to RESULTS.md."""
    args = parse(BenchArgs, argv, description=__doc__)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    out_root = Path(args.output_root or f"runs/bench-accuracy-{Path(args.tasks).name}").expanduser().resolve()
    rows, train = plan_rows(args, out_root)
    if not train and not rows[-1].skipped:
        print(f"[bench_accuracy] no args.json found for {args.run}: the local rows use evaluate.py's defaults")
    for row in rows:
        if row.skipped:
            print(f"\n[bench_accuracy] skipping {row.label}: {row.skipped}", flush=True)
            continue
        run_row(row, out_root / row.name)

    header = ["agent", "level 1", "level 2", "level 3", "all", "episodes", "mean turns", "wall s"]
    table = markdown_table(header, [table_row(r) for r in rows])
    body = table + "\n\n" + describe(rows, train, args)
    print("\n" + body)
    if not args.no_write:
        print(f"\nwrote {write_section(TITLE.format(tasks=Path(args.tasks).name), body)}")


if __name__ == "__main__":
    main()
