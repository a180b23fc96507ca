"""Text-like files: plain text of any suffix (txt, md, py, csv, xml, pdb, ...), json/jsonld, and html."""

from __future__ import annotations

import json
from pathlib import Path

#: Suffixes read as text even when they are not valid UTF-8 (then decoded as Latin-1).
TEXT_SUFFIXES = frozenset({".txt", ".md", ".csv", ".tsv", ".py", ".log", ".xml", ".html", ".htm", ".yaml",
                           ".yml", ".ini", ".cfg", ".jsonl", ".tex", ".pdb", ".cif", ".sdf", ".mol",
                           ".fasta", ".json", ".jsonld", ".srt", ".vtt", ".sql", ".r", ".js", ".css",
                           ".c", ".h", ".cpp", ".java", ".sh", ".toml", ".rtf"})  # fmt: skip


def decode_text(data: bytes, suffix: str, name: str) -> str:
    """Bytes as text: UTF-8 (a BOM is dropped), else Latin-1 for known text suffixes, else an error."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if suffix in TEXT_SUFFIXES:
            return data.decode("latin-1")
        raise ValueError(f"{name} is not a text file inspect_file can read") from None


def plain_text(path: Path) -> str:
    """A file's text exactly as written."""
    return decode_text(path.read_bytes(), path.suffix.lower(), path.name)


def json_text(path: Path) -> str:
    """A JSON (or JSON-LD) file pretty-printed with an indent of 2; invalid JSON comes back as written."""
    raw = plain_text(path)
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw


def html_to_text(html: str, url: str | None = None) -> str:
    """Readable text of an HTML document (markdown-like: headings, lists, tables, links), via trafilatura.

    The main-content extraction keeps links (made absolute against ``url``) and tables; a page too small
    or too odd for it falls back to all of the page's text. The title, when there is one, comes first.
    """
    import trafilatura

    text = trafilatura.extract(html, url=url, output_format="markdown", include_links=True, include_tables=True,
                               include_formatting=True, favor_recall=True, include_comments=False)
    if not text or not text.strip():
        text = trafilatura.html2txt(html) or ""
    metadata = trafilatura.extract_metadata(html, default_url=url)
    title = metadata.title if metadata is not None and metadata.title else None
    return f"Title: {title}\n\n{text}" if title and title not in text[:200] else text


def html_text(path: Path) -> str:
    """An HTML file as readable text (see :func:`html_to_text`)."""
    return html_to_text(plain_text(path))
