"""The offline web: BM25 ranking, page reading, the agent-facing tools, and a pluggable backend."""

from __future__ import annotations

import inspect
import json
import pickle
import time

import pytest

from toolr1_env.suite.search import SearchResult, WebBackend, make_web_tools
from toolr1_env.suite.worlds import NamedWorldWeb, get_bundle


@pytest.fixture(scope="module")
def bundle():
    return get_bundle("validation")


def test_every_title_finds_its_page_first(bundle):
    for page in bundle.pages:
        hits = bundle.web.search(page.title, 5)
        assert hits[0].title == page.title, page.title


def test_name_plus_keyword_ranks_the_page_first_with_a_useful_snippet(bundle):
    city = next(iter(bundle.world.cities.values()))
    hits = bundle.web.search(f"{city.name} population", 5)
    assert hits[0].title == city.name
    assert hits[0].snippet.startswith("Population:")
    assert hits[0].url == f"https://wiki.toolr1/{city.name}"


def test_search_is_deterministic_and_fast(bundle):
    queries = [p.title + " founded" for p in bundle.pages[:100]]
    start = time.perf_counter()
    first = [bundle.web.search(q, 5) for q in queries]
    assert time.perf_counter() - start < 2.0
    assert first == [bundle.web.search(q, 5) for q in queries]


def test_search_edge_cases(bundle):
    assert bundle.web.search("", 5) == []
    assert bundle.web.search("zzzqqq xxyyzz", 5) == []
    assert len(bundle.web.search("city", 3)) == 3


def test_read_page_accepts_url_title_and_bare_url(bundle):
    page = bundle.pages[0]
    assert bundle.web.read(page.url) == page.text
    assert bundle.web.read(page.title) == page.text
    assert bundle.web.read(page.url.removeprefix("https://")) == page.text
    with pytest.raises(LookupError, match="web_search"):
        bundle.web.read("https://wiki.toolr1/No_Such_Page")


def test_tools_return_plain_json_data_and_document_themselves():
    web_search, read_page = make_web_tools(NamedWorldWeb("validation"))
    assert (web_search.__name__, read_page.__name__) == ("web_search", "read_page")
    results = web_search("Population", max_results=50)
    assert len(results) == 20  # capped
    assert json.loads(json.dumps(results)) == results
    assert set(results[0]) == {"title", "url", "snippet"}
    assert isinstance(read_page(results[0]["url"]), str)
    for tool in (web_search, read_page):
        doc = inspect.getdoc(tool)
        assert "Args:" in doc and "Returns:" in doc and "Example:" in doc
    assert list(inspect.signature(web_search).parameters) == ["query", "max_results"]
    with pytest.raises(TypeError):
        web_search(["not", "a", "string"])


def test_named_world_backend_pickles_small():
    backend = NamedWorldWeb("validation")
    assert len(pickle.dumps(backend)) < 200
    assert isinstance(backend, WebBackend)


def test_backend_is_pluggable():
    class FakeWeb:
        def search(self, query, max_results):
            return [SearchResult(title=query.upper(), url="https://example.org/x", snippet="fake")][:max_results]

        def read(self, url):
            return f"page at {url}"

    assert isinstance(FakeWeb(), WebBackend)
    web_search, read_page = make_web_tools(FakeWeb())
    assert web_search("abc") == [{"title": "ABC", "url": "https://example.org/x", "snippet": "fake"}]
    assert read_page("https://example.org/x") == "page at https://example.org/x"
