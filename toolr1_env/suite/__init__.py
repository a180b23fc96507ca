"""The bundled offline GAIA-like task suite: a seeded fictional world, its web, attached files, task splits.

Load a split with one call::

    from toolr1_env.suite import load_split

    validation = load_split("validation")        # 165 fixed tasks, GAIA's level mix
    train = load_split("train")                  # unlimited: train.generate(seed) / train.pick(seed)
    web_search, read_page, inspect_file = validation.tools

Module map: :mod:`.names` (invented names), :mod:`.world` (entities), :mod:`.pages` (wiki pages),
:mod:`.search` (BM25 backend, the ``web_search`` / ``read_page`` tools and the ``visit_page`` alias),
:mod:`.files` (writing csv/json/xlsx/pdf/docx/txt), :mod:`.inspect_file` (the ``inspect_file`` tool of
:mod:`toolr1_env.readers`, re-exported), :mod:`.generators`
(task templates per level), :mod:`.worlds` (the named worlds), :mod:`.splits` (splits and
:func:`load_split`), :mod:`.report` (statistics and baselines; ``python -m toolr1_env.suite.report``).
"""

from __future__ import annotations

from toolr1_env.suite.inspect_file import inspect_file
from toolr1_env.suite.search import OfflineWeb, SearchResult, WebBackend, make_web_tools
from toolr1_env.suite.splits import (
    SPLITS,
    SUITE_VERSION,
    SplitSpec,
    default_cache_dir,
    fingerprint,
    load_split,
    split_steps,
)
from toolr1_env.suite.worlds import get_bundle, get_world

__all__ = [
    "SPLITS",
    "SUITE_VERSION",
    "OfflineWeb",
    "SearchResult",
    "SplitSpec",
    "WebBackend",
    "default_cache_dir",
    "fingerprint",
    "get_bundle",
    "get_world",
    "inspect_file",
    "load_split",
    "make_web_tools",
    "split_steps",
]
