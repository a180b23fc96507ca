"""The records an evaluation writes: one :class:`EpisodeRecord` per episode, one :class:`TurnRecord` per step.

``trajectories.jsonl`` holds one record per line, appended as each episode ends (:func:`append_record`),
so a killed evaluation loses only the episodes in flight. :func:`load_records` keeps the *last* record of
each task and repeat (a re-run after an infrastructure error supersedes the failed one) and skips a line cut short
by a crash.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
import os
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toolr1_env.parsing import extract_code

log = logging.getLogger(__name__)

_FIRST_CODE = re.compile(r"```|<code>")


def tools_called(code: str, tool_names: Collection[str]) -> list[str]:
    """The names of ``tool_names`` that ``code`` calls, in order of first call (unparsable code: none)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return []
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)]
    calls.sort(key=lambda node: (node.lineno, node.col_offset))
    return list(dict.fromkeys(node.func.id for node in calls if node.func.id in tool_names))  # type: ignore[attr-defined]


def attachment_type(path: str) -> str:
    """The attachment type of a task file, as GAIA names them: its lower-case extension (``"xlsx"``)."""
    return Path(path).suffix.lower().lstrip(".") or "no extension"


@dataclass
class TurnRecord:
    """One step: the agent's action (split into thought and code for reading) and the env's answer.

    Args:
        action: the whole action text the agent returned.
        thought: the text before the first code block (empty for raw code).
        code: the code the env ran (``toolr1_env.parsing.extract_code``), empty when none was found.
        observation: the env's observation (on the last turn: the final step's output).
        error_type: the error of this step (``"FormatError"`` when there was no code), or None.
        tools: the env's tools the code calls (``web_search``, ``inspect_file``, ``final_answer``...), in order.
    """

    action: str
    thought: str
    code: str
    observation: str
    error_type: str | None = None
    tools: list[str] = field(default_factory=list)

    @classmethod
    def from_step(cls, action: str, observation: str, error_type: str | None,
                  tool_names: Collection[str] = ()) -> TurnRecord:
        """Split ``action`` into thought and code; find the calls to ``tool_names`` in the code."""
        code = extract_code(action) or ""
        match = _FIRST_CODE.search(action)
        thought = action[: match.start()].strip() if match else ("" if code else action.strip())
        return cls(action, thought, code, observation, error_type, tools_called(code, tool_names))


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
        infra_error: why the episode could not be scored (None when it was); ``infra_kind`` is the part
            that failed: ``"agent"``, ``"judge"``, ``"sandbox"``, ``"web"``, ``"vision"``, ``"transcription"``.
        wall_seconds: from the episode's reset to its end.
        attachments: the types of the task's attached files (``["xlsx"]``; empty: none).
        has_ground_truth: False for tasks whose answer is withheld (GAIA's test split): such episodes are
            reported as unscored, never as wrong.
        repeat: which of the ``--repeats`` runs of the task this is (0-based; 0 without repeats).
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
    attachments: list[str] = field(default_factory=list)
    has_ground_truth: bool = True
    repeat: int = 0

    @property
    def scored(self) -> bool:
        """The episode counts towards accuracy: it has a ground truth and no infrastructure error."""
        return self.infra_error is None and self.has_ground_truth

    @property
    def outcome(self) -> str:
        """``"correct"``, ``"partial"``, ``"wrong"``, ``"infra error"`` or ``"unscored"`` (no ground truth)."""
        if self.infra_error is not None:
            return "infra error"
        if not self.has_ground_truth:
            return "unscored"
        return "correct" if self.correct >= 1.0 else ("wrong" if self.correct <= 0 else "partial")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpisodeRecord:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["turns"] = [TurnRecord(**t) for t in data.get("turns", [])]
        return cls(**data)


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
    """Read ``trajectories.jsonl``: the last record per (task, repeat), in first-seen order; broken lines skipped."""
    if not os.path.exists(path):
        return []
    latest: dict[tuple[str, int], EpisodeRecord] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = EpisodeRecord.from_dict(json.loads(line))
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("%s, line %d: skipping unreadable record (%s)", path, lineno, exc)
                continue
            latest[(record.task_id, record.repeat)] = record
    return list(latest.values())


