"""HTTP for the web tools: timeouts, retries with backoff, a per-host rate limit, size caps, address checks.

Failures are sorted into two kinds, because only one of them says anything about the agent:

* :class:`PageError` (a ``LookupError``): the page itself cannot be had: HTTP 4xx (other than 408/425/429),
  a scheme other than http(s), a private address, a host name that does not exist while name resolution
  works. The agent asked for something that is not there; it reads the error and tries something else.
* :class:`~toolr1_env.infra.InfraError` (kind ``"web"``): the network failed: connection refused or
  reset, timeouts, name resolution down, HTTP 408/425/429/5xx, after ``max_retries`` retries with
  exponential backoff (``Retry-After`` is honoured up to ``max_backoff``). The episode is flagged, not
  scored.

By default private, loopback, link-local and reserved addresses are refused (the tools run on the host:
agent code must not reach the judge, a cloud metadata service or the local network through them); the
check is made on every redirect hop too. It is not proof against DNS rebinding (the name is resolved again
when connecting). ``allow_private=True`` lifts it (tests on loopback, an intranet mirror).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message
from typing import Any

from toolr1_env.infra import WEB, InfraError

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
DEFAULT_USER_AGENT = "Mozilla/5.0 (compatible; toolr1-web/0.1; research agent)"


class PageError(LookupError):
    """The page cannot be had for a reason of its own (404, bad scheme, private address, no such host)."""


@dataclass(frozen=True)
class FetchPolicy:
    """How the web tools talk to the network. Every limit applies per request unless said otherwise."""

    timeout: float = 20.0
    """Seconds to connect and to wait for each read."""
    max_retries: int = 2
    """Retries after the first attempt on network errors and HTTP 408/425/429/5xx."""
    backoff: float = 1.0
    """Seconds before the first retry; doubled before each next one."""
    max_backoff: float = 30.0
    """Longest wait before a retry (also caps a server's ``Retry-After``)."""
    min_interval: float = 1.0
    """Rate limit: seconds between the starts of two requests to the same host, counted over every client
    of the process (0: none)."""
    max_bytes: int = 10 << 20
    """Bytes read from one response; the rest is dropped and the response marked truncated."""
    user_agent: str = DEFAULT_USER_AGENT
    """The ``User-Agent`` header."""
    allow_private: bool = False
    """Allow private, loopback and link-local addresses (off: agent code cannot reach the host's network)."""
    dns_probe_host: str = "example.com"
    """A name that must resolve when the network is up: tells 'no such host' from 'name resolution down'."""


@dataclass(frozen=True)
class Response:
    """A successful (2xx) response, its body capped at ``FetchPolicy.max_bytes``."""

    url: str
    status: int
    content_type: str
    charset: str | None
    body: bytes
    truncated: bool

    def text(self) -> str:
        """The body decoded with the declared charset (UTF-8 when none), undecodable bytes replaced."""
        try:
            return self.body.decode(self.charset or "utf-8", errors="replace")
        except LookupError:  # an unknown charset name
            return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.text())


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, checking each new address like the first one."""

    def __init__(self, check: Callable[[str], None]) -> None:
        super().__init__()
        self.check = check

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        self.check(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class HttpClient:
    """GET and POST with the :class:`FetchPolicy`; thread-safe (one rate limiter per process).

    Args:
        policy: limits and address policy.
        sleep: the sleep function (tests pass a fake one).
    """

    # The rate limit is shared by every client of the process (all environments of a vector env).
    _rate_lock = threading.Lock()
    _next_start: dict[str, float] = {}

    def __init__(self, policy: FetchPolicy | None = None, sleep: Callable[[float], None] = time.sleep) -> None:
        self.policy = policy or FetchPolicy()
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_Redirects(self.check_url))

    def request(self, url: str, *, method: str = "GET", params: Mapping[str, Any] | None = None,
                json_body: Any = None, headers: Mapping[str, str] | None = None) -> Response:
        """Fetch ``url``; raise :class:`PageError` for the page's own failures, ``InfraError`` for the network's."""
        if params:
            url += ("&" if urllib.parse.urlsplit(url).query else "?") + urllib.parse.urlencode(params, doseq=True)
        self.check_url(url)
        data = None if json_body is None else json.dumps(json_body).encode("utf-8")
        all_headers = {"User-Agent": self.policy.user_agent, "Accept": "*/*", **(headers or {})}
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        last = "no attempt made"
        retry_after: float | None = None
        for attempt in range(self.policy.max_retries + 1):
            if attempt:
                wait = self.policy.backoff * 2 ** (attempt - 1) if retry_after is None else retry_after
                self._sleep(min(wait, self.policy.max_backoff))
            self._wait_turn(url)
            try:
                return self._once(urllib.request.Request(url, data=data, headers=all_headers, method=method))
            except _Retry as exc:
                last, retry_after = str(exc), exc.retry_after
        raise InfraError(WEB, f"{method} {url} failed after {self.policy.max_retries + 1} attempts: {last}")

    def get(self, url: str, **kwargs: Any) -> Response:
        """``request(url, method="GET", ...)``."""
        return self.request(url, method="GET", **kwargs)

    def check_url(self, url: str) -> None:
        """Refuse non-http(s) URLs and, unless allowed, hosts that resolve to non-public addresses."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PageError(f"only http:// and https:// addresses can be visited, got {url!r}")
        if self.policy.allow_private:
            return
        for address in self._resolve(parts.hostname, parts.port):
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not ip.is_global or ip.is_multicast:
                raise PageError(f"refusing to visit {url!r}: {parts.hostname} is a private or local address")

    def _resolve(self, host: str, port: int | None) -> list[str]:
        try:
            infos = socket.getaddrinfo(host, port or 443, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            self._name_error(host, exc)
        return [str(info[4][0]) for info in infos]

    def _name_error(self, host: str, exc: socket.gaierror) -> None:
        """Raise PageError when only this name fails to resolve, InfraError when resolution is down."""
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            try:
                socket.getaddrinfo(self.policy.dns_probe_host, 443, proto=socket.IPPROTO_TCP)
            except OSError:
                pass
            else:
                raise PageError(f"no such host: {host!r}") from None
        raise InfraError(WEB, f"cannot resolve {host!r}: {exc} (name resolution is down)") from None

    def _wait_turn(self, url: str) -> None:
        if self.policy.min_interval <= 0:
            return
        host = urllib.parse.urlsplit(url).netloc.lower()
        with self._rate_lock:
            now = time.monotonic()
            start = max(now, self._next_start.get(host, 0.0))
            self._next_start[host] = start + self.policy.min_interval
        if start > now:
            self._sleep(start - now)

    def _once(self, request: urllib.request.Request) -> Response:
        try:
            with self._opener.open(request, timeout=self.policy.timeout) as response:
                body = response.read(self.policy.max_bytes + 1)
                return _response(response.geturl(), response.status, response.headers, body, self.policy.max_bytes)
        except urllib.error.HTTPError as exc:
            if exc.code in RETRY_STATUS:
                raise _Retry(f"HTTP {exc.code} {exc.reason}", _retry_after(exc.headers)) from None
            raise PageError(f"{request.full_url} answered HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, PageError):
                raise reason from None
            if isinstance(reason, socket.gaierror):
                self._name_error(urllib.parse.urlsplit(request.full_url).hostname or "", reason)
            raise _Retry(f"{type(reason).__name__}: {reason}") from None
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
            raise _Retry(f"{type(exc).__name__}: {exc}") from None


class _Retry(Exception):
    """A failure worth retrying (the network's, not the page's)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _retry_after(headers: Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None


def _response(url: str, status: int, headers: Message, body: bytes, cap: int) -> Response:
    content_type = (headers.get_content_type() if headers is not None else "") or "application/octet-stream"
    charset = headers.get_content_charset() if headers is not None else None
    return Response(url=url, status=status, content_type=content_type, charset=charset, body=body[:cap],
                    truncated=len(body) > cap)
