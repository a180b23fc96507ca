"""The output folder of an evaluation: its identity check before play, its summary and reports after.

:func:`prepare_output_dir` creates the folder and refuses to overwrite an evaluation or to resume another
one (:mod:`agents.evaluation.identity`). :func:`write_outputs` rebuilds ``summary.json`` (accuracy and its
95% interval, the judge, the subset, repeats with avg@k and pass@k: :mod:`agents.evaluation.repeats`),
``submission.jsonl`` and ``report.html`` from ``trajectories.jsonl``, so a resumed run reports every
episode, old and new.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.evaluation.args import Args, public_args
from agents.evaluation.build import judge_summary
from agents.evaluation.html_report import write_html
from agents.evaluation.identity import evaluation_identity, identity_diff
from agents.evaluation.metrics import summarize, write_submission
from agents.evaluation.records import end_last_line, load_records
from agents.evaluation.repeats import bootstrap_interval, per_task_scores, repeat_summary
from toolr1_env.tasks import Task


def prepare_output_dir(out: Path, args: Args) -> dict[str, str]:
    """Create the folder; refuse to overwrite an evaluation, or to resume another one. Returns the identity.

    ``--resume`` continues only the same evaluation: the same adapter *weights* and the same arguments
    (:mod:`agents.evaluation.identity`), never merely the same folder names.
    """
    out.mkdir(parents=True, exist_ok=True)
    config_path, records = out / "eval_config.json", out / "trajectories.jsonl"
    current = public_args(args)
    identity = evaluation_identity(current)
    if args.resume:
        saved = json.loads(config_path.read_text()) if config_path.is_file() else {}
        if saved or records.exists():
            saved_identity = saved.get("identity")
            diffs = (identity_diff(saved_identity, identity, saved.get("args", {}), current) if saved_identity
                     else ["it records no identity (written by an older version)"])
            if diffs:
                raise ValueError(f"--resume: {out} holds another evaluation ({'; '.join(diffs)}); "
                                 "use another --output_dir")
        end_last_line(records)  # a kill mid-write leaves a partial line: never glue the next record to it
    elif records.exists():
        raise FileExistsError(f"{records} exists: pass --resume to continue it, or choose another --output_dir")
    config_path.write_text(json.dumps({"identity": identity, "args": current}, indent=2))
    return identity


def write_outputs(out: Path, args: Args, tasks: Sequence[Task], identity: dict[str, str], *, started: float,
                  aborted: str | None) -> dict[str, Any]:
    """Rebuild ``summary.json``, ``submission.jsonl`` and ``report.html`` from ``out``'s records; return the summary.

    Only the records of ``tasks`` and of repeats below ``args.repeats`` count, in task order (not finishing
    order). ``started`` is the ``time.perf_counter()`` at which play began (the summary's wall time);
    ``aborted`` is why the run stopped early, or None.
    """
    records_path = out / "trajectories.jsonl"
    order = {t.task_id: i for i, t in enumerate(tasks)}  # outputs follow the task list, not finishing order
    records = sorted((r for r in load_records(records_path) if r.task_id in order and r.repeat < args.repeats),
                     key=lambda r: (r.repeat, order[r.task_id]))
    task_means = [sum(s) / len(s) for s in per_task_scores(records).values()]
    summary: dict[str, Any] = {"agent": args.agent, "tasks": args.tasks, "tasks_selected": len(tasks),
                               "subset": {"name": args.subset, "task_ids": args.task_ids or None, "tasks": len(tasks)},
                               "judge": judge_summary(args), **summarize(records),
                               "accuracy_ci95": bootstrap_interval(task_means),
                               "repeats": repeat_summary(records, args.repeats),
                               "run_wall_seconds": time.perf_counter() - started,
                               "aborted": aborted, "identity": identity, "args": public_args(args)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_submission(out / "submission.jsonl", [r for r in records if r.repeat == 0])  # GAIA takes one answer per task
    write_html(out / "report.html", summary, records, title=f"{args.agent} on {args.tasks}")
    return summary
