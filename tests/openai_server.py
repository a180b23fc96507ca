"""A tiny, real OpenAI-compatible HTTP server on 127.0.0.1 for testing judges offline.

It serves ``POST /v1/chat/completions`` from a background thread and answers like a very simple judge:
it reads the ``<ground_truth>`` and ``<prediction>`` sections of the last user message and replies
``SCORE: 1`` when the ground truth, lowercased, occurs in the prediction, lowercased (so
``"The capital is Paris"`` is accepted for ``"Paris"``, which the exact GAIA scorer rejects), else
``SCORE: 0``. A prompt without those sections gets ``SCORE: 0``.

Misbehaviour on demand, for testing retries and failures:

* ``fail_next(status, n)``: the next ``n`` requests get HTTP ``status`` with an OpenAI-shaped error body.
* ``delay``: seconds to sleep before answering each request.
* ``reply``: a fixed message content to send instead of the rule's verdict (e.g. garbage).
* ``responder``: a function from the request body (a dict) to the message content, for scripted agents'
  conversations (``reply`` wins over it).
* ``raw_body``: a fixed non-JSON body to send with HTTP 200.
* ``reasoning``: behave like an OpenAI reasoning model (o-series, gpt-5): a request holding ``max_tokens``,
  ``stop``, or a ``temperature`` other than 1 gets HTTP 400 with OpenAI's own error body for the first such
  parameter (``unsupported_parameter`` / ``unsupported_value``); ``max_completion_tokens`` is the budget, of which
  ``reasoning_tokens`` go to hidden reasoning first (an answer needs budget left over: else the content is empty
  and ``finish_reason`` is ``length``, as OpenAI does).

``transcriber``: when set, ``POST /v1/audio/transcriptions`` (multipart, as the openai client sends it)
is served too: the function gets the uploaded file's bytes and the form fields and returns the
transcript (``fail_next`` and ``delay`` apply to it as well). Vision requests are chat completions whose
user content is a list holding an ``image_url`` part; :func:`image_parts` decodes their images.

Every request (and what was done with it) is recorded in ``requests``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"

_SECTION = re.compile(r"<(ground_truth|prediction)>\n?(.*?)\n?</\1>", re.DOTALL)


def verdict_for(prompt: str) -> str:
    """The server's deterministic judging rule (see the module docstring)."""
    sections = dict(_SECTION.findall(prompt))
    truth, prediction = sections.get("ground_truth"), sections.get("prediction")
    if truth is None or prediction is None:
        return "No answer sections found.\nSCORE: 0"
    correct = truth.strip().lower() in prediction.strip().lower()
    return f"Comparing {prediction.strip()!r} with {truth.strip()!r}.\nSCORE: {1 if correct else 0}"


def image_parts(body: dict[str, Any]) -> list[tuple[str, bytes]]:
    """``(mime type, bytes)`` of every ``data:`` image in a chat request's user messages."""
    images = []
    for message in body.get("messages", []):
        content = message.get("content")
        for part in content if isinstance(content, list) else []:
            url = part.get("image_url", {}).get("url", "") if part.get("type") == "image_url" else ""
            if url.startswith("data:"):
                header, _, data = url.partition(",")
                images.append((header[5:].split(";")[0], base64.b64decode(data)))
    return images


def parse_multipart(content_type: str, raw: bytes) -> tuple[bytes, dict[str, str]]:
    """The uploaded file's bytes and the other form fields (plus ``filename``) of a multipart body."""
    message = BytesParser(policy=default_policy).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    data, fields = b"", {}
    for part in message.iter_parts():
        if part.get_filename():
            data, fields["filename"] = part.get_payload(decode=True) or b"", part.get_filename()
        else:
            fields[part.get_param("name", header="content-disposition")] = part.get_content().strip()
    return data, fields


@dataclass
class RecordedRequest:
    """One request the server received."""

    path: str
    body: dict[str, Any] | None
    status: int


