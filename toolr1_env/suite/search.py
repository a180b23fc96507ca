"""Offline web search over the world's pages, behind a small pluggable interface.

:class:`WebBackend` is the whole contract: ``search(query, max_results)`` and ``read(url)``. The bundled
:class:`OfflineWeb` ranks a world's pages with BM25 (pure Python, title matches weighted up);
a user can pass any other object with the same two methods (a real search API, a local mirror) to
:func:`make_web_tools`, which wraps a backend into the two tools the agent sees: ``web_search`` and
``read_page``. :func:`make_visit_page` adds ``visit_page``, the real-web tool's name and format
(``toolr1_env.web``), so an agent used to the real web works here too. The tools take and return plain
data only (they may be called over a JSON channel).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import PurePosixPath
from typing import Any, Protocol, runtime_checkable

from toolr1_env.readers.tool import READABLE_SUFFIXES
from toolr1_env.suite.pages import BASE_URL, Page, url_for
from toolr1_env.web.pages import render_part
from toolr1_env.web.search import SearchResult

_TOKEN = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
#: BM25 parameters (the usual defaults), the weight of title matches, the bonus for a whole title in the query.
BM25_K1 = 1.2
BM25_B = 0.75
TITLE_WEIGHT = 2.0
EXACT_TITLE_BONUS = 10.0
SNIPPET_CHARS = 200


def tokenize(text: str) -> list[str]:
    """Lowercase alphanumeric tokens of ``text``."""
    return _TOKEN.findall(text.lower())


@runtime_checkable
class WebBackend(Protocol):
    """What :func:`make_web_tools` needs: a ranked search and a page reader. Replace it to use the real web."""

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        """Return at most ``max_results`` hits, best first."""
        ...

    def read(self, url: str) -> str:
        """Return the text of the page at ``url``; raise ``LookupError`` when there is none."""
        ...


class BM25Index:
    """BM25 over a list of texts (one document per text)."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._postings: dict[str, list[tuple[int, int]]] = {}
        self._lengths: list[int] = []
        for doc, text in enumerate(texts):
            tokens = tokenize(text)
            self._lengths.append(len(tokens))
            for term, tf in Counter(tokens).items():
                self._postings.setdefault(term, []).append((doc, tf))
        n = max(len(texts), 1)
        self._avg_len = max(sum(self._lengths) / n, 1.0)
        self._idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self._postings.items()}

    def scores(self, query: str) -> dict[int, float]:
        """BM25 score of every document sharing a term with ``query``."""
        scores: dict[int, float] = {}
        for term in set(tokenize(query)):
            idf = self._idf.get(term)
            if idf is None:
                continue
            for doc, tf in self._postings[term]:
                norm = BM25_K1 * (1 - BM25_B + BM25_B * self._lengths[doc] / self._avg_len)
                scores[doc] = scores.get(doc, 0.0) + idf * tf * (BM25_K1 + 1) / (tf + norm)
        return scores


class PageRanker:
    """Ranks pages by BM25 on their text plus :data:`TITLE_WEIGHT` times BM25 on their titles (BM25F-like),
    plus a bonus when the whole title appears in the query (so searching a name finds its page first)."""

    def __init__(self, pages: Sequence[Page]) -> None:
        self.pages = list(pages)
        self._body = BM25Index([p.text for p in self.pages])
        self._titles = BM25Index([p.title for p in self.pages])
        self._title_tokens = [" ".join(tokenize(p.title)) for p in self.pages]

    def rank(self, query: str) -> list[tuple[int, float]]:
        """``(page index, score)`` for every page matching a query term, best first (ties by index)."""
        scores = self._body.scores(query)
        for doc, score in self._titles.scores(query).items():
            scores[doc] = scores.get(doc, 0.0) + TITLE_WEIGHT * score
        padded = f" {' '.join(tokenize(query))} "
        for doc in scores:
            if f" {self._title_tokens[doc]} " in padded:
                scores[doc] += EXACT_TITLE_BONUS
        return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def snippet(page: Page, query: str, limit: int = SNIPPET_CHARS) -> str:
    """The sentence or line of ``page`` sharing the most query words (other than the title's), cut to ``limit``.

    Falls back to the first sentence, so a search for a bare name shows how its page begins.
    """
    body = page.text.split("\n", 1)[-1]
    candidates = [s.strip() for line in body.splitlines() for s in _SENTENCE.split(line) if s.strip()]
    if not candidates:
        return ""
    terms = set(tokenize(query)) - set(tokenize(page.title))
    best = max(candidates, key=lambda s: len(terms & set(tokenize(s))))  # max keeps the first on ties
    return best if len(best) <= limit else best[: limit - 3].rstrip() + "..."


