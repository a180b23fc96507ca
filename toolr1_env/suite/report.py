"""Statistics of the bundled splits: per-level counts, reference-solution size, baseline scores.

Run ``python -m toolr1_env.suite.report`` to print the tables in ``docs/task_suite.md``. It runs every
reference solution (counting tool calls) and the tool-free baselines of :mod:`.baselines`; generated
splits are summarised over their first ``--sample`` seeds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from toolr1_env.suite.baselines import baseline_scores
from toolr1_env.suite.reference import run_reference
from toolr1_env.suite.splits import SPLITS, load_split
from toolr1_env.tasks import Task


@dataclass(frozen=True)
class LevelRow:
    """One line of the report: a split's tasks of one level (``level`` None for the whole split)."""

    split: str
    level: int | None
    tasks: int
    with_files: int
    templates: int
    mean_steps: float
    mean_tool_calls: float
    solved: float
    most_common: float
    empty: float
    question_only: float


def _counting(tools: Sequence[Callable[..., Any]], counter: Counter[str]) -> list[Callable[..., Any]]:
    def wrap(tool: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            counter[tool.__name__] += 1
            return tool(*args, **kwargs)

        counted.__name__ = tool.__name__
        return counted

    return [wrap(tool) for tool in tools]


def level_rows(split: str, tasks: Sequence[Task], tools: Sequence[Callable[..., Any]]) -> list[LevelRow]:
    """Report rows for ``tasks`` of ``split``: one per level, then one for all levels."""
    from toolr1_env.scoring import question_scorer

    calls: dict[str, int] = {}
    solved: dict[str, bool] = {}
    for task in tasks:
        counter: Counter[str] = Counter()
        answer = run_reference(task, _counting(tools, counter))
        calls[task.task_id] = sum(counter.values())
        solved[task.task_id] = question_scorer(str(answer), task.answer)
    groups: list[tuple[int | None, list[Task]]] = [
        (level, [t for t in tasks if t.level == level]) for level in sorted({t.level for t in tasks})
    ]
    groups.append((None, list(tasks)))
    rows = []
    for level, group in groups:
        scores = baseline_scores(group)  # most-common answers are always taken per level
        n = len(group)
        rows.append(LevelRow(
            split=split, level=level, tasks=n, with_files=sum(bool(t.files) for t in group),
            templates=len({t.metadata.get("template") for t in group}),
            mean_steps=sum(t.metadata["n_steps"] for t in group) / n,
            mean_tool_calls=sum(calls[t.task_id] for t in group) / n,
            solved=sum(solved[t.task_id] for t in group) / n, **scores,
        ))  # fmt: skip
    return rows


def format_rows(rows: Sequence[LevelRow]) -> str:
    """The rows as a markdown table."""
    head = ("| split | level | tasks | with files | templates | mean steps | mean tool calls | reference solved "
            "| most-common answer | empty answer | question-only guess |")  # fmt: skip
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        lines.append(
            f"| {r.split} | {'all' if r.level is None else r.level} | {r.tasks} | {r.with_files} | {r.templates} "
            f"| {r.mean_steps:.2f} | {r.mean_tool_calls:.2f} | {r.solved:.1%} | {r.most_common:.1%} "
            f"| {r.empty:.1%} | {r.question_only:.1%} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the report for every bundled split."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=300, help="seeds summarised per generated split")
    parser.add_argument("--cache-dir", default=None, help="where to write task files (default: a temp folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="toolr1-report-") as tmp:
        cache = args.cache_dir or tmp
        rows: list[LevelRow] = []
        for name, spec in SPLITS.items():
            start = time.perf_counter()
            task_set = load_split(name, cache_dir=cache)
            tasks = task_set.tasks if spec.is_fixed else [task_set.generate(seed) for seed in range(args.sample)]
            rows += level_rows(name if spec.is_fixed else f"{name} (seeds 0-{args.sample - 1})", tasks, task_set.tools)
            print(f"# {name}: {len(tasks)} tasks in {time.perf_counter() - start:.1f}s", flush=True)
        print()
        print(format_rows(rows))


if __name__ == "__main__":
    main()
