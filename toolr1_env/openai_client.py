"""One way to talk to OpenAI-compatible servers: the ``openai`` client's own retries, counted.

Every caller (the LLM judge, :class:`agents.players.openai_agent.OpenAIAgent`, the vision and
transcription tools) builds its client with :func:`make_client`, so there is one retry policy: the
client's (connection errors, timeouts, HTTP 408/409/429 and 5xx are retried ``max_retries`` times with
exponential backoff from 0.5 s with jitter, honouring ``Retry-After``; other statuses fail at once,
since retrying cannot fix a wrong model name or key). :func:`count_attempts` tells how many HTTP
attempts one call took, so usage records can report retries.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import openai

_local = threading.local()


def _on_request(request: Any) -> None:
    counter = getattr(_local, "attempts", None)
    if counter is not None:
        counter.value += 1


@dataclass
class Attempts:
    """HTTP requests sent inside a :func:`count_attempts` block (on this thread)."""

    value: int = 0

    @property
    def retries(self) -> int:
        """Attempts after the first."""
        return max(self.value - 1, 0)


@contextmanager
def count_attempts() -> Iterator[Attempts]:
    """Count the HTTP attempts of the calls made on this thread inside the block (retries included)."""
    previous = getattr(_local, "attempts", None)
    _local.attempts = counter = Attempts()
    try:
        yield counter
    finally:
        _local.attempts = previous


def make_client(base_url: str, api_key: str | None = None, *, timeout: float = 120.0,
                max_retries: int = 3) -> openai.OpenAI:
    """An ``openai.OpenAI`` client whose attempts :func:`count_attempts` can see.

    ``api_key`` None uses ``$OPENAI_API_KEY``, else the placeholder ``"EMPTY"`` that local servers ignore.
    """
    if max_retries < 0 or timeout <= 0:
        raise ValueError(f"need max_retries >= 0 and timeout > 0, got {max_retries}, {timeout}")
    key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY") or "EMPTY"
    http = openai.DefaultHttpxClient(event_hooks={"request": [_on_request]})
    return openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=max_retries,
                         http_client=http)


def is_transient(exc: BaseException) -> bool:
    """The client gave up on a failure that retrying could have fixed (outage, timeout, 408/409/429/5xx)."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(exc, openai.APIStatusError) and status is not None and (status in (408, 409, 429)
                                                                              or status >= 500)


def error_text(exc: BaseException) -> str:
    """A short readable description: ``InternalServerError: HTTP 500: <message>`` or ``APIConnectionError: ...``."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        message = None
        if isinstance(body, dict):
            inner = body.get("error", body)
            message = inner.get("message") if isinstance(inner, dict) else inner
        return f"{type(exc).__name__}: HTTP {exc.status_code}: {str(message or exc.message or 'no message')[:300]}"
    return f"{type(exc).__name__}: {exc}"
