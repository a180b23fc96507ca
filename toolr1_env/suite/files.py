"""Attached files: one small document model written in GAIA's common formats with the real libraries.

A :class:`Document` (a title, paragraphs, tables) is written by :func:`write_document` as ``.csv``
(first table), ``.json`` (``{"title", "notes", "records"}`` or explicit ``data``), ``.xlsx`` (openpyxl,
one sheet per table, header in row 1), ``.docx`` (python-docx, real tables), ``.pdf`` (reportlab, table
rows drawn as ``a | b | c`` lines) or ``.txt``. Output bytes depend only on the document: zip timestamps
and document-property dates are pinned, and reportlab runs in ``invariant`` mode.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Formats the suite writes (and :func:`toolr1_env.suite.inspect.inspect_file` reads).
FORMATS = ("csv", "json", "xlsx", "pdf", "docx", "txt")
#: The date stamped into office files, so the same content gives the same bytes.
FIXED_TIMESTAMP = (2024, 1, 1, 0, 0, 0)
_FIXED_ISO = "2024-01-01T00:00:00Z"
_CORE_DATE = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:(?:created|modified)>)")

Cell = str | int | float


@dataclass(frozen=True)
class Table:
    """A table: a header and rows of plain cells (``str``, ``int`` or ``float``)."""

    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    title: str = ""

    def records(self) -> list[dict[str, Cell]]:
        """The rows as dicts keyed by the header."""
        return [dict(zip(self.header, row, strict=True)) for row in self.rows]


@dataclass(frozen=True)
class Document:
    """What an attached file says. ``data`` (JSON only) replaces the default JSON layout when given."""

    title: str
    paragraphs: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    data: Any = None


def cell_text(value: Cell) -> str:
    """A cell as text (floats without a trailing ``.0`` noise beyond what ``repr`` gives)."""
    return str(value)


def table_lines(table: Table) -> list[str]:
    """A table as ``a | b | c`` lines, header first."""
    return [" | ".join(table.header)] + [" | ".join(cell_text(c) for c in row) for row in table.rows]


def _write_csv(doc: Document, out: io.BytesIO) -> None:
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    table = doc.tables[0]
    writer.writerow(table.header)
    writer.writerows(table.rows)
    out.write(text.getvalue().encode("utf-8"))


def _write_json(doc: Document, out: io.BytesIO) -> None:
    data = doc.data
    if data is None:
        data = {"title": doc.title, "notes": list(doc.paragraphs), "records": doc.tables[0].records()}
    out.write((json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def _write_txt(doc: Document, out: io.BytesIO) -> None:
    lines = [doc.title, ""]
    for paragraph in doc.paragraphs:
        lines += [paragraph, ""]
    for table in doc.tables:
        if table.title:
            lines.append(table.title)
        lines += table_lines(table) + [""]
    out.write("\n".join(lines).encode("utf-8"))


def _write_xlsx(doc: Document, out: io.BytesIO) -> None:
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for i, table in enumerate(doc.tables):
        sheet = workbook.create_sheet((table.title or f"Sheet{i + 1}")[:31])
        sheet.append(list(table.header))
        for row in table.rows:
            sheet.append(list(row))
    if doc.paragraphs:
        notes = workbook.create_sheet("Notes")
        for paragraph in doc.paragraphs:
            notes.append([paragraph])
    workbook.save(out)


def _write_docx(doc: Document, out: io.BytesIO) -> None:
    import datetime as dt

    import docx

    document = docx.Document()
    document.core_properties.created = dt.datetime(*FIXED_TIMESTAMP)
    document.core_properties.modified = dt.datetime(*FIXED_TIMESTAMP)
    document.add_heading(doc.title, level=1)
    for paragraph in doc.paragraphs:
        document.add_paragraph(paragraph)
    for table in doc.tables:
        if table.title:
            document.add_paragraph(table.title)
        grid = document.add_table(rows=len(table.rows) + 1, cols=len(table.header))
        grid.style = "Table Grid"
        for row_cells, values in zip(grid.rows, [table.header, *table.rows], strict=True):
            for cell, value in zip(row_cells.cells, values, strict=True):
                cell.text = cell_text(value)
    document.save(out)


def _write_pdf(doc: Document, out: io.BytesIO) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(out, pagesize=A4, invariant=1)
    pdf.setTitle(doc.title)
    width, height = A4
    margin, leading = 50, 14
    y = height - margin

    def line(text: str, font: str = "Helvetica", size: int = 10) -> None:
        nonlocal y
        if y < margin:
            pdf.showPage()
            y = height - margin
        pdf.setFont(font, size)
        pdf.drawString(margin, y, text)
        y -= leading

    line(doc.title, "Helvetica-Bold", 14)
    y -= 6
    max_chars = 95
    for paragraph in doc.paragraphs:
        for wrapped in _wrap(paragraph, max_chars):
            line(wrapped)
        y -= 6
    for table in doc.tables:
        if table.title:
            line(table.title, "Helvetica-Bold", 11)
        lines = table_lines(table)
        line(lines[0], "Helvetica-Bold")
        for text in lines[1:]:
            line(text)
        y -= 6
    pdf.save()


def _wrap(text: str, width: int) -> list[str]:
    words, lines, current = text.split(), [], ""
    for word in words:
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return lines + ([current] if current else [])


def _pin_zip(data: bytes) -> bytes:
    """Rewrite an office zip with fixed entry timestamps and fixed document-property dates."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            payload = source.read(info.filename)
            if info.filename == "docProps/core.xml":
                payload = _CORE_DATE.sub(rb"\g<1>" + _FIXED_ISO.encode() + rb"\g<2>", payload)
            target.writestr(zipfile.ZipInfo(info.filename, FIXED_TIMESTAMP), payload, zipfile.ZIP_DEFLATED)
    return out.getvalue()


_WRITERS: dict[str, Callable[[Document, io.BytesIO], None]] = {
    "csv": _write_csv,
    "json": _write_json,
    "txt": _write_txt,
    "xlsx": _write_xlsx,
    "docx": _write_docx,
    "pdf": _write_pdf,
}


def render_document(doc: Document, fmt: str) -> bytes:
    """The bytes of ``doc`` written in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in _WRITERS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
    if fmt in ("csv", "xlsx") and not doc.tables:
        raise ValueError(f"a {fmt} file needs at least one table")
    if fmt == "json" and doc.data is None and not doc.tables:
        raise ValueError("a json file needs data or a table")
    out = io.BytesIO()
    _WRITERS[fmt](doc, out)
    data = out.getvalue()
    return _pin_zip(data) if fmt in ("xlsx", "docx") else data


def write_document(doc: Document, path: str | os.PathLike[str]) -> Path:
    """Write ``doc`` to ``path`` (format from the suffix) atomically; return the path."""
    path = Path(path)
    data = render_document(doc, path.suffix.lstrip(".").lower())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
