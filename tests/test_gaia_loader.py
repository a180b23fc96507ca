"""Loading a GAIA folder and our own task JSONL: good input, and every kind of bad input with a message
that names the file, line and field."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from toolr1_env.gaia import TaskFileError, load_gaia, load_gaia_folder, load_task_file
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
        assert f", {error.unit} {line}" in text
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


# ----------------------------------------------------------------------------- GAIA today: parquet layout


def hub_row(task_id: str, level: str = "1", answer: str = "12", attach: bool = True, split: str = "validation",
            **changes: Any) -> dict[str, Any]:
    row = {
        "task_id": task_id,
        "Question": f"Question of {task_id}?",
        "Level": level,
        "Final answer": answer,
        "file_name": f"{task_id}.txt" if attach else "",
        "file_path": f"2023/{split}/{task_id}.txt" if attach else "",
        "Annotator Metadata": {"Steps": "Look.", "Number of steps": "1", "How long did this take?": "1 minute",
                               "Tools": "None", "Number of tools": "0"},
    }
    row.update(changes)
    return row


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def hub_copy(tmp_path: Path) -> Path:
    """A repository root as the Hub publishes GAIA today: 2023/{validation,test} with level files."""
    root = tmp_path / "GAIA"
    val = root / "2023" / "validation"
    rows = [hub_row("v1", "1"), hub_row("v2", "2", answer="Paris, Lyon"), hub_row("v3", "3", attach=False)]
    write_parquet(val / "metadata.parquet", rows)
    for level in ("1", "2"):  # no level-3 file: level 3 is filtered from metadata.parquet
        write_parquet(val / f"metadata.level{level}.parquet", [r for r in rows if r["Level"] == level])
    for row in rows:
        if row["file_name"]:
            (val / row["file_name"]).write_text(f"attachment of {row['task_id']}")
    test = root / "2023" / "test"
    write_parquet(test / "metadata.parquet", [hub_row("t1", answer="?", split="test"),
                                              hub_row("t2", "2", answer="?", attach=False, split="test")])
    (test / "t1.txt").write_text("a test attachment")
    return root


def test_load_gaia_today_layout_from_every_entry_point(tmp_path: Path) -> None:
    root = hub_copy(tmp_path)
    val = root / "2023" / "validation"
    sets = [load_gaia(root, "validation"), load_gaia(root / "2023", "validation"), load_gaia(val),
            load_gaia(val / "metadata.parquet"), load_gaia(val, "validation")]
    for taskset in sets:
        assert [t.task_id for t in taskset.tasks] == ["v1", "v2", "v3"]
        assert [t.files for t in taskset.tasks] == [(str(val / "v1.txt"),), (str(val / "v2.txt"),), ()]
    v1, v2, v3 = sets[0].tasks
    assert (v1.level, v2.level, v3.level) == (1, 2, 3) and v2.answer == "Paris, Lyon"
    assert v1.scored and v1.metadata["file_path"] == "2023/validation/v1.txt"
    assert v1.metadata["annotator_metadata"]["How long did this take?"] == "1 minute"


def test_load_gaia_levels(tmp_path: Path) -> None:
    root = hub_copy(tmp_path)
    assert [t.task_id for t in load_gaia(root, "validation", level=2).tasks] == ["v2"]
    (root / "2023" / "validation" / "metadata.level1.parquet").unlink()
    write_parquet(root / "2023" / "validation" / "metadata.level1.parquet", [hub_row("only-in-level-file")])
    (root / "2023" / "validation" / "only-in-level-file.txt").write_text("x")
    assert [t.task_id for t in load_gaia(root, "validation", level=1).tasks] == ["only-in-level-file"]
    assert [t.task_id for t in load_gaia(root, "validation", level=3).tasks] == ["v3"]  # filtered
    with pytest.raises(ValueError, match="level must be 1, 2 or 3"):
        load_gaia(root, "validation", level=4)


def test_load_gaia_test_split_is_unscored(tmp_path: Path) -> None:
    taskset = load_gaia(hub_copy(tmp_path), "test")
    assert [(t.task_id, t.answer, t.scored) for t in taskset.tasks] == [("t1", "?", False), ("t2", "?", False)]


def test_lone_split_folder_resolves_file_path_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "my-copy"
    write_parquet(folder / "metadata.parquet", [hub_row("v1")])
    (folder / "v1.txt").write_text("x")
    (task,) = load_gaia(folder).tasks
    assert task.files == (str(folder / "v1.txt"),)


def test_pandas_written_parquet_and_null_files(tmp_path: Path) -> None:
    import pandas as pd

    folder = tmp_path / "validation"
    folder.mkdir()
    rows = [hub_row("p1", attach=False, file_name=None, file_path=None), hub_row("p2", level="2", attach=False)]
    pd.DataFrame(rows).to_parquet(folder / "metadata.parquet")
    p1, p2 = load_gaia(folder).tasks
    assert p1.files == () and p2.level == 2


def test_root_without_split_or_with_a_wrong_one(tmp_path: Path) -> None:
    root = hub_copy(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"dataset root: choose a split with split=\.\.\., one of \['test', "
                                                r"'validation'\]"):
        load_gaia(root / "2023")
    with pytest.raises(FileNotFoundError, match="has no split 'dev'.*splits found: \\['test', 'validation'\\]"):
        load_gaia(root, "dev")


PARQUET_BAD_ROWS = [
    (hub_row("b", level="4"), "Level", "must be 1, 2 or 3, got 4"),
    (hub_row("b", level="one"), "Level", "must be 1, 2 or 3, got 'one'"),
    (hub_row("b", **{"Final answer": None}), "Final answer", "got null"),
    (hub_row("b", Question=None), "Question", "got null"),
    (hub_row("a"), "task_id", "duplicate task_id 'a' \\(first seen on row 1\\)"),
    (hub_row("gone"), "file_path", "attached file '2023/validation/gone.txt' not found \\(looked for .*gone.txt"),
]


@pytest.mark.parametrize(("row", "field", "message"), PARQUET_BAD_ROWS)
def test_parquet_bad_row_names_file_row_and_field(tmp_path: Path, row: dict[str, Any], field: str,
                                                  message: str) -> None:
    folder = tmp_path / "GAIA" / "2023" / "validation"
    path = write_parquet(folder / "metadata.parquet", [hub_row("a"), row])
    (folder / "a.txt").write_text("x")
    (folder / "b.txt").write_text("x")
    error = expect_error(load_gaia_folder, folder, 2, field, message)
    assert error.path == str(path) and error.unit == "row" and ", row 2, field" in str(error)


def test_parquet_missing_column_and_corrupt_file(tmp_path: Path) -> None:
    folder = tmp_path / "validation"
    row = hub_row("a", attach=False)
    del row["Question"]
    write_parquet(folder / "metadata.parquet", [row])
    expect_error(load_gaia_folder, folder, 1, "Question", "missing required field")
    (folder / "metadata.parquet").write_bytes(b"PAR1 not really")
    expect_error(load_gaia_folder, folder, None, None, "not a readable parquet file")


def test_env_runs_today_layout_and_reports_test_rows_unscored(tmp_path: Path) -> None:
    import gymnasium as gym

    import toolr1_env  # noqa: F401
    from toolr1_env.judge import Verdict
    from toolr1_env.sandbox import SandboxConfig

    class NeverCalled:
        def judge(self, question: str, prediction: str | None, ground_truth: str) -> Verdict:
            raise AssertionError("a withheld answer must never be judged")

    root = hub_copy(tmp_path)
    env = gym.make("ToolR1-GAIA-v0", tasks=root, split="test", judge=NeverCalled(), sandbox=SandboxConfig(preload=()))
    try:
        env.reset(options={"task_id": "t1"})
        _, reward, terminated, _, info = env.step("final_answer(inspect_file('t1.txt'))")
        assert terminated and reward == 0.0 and info["scored"] is False
        assert info["final_answer"] == "a test attachment" and "infra_error" not in info
    finally:
        env.close()
    env = gym.make("ToolR1-GAIA-v0", tasks=root / "2023", split="validation", level=1,
                   sandbox=SandboxConfig(preload=()))
    try:
        assert [t.task_id for t in env.unwrapped.task_set.tasks] == ["v1"]
        env.reset()
        _, reward, _, _, info = env.step("final_answer('12')")
        assert reward == pytest.approx(1.2) and info["scored"] is True
    finally:
        env.close()
    with pytest.raises(ValueError, match="split= and level= choose part of a GAIA copy"):
        gym.make("ToolR1-GAIA-v0", tasks="validation", split="validation")