class OfflineWeb:
    """A :class:`WebBackend` over a fixed set of pages (the bundled world), ranked by BM25."""

    def __init__(self, pages: Sequence[Page]) -> None:
        self.index = PageRanker(pages)
        self._by_url = {p.url: p for p in self.index.pages}
        self._by_key = {_page_key(p.title): p for p in self.index.pages}

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        """Return at most ``max_results`` pages for ``query``, best first."""
        hits = self.index.rank(query)[: max(0, max_results)]
        return [
            SearchResult(title=p.title, url=p.url, snippet=snippet(p, query))
            for p in (self.index.pages[doc] for doc, _ in hits)
        ]

    def read(self, url: str) -> str:
        """Return the page text at ``url``; also accepts a page title or a URL without ``https://``."""
        url = url.strip()
        page = self._by_url.get(url) or self._by_url.get("https://" + url.removeprefix("http://"))
        if page is None:
            key = url.removeprefix("https://").removeprefix("http://").removeprefix(BASE_URL[8:])
            page = self._by_key.get(_page_key(key))
        if page is None and _is_file_name(url):
            raise LookupError(f"No page at {url!r}: that is a file name, not a web page. Read an attached file "
                              f"with inspect_file({url!r}).")
        if page is None:
            raise LookupError(f"No page at {url!r}. Use a 'url' from the results of web_search(...).")
        return page.text


def _is_file_name(url: str) -> bool:
    """A bare name with a suffix ``inspect_file`` reads (no folder): what an agent passes to ``read_page`` when
    it means an attached file."""
    return "/" not in url and PurePosixPath(url).suffix.lower() in READABLE_SUFFIXES


def _page_key(title: str) -> str:
    return title.replace("_", " ").strip().lower()


def make_web_tools(backend: WebBackend) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """Wrap a backend into the agent's ``web_search`` and ``read_page`` tools (plain data in and out)."""

    def web_search(query: str, max_results: int = 5) -> list[dict]:
        """Search the web and return the best matching pages, best first.

        Args:
            query: what to look for, e.g. a name plus a keyword: "Varnholt population".
            max_results: how many results to return (1 to 20, default 5).

        Returns:
            A list of dicts with keys "title", "url" and "snippet" (a short extract of the page).
            Pass a result's "url" to read_page to get the whole page.

        Example:
            results = web_search("Brastow Works founder")
            for r in results:
                print(r["title"], r["url"], r["snippet"])
        """
        if not isinstance(query, str):
            raise TypeError(f"query must be a string, got {type(query).__name__}")
        count = min(max(int(max_results), 1), 20)
        return [hit.to_dict() for hit in backend.search(query, count)]

    def read_page(url: str) -> str:
        """Return the full text of a web page.

        Args:
            url: the page address, as given in the "url" field of a web_search result,
                e.g. "https://wiki.toolr1/Varnholt".

        Returns:
            The page as plain text: a title line, a paragraph, then a "Facts" section of
            "Key: value" lines (for example "Population: 482,113") and lists of related pages.

        Example:
            page = read_page(web_search("Varnholt")[0]["url"])
            print(page)
        """
        if not isinstance(url, str):
            raise TypeError(f"url must be a string, got {type(url).__name__}")
        return backend.read(url)

    return web_search, read_page


def make_visit_page(backend: WebBackend) -> Callable[..., Any]:
    """``visit_page(url, page=1)`` over a backend: ``read_page``'s text in the real-web tool's format."""

    def visit_page(url: str, page: int = 1) -> str:
        """Return the text of a web page: an "Address:" line, "Part <page> of <n>", then the text."""
        if not isinstance(url, str):
            raise TypeError(f"url must be a string, got {type(url).__name__}")
        if isinstance(page, bool) or not isinstance(page, int):
            raise TypeError(f"page must be an integer, got {type(page).__name__}")
        return render_part(url.strip(), backend.read(url), page)

    return visit_page


__all__ = [
    "BM25Index",
    "OfflineWeb",
    "PageRanker",
    "SearchResult",
    "WebBackend",
    "make_visit_page",
    "make_web_tools",
    "snippet",
    "url_for",
]
