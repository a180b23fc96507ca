"""An agent behind any OpenAI-compatible chat-completions server (vLLM, ``transformers serve``, OpenAI).

The conversation, for one episode::

    system     DEFAULT_SYSTEM_PROMPT: the Thought / Code / Observation loop, code in ```py fences,
               final_answer(...) to finish
    user       the env's reset observation (the task prompt: question, files, tools, answer rules)
    assistant  "Thought: ...\\n```py\\n...\\n```<end_code>"
    user       "Observation:\\n" + what the code printed, or its error
    assistant  ...

Choices, and why:

* **Stop sequences.** The obvious stop, the closing fence, cannot be a stop string: the opening fence
  holds the same backticks (``"\\n```"`` also matches ``"Thought: ...\\n```py"``), and servers strip
  the matched stop string. Instead the prompt asks the model to end its code with ``<end_code>`` (as
  smolagents does), and ``stop=("<end_code>", "\\nObservation:")`` ends a turn there or where the
  model starts to invent an observation. Models that ignore the marker are handled client-side:
  with ``cut_after_code`` (default on) the completion is cut just after the first complete
  ```` ```py ```` block, so a hallucinated observation and any further code never run. ``stop=()``
  sends no stop sequences (for servers that reject them).
* **Retries.** Connection errors, timeouts, HTTP 408/409/429 and 5xx are retried ``max_retries`` times
  with exponential backoff (``backoff`` seconds, doubling each retry, no jitter); the openai client's
  own retries are off so this is the only policy. Other HTTP errors fail at once: retrying cannot fix a
  wrong model name or key.
* **Errors are readable.** Failures raise :class:`~agents.players.api.AgentError` subclasses whose message
  says what to check (the server address, the model name, the key), with the httpx chain suppressed:
  :class:`ServerUnreachableError`, :class:`RequestRejectedError`, :class:`BadCompletionError` (a body that
  is not a chat completion).
* **Empty completions** (``""`` or no content) become an empty action, which the env answers with a
  format-error observation; ``usage.empty_completions`` counts them.
* **Usage.** ``usage`` sums the server-reported prompt and completion tokens of the episode's calls
  (0 when a server reports none).
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

import openai

from agents.players.api import AgentError, Usage

log = logging.getLogger(__name__)

DEFAULT_SYSTEM_PROMPT = """\
You are an expert assistant who solves tasks by writing Python code. You work in a loop of Thought, Code \
and Observation steps.

At each step, first write "Thought:" and your reasoning, then the code to run in a fenced block that \
ends with <end_code>, like this:

Thought: I will compute the product with Python.
```py
result = 17 * 23
print(result)
```<end_code>

The code runs in a persistent Python interpreter: variables, imports and functions survive from one \
step to the next. You then receive an "Observation:" holding what the code printed (use print to see \
values) or the error. Write one code block per step and never write the observation yourself. When you \
know the answer, call final_answer(answer) in code; this ends the task."""

#: Stop sequences sent with each request (see the module docstring).
DEFAULT_STOP: tuple[str, ...] = ("<end_code>", "\nObservation:")
#: HTTP statuses retried besides 5xx: request timeout, conflict, rate limit.
RETRYABLE_STATUS = frozenset({408, 409, 429})

_OPEN_FENCE = re.compile(r"```[ \t]*(?:python3?|py)\b[^\n]*\n", re.IGNORECASE)
_CLOSE_FENCE = re.compile(r"\n[ \t]*```")


class ServerUnreachableError(AgentError):
    """No completion after every retry: connection refused, timeouts, 429 or 5xx."""


class RequestRejectedError(AgentError):
    """The server refused the request (HTTP 4xx other than 408/409/429): model name, key or parameters."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class BadCompletionError(AgentError):
    """The server answered 200 with something that is not a chat completion."""


def cut_after_first_code_block(text: str) -> str:
    """``text`` up to the end of its first complete ```` ```py ```` block (unchanged without one)."""
    opening = _OPEN_FENCE.search(text)
    if opening is None:
        return text
    closing = _CLOSE_FENCE.search(text, opening.end() - 1)
    return text if closing is None else text[: closing.end()]


