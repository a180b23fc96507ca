"""GAIA-style numbers of an evaluation, and GAIA's submission file.

* :func:`summarize` reports the GAIA way: accuracy per level, per attachment type and overall, over the
  episodes that were actually scored. Episodes with an infrastructure error (the judge unreachable, the
  agent's server failing after its retries, a sandbox or web outage) are counted apart by kind and left
  out of accuracy: an outage is not a wrong answer. Tasks without a ground truth (GAIA's test split) are
  counted as ``unscored``. Besides accuracy: the share of code steps that raised (``exec_error_rate``), of
  steps without code (``format_error_rate``), answered episodes, mean turns, tool use, tokens, wall time,
  and recovery after an error (Tool-R1's reflection): ``had_error_rate`` (scored episodes where some step
  raised or held no code), ``recovered`` (those that still ended correct, the error before the last step)
  and ``recovery_rate`` (recovered / episodes with an error), as ``agents.learner.episode_stats`` counts
  them in training.
* :func:`write_submission` writes GAIA's leaderboard format: one ``{"task_id", "model_answer",
  "reasoning_trace"}`` per line.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from agents.evaluation.records import EpisodeRecord

NO_ATTACHMENT = "none"


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def _accuracy_row(records: Sequence[EpisodeRecord]) -> dict[str, Any]:
    ok = [r for r in records if r.scored]
    correct = sum(r.correct for r in ok)
    return {"tasks": len(records), "scored": len(ok), "correct": correct,
            "accuracy": correct / len(ok) if ok else None,
            "infra_errors": sum(r.infra_error is not None for r in records),
            "unscored": sum(r.infra_error is None and not r.has_ground_truth for r in records)}


def _attachment_types(record: EpisodeRecord) -> list[str]:
    return sorted(set(record.attachments)) or [NO_ATTACHMENT]


def recovered(record: EpisodeRecord) -> bool:
    """A step before the last failed (an exception, a timeout or no code) and the episode ended correct."""
    return record.correct >= 1.0 and any(turn.error_type is not None for turn in record.turns[:-1])


def summarize(records: Sequence[EpisodeRecord]) -> dict[str, Any]:
    """GAIA-style metrics over ``records`` (see the module docstring); infra errors are left out of accuracy."""
    scored = [r for r in records if r.scored]
    levels = {str(level): _accuracy_row([r for r in records if r.level == level])
              for level in sorted({r.level for r in records})}
    types = sorted({kind for r in records for kind in _attachment_types(r)})
    attachments = {kind: _accuracy_row([r for r in records if kind in _attachment_types(r)]) for kind in types}
    tool_use = Counter(tool for r in records for turn in r.turns for tool in turn.tools)
    steps = [t for r in scored for t in r.turns]
    code_steps = [t for t in steps if t.error_type != "FormatError"]
    correct = sum(r.correct for r in scored)
    with_error = [r for r in scored if any(t.error_type is not None for t in r.turns)]
    rescued = sum(recovered(r) for r in scored)
    usage_sum = {key: sum(int(r.usage.get(key, 0)) for r in records)
                 for key in ("prompt_tokens", "completion_tokens", "calls", "retries", "empty_completions")}
    return {
        "episodes": len(records),
        "scored": len(scored),
        "correct": correct,
        "accuracy": correct / len(scored) if scored else None,
        "levels": levels,
        "attachments": attachments,
        "unscored": sum(r.infra_error is None and not r.has_ground_truth for r in records),
        "tool_calls": dict(sorted(tool_use.items())),
        "infra_errors": {"total": sum(r.infra_error is not None for r in records),
                         "judge": sum(r.infra_kind == "judge" for r in records),
                         "agent": sum(r.infra_kind == "agent" for r in records),
                         **{kind: sum(r.infra_kind == kind for r in records)  # sandbox, web, ...: when seen
                            for kind in sorted({r.infra_kind for r in records} - {None, "judge", "agent"})}},
        "answered_rate": _mean([r.final_answer is not None for r in scored]),
        "exec_error_rate": _mean([t.error_type is not None for t in code_steps]),
        "format_error_rate": _mean([t.error_type == "FormatError" for t in steps]),
        "mean_turns": _mean([len(r.turns) for r in scored]),
        "truncated_rate": _mean([r.truncated for r in scored]),
        "had_error_rate": len(with_error) / len(scored) if scored else 0.0,
        "recovered": rescued,
        "recovery_rate": rescued / len(with_error) if with_error else 0.0,
        "tokens": {"prompt": usage_sum["prompt_tokens"], "completion": usage_sum["completion_tokens"],
                   "mean_prompt_per_episode": _mean([int(r.usage.get("prompt_tokens", 0)) for r in records]),
                   "mean_completion_per_episode": _mean([int(r.usage.get("completion_tokens", 0)) for r in records])},
        "model_calls": usage_sum["calls"],
        "retries": usage_sum["retries"],
        "empty_completions": usage_sum["empty_completions"],
        "mean_episode_seconds": _mean([r.wall_seconds for r in records]),
    }


def infra_kinds_text(infra: dict[str, int]) -> str:
    """``"1 judge, 0 agent, 2 sandbox"``: the count of every kind in a summary's ``infra_errors``."""
    return ", ".join(f"{n} {kind}" for kind, n in infra.items() if kind != "total")