class FakeOpenAIServer:
    """An OpenAI-compatible chat-completions server in a background thread; use as a context manager."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.delay = 0.0
        self.reply: str | None = None
        self.responder: Callable[[dict[str, Any]], str] | None = None
        self.raw_body: str | None = None
        self.reasoning = False
        self.reasoning_tokens = 64
        self.transcriber: Callable[[bytes, dict[str, str]], str] | None = None
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    def fail_next(self, status: int, n: int = 1) -> None:
        """Answer the next ``n`` requests with HTTP ``status``."""
        with self._lock:
            self._failures.extend([status] * n)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Requests made to the chat-completions route."""
        with self._lock:
            return [r for r in self.requests if r.path == "/v1/chat/completions"]

    def stop(self) -> None:
        """Stop serving and close the port (later connections are refused)."""
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _record(self, path: str, body: dict[str, Any] | None, status: int) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(path, body, status))

    @staticmethod
    def _reasoning_rejection(body: dict[str, Any] | None) -> dict[str, Any] | None:
        """OpenAI's 400 error body for the first parameter a reasoning model refuses, or None."""
        body = body or {}
        if "max_tokens" in body:
            return {"message": "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                               "'max_completion_tokens' instead.", "type": "invalid_request_error",
                    "param": "max_tokens", "code": "unsupported_parameter"}
        if "temperature" in body and body["temperature"] != 1:
            return {"message": f"Unsupported value: 'temperature' does not support {body['temperature']} with this "
                               "model. Only the default (1) value is supported.", "type": "invalid_request_error",
                    "param": "temperature", "code": "unsupported_value"}
        if "stop" in body:
            return {"message": "Unsupported parameter: 'stop' is not supported with this model.",
                    "type": "invalid_request_error", "param": "stop", "code": "unsupported_parameter"}
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the access log
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def _transcribe(self, raw: bytes) -> None:
                data, fields = parse_multipart(self.headers.get("Content-Type", ""), raw)
                record = {"fields": fields, "file_size": len(data)}
                if server.delay:
                    time.sleep(server.delay)
                status = server._next_failure()
                if status is not None:
                    server._record(self.path, record, status)
                    self._send(status, json.dumps({"error": {"message": f"injected HTTP {status}"}}).encode())
                    return
                server._record(self.path, record, 200)
                assert server.transcriber is not None
                self._send(200, json.dumps({"text": server.transcriber(data, fields)}).encode())

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path == TRANSCRIPTIONS_PATH and server.transcriber is not None:
                    self._transcribe(raw)
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                if self.path != "/v1/chat/completions":
                    server._record(self.path, body, 404)
                    self._send(404, json.dumps({"error": {"message": "not found"}}).encode())
                    return
                if server.delay:
                    time.sleep(server.delay)
                status = server._next_failure()
                if status is not None:
                    server._record(self.path, body, status)
                    error = {"error": {"message": f"injected HTTP {status}", "type": "test", "code": None}}
                    self._send(status, json.dumps(error).encode())
                    return
                rejection = server._reasoning_rejection(body) if server.reasoning else None
                if rejection is not None:
                    server._record(self.path, body, 400)
                    self._send(400, json.dumps({"error": rejection}).encode())
                    return
                server._record(self.path, body, 200)
                if server.raw_body is not None:
                    self._send(200, server.raw_body.encode(), content_type="text/plain")
                    return
                prompt = ""
                if isinstance(body, dict):
                    users = [m for m in body.get("messages", []) if m.get("role") == "user"]
                    prompt = str(users[-1].get("content", "")) if users else ""
                if server.reply is not None:
                    content = server.reply
                elif server.responder is not None and isinstance(body, dict):
                    content = server.responder(body)
                else:
                    content = verdict_for(prompt)
                finish, usage = "stop", {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
                if server.reasoning:  # hidden reasoning spends the budget first
                    budget = int((body or {}).get("max_completion_tokens") or 10**6)
                    spent = min(budget, server.reasoning_tokens)
                    if spent >= budget:
                        content, finish = "", "length"
                    usage = {"prompt_tokens": 1, "completion_tokens": spent + (1 if content else 0),
                             "total_tokens": spent + 2, "completion_tokens_details": {"reasoning_tokens": spent}}
                response = {
                    "id": f"chatcmpl-test-{len(server.requests)}",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": (body or {}).get("model", "test-judge"),
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": content},
                            "finish_reason": finish,
                        }
                    ],
                    "usage": usage,
                }
                self._send(200, json.dumps(response).encode())

        return Handler
