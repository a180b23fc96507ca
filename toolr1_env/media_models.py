"""Host-side models behind ``inspect_file``: a vision model for images and a transcription service for audio.

Both are reached through the ``openai`` client, so any OpenAI-compatible server works (vLLM, a hosted
API, ``transformers serve``). They run on the host because they need an API key and the network; the
sandbox reads the file and sends its bytes (base64) through the host tools :data:`VISION_TOOL` and
:data:`TRANSCRIPTION_TOOL` (see :mod:`toolr1_env.readers`). The agent never sees these tools in its
prompt: it calls ``inspect_file``.

* Requests: the vision model gets one chat-completions request with the question and the image as a
  ``data:`` URL (``temperature=0``); the transcription service gets ``audio.transcriptions.create``.
* Retries: the openai client's own (``max_retries``, exponential backoff) on connection errors,
  timeouts, 408/409/429 and 5xx; ``timeout`` bounds each request.
* Failures are infrastructure errors (:class:`~toolr1_env.infra.InfraError`, kinds ``"vision"`` and
  ``"transcription"``), never a wrong answer; the agent sees a ``ToolError``.
* Cache: answers are cached on disk by (model, sha256 of the bytes, question), so reruns and GRPO groups
  ask once (:class:`~toolr1_env.web.cache.DiskCache`; ``cache_dir=None`` uses the default folder,
  ``cache=False`` turns it off).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import openai

from toolr1_env.infra import TRANSCRIPTION, VISION, InfraError
from toolr1_env.openai_client import make_client
from toolr1_env.readers import TRANSCRIPTION_TOOL, VISION_TOOL
from toolr1_env.web.cache import DiskCache, default_cache_dir


@dataclass(frozen=True)
class ModelEndpoint:
    """An OpenAI-compatible endpoint and model, with its request policy.

    Args:
        base_url: e.g. ``"http://127.0.0.1:8000/v1"``.
        model: the model name sent with each request (e.g. ``"gpt-4o"``, ``"whisper-1"``).
        api_key: None uses ``$OPENAI_API_KEY`` when set, else the placeholder ``"EMPTY"``.
        timeout: seconds allowed for one request.
        max_retries: retries of the openai client after the first attempt.
        cache: cache answers on disk.
        cache_dir: the cache folder (None: ``default_cache_dir()/<kind>``).
    """

    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 120.0
    max_retries: int = 2
    cache: bool = True
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.base_url or not self.model:
            raise ValueError("a model endpoint needs a non-empty base_url and model")
        if self.timeout <= 0 or self.max_retries < 0:
            raise ValueError(f"need timeout > 0 and max_retries >= 0, got {self.timeout}, {self.max_retries}")

    @classmethod
    def parse(cls, spec: ModelEndpoint | Mapping[str, Any] | None, what: str) -> ModelEndpoint | None:
        """``None``, a ``ModelEndpoint`` or a dict of its fields (``what`` names the argument in errors)."""
        if spec is None or isinstance(spec, ModelEndpoint):
            return spec
        if not isinstance(spec, Mapping):
            raise TypeError(f"{what} must be None, a ModelEndpoint or a dict with base_url and model, "
                            f"got {type(spec).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"{what}: unknown keys {unknown} (known: {sorted(known)})")
        return cls(**spec)

    def client(self) -> openai.OpenAI:
        """A client for this endpoint (the one way we build them: :func:`toolr1_env.openai_client.make_client`)."""
        return make_client(self.base_url, self.api_key or None, timeout=self.timeout, max_retries=self.max_retries)

    def make_cache(self, kind: str) -> DiskCache | None:
        """The answer cache for this endpoint (None when caching is off)."""
        if not self.cache:
            return None
        return DiskCache(self.cache_dir or default_cache_dir() / kind)


def _decode(data: str, what: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{what} must be base64: {exc}") from None


def _cached(cache: DiskCache | None, key: str, compute: Callable[[], str]) -> str:
    return compute() if cache is None else cache.get_or_compute("answer", key, compute)


def make_vision_tool(endpoint: ModelEndpoint) -> Callable[[str, str, str], str]:
    """The host tool :data:`~toolr1_env.readers.VISION_TOOL`: answer a question about an image."""
    client = endpoint.client()
    cache = endpoint.make_cache("vision")

    def vision_answer(image_base64: str, mime_type: str, question: str) -> str:
        """Answer ``question`` about the image (base64 bytes of type ``mime_type``) with the vision model."""
        digest = hashlib.sha256(_decode(image_base64, "image_base64")).hexdigest()

        def ask() -> str:
            content = [{"type": "text", "text": question},
                       {"type": "image_url", "image_url": {"url": f"data:{mime_type};base64,{image_base64}"}}]
            try:
                reply = client.chat.completions.create(model=endpoint.model, temperature=0,
                                                       messages=[{"role": "user", "content": content}])
                text = reply.choices[0].message.content
            except (openai.OpenAIError, IndexError, AttributeError) as exc:
                raise InfraError(VISION, f"the vision model at {endpoint.base_url} failed: "
                                         f"{type(exc).__name__}: {exc}") from None
            if not isinstance(text, str):
                raise InfraError(VISION, f"the vision model at {endpoint.base_url} sent no text")
            return text

        return _cached(cache, f"{endpoint.model}\0{digest}\0{question}", ask)

    vision_answer.__name__ = VISION_TOOL
    return vision_answer


def make_transcription_tool(endpoint: ModelEndpoint) -> Callable[[str, str], str]:
    """The host tool :data:`~toolr1_env.readers.TRANSCRIPTION_TOOL`: transcribe a recording."""
    client = endpoint.client()
    cache = endpoint.make_cache("transcription")

    def transcribe_audio(audio_base64: str, file_name: str) -> str:
        """Transcribe the recording (base64 bytes; ``file_name`` tells its format) with the service."""
        data = _decode(audio_base64, "audio_base64")

        def transcribe() -> str:
            try:
                reply = client.audio.transcriptions.create(model=endpoint.model, file=(file_name, data))
                text = reply if isinstance(reply, str) else reply.text
            except (openai.OpenAIError, AttributeError) as exc:
                raise InfraError(TRANSCRIPTION, f"the transcription service at {endpoint.base_url} failed: "
                                                f"{type(exc).__name__}: {exc}") from None
            return text

        return _cached(cache, f"{endpoint.model}\0{hashlib.sha256(data).hexdigest()}", transcribe)

    transcribe_audio.__name__ = TRANSCRIPTION_TOOL
    return transcribe_audio
