"""Loading a GAIA folder and our own task JSONL: good input, and every kind of bad input with a message
that names the file, line and field."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from toolr1_env.gaia import TaskFileError, load_gaia_folder, load_task_file
from toolr1_env.tasks import Task

_DROP = object()  # marks a field to leave out of a row


def gaia_row(**changes: Any) -> dict[str, Any]:
    row = {
        "task_id": "t1",
        "Question": "How many rows does the attached sheet have?",
        "Level": 1,
        "Final answer": "12",
        "file_name": "",
        "Annotator Metadata": {"Steps": "Open the file.", "Number of steps": "1"},
    }
    row.update(changes)
    return {k: v for k, v in row.items() if v is not _DROP}


def write_lines(path: Path, lines: list[Any]) -> Path:
    text = "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)
    path.write_text(text, encoding="utf-8")
    return path


def gaia_folder(tmp_path: Path, rows: list[Any], files: dict[str, str] | None = None) -> Path:
    folder = tmp_path / "validation"
    folder.mkdir()
    write_lines(folder / "metadata.jsonl", rows)
    for name, content in (files or {}).items():
        (folder / name).write_text(content)
    return folder


# ----------------------------------------------------------------------------- GAIA: good input


def test_load_gaia_folder(tmp_path: Path) -> None:
    folder = gaia_folder(
        tmp_path,
        [
            gaia_row(),
            "",  # blank lines are skipped
            gaia_row(task_id="t2", Level="2", file_name="sheet.xlsx", **{"Final answer": "Paris, Lyon"}),
            gaia_row(task_id="t3", Level=3, **{"Annotator Metadata": _DROP}),
        ],
        files={"sheet.xlsx": "fake spreadsheet"},
    )
    taskset = load_gaia_folder(folder)
    assert taskset.name == str(folder)
    assert len(taskset) == 3 and not taskset.is_generated
    t1, t2, t3 = taskset.tasks
    assert t1 == Task(
        task_id="t1",
        question="How many rows does the attached sheet have?",
        answer="12",
        level=1,
        files=(),
        metadata={
            "source": "gaia",
            "file_name": "",
            "annotator_metadata": {"Steps": "Open the file.", "Number of steps": "1"},
        },
    )
    assert t2.level == 2 and t2.answer == "Paris, Lyon"
    assert t2.files == (str(folder / "sheet.xlsx"),)
    assert os.path.isabs(t2.files[0])
    assert t3.level == 3 and "annotator_metadata" not in t3.metadata
    assert taskset.get("t2") is t2


def test_load_gaia_accepts_the_metadata_file_itself(tmp_path: Path) -> None:
    folder = gaia_folder(tmp_path, [gaia_row(file_name="a.txt")], files={"a.txt": "x"})
    taskset = load_gaia_folder(folder / "metadata.jsonl")
    assert taskset.tasks[0].files == (str(folder / "a.txt"),)


def test_load_gaia_keeps_symlinked_file_names(tmp_path: Path) -> None:
    # Hugging Face snapshots link attachments to hash-named blobs; the agent must see the real name.
    blob = tmp_path / "blobs" / "3f2a9c"
    blob.parent.mkdir()
    blob.write_text("data")
    folder = gaia_folder(tmp_path, [gaia_row(file_name="notes.txt")])
    (folder / "notes.txt").symlink_to(blob)
    (task,) = load_gaia_folder(folder).tasks
    assert os.path.basename(task.files[0]) == "notes.txt"


def test_load_gaia_with_bom_and_tools(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    folder.mkdir()
    (folder / "metadata.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(gaia_row()).encode() + b"\n")

    def search(query: str) -> str:
        return query

    taskset = load_gaia_folder(folder, tools=[search])
    assert taskset.tools == (search,)
    assert taskset.tasks[0].task_id == "t1"


# ----------------------------------------------------------------------------- GAIA: bad input


def expect_error(loader: Any, path: Path, line: int | None, field: str | None, message: str) -> TaskFileError:
    with pytest.raises(TaskFileError) as info:
        loader(path)
    error = info.value
    text = str(error)
    assert (error.line, error.field) == (line, field)
    if line is not None:
        assert f", line {line}" in text
    if field is not None:
        assert f"field {field!r}" in text
    assert re.search(message, text), text
    assert error.path in text
    return error


GAIA_BAD_ROWS = [
    # (second row, field, message pattern)
    ('{"task_id": "t2", "Question": "q"', None, "malformed JSON"),
    ("[1, 2, 3]", None, "expected a JSON object, got list"),
    (gaia_row(task_id="t2", Question=_DROP), "Question", "missing required field"),
    (gaia_row(task_id="t2", **{"Final answer": _DROP}), "Final answer", "missing required field"),
    (gaia_row(task_id="t2", file_name=_DROP), "file_name", "missing required field"),
    (gaia_row(task_id=_DROP), "task_id", "missing required field"),
    (gaia_row(task_id=7), "task_id", "must be a string, got integer 7"),
    (gaia_row(task_id="t2", Question=["a"]), "Question", "must be a string, got list"),
    (gaia_row(task_id="t2", **{"Final answer": 12}), "Final answer", "must be a string.*write it in quotes"),
    (gaia_row(task_id="t2", Level=4), "Level", "must be 1, 2 or 3, got 4"),
    (gaia_row(task_id="t2", Level=0), "Level", "must be 1, 2 or 3, got 0"),
    (gaia_row(task_id="t2", Level="hard"), "Level", "must be 1, 2 or 3, got 'hard'"),
    (gaia_row(task_id="t2", Level=True), "Level", "must be an integer or a string, got boolean"),
    (gaia_row(task_id="t2", Level=1.5), "Level", "got number 1.5"),
    (gaia_row(task_id="t2", Level=None), "Level", "got null"),
    (gaia_row(task_id="t2", file_name="missing.pdf"), "file_name", "attached file 'missing.pdf' not found"),
    (gaia_row(task_id="t2", file_name="/etc/hostname"), "file_name", "must be relative"),
    (gaia_row(task_id="t2", **{"Annotator Metadata": "x"}), "Annotator Metadata", "must be an object"),
    (gaia_row(), "task_id", "duplicate task_id 't1' \\(first seen on line 1\\)"),
    (gaia_row(task_id="t2", Question="   "), None, "question must not be empty"),
]


@pytest.mark.parametrize(("row", "field", "message"), GAIA_BAD_ROWS)
def test_gaia_bad_row(tmp_path: Path, row: Any, field: str | None, message: str) -> None:
    folder = gaia_folder(tmp_path, [gaia_row(), row])
    error = expect_error(load_gaia_folder, folder, 2, field, message)
    assert error.path == str(folder / "metadata.jsonl")


def test_gaia_error_line_counts_blank_lines(tmp_path: Path) -> None:
    folder = gaia_folder(tmp_path, [gaia_row(), "", "", gaia_row(task_id="t2", Level=9)])
    expect_error(load_gaia_folder, folder, 4, "Level", "got 9")


def test_gaia_empty_file(tmp_path: Path) -> None:
    folder = gaia_folder(tmp_path, ["", "  "])
    expect_error(load_gaia_folder, folder, None, None, "contains no tasks")


def test_gaia_invalid_utf8(tmp_path: Path) -> None:
    folder = tmp_path / "g"
    folder.mkdir()
    (folder / "metadata.jsonl").write_bytes(
        json.dumps(gaia_row()).encode() + b"\n" + b'{"task_id": "\xff"}\n'
    )
    expect_error(load_gaia_folder, folder, 2, None, "not valid UTF-8")


def test_gaia_missing_folder_or_metadata(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="GAIA folder not found"):
        load_gaia_folder(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="has no metadata.jsonl"):
        load_gaia_folder(tmp_path)


# ----------------------------------------------------------------------------- own task format


def task_row(**changes: Any) -> dict[str, Any]:
    row = {"task_id": "a", "question": "What is 2+2?", "answer": "4"}
    row.update(changes)
    return {k: v for k, v in row.items() if v is not _DROP}


def test_load_task_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "table.csv").write_text("x\n1\n")
    path = write_lines(
        tmp_path / "tasks.jsonl",
        [
            task_row(),
            task_row(
                task_id="b",
                level=0,
                files=["data/table.csv"],
                reference_solution="final_answer('1')",
                metadata={"generator": "csv"},
            ),
            task_row(task_id="c", level=3, reference_solution=None, metadata=None),
        ],
    )
    taskset = load_task_file(path)
    assert taskset.name == str(path)
    a, b, c = taskset.tasks
    assert a == Task(task_id="a", question="What is 2+2?", answer="4", level=1)
    assert b.level == 0 and b.files == (str(tmp_path / "data" / "table.csv"),)
    assert b.reference_solution == "final_answer('1')" and b.metadata == {"generator": "csv"}
    assert c.level == 3 and c.reference_solution is None and c.metadata == {}


OWN_BAD_ROWS = [
    ("not json", None, "malformed JSON"),
    ('"a string"', None, "expected a JSON object, got str"),
    (task_row(task_id="b", anwser="4"), "anwser", "unknown field"),
    (task_row(task_id="b", question=_DROP), "question", "missing required field"),
    (task_row(task_id="b", answer=_DROP), "answer", "missing required field"),
    (task_row(task_id="b", answer=4), "answer", "must be a string, got integer 4 \\(write it in quotes\\)"),
    (task_row(task_id="b", level="1"), "level", "must be an integer, got string"),
    (task_row(task_id="b", level=5), "level", "must be one of \\(0, 1, 2, 3\\), got 5"),
    (task_row(task_id="b", level=False), "level", "got boolean"),
    (task_row(task_id="b", files="data.csv"), "files", "must be a list, got string"),
    (task_row(task_id="b", files=[3]), "files[0]", "must be a string path, got integer"),
    (task_row(task_id="b", files=["gone.csv"]), "files[0]", "attached file 'gone.csv' not found"),
    (task_row(task_id="b", files=[""]), "files[0]", "must not be empty"),
    (task_row(task_id="b", reference_solution=1), "reference_solution", "must be a string"),
    (task_row(task_id="b", metadata=[1]), "metadata", "must be an object, got list"),
    (task_row(task_id=""), None, "task_id must not be empty"),
    (task_row(), "task_id", "duplicate task_id 'a' \\(first seen on line 1\\)"),
]


@pytest.mark.parametrize(("row", "field", "message"), OWN_BAD_ROWS)
def test_task_file_bad_row(tmp_path: Path, row: Any, field: str | None, message: str) -> None:
    path = write_lines(tmp_path / "tasks.jsonl", [task_row(), row])
    expect_error(load_task_file, path, 2, field, message)


def test_task_file_duplicate_attachment_names(tmp_path: Path) -> None:
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "f.txt").write_text(sub)
    path = write_lines(tmp_path / "tasks.jsonl", [task_row(files=["x/f.txt", "y/f.txt"])])
    expect_error(load_task_file, path, 1, None, "distinct names")


def test_task_file_missing_or_empty(tmp_path: Path) -> None:
    expect_error(load_task_file, tmp_path / "none.jsonl", None, None, "file not found")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    expect_error(load_task_file, empty, None, None, "contains no tasks")
