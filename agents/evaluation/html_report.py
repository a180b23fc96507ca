"""``report.html``: one self-contained page to browse an evaluation (inline CSS and script, no external asset).

What a person can do on it: read the accuracy per level and per attachment type; filter the episodes by
outcome (correct, partial, wrong, infra error, unscored), level, attachment type and tool used; search by
task id or any text of the episode (question, answers, code, observations); open an episode to read each
turn: the thought, the tool calls, the code and the observation.

Safety: every piece of model and task text is HTML-escaped, and a Content-Security-Policy allows only
the page's own script (by its SHA-256 hash), so a hostile answer such as ``<script>...</script>`` shows as
text and could not run even if it slipped through. Filtering works on ``data-*`` attributes written
here; the script reads no episode text as HTML.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agents.evaluation.metrics import NO_ATTACHMENT, infra_kinds_text, percent
from agents.evaluation.records import EpisodeRecord
from agents.evaluation.repeats import format_repeats

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1150px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.3em .7em;text-align:right}
th{background:#eee}pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap;word-break:break-word;margin:.3em 0}
details{border:1px solid #ddd;border-radius:4px;margin:.4em 0;padding:.3em .6em}summary{cursor:pointer}
.ok{color:#16701c}.bad{color:#b00020}.infra{color:#a15c00}.unscored{color:#555}
.turn{border-left:3px solid #ccd;padding-left:.8em;margin:.6em 0}
.label{font-weight:600;font-size:.9em;color:#555}
.tool{background:#e8eefc;border-radius:3px;padding:0 .3em;margin:0 .15em}
#filters{position:sticky;top:0;background:#fff;padding:.6em 0;border-bottom:1px solid #ddd;display:flex;gap:.8em;
flex-wrap:wrap;align-items:center}#filters label{font-size:.9em}#count{font-weight:600}
"""

# Filters by data-* attributes; text search over each episode's rendered text (textContent, never HTML).
_SCRIPT = """
(function(){
  var episodes = Array.prototype.slice.call(document.querySelectorAll('details.episode'));
  var controls = ['outcome','level','attachment','tool'].map(function(k){return document.getElementById('f-'+k);});
  var search = document.getElementById('f-search');
  var count = document.getElementById('count');
  function matches(ep){
    var o = controls[0].value, l = controls[1].value, a = controls[2].value, t = controls[3].value;
    if (o && ep.dataset.outcome !== o) return false;
    if (l && ep.dataset.level !== l) return false;
    if (a && (' ' + ep.dataset.attachments + ' ').indexOf(' ' + a + ' ') < 0) return false;
    if (t && (' ' + ep.dataset.tools + ' ').indexOf(' ' + t + ' ') < 0) return false;
    var q = search.value.trim().toLowerCase();
    return !q || ep.textContent.toLowerCase().indexOf(q) >= 0;
  }
  function apply(){
    var shown = 0;
    episodes.forEach(function(ep){ var ok = matches(ep); ep.hidden = !ok; if (ok) shown++; });
    count.textContent = 'showing ' + shown + ' of ' + episodes.length + ' episodes';
  }
  controls.concat([search]).forEach(function(c){ c.addEventListener('input', apply); });
  apply();
})();
"""
_SCRIPT_HASH = base64.b64encode(hashlib.sha256(_SCRIPT.encode()).digest()).decode()
_MAX_SHOWN = 20000  # characters of one text block shown in the page (the JSONL keeps everything)
OUTCOMES = ("correct", "partial", "wrong", "infra error", "unscored")


def _esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _pre(text: str) -> str:
    shown = text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + f"\n... [{len(text) - _MAX_SHOWN} more characters]"
    return f"<pre>{_esc(shown)}</pre>"


def _verdict(record: EpisodeRecord) -> tuple[str, str]:
    outcome = record.outcome
    if outcome == "infra error":
        return "infra", f"infra error ({record.infra_kind})"
    if outcome == "partial":
        return "ok", f"partial {record.correct:.2f}"
    return {"correct": "ok", "wrong": "bad", "unscored": "unscored"}[outcome], outcome


def _tools_html(tools: Sequence[str]) -> str:
    return "".join(f"<span class='tool'>{_esc(t)}</span>" for t in tools) or "none"


def _episode_html(record: EpisodeRecord) -> str:
    css, verdict = _verdict(record)
    tools = sorted({t for turn in record.turns for t in turn.tools})
    attachments = sorted(set(record.attachments)) or [NO_ATTACHMENT]
    data = (f"data-outcome='{_esc(record.outcome)}' data-level='{record.level}' "
            f"data-attachments='{_esc(' '.join(attachments))}' data-tools='{_esc(' '.join(tools))}'")
    truth = "withheld" if not record.has_ground_truth else record.ground_truth
    head = (f"<summary><span class='{css}'>{_esc(verdict)}</span> &middot; {_esc(record.task_id)} &middot; "
            f"level {record.level} &middot; {_esc(', '.join(attachments))} &middot; answer "
            f"{_esc(record.final_answer)} &middot; truth {_esc(truth)} &middot; {len(record.turns)} turn(s)</summary>")
    body = [f"<div class='label'>Question</div>{_pre(record.question)}"]
    if record.infra_error:
        body.append(f"<div class='label infra'>Infrastructure error ({_esc(record.infra_kind)})</div>"
                    f"{_pre(record.infra_error)}")
    for i, turn in enumerate(record.turns, 1):
        error = f" &middot; <span class='bad'>{_esc(turn.error_type)}</span>" if turn.error_type else ""
        parts = [f"<div class='label'>Step {i}{error} &middot; tool calls: {_tools_html(turn.tools)}</div>"]
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
    return f"<details class='episode' {data}>{head}{''.join(body)}</details>"


