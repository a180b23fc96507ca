"""The bundled suite's ``inspect_file``: the general reader of :mod:`toolr1_env.readers`, re-exported.

Kept at this path so ``from toolr1_env.suite.inspect_file import inspect_file`` keeps working; the
bundled files (csv, json, xlsx, docx, pdf, txt) read exactly as before.
"""

from __future__ import annotations

from toolr1_env.readers import MAX_CHARS, file_text, inspect_file

__all__ = ["MAX_CHARS", "file_text", "inspect_file"]
