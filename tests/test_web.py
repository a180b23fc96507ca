"""The real-web tools against a real HTTP server on loopback: page text, paging, the on-disk cache (across
instances and threads), retries, timeouts, the rate limit, size caps, address checks, the HTTP search API
backend, the ddgs backend's clean failure offline, and web outages as infra errors inside the env."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import toolr1_env  # noqa: F401 - registers the env
from toolr1_env import Task
from toolr1_env.infra import InfraError
from toolr1_env.sandbox import SandboxConfig
from toolr1_env.web import (
    DDGSBackend,
    FetchPolicy,
    HttpClient,
    HTTPSearchBackend,
    PageError,
    WebConfig,
    make_web_tools,
)

LIGHT = SandboxConfig(preload=())
TOKEN = "TOKEN-WEB-4242"
PAGE = (f"<html><head><title>Zebra facts</title></head><body><nav>Home | About</nav><article><h1>Zebra facts</h1>"
        f"<p>The secret token is <b>{TOKEN}</b>, kept in the archive since the great migration of the herd.</p>"
        "<p>See <a href='/long'>the long page</a>.</p></article><footer>(c) nobody</footer></body></html>")
PARAGRAPHS = "".join(f"<p>Paragraph {i}: " + "zebras graze on the open plain " * 6 + "</p>" for i in range(200))
LONG = f"<html><body><article>{PARAGRAPHS}</article></body></html>"
KEY = "sk-test"


class Site:
    """A loopback web site: fixed routes, failures on demand, a count of requests per path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.failures: dict[str, list[int]] = {}
        self.delay = 0.0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def _route(self, path: str, query: dict[str, list[str]], headers: Any, body: bytes) -> tuple[int, str, bytes]:
        html = "text/html; charset=utf-8"
        if path == "/page":
            return 200, html, PAGE.encode()
        if path == "/long":
            return 200, html, LONG.encode()
        if path == "/big":
            return 200, html, ("<html><body><p>" + "x" * 50_000 + "</p></body></html>").encode()
        if path == "/text":
            return 200, "text/plain", f"plain {TOKEN}".encode()
        if path == "/slow":
            time.sleep(1.0)
            return 200, html, PAGE.encode()
        if path == "/pdf":
            import io

            from reportlab.pdfgen import canvas

            buffer = io.BytesIO()
            page = canvas.Canvas(buffer)
            page.drawString(72, 720, f"pdf says {TOKEN}")
            page.save()
            return 200, "application/pdf", buffer.getvalue()
        if path in ("/search", "/search-post"):
            if headers.get("Authorization") != f"Bearer {KEY}":
                return 401, "application/json", b'{"error": "bad key"}'
            fields = json.loads(body) if path == "/search-post" else {k: v[0] for k, v in query.items()}
            count = int(fields.get("count", 10))
            items = [{"title": f"Hit {i} for {fields['q']}", "url": f"{self.base}/page?i={i}", "content": "snip"}
                     for i in range(count)]
            return 200, "application/json", json.dumps({"query": fields["q"], "results": items}).encode()
        if path == "/brave":
            return 200, "application/json", json.dumps({"web": {"results": [{"title": "B", "url": "http://b/"}]}}).encode()
        if path == "/notjson":
            return 200, "text/html", b"<html>oops</html>"
        return 404, "text/plain", b"no such page"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def _serve(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with site.lock:
                    site.hits[parts.path] += 1
                    queue = site.failures.get(parts.path)
                    status = queue.pop(0) if queue else None
                if site.delay:
                    time.sleep(site.delay)
                if status is None:
                    status, kind, data = site._route(parts.path, urllib.parse.parse_qs(parts.query), self.headers, body)
                else:
                    kind, data = "text/plain", b"injected failure"
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(data)))
                    if status == 503:
                        self.send_header("Retry-After", "0.25")
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _serve

        return Handler


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def site() -> Iterator[Site]:
    server = Site()
    yield server
    server.stop()


class FakeSleep:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(round(seconds, 3))


def tools(site: Site, tmp_path: Path, *, sleep: FakeSleep | None = None, **settings: Any) -> tuple:
    options: dict[str, Any] = {"backend": "http", "base_url": f"{site.base}/search", "api_key": KEY,
                               "allow_private": True, "cache_dir": str(tmp_path / "cache"), "min_interval": 0.0,
                               "backoff": 0.01, "timeout": 5.0}
    options.update(settings)
    config = WebConfig.parse(options)
    client = HttpClient(config.policy(), sleep=sleep or FakeSleep())
    return make_web_tools(config, client=client)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- pages


