"""A loopback proxy that ends ``transformers serve``'s streamed replies with ``data: [DONE]``.

``transformers serve`` (5.25) ends a streamed chat completion after its usage chunk without the ``data: [DONE]``
sentinel of OpenAI's protocol. The ``openai`` client tolerates that; verifiers 0.4's interception server does not
(``ProviderError: upstream stream ended before its terminal event``). The verifiers test puts this proxy in
between; everything else is passed through unchanged.

    python tests/sse_done_proxy.py <listen port> <upstream base, e.g. http://127.0.0.1:8000>
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = ""
HOP_BY_HOP = {"connection", "transfer-encoding", "keep-alive", "content-length"}


class Handler(BaseHTTPRequestHandler):
    """Forward one request; stream SSE replies line by line and add the missing sentinel."""

    protocol_version = "HTTP/1.1"

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0)) or None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
        request = urllib.request.Request(UPSTREAM + self.path, data=body, headers=headers, method=self.command)
        try:
            reply = urllib.request.urlopen(request, timeout=600)
        except urllib.error.HTTPError as exc:
            reply = exc
        streaming = "text/event-stream" in (reply.headers.get("content-type") or "")
        self.send_response(reply.status)
        for key, value in reply.headers.items():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        if not streaming:
            data = reply.read()
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        saw_done = False
        for line in reply:
            saw_done |= line.strip() == b"data: [DONE]"
            self._chunk(line)
        if not saw_done:
            self._chunk(b"data: [DONE]\n\n")
        self._chunk(b"")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    do_GET = do_POST = _forward  # noqa: N815 - http.server's method names

    def log_message(self, *args: object) -> None:  # quiet
        pass


if __name__ == "__main__":
    UPSTREAM = sys.argv[2].rstrip("/")
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
