"""Tools for the real web, run on the host: ``web_search`` (pluggable backends) and ``visit_page``.

Module map: :mod:`.tools` (:class:`WebConfig` and :func:`make_web_tools`), :mod:`.search` (the ddgs and
HTTP-API search backends), :mod:`.fetch` (HTTP with timeouts, retries, a rate limit, size caps and
address checks), :mod:`.pages` (responses to readable text, cut into parts), :mod:`.cache` (the
persistent cache shared by every environment and process). See ``docs/gaia.md``.
"""

from __future__ import annotations

from toolr1_env.web.cache import DiskCache, default_cache_dir
from toolr1_env.web.fetch import FetchPolicy, HttpClient, PageError, Response
from toolr1_env.web.search import DDGSBackend, HTTPSearchBackend, SearchBackend, SearchResult
from toolr1_env.web.tools import RealWeb, WebConfig, make_web_tools

__all__ = ["DDGSBackend", "DiskCache", "FetchPolicy", "HTTPSearchBackend", "HttpClient", "PageError", "RealWeb",
           "Response", "SearchBackend", "SearchResult", "WebConfig", "default_cache_dir", "make_web_tools"]