def test_visit_page_returns_readable_text_with_absolute_links(site: Site, tmp_path: Path) -> None:
    _, visit_page, read_page = tools(site, tmp_path)
    text = visit_page(f"{site.base}/page")
    assert text.startswith(f"Address: {site.base}/page\nPart 1 of 1\n")
    assert f"The secret token is **{TOKEN}**" in text and "<p>" not in text
    assert f"[the long page]({site.base}/long)" in text
    assert read_page(f"{site.base}/page") == text  # the hidden alias


def test_long_pages_come_in_parts(site: Site, tmp_path: Path) -> None:
    _, visit_page, _ = tools(site, tmp_path, page_chars=2000)
    first = visit_page(f"{site.base}/long")
    total = int(first.split("\n")[1].split(" of ")[1].split(" ")[0])
    assert total > 5 and f"(next: visit_page('{site.base}/long', page=2))" in first
    second = visit_page(f"{site.base}/long", page=2)
    assert second.split("\n")[1].startswith(f"Part 2 of {total}") and second != first
    assert all(len(visit_page(f"{site.base}/long", page=p)) < 2200 for p in (1, total))
    assert "Paragraph 199" in visit_page(f"{site.base}/long", page=total)
    with pytest.raises(ValueError, match=f"between 1 and {total}"):
        visit_page(f"{site.base}/long", page=total + 1)
    assert site.hits["/long"] == 1  # every part came from one fetch


def test_text_and_pdf_pages(site: Site, tmp_path: Path) -> None:
    _, visit_page, _ = tools(site, tmp_path)
    assert visit_page(f"{site.base}/text").endswith(f"plain {TOKEN}")
    assert f"pdf says {TOKEN}" in visit_page(f"{site.base}/pdf")


def test_cache_persists_across_instances_and_reruns(site: Site, tmp_path: Path) -> None:
    web_search, visit_page, _ = tools(site, tmp_path)
    first = visit_page(f"{site.base}/page")
    hits = web_search("zebra", max_results=3)
    _, visit_again, _ = tools(site, tmp_path)  # a new env / a rerun, same cache folder
    search_again, _, _ = tools(site, tmp_path)
    assert visit_again(f"{site.base}/page") == first and search_again("zebra", max_results=3) == hits
    assert site.hits["/page"] == 1 and site.hits["/search"] == 1
    _, fresh, _ = tools(site, tmp_path / "other")
    fresh(f"{site.base}/page")
    assert site.hits["/page"] == 2


