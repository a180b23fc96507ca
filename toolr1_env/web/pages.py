"""Web responses as readable text, cut into numbered parts for ``visit_page``.

HTML becomes markdown-like text through trafilatura (the same converter ``inspect_file`` uses for
attached html, :func:`toolr1_env.readers.text.html_to_text`): main content, headings, lists, tables and
absolute links. PDF becomes its text layer (pypdf), JSON is pretty-printed, other ``text/*`` is shown as
it is, and anything else is described instead of shown. These parsers run on the host (the web tools are
host tools); a page is size-capped before it is parsed.
"""

from __future__ import annotations

import io
import json

from toolr1_env.readers.text import html_to_text
from toolr1_env.web.fetch import Response

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
#: Characters per part of a long page.
PAGE_CHARS = 10_000


def response_text(response: Response) -> str:
    """The readable text of a response, with a note when the body was cut at the size cap."""
    kind = response.content_type.lower()
    sniffed_html = response.body[:512].lstrip().lower().startswith((b"<!doctype html", b"<html"))
    if kind in HTML_TYPES or (kind in ("text/plain", "application/octet-stream") and sniffed_html):
        text = html_to_text(response.text(), url=response.url)
    elif kind == "application/pdf" or response.body.startswith(b"%PDF"):
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(response.body))
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
    elif kind in ("application/json", "application/ld+json") or kind.endswith("+json"):
        try:
            text = json.dumps(json.loads(response.text()), indent=2, ensure_ascii=False)
        except ValueError:
            text = response.text()
    elif kind.startswith("text/") or kind in ("application/xml", "application/javascript"):
        text = response.text()
    else:
        text = (f"(The address serves {kind} content of {len(response.body):,} bytes, which visit_page cannot "
                "show as text.)")
    if response.truncated:
        text += f"\n\n(The page was cut after its first {len(response.body):,} bytes.)"
    return text


def split_parts(text: str, part_chars: int = PAGE_CHARS) -> list[str]:
    """Cut ``text`` into parts of at most ``part_chars`` characters, at a line break when one is near."""
    if part_chars < 1:
        raise ValueError(f"part_chars must be >= 1, got {part_chars}")
    parts, start = [], 0
    while start < len(text):
        end = min(start + part_chars, len(text))
        if end < len(text):
            newline = text.rfind("\n", start + part_chars // 2, end)
            if newline > start:
                end = newline + 1
        parts.append(text[start:end])
        start = end
    return parts or [""]


def render_part(url: str, text: str, page: int, part_chars: int = PAGE_CHARS) -> str:
    """Part ``page`` (1-based) of a page's text, headed by its address and where it sits among the parts."""
    parts = split_parts(text, part_chars)
    if not 1 <= page <= len(parts):
        raise ValueError(f"page must be between 1 and {len(parts)} for {url!r}, got {page}")
    header = f"Address: {url}\nPart {page} of {len(parts)}"
    if page < len(parts):
        header += f" (next: visit_page({url!r}, page={page + 1}))"
    return f"{header}\n\n{parts[page - 1]}"
