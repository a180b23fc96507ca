"""Load task sets from disk: a real GAIA folder, or a JSONL file of our own :class:`Task` rows.

GAIA layout (the dataset is gated: users bring their own copy, it is never bundled)::

    2023/validation/
        metadata.jsonl        # one JSON object per line
        <file_name>           # attached files, beside metadata.jsonl

Each ``metadata.jsonl`` row holds ``task_id``, ``Question``, ``Level`` (1-3, an int or a digit string),
``Final answer`` and ``file_name`` (``""`` when the task has no attachment), and optionally
``Annotator Metadata`` (an object, kept in ``Task.metadata``). Other keys are ignored.

Our own format (:func:`load_task_file`) has one object per line with the fields of
:class:`~toolr1_env.tasks.Task`: ``task_id``, ``question``, ``answer`` (required), ``level`` (0-3,
default 1), ``files`` (paths relative to the JSONL file's folder), ``reference_solution`` and
``metadata``. Unknown keys are errors there, so a misspelt field cannot pass unnoticed.

Every problem raises :class:`TaskFileError` naming the file, the line and the field, for example
``data/metadata.jsonl, line 7, field 'Level': must be 1, 2 or 3, got 4``. Blank lines are skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from toolr1_env.tasks import LEVELS, Task, TaskSet

GAIA_METADATA = "metadata.jsonl"
GAIA_LEVELS = (1, 2, 3)
_TASK_FIELDS = ("task_id", "question", "answer", "level", "files", "reference_solution", "metadata")


class TaskFileError(ValueError):
    """A task file is malformed; the message names the file, and the line and field when known."""

    def __init__(
        self, path: str | os.PathLike[str], message: str, line: int | None = None, field: str | None = None
    ):
        self.path = os.fspath(path)
        self.line = line
        self.field = field
        where = self.path
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Return ``(line number, object)`` for every non-blank line, or raise :class:`TaskFileError`."""
    if not path.is_file():
        raise TaskFileError(path, "file not found" if not path.exists() else "not a regular file")
    rows = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            try:
                text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise TaskFileError(
                    path, f"not valid UTF-8 ({exc.reason} at byte {exc.start})", lineno
                ) from None
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                raise TaskFileError(path, f"malformed JSON: {exc.msg} (column {exc.colno})", lineno) from None
            if not isinstance(obj, dict):
                raise TaskFileError(path, f"expected a JSON object, got {type(obj).__name__}", lineno)
            rows.append((lineno, obj))
    if not rows:
        raise TaskFileError(path, "contains no tasks (the file is empty)")
    return rows


class _Row:
    """Typed field access to one JSON row, raising errors that name the file, line and field."""

    def __init__(self, path: Path, lineno: int, obj: dict[str, Any]):
        self.path, self.lineno, self.obj = path, lineno, obj

    def error(self, field: str | None, message: str) -> TaskFileError:
        """An error located at this row (and ``field``, when given)."""
        return TaskFileError(self.path, message, self.lineno, field)

    def get(self, field: str, kinds: tuple[type, ...], *, required: bool, default: Any = None) -> Any:
        """Return ``field``, type-checked; an absent or null optional field gives ``default``."""
        if field not in self.obj or (self.obj[field] is None and not required):
            if required:
                raise self.error(field, "missing required field")
            return default
        value = self.obj[field]
        # bool is a subclass of int in Python, but `true` is not a level.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            expected = " or ".join(_JSON_KIND[k] for k in kinds)
            hint = " (write it in quotes)" if kinds == (str,) and isinstance(value, (int, float)) else ""
            raise self.error(field, f"must be {expected}, got {_json_type(value)} {value!r}{hint}")
        return value

    def file(self, field: str, rel: str, folder: Path) -> str:
        """Return the absolute path of an attached file given relative to ``folder``, checking it exists.

        Symlinks are kept, not resolved: a Hugging Face snapshot links its files to hash-named blobs,
        and the agent is told the file's name.
        """
        if not rel.strip():
            raise self.error(field, "file path must not be empty")
        if os.path.isabs(rel):
            raise self.error(field, f"file path must be relative to the folder {str(folder)!r}, got {rel!r}")
        full = os.path.abspath(folder / rel)
        if not os.path.isfile(full):
            raise self.error(field, f"attached file {rel!r} not found (looked for {full!r})")
        return full


_JSON_KIND = {str: "a string", int: "an integer", dict: "an object", list: "a list"}