def test_a_grpo_group_fetches_a_page_once(site: Site, tmp_path: Path) -> None:
    site.delay = 0.2
    visits = [tools(site, tmp_path)[1] for _ in range(4)]  # four environments sharing the cache folder
    results: list[str] = []
    threads = [threading.Thread(target=lambda v=visit: results.append(v(f"{site.base}/page")))
               for visit in visits for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8 and len(set(results)) == 1 and site.hits["/page"] == 1


def test_missing_pages_are_the_agents_problem_and_cached(site: Site, tmp_path: Path) -> None:
    _, visit_page, _ = tools(site, tmp_path)
    for _ in range(2):
        with pytest.raises(PageError, match="HTTP 404"):
            visit_page(f"{site.base}/nope")
    assert site.hits["/nope"] == 1


# ----------------------------------------------------------------------------- network policy


def test_retries_with_backoff_then_success(site: Site, tmp_path: Path) -> None:
    sleep = FakeSleep()
    site.failures["/page"] = [500, 502]
    _, visit_page, _ = tools(site, tmp_path, sleep=sleep, max_retries=2, backoff=0.5)
    assert TOKEN in visit_page(f"{site.base}/page")
    assert site.hits["/page"] == 3 and sleep.waits == [0.5, 1.0]


def test_persistent_failure_is_an_infra_error_and_not_cached(site: Site, tmp_path: Path) -> None:
    sleep = FakeSleep()
    site.failures["/page"] = [503, 503, 503]
    _, visit_page, _ = tools(site, tmp_path, sleep=sleep, max_retries=2)
    with pytest.raises(InfraError) as info:
        visit_page(f"{site.base}/page")
    assert info.value.kind == "web" and "failed after 3 attempts: HTTP 503" in str(info.value)
    assert sleep.waits == [0.25, 0.25]  # the server's Retry-After
    assert TOKEN in visit_page(f"{site.base}/page")  # the outage was not cached


def test_unreachable_host_and_timeouts_are_infra_errors(site: Site, tmp_path: Path) -> None:
    _, visit_page, _ = tools(site, tmp_path, max_retries=1)
    with pytest.raises(InfraError, match="ConnectionRefused"):
        visit_page(f"http://127.0.0.1:{closed_port()}/page")
    _, visit_slow, _ = tools(site, tmp_path, max_retries=0, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(InfraError, match="timed out"):
        visit_slow(f"{site.base}/slow")
    assert time.monotonic() - started < 1.0


def test_rate_limit_spaces_requests_to_one_host(site: Site, tmp_path: Path) -> None:
    sleep = FakeSleep()
    _, visit_page, _ = tools(site, tmp_path, sleep=sleep, min_interval=0.5, cache=False)
    visit_page(f"{site.base}/page")
    visit_page(f"{site.base}/text")
    assert len(sleep.waits) == 1 and 0.4 < sleep.waits[0] <= 0.5


def test_size_cap_cuts_big_pages(site: Site, tmp_path: Path) -> None:
    _, visit_page, _ = tools(site, tmp_path, max_page_bytes=1000)
    assert "(The page was cut after its first 1,000 bytes.)" in visit_page(f"{site.base}/big")


def test_private_addresses_and_other_schemes_are_refused(site: Site, tmp_path: Path) -> None:
    _, visit_page, _ = tools(site, tmp_path, allow_private=False)
    with pytest.raises(PageError, match="private or local address"):
        visit_page(f"{site.base}/page")
    with pytest.raises(PageError, match="only http"):
        visit_page("file:///etc/passwd")
    assert site.hits["/page"] == 0
    client = HttpClient(FetchPolicy(dns_probe_host="localhost", min_interval=0))
    with pytest.raises(PageError, match="no such host"):
        client.get("http://no-such-host.invalid/")


# ----------------------------------------------------------------------------- search backends


def test_http_search_backend_get_post_and_shapes(site: Site, tmp_path: Path) -> None:
    web_search, _, _ = tools(site, tmp_path)
    hits = web_search("zebra stripes", max_results=3)
    assert hits == [{"title": f"Hit {i} for zebra stripes", "url": f"{site.base}/page?i={i}", "snippet": "snip"}
                    for i in range(3)]
    client = HttpClient(FetchPolicy(allow_private=True, min_interval=0))
    post = HTTPSearchBackend(f"{site.base}/search-post", KEY, client=client, method="POST")
    assert [h.title for h in post.search("q", 2)] == ["Hit 0 for q", "Hit 1 for q"]
    nested = HTTPSearchBackend(f"{site.base}/brave", client=client, results_path="web.results")
    assert [h.url for h in nested.search("q", 5)] == ["http://b/"]
    assert [h.url for h in HTTPSearchBackend(f"{site.base}/brave", client=client).search("q", 5)] == ["http://b/"]


def test_http_search_backend_failures_are_infra_errors(site: Site, tmp_path: Path) -> None:
    client = HttpClient(FetchPolicy(allow_private=True, min_interval=0, max_retries=0))
    with pytest.raises(InfraError, match="refused the request.*HTTP 401"):
        HTTPSearchBackend(f"{site.base}/search", "wrong-key", client=client).search("q", 3)
    with pytest.raises(InfraError, match="did not answer JSON"):
        HTTPSearchBackend(f"{site.base}/notjson", client=client).search("q", 3)
    with pytest.raises(InfraError, match="ConnectionRefused"):
        HTTPSearchBackend(f"http://127.0.0.1:{closed_port()}/s", client=client).search("q", 3)


def test_ddgs_is_the_default_and_fails_cleanly_without_a_network(tmp_path: Path) -> None:
    assert WebConfig().backend == "ddgs" and WebConfig.parse("ddgs") == WebConfig()
    proxy = f"http://127.0.0.1:{closed_port()}"  # nothing leaves this machine
    web_search, _, _ = make_web_tools(WebConfig(cache_dir=str(tmp_path), max_retries=0, timeout=5,
                                                search_options={"proxy": proxy}))
    started = time.monotonic()
    with pytest.raises(InfraError) as info:
        web_search("python programming language")
    assert info.value.kind == "web" and "web search failed after 1 attempts" in str(info.value)
    assert time.monotonic() - started < 30
    assert isinstance(DDGSBackend(), DDGSBackend)


def test_web_config_is_validated() -> None:
    with pytest.raises(ValueError, match="needs base_url"):
        WebConfig.parse({"backend": "http"})
    with pytest.raises(ValueError, match="unknown keys \\['colour'\\]"):
        WebConfig.parse({"colour": "red"})
    with pytest.raises(ValueError, match="must be 'ddgs', 'http'"):
        WebConfig.parse("bing")


# ----------------------------------------------------------------------------- inside the environment


def web_env(site: Site, tmp_path: Path, **kwargs: Any) -> gym.Env:
    web = {"backend": "http", "base_url": f"{site.base}/search", "api_key": KEY, "allow_private": True,
           "cache_dir": str(tmp_path / "cache"), "min_interval": 0.0, "max_retries": 0, "timeout": 5.0}
    task = Task("web", "What is the secret token on the zebra page?", TOKEN)
    return gym.make("ToolR1-GAIA-v0", tasks=[task], sandbox=LIGHT, web=web, **kwargs)


def test_agent_searches_and_visits_inside_the_env(site: Site, tmp_path: Path) -> None:
    env = web_env(site, tmp_path)
    try:
        prompt, _ = env.reset(options={"task_id": "web"})
        assert "def web_search(" in prompt and "def visit_page(" in prompt and "def read_page(" not in prompt
        code = ("import re\nhit = web_search('zebra facts', max_results=2)[0]\n"
                "final_answer(re.search(r'TOKEN-WEB-[0-9]+', visit_page(hit['url'])).group())")
        _, reward, terminated, _, info = env.step(code)
        assert terminated and reward == pytest.approx(1.2) and "infra_error" not in info and info["scored"]
    finally:
        env.close()


def test_a_web_outage_during_an_episode_is_an_infra_error(site: Site, tmp_path: Path) -> None:
    env = web_env(site, tmp_path)
    try:
        env.reset(options={"task_id": "web"})
        site.failures["/search"] = [503]
        obs, reward, terminated, _, info = env.step("hits = web_search('zebra')")
        assert "ToolError" in obs and "web_search() raised InfraError" in obs
        assert info["infra_kind"] == "web" and isinstance(info["infra_error"], str)
        assert "HTTP 503" in info["infra_error"]
        _, reward, terminated, _, info = env.step("final_answer('no idea')")
        assert terminated and info["infra_kind"] == "web"  # the end of the episode carries it
        env.reset(options={"task_id": "web"})
        _, _, _, _, info = env.step("print(len(web_search('zebra')))")
        assert "infra_error" not in info
    finally:
        env.close()


def test_a_judge_outage_has_kind_judge(site: Site, tmp_path: Path) -> None:
    judge = {"base_url": f"http://127.0.0.1:{closed_port()}/v1", "model": "j", "max_retries": 0, "timeout": 2.0}
    env = gym.make("ToolR1-GAIA-v0", tasks=[Task("t", "Capital of France?", "Paris")], sandbox=LIGHT, judge=judge)
    try:
        env.reset()
        _, _, terminated, _, info = env.step("final_answer('It is Paris')")
        assert terminated and info["infra_kind"] == "judge" and isinstance(info["infra_error"], str)
    finally:
        env.close()


def test_bundled_suite_keeps_its_offline_web_with_visit_page_as_an_alias() -> None:
    with pytest.raises(ValueError, match="brings its own web_search"):
        gym.make("ToolR1-GAIA-v0", tasks="validation", web="ddgs", sandbox=LIGHT)
    env = gym.make("ToolR1-GAIA-v0", tasks="validation", sandbox=LIGHT)
    try:
        prompt, _ = env.reset(seed=0)
        assert "def read_page(" in prompt and "def visit_page(" not in prompt
        code = "url = web_search('Gryrax Works')[0]['url']\nprint(visit_page(url))\nprint(read_page(url)[:40])"
        obs, *_ = env.step(code)
        assert obs.startswith("Address: https://wiki.toolr1/") and "Part 1 of 1" in obs and "Facts" in obs
    finally:
        env.close()
