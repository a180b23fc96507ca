"""Which tool does the policy reach for first, and is it the one the question needs? A diagnosis of RL drift.

    python -m benchmarks.first_moves --runs_dirs runs/bench-rl-guard-lr3            # print the table
    python -m benchmarks.first_moves --runs_dirs runs/bench-rl-guard runs/bench-rl-guard-lr3 --write   # RESULTS.md too

For every seed of a ``bench_rl`` run folder (``<runs_dir>/seed<k>/grpo``, trained with ``--select_tasks``) it reads
the selection scorings, ``episodes/select-<i>.jsonl`` (``i`` = RL iterations done, 0 = the warm-up's adapter),
and sorts each episode's first action into one *move*:

* ``web``: it calls ``read_page``, ``visit_page`` or ``web_search``;
* ``file``: it calls ``inspect_file`` or opens a file (``open(...)``, ``pd.read_*(...)``);
* ``answer``: it calls ``final_answer`` with no tool before it (the answer from the question, or a guess);
* ``other``: anything else (a computation, a syntax error, a tool that does not exist).

The task's reference solution (its first step) is sorted the same way: the move the question needs. The table
gives, per scoring, the success rate, the share of each move and the share of episodes whose first move is
the reference's. A policy whose success falls while its agreement falls has stopped choosing its tool by the
question; one whose success falls at full agreement fails later in the episode.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from agents.cli import arg, parse
from agents.learner.demonstrations import reference_turns
from agents.learner.heldout import eval_tasks_of

MOVES = ("web", "file", "answer", "other")
_WEB = re.compile(r"\b(?:read_page|visit_page|web_search)\s*\(")
_FILE = re.compile(r"\b(?:inspect_file|open)\s*\(|\.read_\w+\s*\(")
_ANSWER = re.compile(r"\bfinal_answer\s*\(")


def first_move(code: str) -> str:
    """The move one action makes (one of :data:`MOVES`): a web tool wins over a file read, which wins over an
    answer, so ``final_answer(pd.read_csv('a.csv')['x'].sum())`` is a ``file`` move."""
    for move, pattern in (("web", _WEB), ("file", _FILE), ("answer", _ANSWER)):
        if pattern.search(code):
            return move
    return "other"


@dataclass
class Scoring:
    """One selection scoring of one seed: how many episodes made each first move, and how many were right."""

    seed: int
    iteration: int
    episodes: int = 0
    correct: int = 0
    agree: int = 0
    moves: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MOVES, 0))


def score_file(path: Path, needed: dict[str, str], seed: int, iteration: int) -> Scoring:
    """Count one ``select-<i>.jsonl``'s first moves against ``needed`` (task id -> the reference's first move).

    Raises:
        KeyError: an episode's task is not in ``needed`` (the scoring is of another split).
    """
    scoring = Scoring(seed, iteration)
    for line in path.read_text().splitlines():
        episode = json.loads(line)
        turns = episode["turns"]
        move = first_move(turns[0]["action"]) if turns else "other"
        scoring.episodes += 1
        scoring.correct += bool(episode["correct"])
        scoring.moves[move] += 1
        scoring.agree += move == needed[episode["task_id"]]
    return scoring


def needed_moves(run_args: dict) -> dict[str, str]:
    """Task id -> the first move of its reference solution, for the selection split a run was trained with."""
    _, tasks = eval_tasks_of(run_args["select_tasks"], run_args["eval_level"], run_args["select_size"])
    return {t.task_id: first_move((reference_turns(t) or [""])[0]) for t in tasks}


def scorings(runs_dir: Path) -> list[Scoring]:
    """Every selection scoring of every seed under ``runs_dir`` (a ``bench_rl`` folder), in seed and iteration
    order.

    Raises:
        FileNotFoundError: no seed of it was trained with ``--select_tasks``.
    """
    found = []
    for grpo in sorted(runs_dir.glob("seed*/grpo")):
        run_args = json.loads((grpo / "args.json").read_text())
        if not run_args.get("select_tasks"):
            continue
        needed = needed_moves(run_args)
        seed = int(grpo.parent.name.removeprefix("seed"))
        by_iteration = {int(p.stem.removeprefix("select-")): p for p in (grpo / "episodes").glob("select-*.jsonl")}
        found += [score_file(by_iteration[i], needed, seed, i) for i in sorted(by_iteration)]
    if not found:
        raise FileNotFoundError(f"{runs_dir}: no seed<k>/grpo run with --select_tasks and its select-*.jsonl")
    return found


def table(runs: dict[str, list[Scoring]]) -> str:
    """A markdown table: one row per run, seed and scoring; percentages of that scoring's episodes."""
    lines = ["| run | seed | after iteration | success | " + " | ".join(f"first move {m}" for m in MOVES)
             + " | first move = reference's |", "|---|---|---|---|" + "---|" * len(MOVES) + "---|"]
    for name, found in runs.items():
        for s in found:
            total = max(s.episodes, 1)  # a killed run's last scoring may hold no episode yet
            share = [f"{100 * s.moves[m] / total:.0f}" for m in MOVES]
            lines.append(f"| {name} | {s.seed} | {s.iteration} | {100 * s.correct / total:.1f} | "
                         f"{' | '.join(share)} | {100 * s.agree / total:.0f} |")
    return "\n".join(lines)


@dataclass
class FirstMovesArgs:
    """Command line of ``benchmarks/first_moves.py``."""

    runs_dirs: list[str] = arg([], "bench_rl run folders trained with --select_tasks (runs/bench-rl-guard ...)")
    write: bool = arg(False, "also write the table into benchmarks/RESULTS.md")


def main(argv: list[str] | None = None) -> str:
    """Tabulate the first moves of the run folders given on the command line; returns the table."""
    args = parse(FirstMovesArgs, argv)
    folders = args.runs_dirs
    if not folders:
        raise SystemExit("give --runs_dirs: one or more bench_rl run folders")
    body = table({Path(f).name: scorings(Path(f)) for f in folders})
    print(body)
    if args.write:
        from benchmarks.results_file import code_commit, write_section

        write_section("First moves on the selection split (first_moves.py)",
                      f"- runs: {', '.join(folders)}\n- read at: {code_commit()}\n- percentages of each scoring's "
                      f"episodes; the reference's first move is the task's bundled solution's first step\n\n{body}")
    return body


if __name__ == "__main__":
    main()