class OpenAIAgent:
    """A chat model behind an OpenAI-compatible endpoint, as an :class:`~agents.players.api.Agent`.

    Args:
        base_url: the endpoint, e.g. ``"http://127.0.0.1:8000/v1"``.
        model: the model name sent with each request (``transformers serve``: the served folder's path).
        api_key: None uses ``$OPENAI_API_KEY`` or the placeholder ``"EMPTY"`` that local servers ignore.
        system_prompt: the system message; ``""`` sends none.
        temperature: sampling temperature (0: greedy).
        max_tokens: completion token budget per turn.
        stop: stop sequences (see the module docstring); ``()`` sends none.
        observation_prefix: put before each observation in its user message.
        cut_after_code: cut each completion after its first complete ```` ```py ```` block.
        max_retries: retries after the first attempt on connection errors, timeouts, 408/409/429, 5xx.
        backoff: seconds before the first retry; each next retry waits twice as long.
        timeout: seconds allowed for one request.
        client: an ``openai.OpenAI`` to share between agents (it should have ``max_retries=0``).
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *,
                 system_prompt: str = DEFAULT_SYSTEM_PROMPT, temperature: float = 0.0, max_tokens: int = 512,
                 stop: tuple[str, ...] | list[str] = DEFAULT_STOP, observation_prefix: str = "Observation:\n",
                 cut_after_code: bool = True, max_retries: int = 3, backoff: float = 1.0, timeout: float = 120.0,
                 client: openai.OpenAI | None = None) -> None:
        if not base_url or not model:
            raise ValueError("OpenAIAgent needs a non-empty base_url and model")
        if max_retries < 0 or backoff < 0 or timeout <= 0 or max_tokens < 1:
            raise ValueError(f"OpenAIAgent: need max_retries >= 0, backoff >= 0, timeout > 0, max_tokens >= 1; "
                             f"got {max_retries}, {backoff}, {timeout}, {max_tokens}")
        self.base_url, self.model = base_url, model
        self.system_prompt, self.temperature, self.max_tokens = system_prompt, temperature, max_tokens
        self.stop = list(stop)
        self.observation_prefix, self.cut_after_code = observation_prefix, cut_after_code
        self.max_retries, self.backoff, self.timeout = max_retries, backoff, timeout
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.client = client or openai.OpenAI(base_url=base_url, api_key=key, timeout=timeout, max_retries=0)
        self.usage = Usage()
        self.messages: list[dict[str, str]] = []
        self._turn = 0

    def __repr__(self) -> str:
        return f"OpenAIAgent(base_url={self.base_url!r}, model={self.model!r})"

    def reset(self, task_prompt: str) -> None:
        """Start an episode: system prompt, then the task prompt as the first user message."""
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        self.messages = [*system, {"role": "user", "content": task_prompt}]
        self.usage, self._turn = Usage(), 0

    def act(self, observation: str) -> str:
        """Add the observation (not on the first turn: it is the task prompt) and return the completion."""
        if not self.messages:
            raise RuntimeError("OpenAIAgent.act called before reset")
        if self._turn > 0:
            self.messages.append({"role": "user", "content": self.observation_prefix + observation})
        self._turn += 1
        text = self.complete(self.messages)
        if self.cut_after_code:
            text = cut_after_first_code_block(text)
        self.messages.append({"role": "assistant", "content": text})
        return text

    def check(self) -> None:
        """Send a one-token request; raise a readable :class:`AgentError` if the server or model is wrong."""
        self._request([{"role": "user", "content": "Say OK."}], max_tokens=1, stop=[])

    def complete(self, messages: list[dict[str, str]]) -> str:
        """One completion of ``messages`` with retries; updates ``usage``; ``""`` for an empty completion."""
        response = self._request(messages, max_tokens=self.max_tokens, stop=self.stop)
        try:
            choice = response.choices[0]
            content = choice.message.content
        except (AttributeError, IndexError, TypeError):
            raise BadCompletionError(f"{self.base_url} answered with something that is not a chat completion: "
                                     f"{str(response)[:300]!r}") from None
        if content is not None and not isinstance(content, str):
            raise BadCompletionError(f"{self.base_url}: completion content is {type(content).__name__}, not text")
        usage = getattr(response, "usage", None)
        self.usage.calls += 1
        self.usage.prompt_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
        self.usage.completion_tokens += int(getattr(usage, "completion_tokens", 0) or 0)
        if not content:
            self.usage.empty_completions += 1
            return ""
        return content

    def _request(self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str]) -> Any:
        """POST one chat completion, retrying transient failures; raise readable errors."""
        options: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature,
                                   "max_tokens": max_tokens}
        if stop:
            options["stop"] = stop
        attempts = self.max_retries + 1
        last = ""
        for attempt in range(attempts):
            if attempt:
                self.usage.retries += 1
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return self.client.chat.completions.create(**options)
            except openai.APIStatusError as exc:
                status = exc.status_code
                last = f"HTTP {status}: {_error_text(exc)}"
                if status not in RETRYABLE_STATUS and status < 500:
                    raise RequestRejectedError(self._rejection(status, _error_text(exc)), status) from None
            except openai.APIConnectionError as exc:  # also timeouts (APITimeoutError)
                last = f"{type(exc).__name__}: {exc}"
            except openai.OpenAIError as exc:
                raise BadCompletionError(f"{self.base_url}: unreadable response ({type(exc).__name__}: {exc})") \
                    from None
            log.warning("%s attempt %d/%d failed: %s", self.base_url, attempt + 1, attempts, last)
        raise ServerUnreachableError(f"no completion from {self.base_url} after {attempts} attempts (last: {last}); "
                                     "is the server running and reachable?")

    def _rejection(self, status: int, detail: str) -> str:
        hint = {
            400: f"check the model name {self.model!r} (transformers serve wants the served folder's exact path) "
                 "and the request parameters",
            401: "check the API key (api_key or $OPENAI_API_KEY)",
            403: "check the API key's permissions",
            404: f"check the model name {self.model!r} and that base_url ends with /v1",
        }.get(status, "the request was not retried")
        return f"{self.base_url} rejected the request (HTTP {status}: {detail}): {hint}"


def _error_text(exc: openai.APIStatusError) -> str:
    """The server's error message, without the client's ``Error code: ...`` wrapping."""
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)[:300]
    return (exc.message or "no message")[:300]
