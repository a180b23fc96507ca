"""The agent's tools for the real web, ``web_search`` and ``visit_page``, and their configuration.

:class:`WebConfig` is what ``gym.make("ToolR1-GAIA-v0", web=...)`` accepts (also as ``"ddgs"`` or a dict
of its fields). :func:`make_web_tools` turns it into host tools that take and return plain data:
searches and pages go through the on-disk cache (:class:`~toolr1_env.web.cache.DiskCache`), so reruns
and every episode of a GRPO group see the same results and nothing is fetched twice; pages that do not
exist (HTTP 404, ...) are cached as such too. Network failures raise
:class:`~toolr1_env.infra.InfraError` (kind ``"web"``), never a wrong answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from toolr1_env.web.cache import DiskCache, default_cache_dir
from toolr1_env.web.fetch import FetchPolicy, HttpClient, PageError
from toolr1_env.web.pages import PAGE_CHARS, render_part, response_text
from toolr1_env.web.search import DDGSBackend, HTTPSearchBackend, SearchBackend, SearchResult

MAX_RESULTS = 20


@dataclass(frozen=True)
class WebConfig:
    """Where ``web_search`` searches and how ``visit_page`` fetches.

    Args:
        backend: ``"ddgs"`` (default: the ddgs metasearch package, no key), ``"http"`` (a JSON search API
            at ``base_url``), or any object with ``search(query, max_results) -> list[SearchResult]``.
        base_url: the search API's address, for ``backend="http"``.
        api_key: the search API's key, sent as ``Authorization: Bearer <key>`` unless ``search_options``
            say otherwise.
        search_options: more arguments of :class:`~toolr1_env.web.search.HTTPSearchBackend` (``method``,
            ``query_param``, ``count_param``, ``params``, ``api_key_header``, ``api_key_prefix``,
            ``results_path``) or of :class:`~toolr1_env.web.search.DDGSBackend` (``region``,
            ``safesearch``, ``backend``, ``proxy``).
        cache: keep searches and pages on disk. ``cache_dir``: its folder (None: ``default_cache_dir()/web``).
        page_chars: characters per part of a long page (``visit_page(url, page=2)`` reads the next).
        timeout, max_retries, backoff, min_interval, max_page_bytes, allow_private: the
            :class:`~toolr1_env.web.fetch.FetchPolicy` of every request (seconds per request, retries,
            first backoff, seconds between requests to one host, bytes read per page, private addresses).
    """

    backend: str | SearchBackend = "ddgs"
    base_url: str | None = None
    api_key: str | None = None
    search_options: Mapping[str, Any] = field(default_factory=dict)
    cache: bool = True
    cache_dir: str | None = None
    page_chars: int = PAGE_CHARS
    timeout: float = 20.0
    max_retries: int = 2
    backoff: float = 1.0
    min_interval: float = 1.0
    max_page_bytes: int = 10 << 20
    allow_private: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.backend, str):
            if self.backend not in ("ddgs", "http"):
                raise ValueError(f"web backend must be 'ddgs', 'http' or a search backend object, got {self.backend!r}")
            if self.backend == "http" and not self.base_url:
                raise ValueError("web backend 'http' needs base_url (the search API's address)")
        elif not isinstance(self.backend, SearchBackend):
            raise TypeError(f"web backend {self.backend!r} has no search(query, max_results) method")
        if self.page_chars < 500:
            raise ValueError(f"page_chars must be >= 500, got {self.page_chars}")

    @classmethod
    def parse(cls, spec: WebConfig | str | Mapping[str, Any] | SearchBackend | None) -> WebConfig | None:
        """``None`` (no web tools), ``"ddgs"``, a dict of the fields, a ``WebConfig`` or a search backend."""
        if spec is None or isinstance(spec, WebConfig):
            return spec
        if isinstance(spec, str):
            return cls(backend=spec)
        if isinstance(spec, Mapping):
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(spec) - known)
            if unknown:
                raise ValueError(f"web: unknown keys {unknown} (known: {sorted(known)})")
            return cls(**spec)
        return cls(backend=spec)

    def policy(self) -> FetchPolicy:
        """The fetch policy these settings describe."""
        return FetchPolicy(timeout=self.timeout, max_retries=self.max_retries, backoff=self.backoff,
                           min_interval=self.min_interval, max_bytes=self.max_page_bytes,
                           allow_private=self.allow_private)


class RealWeb:
    """The search backend, HTTP client and cache behind the web tools (one per environment).

    Args:
        config: the settings.
        client: an HTTP client to share (tests pass one with a fake sleep); built from ``config`` if None.
    """

    def __init__(self, config: WebConfig, client: HttpClient | None = None) -> None:
        self.config = config
        self.client = client or HttpClient(config.policy())
        options = dict(config.search_options)
        if config.backend == "ddgs":
            self.backend: SearchBackend = DDGSBackend(timeout=config.timeout, max_retries=config.max_retries,
                                                      backoff=max(config.backoff, 1.0), **options)
        elif config.backend == "http":
            assert config.base_url is not None
            self.backend = HTTPSearchBackend(config.base_url, config.api_key, client=self.client, **options)
        else:
            self.backend = config.backend  # type: ignore[assignment]
        self.cache = DiskCache(config.cache_dir or default_cache_dir() / "web") if config.cache else None

    def search(self, query: str, max_results: int) -> list[dict[str, str]]:
        """Hits as plain dicts, from the cache when this exact search was made before."""
        def run() -> list[dict[str, str]]:
            return [hit.to_dict() for hit in self.backend.search(query, max_results)]

        if self.cache is None:
            return run()
        return self.cache.get_or_compute("search", f"{self.backend!r}\0{max_results}\0{query}", run)

    def page_text(self, url: str) -> tuple[str, str]:
        """``(final url, readable text)`` of a page; a page that does not exist raises ``PageError``."""
        def fetch() -> dict[str, str]:
            try:
                response = self.client.get(url)
            except PageError as exc:
                return {"error": str(exc)}
            return {"url": response.url, "text": response_text(response)}

        key = f"{self.config.max_page_bytes}\0{url}"  # a page read under a smaller cap is another entry
        entry = fetch() if self.cache is None else self.cache.get_or_compute("page", key, fetch)
        if "error" in entry:
            raise PageError(entry["error"])
        return entry["url"], entry["text"]


def make_web_tools(config: WebConfig, client: HttpClient | None = None) -> tuple[Callable[..., Any], ...]:
    """The agent's ``web_search`` and ``visit_page`` over the real web, and ``read_page`` (an alias of
    ``visit_page`` for agents used to the bundled suite's name; not listed in the prompt)."""
    web = RealWeb(config, client)

    def web_search(query: str, max_results: int = 5) -> list[dict]:
        """Search the web and return the best matching pages, best first.

        Args:
            query: what to look for, e.g. "Mercedes Sosa studio albums 2000-2009".
            max_results: how many results to return (1 to 20, default 5).

        Returns:
            A list of dicts with keys "title", "url" and "snippet" (a short extract of the page).
            Pass a result's "url" to visit_page to read the page.

        Example:
            for r in web_search("Eiffel Tower height"):
                print(r["title"], r["url"], r["snippet"])
        """
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query must be a non-empty string")
        return web.search(query.strip(), min(max(int(max_results), 1), MAX_RESULTS))

    def visit_page(url: str, page: int = 1) -> str:
        """Return the readable text of a web page (HTML, PDF or text), one part at a time.

        Args:
            url: the page address, e.g. a "url" from web_search results ("https://en.wikipedia.org/wiki/Paris").
            page: which part of a long page to read (1 first); the header says how many parts there are.

        Returns:
            "Address: <url>", "Part <page> of <n>", then the page's text: headings, paragraphs, lists,
            tables as "| a | b |" rows and links as [text](address).

        Example:
            text = visit_page("https://en.wikipedia.org/wiki/Eiffel_Tower")
            print(text[:2000])
            more = visit_page("https://en.wikipedia.org/wiki/Eiffel_Tower", page=2)
        """
        if not isinstance(url, str) or not url.strip():
            raise ValueError("url must be a non-empty string")
        if isinstance(page, bool) or not isinstance(page, int):
            raise TypeError(f"page must be an integer, got {type(page).__name__}")
        url = url.strip()
        if "://" not in url:
            url = "https://" + url
        final_url, text = web.page_text(url)
        return render_part(final_url, text, page, config.page_chars)

    def read_page(url: str) -> str:
        """Return the readable text of a web page (the first part; ``visit_page`` reads the others)."""
        return visit_page(url)

    return web_search, visit_page, read_page


__all__ = ["RealWeb", "SearchResult", "WebConfig", "make_web_tools"]
