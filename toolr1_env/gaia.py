"""Load a real GAIA copy (the dataset is gated: users bring their own, it is never bundled).

Both layouts in circulation are read:

* **Today's** (the Hub since October 2025)::

      GAIA/                              # the repository root
          2023/validation/metadata.parquet           # all levels
          2023/validation/metadata.level1.parquet    # one level (also level2, level3)
          2023/validation/<task_id>.xlsx ...         # attachments beside the metadata
          2023/test/...                              # the same, answers withheld ("?")

  Columns ``task_id``, ``Question``, ``Level`` (a string, ``"1"``), ``Final answer``, ``file_name``,
  ``file_path`` (relative to the repository root, ``2023/validation/<id>.xlsx``) and ``Annotator
  Metadata`` (a struct).
* **The old one**: ``metadata.jsonl`` beside the attachments, ``Level`` an int, ``file_name`` only.

:func:`load_gaia` takes a split folder, a metadata file, or the repository root (or its ``2023``
folder) together with ``split="validation"`` or ``"test"``; ``level=1`` reads ``metadata.level1.parquet``
(or keeps level 1 of the full metadata). An attachment is found from ``file_path`` (tried against the
split folder's ancestors, so a whole repository and a lone split folder both work) or from ``file_name``
beside the metadata. Test-split rows (``Final answer`` ``"?"``) load as unscored tasks
(``Task.scored=False``) for submission-only runs. Every bad row raises
:class:`~toolr1_env.task_files.TaskFileError` naming the file, the row (or line) and the field; a missing
attachment names the path it looked for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from toolr1_env.task_files import Row, TaskFileError, load_task_file, make_task, read_rows
from toolr1_env.tasks import Task, TaskSet

GAIA_LEVELS = (1, 2, 3)
#: Metadata files of a split folder, in order of preference.
METADATA_FILES = ("metadata.parquet", "metadata.jsonl")
#: The ground truth GAIA publishes for its test split.
WITHHELD_ANSWER = "?"
#: The year folder of today's layout.
YEAR_FOLDER = "2023"

__all__ = ["GAIA_LEVELS", "METADATA_FILES", "TaskFileError", "find_metadata", "load_gaia", "load_gaia_folder",
           "load_task_file"]


def _level_file(folder: Path, level: int) -> Path:
    return folder / f"metadata.level{level}.parquet"


def _metadata_in(folder: Path, level: int | None) -> Path | None:
    if level is not None and _level_file(folder, level).is_file():
        return _level_file(folder, level)
    return next((folder / name for name in METADATA_FILES if (folder / name).is_file()), None)


def _splits_under(root: Path) -> list[str]:
    found = []
    for base in (root, root / YEAR_FOLDER):
        if base.is_dir():
            found += [p.name for p in sorted(base.iterdir()) if p.is_dir() and _metadata_in(p, None)]
    return found


def find_metadata(path: str | os.PathLike[str], split: str | None = None, level: int | None = None) -> Path:
    """The metadata file to read for ``path`` (file, split folder or root), ``split`` and ``level``.

    Raises:
        FileNotFoundError: nothing matches; the message lists the splits that were found.
        ValueError: ``level`` is not 1, 2 or 3.
    """
    if level is not None and (isinstance(level, bool) or level not in GAIA_LEVELS):
        raise ValueError(f"level must be 1, 2 or 3, got {level!r}")
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"GAIA folder not found: {str(path)!r}")
    if split is not None:
        for folder in (path / split, path / YEAR_FOLDER / split, path):
            metadata = _metadata_in(folder, level)
            if metadata is not None and (folder != path or path.name == split):
                return metadata
        raise FileNotFoundError(f"GAIA folder {str(path)!r} has no split {split!r} (looked in {split}/ and "
                                f"{YEAR_FOLDER}/{split}/; splits found: {_splits_under(path) or 'none'})")
    metadata = _metadata_in(path, level)
    if metadata is not None:
        return metadata
    splits = _splits_under(path)
    if splits:
        raise FileNotFoundError(f"{str(path)!r} is a GAIA dataset root: choose a split with split=..., one of "
                                f"{sorted(set(splits))}")
    raise FileNotFoundError(f"GAIA folder {str(path)!r} has no metadata.jsonl or metadata.parquet (and no split "
                            "folders such as validation/ or 2023/validation/)")


def _level(row: Row) -> int:
    level = row.get("Level", (int, str), required=True)
    if isinstance(level, str):
        if not level.strip().isdigit():
            raise row.error("Level", f"must be 1, 2 or 3, got {level!r}")
        level = int(level)
    if level not in GAIA_LEVELS:
        raise row.error("Level", f"must be 1, 2 or 3, got {level!r}")
    return level


def _attachment(row: Row, folder: Path) -> tuple[str, ...]:
    """The attached file's absolute path (symlinks kept), from ``file_path`` or ``file_name``."""
    if "file_name" not in row.obj and "file_path" not in row.obj:
        raise row.error("file_name", "missing required field")
    name = row.get("file_name", (str,), required=False, default="")
    rel = row.get("file_path", (str,), required=False, default="")
    if not name.strip() and not rel.strip():
        return ()
    if name and os.path.isabs(name):
        raise row.error("file_name", f"file path must be relative to the folder {str(folder)!r}, got {name!r}")
    if not rel.strip():
        return (row.file("file_name", name, folder),)
    candidates = [] if os.path.isabs(rel) else [base / rel for base in (folder, *list(folder.parents)[:3])]
    candidates += [folder / os.path.basename(rel)] + ([folder / name] if name else [])
    for candidate in candidates:
        if candidate.is_file():
            return (os.path.abspath(candidate),)
    looked = ", ".join(repr(str(c)) for c in dict.fromkeys(candidates))
    raise row.error("file_path", f"attached file {rel!r} not found (looked for {looked})")


