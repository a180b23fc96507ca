"""Read any attached file as text: the ``inspect_file`` tool and its format readers.

What runs where
---------------
This whole package runs **inside the sandbox**, next to the agent's files: the sandbox ships it
(``SANDBOX_PACKAGE`` below; see :mod:`toolr1_env.tools`), so a hostile file is parsed under the
sandbox's limits, never in the host process. It uses only the standard library and well-kept parsers
(openpyxl, xlrd, python-docx, pypdf, python-pptx, trafilatura, Pillow, mutagen), each imported when first
needed. Two things need an API key and the network, so they run **on the host**: answering a question
about an image (a vision model) and transcribing audio (a transcription endpoint). For those,
``inspect_file`` reads the bytes inside the sandbox and hands them, base64-encoded, to the host tools
named :data:`~toolr1_env.readers.tool.VISION_TOOL` and :data:`~toolr1_env.readers.tool.TRANSCRIPTION_TOOL`
when the environment configured them (``toolr1_env.media_models``); without them it reports the image's
or recording's metadata only.

Module map: :mod:`.tool` (the ``inspect_file`` entry point: dispatch, caps, host hand-off),
:mod:`.documents` (xlsx, xls, docx, pdf, pptx), :mod:`.text` (plain text, json, html),
:mod:`.archives` (zip), :mod:`.media` (images and audio).
"""

from __future__ import annotations

from .tool import MAX_CHARS, TRANSCRIPTION_TOOL, VISION_TOOL, file_text, inspect_file

#: Ship this package whole into the sandbox (read by ``toolr1_env.tools.sandbox_prelude``).
SANDBOX_PACKAGE = True

__all__ = ["MAX_CHARS", "SANDBOX_PACKAGE", "TRANSCRIPTION_TOOL", "VISION_TOOL", "file_text", "inspect_file"]
