"""What an evaluation writes: episode records, the GAIA-style summary, the submission file, the HTML report.

* :class:`EpisodeRecord` is one evaluated episode; ``trajectories.jsonl`` holds one per line, appended as
  each episode ends, so a killed evaluation loses only the episodes in flight. :func:`load_records` keeps
  the *last* record of each task (a re-run after an infrastructure error supersedes the failed one) and
  skips a line cut short by a crash.
* :func:`summarize` reports the GAIA way: accuracy per level and overall, over the episodes that were
  actually scored. Episodes with an infrastructure error (the judge unreachable, the agent's server
  failing after its retries) are counted apart and left out of accuracy: an outage is not a wrong answer.
  Besides accuracy: the share of code steps that raised (``exec_error_rate``), of steps without code
  (``format_error_rate``), answered episodes, mean turns, tokens and wall time.
* :func:`write_submission` writes GAIA's leaderboard format: one ``{"task_id", "model_answer",
  "reasoning_trace"}`` per line.
* :func:`write_html` writes a static, self-contained page (inline CSS, no script, no external asset)
  with the per-level table and every episode (question, each thought, code and observation, the reward
  parts). All model and task text is HTML-escaped, and a Content-Security-Policy forbids scripts, so a
  hostile answer such as ``<script>...</script>`` shows as text.
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolr1_env.parsing import extract_code

log = logging.getLogger(__name__)

_FIRST_CODE = re.compile(r"```|<code>")


@dataclass
class TurnRecord:
    """One step: the agent's action (split into thought and code for reading) and the env's answer.

    Args:
        action: the whole action text the agent returned.
        thought: the text before the first code block (empty for raw code).
        code: the code the env ran (``toolr1_env.parsing.extract_code``), empty when none was found.
        observation: the env's observation (on the last turn: the final step's output).
        error_type: the error of this step (``"FormatError"`` when there was no code), or None.
    """

    action: str
    thought: str
    code: str
    observation: str
    error_type: str | None = None

    @classmethod
    def from_step(cls, action: str, observation: str, error_type: str | None) -> TurnRecord:
        """Split ``action`` into thought and code."""
        code = extract_code(action) or ""
        match = _FIRST_CODE.search(action)
        thought = action[: match.start()].strip() if match else ("" if code else action.strip())
        return cls(action, thought, code, observation, error_type)


@dataclass
class EpisodeRecord:
    """One evaluated episode, as written to ``trajectories.jsonl``.

    Args:
        task_id, level, question, ground_truth: the task.
        final_answer: what the agent submitted (None: no answer).
        correct: the judge's score of the answer in [0, 1] (GAIA exact match: 0 or 1).
        reward: the env's end reward; ``reward_components`` its named parts.
        turns: every step in order.
        truncated: the turn limit ended the episode.
        usage: the agent's token and call counts (``agents.players.api.Usage`` as a dict).
        infra_error: why the episode could not be scored (None when it was); ``infra_kind`` is
            ``"judge"`` or ``"agent"``.
        wall_seconds: from the episode's reset to its end.
    """

    task_id: str
    level: int
    question: str
    ground_truth: str
    final_answer: str | None = None
    correct: float = 0.0
    reward: float = 0.0
    reward_components: dict[str, Any] = field(default_factory=dict)
    turns: list[TurnRecord] = field(default_factory=list)
    truncated: bool = False
    usage: dict[str, Any] = field(default_factory=dict)
    infra_error: str | None = None
    infra_kind: str | None = None
    wall_seconds: float = 0.0

    @property
    def scored(self) -> bool:
        """The episode counts towards accuracy (no infrastructure error)."""
        return self.infra_error is None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeRecord:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["turns"] = [TurnRecord(**t) for t in data.get("turns", [])]
        return cls(**data)


# ----------------------------------------------------------------------------------------- record files


def append_record(path: str | os.PathLike[str], record: EpisodeRecord) -> None:
    """Append one record as a JSON line and flush it to disk."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def end_last_line(path: str | os.PathLike[str]) -> None:
    """Terminate a last line cut short by a crash, so the next appended record starts on its own line."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) != b"\n":
            f.write(b"\n")


def load_records(path: str | os.PathLike[str]) -> list[EpisodeRecord]:
    """Read ``trajectories.jsonl``: the last record per task, in first-seen order; broken lines skipped."""
    if not os.path.exists(path):
        return []
    latest: dict[str, EpisodeRecord] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = EpisodeRecord.from_dict(json.loads(line))
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("%s, line %d: skipping unreadable record (%s)", path, lineno, exc)
                continue
            latest[record.task_id] = record
    return list(latest.values())


# ----------------------------------------------------------------------------------------------- summary


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def summarize(records: Sequence[EpisodeRecord]) -> dict[str, Any]:
    """GAIA-style metrics over ``records`` (see the module docstring); infra errors are left out of accuracy."""
    scored = [r for r in records if r.scored]
    levels: dict[str, dict[str, Any]] = {}
    for level in sorted({r.level for r in records}):
        mine = [r for r in records if r.level == level]
        ok = [r for r in mine if r.scored]
        correct = sum(r.correct for r in ok)
        levels[str(level)] = {"tasks": len(mine), "scored": len(ok), "correct": correct,
                              "accuracy": correct / len(ok) if ok else None, "infra_errors": len(mine) - len(ok)}
    steps = [t for r in scored for t in r.turns]
    code_steps = [t for t in steps if t.error_type != "FormatError"]
    correct = sum(r.correct for r in scored)
    usage_sum = {key: sum(int(r.usage.get(key, 0)) for r in records)
                 for key in ("prompt_tokens", "completion_tokens", "calls", "retries", "empty_completions")}
    return {
        "episodes": len(records),
        "scored": len(scored),
        "correct": correct,
        "accuracy": correct / len(scored) if scored else None,
        "levels": levels,
        "infra_errors": {"total": len(records) - len(scored),
                         "judge": sum(r.infra_kind == "judge" for r in records),
                         "agent": sum(r.infra_kind == "agent" for r in records),
                         **{kind: sum(r.infra_kind == kind for r in records)  # sandbox, web, ...: when seen
                            for kind in sorted({r.infra_kind for r in records} - {None, "judge", "agent"})}},
        "answered_rate": _mean([r.final_answer is not None for r in scored]),
        "exec_error_rate": _mean([t.error_type is not None for t in code_steps]),
        "format_error_rate": _mean([t.error_type == "FormatError" for t in steps]),
        "mean_turns": _mean([len(r.turns) for r in scored]),
        "truncated_rate": _mean([r.truncated for r in scored]),
        "tokens": {"prompt": usage_sum["prompt_tokens"], "completion": usage_sum["completion_tokens"],
                   "mean_prompt_per_episode": _mean([int(r.usage.get("prompt_tokens", 0)) for r in records]),
                   "mean_completion_per_episode": _mean([int(r.usage.get("completion_tokens", 0)) for r in records])},
        "model_calls": usage_sum["calls"],
        "retries": usage_sum["retries"],
        "empty_completions": usage_sum["empty_completions"],
        "mean_episode_seconds": _mean([r.wall_seconds for r in records]),
    }


def _infra_kinds(infra: dict[str, int]) -> str:
    """``"1 judge, 0 agent, 2 sandbox"``: the count of every kind in a summary's ``infra_errors``."""
    return ", ".join(f"{n} {kind}" for kind, n in infra.items() if kind != "total")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def format_table(summary: dict[str, Any]) -> str:
    """The per-level table and headline numbers as plain text (for the terminal)."""
    lines = [f"{'level':>7} {'tasks':>6} {'scored':>7} {'correct':>8} {'accuracy':>9} {'infra':>6}"]
    for level, row in summary["levels"].items():
        lines.append(f"{level:>7} {row['tasks']:>6} {row['scored']:>7} {row['correct']:>8.4g} "
                     f"{_pct(row['accuracy']):>9} {row['infra_errors']:>6}")
    infra = summary["infra_errors"]
    lines.append(f"{'all':>7} {summary['episodes']:>6} {summary['scored']:>7} {summary['correct']:>8.4g} "
                 f"{_pct(summary['accuracy']):>9} {infra['total']:>6}")
    tokens = summary["tokens"]
    lines.append(f"infra errors: {_infra_kinds(infra)} (left out of accuracy) | "
                 f"exec errors {_pct(summary['exec_error_rate'])} of code steps | format errors "
                 f"{_pct(summary['format_error_rate'])} of steps | mean turns {summary['mean_turns']:.2f} | "
                 f"tokens {tokens['prompt']} in / {tokens['completion']} out | "
                 f"{summary['mean_episode_seconds']:.1f} s per episode")
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------- submission


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


