"""Office documents and PDF as text: xlsx (openpyxl), xls (xlrd), docx (python-docx), pdf (pypdf),
pptx (python-pptx). Tables of every format come out as ``a | b | c`` lines, so one parser reads them all."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any


def cell_text(value: object) -> str:
    """A spreadsheet cell as text: blanks empty, midnight datetimes as dates, dates in ISO format."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _rows_text(rows: list[list[Any]]) -> list[str]:
    lines = [" | ".join(cell_text(v) for v in row) for row in rows]
    return [line for line in lines if line.replace("|", "").strip()]


def xlsx_text(path: Path) -> str:
    """Every sheet of an xlsx workbook (cached values, not formulas), each headed ``Sheet: <name>``."""
    import openpyxl

    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    parts = []
    try:
        for sheet in workbook.worksheets:
            rows = _rows_text([list(row) for row in sheet.iter_rows(values_only=True)])
            parts.append(f"Sheet: {sheet.title}\n" + "\n".join(rows))
    finally:
        workbook.close()
    return "\n\n".join(parts)


def xls_text(path: Path) -> str:
    """Every sheet of a legacy Excel (.xls) workbook, dates decoded, each headed ``Sheet: <name>``."""
    import xlrd

    book = xlrd.open_workbook(str(path))
    parts = []
    for sheet in book.sheets():
        rows = []
        for r in range(sheet.nrows):
            row: list[Any] = []
            for cell in sheet.row(r):
                value = cell.value
                if cell.ctype == xlrd.XL_CELL_DATE:
                    value = xlrd.xldate.xldate_as_datetime(value, book.datemode)
                elif cell.ctype == xlrd.XL_CELL_NUMBER and float(value).is_integer():
                    value = int(value)
                row.append(value)
            rows.append(row)
        parts.append(f"Sheet: {sheet.name}\n" + "\n".join(_rows_text(rows)))
    return "\n\n".join(parts)


def docx_text(path: Path) -> str:
    """Paragraphs and tables of a Word document, in document order."""
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


def pdf_text(path: Path) -> str:
    """The text layer of every page of a PDF (scanned pages without one come out empty)."""
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def _shape_lines(shape: Any) -> list[str]:
    """Text of one slide shape: text frames, tables as ``a | b`` rows, groups recursively, pictures named."""
    lines: list[str] = []
    if getattr(shape, "shape_type", None) == 6:  # MSO_SHAPE_TYPE.GROUP
        for inner in shape.shapes:
            lines += _shape_lines(inner)
        return lines
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        lines += [p.strip() for p in shape.text_frame.text.splitlines() if p.strip()]
    if getattr(shape, "has_table", False) and shape.has_table:
        lines += [" | ".join(cell.text for cell in row.cells) for row in shape.table.rows]
    if getattr(shape, "shape_type", None) == 13:  # MSO_SHAPE_TYPE.PICTURE
        lines.append(f"[picture: {shape.name}]")
    return lines


def pptx_text(path: Path) -> str:
    """Each slide of a PowerPoint deck headed ``Slide <n>``: its text, tables, pictures and notes."""
    from pptx import Presentation

    deck = Presentation(str(path))
    parts = []
    for number, slide in enumerate(deck.slides, 1):
        lines = [f"Slide {number}"]
        for shape in slide.shapes:
            lines += _shape_lines(shape)
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame.text.strip() if slide.notes_slide.notes_text_frame else ""
            if notes:
                lines.append(f"Notes: {notes}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)
