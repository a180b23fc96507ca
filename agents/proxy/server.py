"""The proxy's HTTP face: an OpenAI-compatible chat-completions endpoint per episode, on loopback.

Each episode has its own base URL, ``http://127.0.0.1:<port>/episodes/<episode_id>/v1``: a harness is
configured with it exactly as with any OpenAI-compatible server (``openai.OpenAI(base_url=...)``,
smolagents' ``OpenAIServerModel(api_base=...)``), and needs no change to be recorded. Routes:

* ``POST /episodes/{id}/v1/chat/completions``: plain (a ``chat.completion``) or ``stream: true`` (server-sent
  ``chat.completion.chunk`` events, then ``data: [DONE]``; the completion is sampled whole, then streamed,
  with the usage chunk when ``stream_options.include_usage``).
* ``GET /episodes/{id}/v1/models``: the one served model.
* ``GET /health``.

A refused request (:class:`~agents.proxy.recorder.ProxyRequestError`) gets the OpenAI error body
``{"error": {"message", "type", "code"}}`` with its status (400, 404 for an unknown episode or model,
409 for a finished episode); the proxy keeps serving. A failure of the policy itself is a 500.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request  # the serve extra (transformers[serving]) installs fastapi and uvicorn
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from agents.proxy.backend import ChatRequest, Completion, PolicyBackend
from agents.proxy.recorder import ProxyRequestError


def completion_body(request: ChatRequest, completion: Completion, model: str) -> dict[str, Any]:
    """A ``chat.completion`` response object."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.text},
                     "finish_reason": completion.finish_reason, "logprobs": None}],
        "usage": _usage(completion),
    }


def _usage(completion: Completion) -> dict[str, int]:
    return {"prompt_tokens": completion.prompt_tokens, "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens}


def stream_events(request: ChatRequest, completion: Completion, model: str) -> Iterator[str]:
    """The server-sent events of a streamed response (role, content, finish, optional usage, ``[DONE]``)."""
    head = {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": model}

    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        return f"data: {json.dumps({**head, 'choices': choices, **extra})}\n\n"

    yield event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    if completion.text:
        yield event([{"index": 0, "delta": {"content": completion.text}, "finish_reason": None}])
    yield event([{"index": 0, "delta": {}, "finish_reason": completion.finish_reason}])
    if request.include_usage:
        yield event([], usage=_usage(completion))
    yield "data: [DONE]\n\n"


def error_body(exc: ProxyRequestError) -> dict[str, Any]:
    """The OpenAI error object for a refused request."""
    return {"error": {"message": str(exc), "type": "invalid_request_error", "code": exc.code, "param": None}}


def build_app(backend: PolicyBackend) -> Any:
    """The FastAPI application serving ``backend`` (see the module docstring)."""
    app = FastAPI(title="toolr1 recording proxy")
    model = backend.config.model_name

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model": model, "open_episodes": len(backend.recorder.open_episodes)}

    @app.get("/episodes/{episode_id}/v1/models")
    def models(episode_id: str) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model, "object": "model", "created": 0, "owned_by": "toolr1"}]}

    @app.post("/episodes/{episode_id}/v1/chat/completions")
    async def chat(episode_id: str, http: Request) -> Any:
        try:
            body = await http.json()
        except ValueError:
            return JSONResponse(error_body(ProxyRequestError("the body is not JSON")), status_code=400)
        try:  # sampling blocks: in a worker thread, so concurrent episodes reach the batcher together
            request, completion = await run_in_threadpool(backend.complete, episode_id, body)
        except ProxyRequestError as exc:
            return JSONResponse(error_body(exc), status_code=exc.status)
        if request.stream:
            return StreamingResponse(stream_events(request, completion, model), media_type="text/event-stream")
        return completion_body(request, completion, model)

    return app


class ProxyServer:
    """Run :func:`build_app` with uvicorn in a background thread on ``host:port`` (0 picks a free port).

    Use as a context manager; :meth:`base_url` gives an episode's OpenAI base URL.
    """

    def __init__(self, backend: PolicyBackend, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.backend = backend
        self.host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.port = self._socket.getsockname()[1]
        config = uvicorn.Config(build_app(backend), log_level="warning", access_log=False, timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="proxy-server", daemon=True)

    def start(self) -> ProxyServer:
        """Start serving (idempotent); return once the server accepts connections."""
        if self._thread.is_alive():
            return self
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the proxy did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        return self

    def base_url(self, episode_id: str) -> str:
        """The OpenAI base URL a harness uses for ``episode_id``."""
        return f"http://{self.host}:{self.port}/episodes/{episode_id}/v1"

    def stop(self) -> None:
        """Stop the server and the backend's sampling thread."""
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()
        self.backend.close()

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