# ------------------------------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.3em .7em;text-align:right}
th{background:#eee}pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap;word-break:break-word;margin:.3em 0}
details{border:1px solid #ddd;border-radius:4px;margin:.4em 0;padding:.3em .6em}summary{cursor:pointer}
.ok{color:#16701c}.bad{color:#b00020}.infra{color:#a15c00}
.turn{border-left:3px solid #ccd;padding-left:.8em;margin:.6em 0}
.label{font-weight:600;font-size:.9em;color:#555}
"""
_MAX_SHOWN = 20000  # characters of one text block shown in the page (the JSONL keeps everything)


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _pre(text: str) -> str:
    shown = text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + f"\n... [{len(text) - _MAX_SHOWN} more characters]"
    return f"<pre>{_esc(shown)}</pre>"


def _verdict(record: EpisodeRecord) -> tuple[str, str]:
    if not record.scored:
        return "infra", f"infra error ({record.infra_kind})"
    return ("ok", "correct") if record.correct >= 1.0 else (("bad", "wrong") if record.correct <= 0 else
                                                            ("ok", f"partial {record.correct:.2f}"))


def _episode_html(record: EpisodeRecord) -> str:
    css, verdict = _verdict(record)
    head = (f"<summary><span class='{css}'>{_esc(verdict)}</span> &middot; {_esc(record.task_id)} &middot; "
            f"level {record.level} &middot; answer {_esc(record.final_answer)} &middot; truth "
            f"{_esc(record.ground_truth)} &middot; {len(record.turns)} turn(s)</summary>")
    body = [f"<div class='label'>Question</div>{_pre(record.question)}"]
    if record.infra_error:
        body.append(f"<div class='label infra'>Infrastructure error</div>{_pre(record.infra_error)}")
    for i, turn in enumerate(record.turns, 1):
        error = f" &middot; <span class='bad'>{_esc(turn.error_type)}</span>" if turn.error_type else ""
        parts = [f"<div class='label'>Step {i}{error}</div>"]
        if turn.thought:
            parts.append(f"<div class='label'>Thought</div>{_pre(turn.thought)}")
        parts.append(f"<div class='label'>Code</div>{_pre(turn.code)}" if turn.code else
                     f"<div class='label'>Action (no code found)</div>{_pre(turn.action)}")
        parts.append(f"<div class='label'>Observation</div>{_pre(turn.observation)}")
        body.append(f"<div class='turn'>{''.join(parts)}</div>")
    rows = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in
                   {"reward": record.reward, **record.reward_components, **record.usage,
                    "wall_seconds": round(record.wall_seconds, 2)}.items())
    body.append(f"<div class='label'>Reward parts and usage</div><table>{rows}</table>")
    return f"<details>{head}{''.join(body)}</details>"


def _levels_html(summary: dict[str, Any]) -> str:
    header = "<tr>" + "".join(f"<th>{h}</th>" for h in ("level", "tasks", "scored", "correct", "accuracy",
                                                          "infra errors")) + "</tr>"
    rows = [f"<tr><td>{_esc(level)}</td><td>{row['tasks']}</td><td>{row['scored']}</td><td>{row['correct']:.4g}</td>"
            f"<td>{_pct(row['accuracy'])}</td><td>{row['infra_errors']}</td></tr>"
            for level, row in summary["levels"].items()]
    rows.append(f"<tr><th>all</th><th>{summary['episodes']}</th><th>{summary['scored']}</th>"
                f"<th>{summary['correct']:.4g}</th><th>{_pct(summary['accuracy'])}</th>"
                f"<th>{summary['infra_errors']['total']}</th></tr>")
    return f"<table class='levels'>{header}{''.join(rows)}</table>"


def write_html(path: str | os.PathLike[str], summary: dict[str, Any], records: Sequence[EpisodeRecord],
               title: str = "ToolR1 evaluation") -> None:
    """Write the static report page (see the module docstring)."""
    infra, tokens = summary["infra_errors"], summary["tokens"]
    facts = {
        "infra errors (left out of accuracy)": f"{infra['total']} ({_infra_kinds(infra)})",
        "execution errors (share of code steps)": _pct(summary["exec_error_rate"]),
        "format errors (share of steps)": _pct(summary["format_error_rate"]),
        "answered": _pct(summary["answered_rate"]),
        "mean turns": f"{summary['mean_turns']:.2f}",
        "tokens in / out": f"{tokens['prompt']} / {tokens['completion']}",
        "empty completions": summary["empty_completions"],
        "mean seconds per episode": f"{summary['mean_episode_seconds']:.2f}",
    }
    facts_html = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in facts.items())
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_esc(title)}</h1><h2>Accuracy per level</h2>{_levels_html(summary)}"
        f"<table>{facts_html}</table><h2>Episodes ({len(records)})</h2>"
        + "".join(_episode_html(r) for r in records)
        + "</body></html>\n"
    )
    Path(path).write_text(page, encoding="utf-8")
