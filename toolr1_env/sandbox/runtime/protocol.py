"""Length-prefixed JSON frames over a stream socket: the only language host and sandbox share.

JSON, never pickle: the host reads what untrusted code may have forged, and decoding a frame must never
run code. ``ensure_ascii`` keeps lone surrogates (legal in a Python ``str``) transportable.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

HEADER = struct.Struct("!I")
#: Largest frame either side accepts; bigger ones are a protocol error (a hostile or broken peer).
MAX_FRAME_BYTES = 64 * 1024 * 1024


class ProtocolError(RuntimeError):
    """The peer closed the channel or sent something that is not a valid frame."""


def encode_frame(message: dict[str, Any]) -> bytes:
    """Serialise one message to header + JSON bytes."""
    body = json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    if len(body) > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {len(body)} bytes exceeds {MAX_FRAME_BYTES}")
    return HEADER.pack(len(body)) + body


def send_frame(sock: socket.socket, message: dict[str, Any]) -> None:
    """Send one message, blocking until it is written."""
    sock.sendall(encode_frame(message))


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(min(size, 1 << 20))
        if not chunk:
            raise ProtocolError("channel closed by peer")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> dict[str, Any]:
    """Receive one message, blocking. Raises :class:`ProtocolError` on EOF or a malformed frame."""
    (size,) = HEADER.unpack(_recv_exactly(sock, HEADER.size))
    if size > MAX_FRAME_BYTES:
        raise ProtocolError(f"peer announced a frame of {size} bytes (limit {MAX_FRAME_BYTES})")
    try:
        message = json.loads(_recv_exactly(sock, size))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(f"malformed frame: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("op"), str):
        raise ProtocolError("frame is not an object with an 'op' field")
    return message