def percent(value: float | None) -> str:
    """``"12.5%"``, or ``"n/a"`` when there is nothing to divide."""
    return "n/a" if value is None else f"{100 * value:.1f}%"


def format_table(summary: dict[str, Any]) -> str:
    """The per-level and per-attachment-type tables and headline numbers as plain text (for the terminal)."""
    lines = [f"{'level':>13} {'tasks':>6} {'scored':>7} {'correct':>8} {'accuracy':>9} {'infra':>6}"]
    for level, row in summary["levels"].items():
        lines.append(f"{level:>13} {row['tasks']:>6} {row['scored']:>7} {row['correct']:>8.4g} "
                     f"{percent(row['accuracy']):>9} {row['infra_errors']:>6}")
    infra = summary["infra_errors"]
    lines.append(f"{'all':>13} {summary['episodes']:>6} {summary['scored']:>7} {summary['correct']:>8.4g} "
                 f"{percent(summary['accuracy']):>9} {infra['total']:>6}")
    if set(summary.get("attachments", {})) - {NO_ATTACHMENT}:
        lines.append(f"{'attachment':>13}")
        for kind, row in summary["attachments"].items():
            lines.append(f"{kind:>13} {row['tasks']:>6} {row['scored']:>7} {row['correct']:>8.4g} "
                         f"{percent(row['accuracy']):>9} {row['infra_errors']:>6}")
    if summary.get("unscored"):
        lines.append(f"unscored (no ground truth, e.g. GAIA's test split): {summary['unscored']}")
    tokens = summary["tokens"]
    lines.append(f"infra errors: {infra_kinds_text(infra)} (left out of accuracy) | "
                 f"exec errors {percent(summary['exec_error_rate'])} of code steps | format errors "
                 f"{percent(summary['format_error_rate'])} of steps | recovered after an error "
                 f"{summary.get('recovered', 0)} of {round(summary.get('had_error_rate', 0.0) * summary['scored'])} | "
                 f"mean turns {summary['mean_turns']:.2f} | "
                 f"tokens {tokens['prompt']} in / {tokens['completion']} out | "
                 f"{summary['mean_episode_seconds']:.1f} s per episode")
    return "\n".join(lines)


def reasoning_trace(record: EpisodeRecord) -> str:
    """The episode's actions and observations as one text, for GAIA's ``reasoning_trace`` field."""
    parts = []
    for i, turn in enumerate(record.turns, 1):
        parts.append(f"Step {i}:\n{turn.action}\nObservation:\n{turn.observation}")
    return "\n\n".join(parts)


def write_submission(path: str | os.PathLike[str], records: Iterable[EpisodeRecord]) -> None:
    """Write GAIA's submission JSONL: ``task_id``, ``model_answer`` (``""`` when none), ``reasoning_trace``."""
    with open(path, "w", encoding="utf-8") as f:
        for record in records:
            answer = "" if record.final_answer is None else str(record.final_answer)
            row = {"task_id": record.task_id, "model_answer": answer, "reasoning_trace": reasoning_trace(record)}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


