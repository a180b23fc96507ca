"""The ``inspect_file`` tool: any attached file (csv, json, xlsx, docx, pdf, txt, ...) as plain text.

Tables come out as ``a | b | c`` lines whatever the format (spreadsheet rows, Word tables, PDF table
lines), so one parser reads them all. Output is capped at :data:`MAX_CHARS` characters.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

#: Longest text returned; the rest is cut with a note saying how much was left out.
MAX_CHARS = 20_000
TEXT_SUFFIXES = frozenset({".txt", ".md", ".csv", ".tsv", ".py", ".log", ".xml", ".html", ".htm", ".yaml",
                           ".yml", ".ini", ".cfg", ".jsonl", ".tex"})  # fmt: skip


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _xlsx_text(path: Path) -> str:
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    parts = []
    try:
        for sheet in workbook.worksheets:
            rows = [" | ".join(_cell(v) for v in row) for row in sheet.iter_rows(values_only=True)]
            rows = [r for r in rows if r.replace("|", "").strip()]
            parts.append(f"Sheet: {sheet.title}\n" + "\n".join(rows))
    finally:
        workbook.close()
    return "\n\n".join(parts)


def _docx_text(path: Path) -> str:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(str(path))
    lines = []
    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            lines.append(Paragraph(block, document).text)
        elif tag == "tbl":
            for row in Table(block, document).rows:
                lines.append(" | ".join(cell.text for cell in row.cells))
    return "\n".join(lines)


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def file_text(path: str | os.PathLike[str]) -> str:
    """The whole text of a file, uncapped (see :func:`inspect_file` for the agent-facing tool)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No file {str(path)!r} (current folder holds: {sorted(os.listdir('.'))[:20]})")
    suffix = path.suffix.lower()
    if suffix == ".json":
        with open(path, encoding="utf-8") as handle:
            return json.dumps(json.load(handle), indent=2, ensure_ascii=False)
    if suffix in (".xlsx", ".xlsm"):
        return _xlsx_text(path)
    if suffix == ".docx":
        return _docx_text(path)
    if suffix == ".pdf":
        return _pdf_text(path)
    if suffix in (".xls", ".doc", ".ppt", ".pptx", ".zip", ".png", ".jpg", ".jpeg", ".mp3", ".wav"):
        raise ValueError(f"inspect_file cannot read {suffix} files")
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        if suffix in TEXT_SUFFIXES:
            return data.decode("latin-1")
        raise ValueError(f"{path.name} is not a text file inspect_file can read") from None


def inspect_file(path: str) -> str:
    """Read a file (csv, json, xlsx, docx, pdf, txt, ...) and return its content as text.

    Args:
        path: the file name or path, e.g. "sales.xlsx" (attached files are in the current folder).

    Returns:
        The file's text. Tables (spreadsheet sheets, Word tables, PDF tables) are shown one row per
        line with cells separated by " | ", header row first; spreadsheets start each sheet with
        "Sheet: <name>". Very long files are cut after 20000 characters.

    Example:
        text = inspect_file("orders.docx")
        print(text)
        rows = [line.split(" | ") for line in text.splitlines() if " | " in line]
    """
    if not isinstance(path, str):
        raise TypeError(f"path must be a string, got {type(path).__name__}")
    text = file_text(path)
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS] + f"\n... [cut: {len(text) - MAX_CHARS} more characters]"
    return text
