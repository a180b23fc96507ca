"""The ``inspect_file`` tool: one entry point for every attachment type, dispatching on the file's suffix.

Runs inside the sandbox (see the package docstring). Output is capped at :data:`MAX_CHARS` characters.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .text import TEXT_SUFFIXES

#: Longest text returned; the rest is cut with a note saying how much was left out.
MAX_CHARS = 20_000
#: Name of the host tool that answers a question about an image: ``(image_base64, mime_type, question) -> str``.
VISION_TOOL = "vision_answer"
#: Name of the host tool that transcribes audio: ``(audio_base64, file_name) -> str``.
TRANSCRIPTION_TOOL = "transcribe_audio"
#: Stubs of the sandbox's host tools, filled by the sandbox prelude (``toolr1_env.tools``); empty on the host.
HOST_TOOLS: dict[str, Callable[..., Any]] = {}

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"})
AUDIO_SUFFIXES = frozenset({".mp3", ".wav", ".m4a", ".flac", ".ogg", ".oga", ".opus", ".aac"})
DOCUMENT_READERS = {".xlsx": "xlsx_text", ".xlsm": "xlsx_text", ".xls": "xls_text", ".docx": "docx_text",
                    ".pdf": "pdf_text", ".pptx": "pptx_text"}  # fmt: skip
UNSUPPORTED = frozenset({".doc", ".ppt", ".key", ".numbers", ".pages", ".rar", ".7z", ".mp4", ".mov", ".avi"})
#: Every suffix :func:`file_text` reads with a reader of its own (any other is tried as plain text).
READABLE_SUFFIXES = TEXT_SUFFIXES | IMAGE_SUFFIXES | AUDIO_SUFFIXES | DOCUMENT_READERS.keys() | {".zip"}


def _missing(path: Path) -> FileNotFoundError:
    try:
        here = sorted(os.listdir("."))[:20]
    except OSError:
        here = []
    return FileNotFoundError(f"No file {str(path)!r} (current folder holds: {here})")


def _zip_member(path: Path) -> tuple[Path, str] | None:
    """``(archive, member)`` when ``path`` names a file inside a zip archive, e.g. ``data.zip/a.csv``."""
    for parent in path.parents:
        if parent.suffix.lower() == ".zip" and parent.is_file():
            return parent, path.relative_to(parent).as_posix()
    return None


def file_text(path: str | os.PathLike[str], question: str | None = None) -> str:
    """The whole text of a file, uncapped (see :func:`inspect_file` for the agent-facing tool)."""
    path = Path(path)
    if not path.is_file():
        member = _zip_member(path)
        if member is None:
            raise _missing(path)
        from . import archives

        return file_text(archives.extract_member(*member), question)
    suffix = path.suffix.lower()
    if suffix in DOCUMENT_READERS:
        from . import documents

        return getattr(documents, DOCUMENT_READERS[suffix])(path)
    if suffix == ".zip":
        from . import archives

        return archives.archive_text(path, file_text)
    if suffix in IMAGE_SUFFIXES:
        from . import media

        return media.image_text(path, question, HOST_TOOLS.get(VISION_TOOL))
    if suffix in AUDIO_SUFFIXES:
        from . import media

        return media.audio_text(path, HOST_TOOLS.get(TRANSCRIPTION_TOOL))
    if suffix in UNSUPPORTED:
        raise ValueError(f"inspect_file cannot read {suffix} files")
    from . import text

    if suffix in (".json", ".jsonld"):
        return text.json_text(path)
    if suffix in (".html", ".htm", ".xhtml"):
        return text.html_text(path)
    return text.plain_text(path)


def inspect_file(path: str, question: str | None = None) -> str:
    """Read an attached file of any common type and return its content as text.

    Args:
        path: the file name or path, e.g. "sales.xlsx" (attached files are in the current folder).
            A file inside a zip archive can be named as "archive.zip/inner/file.csv".
        question: for an image, a question about it for the vision model, e.g. "What is the
            number on the red sign?" (ignored for other files).

    Returns:
        The file's text. Spreadsheets (xlsx, xls, csv), Word tables, PowerPoint tables and PDF tables are
        shown one row per line with cells separated by " | ", header row first; spreadsheets start each
        sheet with "Sheet: <name>", slides start with "Slide <n>". Text files (txt, md, py, json,
        jsonld, xml, pdb, ...) come back as they are, web pages (html) as readable text. A zip archive
        is unpacked into the folder "<name>_extracted/": its member files are listed and each is shown.
        An image gives its size and metadata, plus the vision model's answer to `question` when one is
        configured. Audio gives its duration and metadata, plus a transcript when a transcription
        service is configured. Very long results are cut after 20000 characters.

    Example:
        text = inspect_file("orders.docx")
        print(text)
        rows = [line.split(" | ") for line in text.splitlines() if " | " in line]
        print(inspect_file("photo.jpg", question="How many birds are in the picture?"))
    """
    if not isinstance(path, str):
        raise TypeError(f"path must be a string, got {type(path).__name__}")
    if question is not None and not isinstance(question, str):
        raise TypeError(f"question must be a string or None, got {type(question).__name__}")
    text = file_text(path, question)
    if len(text) > MAX_CHARS:
        text = text[:MAX_CHARS] + f"\n... [cut: {len(text) - MAX_CHARS} more characters]"
    return text