def _task(row: Row, seen: dict[str, int], folder: Path) -> Task:
    task_id = row.get("task_id", (str,), required=True)
    question = row.get("Question", (str,), required=True)
    level = _level(row)
    answer = row.get("Final answer", (str,), required=True)
    files = _attachment(row, folder)
    annotator = row.get("Annotator Metadata", (dict,), required=False)
    meta: dict[str, Any] = {"source": "gaia", "file_name": row.obj.get("file_name") or ""}
    if row.obj.get("file_path"):
        meta["file_path"] = row.obj["file_path"]
    if annotator is not None:
        meta["annotator_metadata"] = annotator
    scored = answer.strip() != WITHHELD_ANSWER
    return make_task(row, seen, task_id=task_id, question=question, answer=answer, level=level, files=files,
                     metadata=meta, scored=scored)


def load_gaia(path: str | os.PathLike[str], split: str | None = None, level: int | None = None, *,
              tools: Sequence[Callable[..., Any]] = ()) -> TaskSet:
    """Load GAIA tasks as a finite :class:`TaskSet` from either layout (see the module docstring).

    Args:
        path: a split folder (``.../2023/validation``), a metadata file (``metadata.parquet``,
            ``metadata.level2.parquet``, ``metadata.jsonl``), or the dataset root (or ``2023``) with ``split``.
        split: ``"validation"`` or ``"test"`` (any split folder name), needed when ``path`` is a root.
        level: 1, 2 or 3 to load one level only.
        tools: tools offered to the agent in every episode of this set.

    Raises:
        FileNotFoundError: no metadata for this path, split and level.
        TaskFileError: a row is malformed or its attachment is missing (file, row and field named).
    """
    metadata = find_metadata(path, split, level)
    folder = metadata.parent
    rows, unit = read_rows(metadata)
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for number, obj in rows:
        row = Row(metadata, number, obj, unit)
        task = _task(row, seen, folder)
        if level is None or task.level == level:
            tasks.append(task)
    if not tasks:
        raise TaskFileError(metadata, f"has no tasks of level {level}")
    name = str(folder) if level is None else f"{folder}:level{level}"
    return TaskSet(name=name, tasks=tasks, tools=tuple(tools))


def load_gaia_folder(path: str | os.PathLike[str], *, tools: Sequence[Callable[..., Any]] = ()) -> TaskSet:
    """Load one GAIA split folder or metadata file (either layout); :func:`load_gaia` with no split."""
    return load_gaia(path, tools=tools)
