"""Search backends for the real web: the ``ddgs`` metasearch package, or any JSON search API by base URL.

A backend is anything with ``search(query, max_results) -> list[SearchResult]`` (:class:`SearchBackend`).
A backend raises :class:`~toolr1_env.infra.InfraError` (kind ``"web"``) when the search service cannot be
used (unreachable, rate limited, a bad key, a reply that is not a result list) and returns ``[]`` when it
found nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from toolr1_env.infra import WEB, InfraError
from toolr1_env.web.fetch import HttpClient, PageError

#: Keys under which JSON search APIs put their result list (SearXNG, Google CSE, Serper, SerpAPI, ...).
RESULT_LIST_KEYS = ("results", "items", "organic", "organic_results", "data", "hits", "value")
TITLE_KEYS = ("title", "name", "heading")
URL_KEYS = ("url", "link", "href", "uri")
SNIPPET_KEYS = ("snippet", "description", "content", "body", "text", "summary")


@dataclass(frozen=True)
class SearchResult:
    """One ranked search hit."""

    title: str
    url: str
    snippet: str

    def to_dict(self) -> dict[str, str]:
        """The hit as the plain dict the ``web_search`` tool returns."""
        return {"title": self.title, "url": self.url, "snippet": self.snippet}


@runtime_checkable
class SearchBackend(Protocol):
    """A web search: at most ``max_results`` hits for ``query``, best first."""

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        """Return at most ``max_results`` hits, best first (``[]`` when nothing matched)."""
        ...


def _first(item: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    for key in keys:
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def results_from_items(items: list[Any]) -> list[SearchResult]:
    """Search hits from result dicts of any common shape (``title``/``name``, ``url``/``link``/``href``, ...)."""
    hits = []
    for item in items:
        if isinstance(item, Mapping):
            url = _first(item, URL_KEYS)
            if url:
                hits.append(SearchResult(title=_first(item, TITLE_KEYS) or url, url=url,
                                         snippet=_first(item, SNIPPET_KEYS)))
    return hits


class DDGSBackend:
    """Metasearch through the ``ddgs`` package (no API key). The default backend of :class:`WebConfig`.

    Args:
        timeout: seconds per search (passed to ``ddgs``).
        region, safesearch, backend: passed to ``DDGS().text`` (``backend="auto"`` lets ddgs choose engines).
        proxy: an HTTP/SOCKS proxy for ddgs (also how tests point it at a closed port).
        max_retries, backoff: retries after a failed search, waiting ``backoff`` seconds, doubled each time.
    """

    def __init__(self, *, timeout: float = 10.0, region: str = "us-en", safesearch: str = "moderate",
                 backend: str = "auto", proxy: str | None = None, max_retries: int = 2, backoff: float = 2.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.timeout, self.region, self.safesearch, self.backend = timeout, region, safesearch, backend
        self.proxy, self.max_retries, self.backoff, self._sleep = proxy, max_retries, backoff, sleep

    def __repr__(self) -> str:  # also the cache's name for this backend
        return f"DDGSBackend(backend={self.backend!r}, region={self.region!r}, safesearch={self.safesearch!r})"

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        """Search with ddgs; no results is ``[]``, every engine failing is an ``InfraError``."""
        try:
            from ddgs import DDGS
            from ddgs.exceptions import DDGSException
        except ImportError as exc:
            raise InfraError(WEB, f"the ddgs package is not installed ({exc}): pip install ddgs") from None
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                self._sleep(self.backoff * 2 ** (attempt - 1))
            try:
                rows = DDGS(proxy=self.proxy, timeout=int(max(self.timeout, 1))).text(
                    query, region=self.region, safesearch=self.safesearch, max_results=max_results,
                    backend=self.backend)
            except DDGSException as exc:
                if str(exc) == "No results found.":  # ddgs's words when every engine answered, with nothing
                    return []
                last = exc
                continue
            except Exception as exc:  # noqa: BLE001 - ddgs's engines raise whatever their HTTP stack raises
                last = exc
                continue
            return results_from_items(list(rows or []))[:max_results]
        raise InfraError(WEB, f"web search failed after {self.max_retries + 1} attempts: "
                              f"{type(last).__name__}: {str(last)[:300]}")


class HTTPSearchBackend:
    """Any JSON search API reached by base URL and key: SearXNG (``/search?format=json``), Brave, Serper-like.

    The request is ``GET base_url?<query_param>=...&<count_param>=N`` (or, with ``method="POST"``, the same
    fields as a JSON body), plus ``params``; the key goes in the ``api_key_header`` header, prefixed by
    ``api_key_prefix``. The result list is found at ``results_path`` (dotted, e.g. ``"web.results"``) or,
    when that is None, under the first of :data:`RESULT_LIST_KEYS` present (one level of nesting searched);
    each result's title, URL and snippet are read from the usual key names.
    """

    def __init__(self, base_url: str, api_key: str | None = None, *, client: HttpClient | None = None,
                 method: str = "GET", query_param: str = "q", count_param: str | None = "count",
                 params: Mapping[str, Any] | None = None, api_key_header: str = "Authorization",
                 api_key_prefix: str = "Bearer ", results_path: str | None = None) -> None:
        if not base_url:
            raise ValueError("HTTPSearchBackend needs a base_url")
        if method not in ("GET", "POST"):
            raise ValueError(f"method must be 'GET' or 'POST', got {method!r}")
        self.base_url, self.api_key, self.method = base_url, api_key, method
        self.client = client or HttpClient()
        self.query_param, self.count_param, self.params = query_param, count_param, dict(params or {})
        self.api_key_header, self.api_key_prefix, self.results_path = api_key_header, api_key_prefix, results_path

    def __repr__(self) -> str:  # also the cache's name for this backend: everything that shapes results
        return (f"HTTPSearchBackend({self.base_url!r}, method={self.method!r}, query_param={self.query_param!r}, "
                f"count_param={self.count_param!r}, params={sorted(self.params.items())!r}, "
                f"results_path={self.results_path!r})")

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        """Ask the API; any failure of the API itself (including 4xx: a bad key) is an ``InfraError``."""
        fields: dict[str, Any] = {**self.params, self.query_param: query}
        if self.count_param:
            fields[self.count_param] = max_results
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers[self.api_key_header] = f"{self.api_key_prefix}{self.api_key}"
        try:
            if self.method == "GET":
                response = self.client.get(self.base_url, params=fields, headers=headers)
            else:
                response = self.client.request(self.base_url, method="POST", json_body=fields, headers=headers)
            data = response.json()
        except PageError as exc:
            raise InfraError(WEB, f"the search API refused the request: {exc}") from None
        except ValueError as exc:
            raise InfraError(WEB, f"the search API at {self.base_url} did not answer JSON: {exc}") from None
        return results_from_items(self._items(data))[:max_results]

    def _items(self, data: Any) -> list[Any]:
        if self.results_path:
            for key in self.results_path.split("."):
                data = data.get(key) if isinstance(data, Mapping) else None
            if not isinstance(data, list):
                raise InfraError(WEB, f"the search API's reply has no list at {self.results_path!r}")
            return data
        if isinstance(data, list):
            return data
        for scope in [data, *(v for v in data.values() if isinstance(v, Mapping))] if isinstance(data, Mapping) else []:
            for key in RESULT_LIST_KEYS:
                if isinstance(scope.get(key), list):
                    return scope[key]
        raise InfraError(WEB, f"the search API's reply holds no result list (keys: {sorted(data)[:10]})"
                         if isinstance(data, Mapping) else "the search API's reply is not a JSON object")