def _json_type(value: Any) -> str:
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _make_task(row: _Row, seen: dict[str, int], **fields: Any) -> Task:
    task_id = fields["task_id"]
    if task_id in seen:
        raise row.error("task_id", f"duplicate task_id {task_id!r} (first seen on line {seen[task_id]})")
    try:
        task = Task(**fields)
    except (TypeError, ValueError) as exc:
        raise row.error(None, f"invalid task: {exc}") from None
    seen[task_id] = row.lineno
    return task


def _gaia_level(row: _Row) -> int:
    level = row.get("Level", (int, str), required=True)
    if isinstance(level, str):
        if not level.strip().isdigit():
            raise row.error("Level", f"must be 1, 2 or 3, got {level!r}")
        level = int(level)
    if level not in GAIA_LEVELS:
        raise row.error("Level", f"must be 1, 2 or 3, got {level!r}")
    return level


def load_gaia_folder(path: str | os.PathLike[str], *, tools: Sequence[Callable[..., Any]] = ()) -> TaskSet:
    """Load a GAIA split folder (``metadata.jsonl`` plus attached files) as a finite :class:`TaskSet`.

    Args:
        path: the folder holding ``metadata.jsonl``, or that file itself.
        tools: tools offered to the agent in every episode of this set.

    Raises:
        FileNotFoundError: the folder or its ``metadata.jsonl`` does not exist.
        TaskFileError: a row is malformed (the message names the file, line and field).
    """
    folder = Path(path)
    if folder.is_file():
        metadata, folder = folder, folder.parent
    else:
        if not folder.is_dir():
            raise FileNotFoundError(f"GAIA folder not found: {str(folder)!r}")
        metadata = folder / GAIA_METADATA
        if not metadata.is_file():
            raise FileNotFoundError(f"GAIA folder {str(folder)!r} has no {GAIA_METADATA}")
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for lineno, obj in _read_jsonl(metadata):
        row = _Row(metadata, lineno, obj)
        task_id = row.get("task_id", (str,), required=True)
        question = row.get("Question", (str,), required=True)
        level = _gaia_level(row)
        answer = row.get("Final answer", (str,), required=True)
        file_name = row.get("file_name", (str,), required=True)
        annotator = row.get("Annotator Metadata", (dict,), required=False)
        files = (row.file("file_name", file_name, folder),) if file_name else ()
        meta: dict[str, Any] = {"source": "gaia", "file_name": file_name}
        if annotator is not None:
            meta["annotator_metadata"] = annotator
        tasks.append(
            _make_task(
                row,
                seen,
                task_id=task_id,
                question=question,
                answer=answer,
                level=level,
                files=files,
                metadata=meta,
            )
        )
    return TaskSet(name=str(folder), tasks=tasks, tools=tuple(tools))


def load_task_file(path: str | os.PathLike[str], *, tools: Sequence[Callable[..., Any]] = ()) -> TaskSet:
    """Load a JSONL file of our own task rows (the fields of :class:`Task`) as a finite :class:`TaskSet`.

    Args:
        path: the JSONL file; ``files`` entries are relative to its folder.
        tools: tools offered to the agent in every episode of this set.

    Raises:
        TaskFileError: the file is missing, empty or a row is malformed (naming the line and field).
    """
    path = Path(path)
    folder = path.parent
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for lineno, obj in _read_jsonl(path):
        row = _Row(path, lineno, obj)
        unknown = sorted(set(obj) - set(_TASK_FIELDS))
        if unknown:
            raise row.error(unknown[0], f"unknown field (known fields: {', '.join(_TASK_FIELDS)})")
        task_id = row.get("task_id", (str,), required=True)
        question = row.get("question", (str,), required=True)
        answer = row.get("answer", (str,), required=True)
        level = row.get("level", (int,), required=False, default=1)
        if level not in LEVELS:
            raise row.error("level", f"must be one of {LEVELS}, got {level!r}")
        files_rel = row.get("files", (list,), required=False, default=[])
        files = []
        for i, rel in enumerate(files_rel):
            if not isinstance(rel, str):
                raise row.error(f"files[{i}]", f"must be a string path, got {_json_type(rel)} {rel!r}")
            files.append(row.file(f"files[{i}]", rel, folder))
        solution = row.get("reference_solution", (str,), required=False)
        metadata: Mapping[str, Any] = row.get("metadata", (dict,), required=False, default={})
        tasks.append(
            _make_task(
                row,
                seen,
                task_id=task_id,
                question=question,
                answer=answer,
                level=level,
                files=files,
                reference_solution=solution,
                metadata=metadata,
            )
        )
    return TaskSet(name=str(path), tasks=tasks, tools=tuple(tools))