def _accuracy_table(first: str, rows: dict[str, dict[str, Any]], total: dict[str, Any] | None = None) -> str:
    header = "<tr>" + "".join(f"<th>{h}</th>" for h in (first, "tasks", "scored", "correct", "accuracy",
                                                          "infra errors", "unscored")) + "</tr>"
    body = [f"<tr><td>{_esc(key)}</td><td>{row['tasks']}</td><td>{row['scored']}</td><td>{row['correct']:.4g}</td>"
            f"<td>{percent(row['accuracy'])}</td><td>{row['infra_errors']}</td><td>{row.get('unscored', 0)}</td></tr>"
            for key, row in rows.items()]
    if total is not None:
        body.append(f"<tr><th>all</th><th>{total['episodes']}</th><th>{total['scored']}</th>"
                    f"<th>{total['correct']:.4g}</th><th>{percent(total['accuracy'])}</th>"
                    f"<th>{total['infra_errors']['total']}</th><th>{total.get('unscored', 0)}</th></tr>")
    return f"<table class='accuracy'>{header}{''.join(body)}</table>"


def _select(name: str, label: str, values: Sequence[str]) -> str:
    options = "".join(f"<option value='{_esc(v)}'>{_esc(v)}</option>" for v in values)
    return f"<label>{label} <select id='f-{name}'><option value=''>all</option>{options}</select></label>"


def protocol_facts(summary: dict[str, Any]) -> dict[str, str]:
    """The subset, the judge and the repeated-run scores (avg@k, pass@k, 95% intervals), when the summary has them."""
    facts: dict[str, str] = {}
    subset = summary.get("subset")
    if subset:
        facts["subset"] = f"{subset['name']} ({subset['tasks']} tasks)" + (
            f", ids from {subset['task_ids']}" if subset.get("task_ids") else "")
    judge = summary.get("judge")
    if judge:
        sha = judge.get("prompt_sha256", "")[:12]
        facts["judge"] = (judge.get("scorer", "exact") if judge["mode"] == "exact"
                          else f"LLM {judge['model']} at {judge['base_url']} (prompt sha256 {sha})")
    if summary.get("accuracy_ci95"):
        low, high = summary["accuracy_ci95"]
        facts["accuracy 95% interval"] = f"[{percent(low)}, {percent(high)}]"
    line = format_repeats(summary)
    if line and summary["repeats"]["k"] > 1:
        facts[f"repeats (k={summary['repeats']['k']})"] = line
    return facts


def write_html(path: str | os.PathLike[str], summary: dict[str, Any], records: Sequence[EpisodeRecord],
               title: str = "ToolR1 evaluation") -> None:
    """Write the report page (see the module docstring)."""
    infra, tokens = summary["infra_errors"], summary["tokens"]
    facts = {
        "infra errors (left out of accuracy)": f"{infra['total']} ({infra_kinds_text(infra)})",
        "unscored (no ground truth)": summary.get("unscored", 0),
        "execution errors (share of code steps)": percent(summary["exec_error_rate"]),
        "format errors (share of steps)": percent(summary["format_error_rate"]),
        "answered": percent(summary["answered_rate"]),
        "mean turns": f"{summary['mean_turns']:.2f}",
        "tool calls": ", ".join(f"{k} {v}" for k, v in summary.get("tool_calls", {}).items()) or "none",
        "tokens in / out": f"{tokens['prompt']} / {tokens['completion']}",
        "empty completions": summary["empty_completions"],
        "mean seconds per episode": f"{summary['mean_episode_seconds']:.2f}",
    }
    facts.update(protocol_facts(summary))
    facts_html = "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in facts.items())
    levels = sorted({str(r.level) for r in records})
    kinds = sorted({a for r in records for a in (r.attachments or [NO_ATTACHMENT])})
    tools = sorted({t for r in records for turn in r.turns for t in turn.tools})
    filters = ("<div id='filters'>" + _select("outcome", "outcome", OUTCOMES) + _select("level", "level", levels)
               + _select("attachment", "attachment", kinds) + _select("tool", "tool used", tools)
               + "<label>search <input id='f-search' type='search' placeholder='task id or any text'></label>"
               + f"<span id='count'>{len(records)} episodes</span></div>")
    csp = f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{_SCRIPT_HASH}'"
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{csp}\">"
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_esc(title)}</h1><h2>Accuracy per level</h2>{_accuracy_table('level', summary['levels'], summary)}"
        f"<h2>Accuracy per attachment type</h2>{_accuracy_table('attachment', summary.get('attachments', {}))}"
        f"<table>{facts_html}</table><h2>Episodes</h2>{filters}"
        + "".join(_episode_html(r) for r in records)
        + f"<script>{_SCRIPT}</script></body></html>\n"
    )
    Path(path).write_text(page, encoding="utf-8")
