"""Reading task files: rows with typed, located field access; JSONL and parquet readers; our own format.

Every problem raises :class:`TaskFileError` naming the file, the line (JSONL) or row (parquet, counted
from 1) and the field, for example ``data/metadata.jsonl, line 7, field 'Level': must be 1, 2 or 3, got 4``.

Our own format (:func:`load_task_file`) has one JSON object per line with the fields of
:class:`~toolr1_env.tasks.Task`: ``task_id``, ``question``, ``answer`` (required), ``level`` (0-3,
default 1), ``files`` (paths relative to the JSONL file's folder), ``reference_solution``, ``scored``
(default true) and ``metadata``. Unknown keys are errors there, so a misspelt field cannot pass unnoticed.
Blank lines are skipped. GAIA's own layouts are read by :mod:`toolr1_env.gaia`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from toolr1_env.tasks import LEVELS, Task, TaskSet

_TASK_FIELDS = ("task_id", "question", "answer", "level", "files", "reference_solution", "scored", "metadata")


class TaskFileError(ValueError):
    """A task file is malformed; the message names the file, and the line or row and field when known.

    ``line`` is the line number in a JSONL file, or the row number (from 1) in a parquet file; ``unit``
    says which (``"line"`` or ``"row"``).
    """

    def __init__(self, path: str | os.PathLike[str], message: str, line: int | None = None,
                 field: str | None = None, unit: str = "line"):
        self.path = os.fspath(path)
        self.line = line
        self.field = field
        self.unit = unit
        where = self.path
        if line is not None:
            where += f", {unit} {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


def read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
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


def read_parquet(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Return ``(row number from 1, row as a dict)`` for every row of a parquet file (structs become dicts)."""
    if not path.is_file():
        raise TaskFileError(path, "file not found" if not path.exists() else "not a regular file")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise TaskFileError(path, "reading parquet needs pyarrow: pip install pyarrow") from None
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a corrupt file
        raise TaskFileError(path, f"not a readable parquet file ({type(exc).__name__}: {exc})") from None
    if not rows:
        raise TaskFileError(path, "contains no tasks (the file is empty)")
    return list(enumerate(rows, 1))


def read_rows(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], str]:
    """The rows of a ``.parquet`` or JSONL file and the unit their numbers count (``"row"``/``"line"``)."""
    if path.suffix.lower() == ".parquet":
        return read_parquet(path), "row"
    return read_jsonl(path), "line"


class Row:
    """Typed field access to one row, raising errors that name the file, line (or row) and field."""

    def __init__(self, path: Path, lineno: int, obj: dict[str, Any], unit: str = "line"):
        self.path, self.lineno, self.obj, self.unit = path, lineno, obj, unit

    def error(self, field: str | None, message: str) -> TaskFileError:
        """An error located at this row (and ``field``, when given)."""
        return TaskFileError(self.path, message, self.lineno, field, self.unit)

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
            raise self.error(field, f"must be {expected}, got {json_type(value)} {value!r}{hint}")
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


_JSON_KIND = {str: "a string", int: "an integer", dict: "an object", list: "a list", bool: "a boolean"}


def json_type(value: Any) -> str:
    """The JSON name of a value's type (``"integer"``, ``"null"``, ...), for error messages."""
    kinds = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "object"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def make_task(row: Row, seen: dict[str, int], **fields: Any) -> Task:
    """A :class:`Task` from a row's fields; duplicate ids and invalid values raise errors located at ``row``."""
    task_id = fields["task_id"]
    if task_id in seen:
        raise row.error("task_id", f"duplicate task_id {task_id!r} (first seen on {row.unit} {seen[task_id]})")
    try:
        task = Task(**fields)
    except (TypeError, ValueError) as exc:
        raise row.error(None, f"invalid task: {exc}") from None
    seen[task_id] = row.lineno
    return task


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
    for lineno, obj in read_jsonl(path):
        row = Row(path, lineno, obj)
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
                raise row.error(f"files[{i}]", f"must be a string path, got {json_type(rel)} {rel!r}")
            files.append(row.file(f"files[{i}]", rel, folder))
        solution = row.get("reference_solution", (str,), required=False)
        scored = row.get("scored", (bool,), required=False, default=True)
        metadata: Mapping[str, Any] = row.get("metadata", (dict,), required=False, default={})
        tasks.append(
            make_task(
                row,
                seen,
                task_id=task_id,
                question=question,
                answer=answer,
                level=level,
                files=files,
                reference_solution=solution,
                scored=scored,
                metadata=metadata,
            )
        )
    return TaskSet(name=str(path), tasks=tasks, tools=tuple(tools))
