"""Attached files: every format is written with its real library, reads back as text, and is byte-stable."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from toolr1_env.suite.files import FORMATS, Document, Table, render_document, write_document
from toolr1_env.suite.inspect_file import MAX_CHARS, inspect_file

TABLE = Table(("Name", "Quantity", "Weight (lb)"), (("Kix Neistair", 3, 2.35), ("Lena Doru", 12, 10.5)), "Stock")
DOC = Document("Shipments for March", ("Prepared by the logistics desk.", "All weights in pounds."), (TABLE,))
MAGIC = {"xlsx": b"PK", "docx": b"PK", "pdf": b"%PDF"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_writes_and_inspects_to_table_lines(tmp_path, fmt):
    path = write_document(DOC, tmp_path / f"stock.{fmt}")
    assert path.read_bytes().startswith(MAGIC.get(fmt, b""))
    text = inspect_file(str(path))
    if fmt in ("csv",):
        assert "Kix Neistair,3,2.35" in text
    elif fmt == "json":
        assert json.loads(text)["records"][1] == {"Name": "Lena Doru", "Quantity": 12, "Weight (lb)": 10.5}
    else:
        assert "Name | Quantity | Weight (lb)" in text
        assert "Kix Neistair | 3 | 2.35" in text
        assert "Lena Doru | 12 | 10.5" in text
    if fmt in ("docx", "pdf", "txt"):
        assert "Prepared by the logistics desk." in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_same_document_same_bytes(fmt):
    assert render_document(DOC, fmt) == render_document(DOC, fmt)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_pandas_reads_the_tables(tmp_path, fmt):
    path = write_document(DOC, tmp_path / f"stock.{fmt}")
    frame = pd.read_csv(path) if fmt == "csv" else pd.read_excel(path)
    assert frame.to_dict("records")[0] == {"Name": "Kix Neistair", "Quantity": 3, "Weight (lb)": 2.35}


def test_inspect_file_resolves_relative_paths_and_reports_missing(tmp_path, monkeypatch):
    write_document(DOC, tmp_path / "notes.txt")
    monkeypatch.chdir(tmp_path)
    assert inspect_file("notes.txt").startswith("Shipments for March")
    with pytest.raises(FileNotFoundError, match="notes.txt"):
        inspect_file("missing.csv")
    with pytest.raises(TypeError):
        inspect_file(3)


def test_inspect_file_caps_long_files(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("x" * (MAX_CHARS + 500))
    text = inspect_file(str(path))
    assert text.startswith("x" * MAX_CHARS) and "500 more characters" in text


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown format"):
        write_document(DOC, tmp_path / "a.pptx")
