"""An agent behind any OpenAI-compatible chat-completions server (vLLM, ``transformers serve``, OpenAI).

The conversation, for one episode::

    system     DEFAULT_SYSTEM_PROMPT: the Thought / Code / Observation loop, code in ```py fences,
               final_answer(...) to finish
    user       the env's reset observation (the task prompt: question, files, tools, answer rules)
    assistant  "Thought: ...\\n```py\\n...\\n```"
    user       "Observation:\\n" + what the code printed, or its error
    assistant  ...

A policy trained by ``agents/train_grpo.py`` and served by such a server must be played with its own
run's conversation instead: :meth:`OpenAIAgent.for_run` reads it from the run (its system prompt or
none, the raw observation as the user turn, as the learner renders it, the response prefix and the
per-turn token budget). The response prefix is sent as a partial assistant message that the server
continues (``continue_final_message``, as vLLM and ``transformers serve`` accept it).

Choices, and why:

* **Stop sequences** come from the one code-action grammar (:mod:`toolr1_env.parsing`). The closing
  fence cannot be a plain stop string (the opening fence holds the same backticks, and servers strip
  the matched stop), so :data:`~toolr1_env.parsing.SERVER_STOP` (``</code>``, ``<end_code>``, an
  invented ``"\\nObservation:"``) is sent and, with ``cut_after_code`` (default on), the completion is
  cut client-side just after its first complete code block, exactly where the sampler of the learner
  stops. ``stop=()`` sends no stop sequences (for servers that reject them).
* **Retries** are the openai client's own (:mod:`toolr1_env.openai_client`): connection errors,
  timeouts, HTTP 408/409/429 and 5xx are retried ``max_retries`` times with exponential backoff; other
  HTTP errors fail at once, since retrying cannot fix a wrong model name or key. ``usage.retries``
  counts the extra attempts.
* **Errors are readable.** Failures raise :class:`~agents.players.api.AgentError` subclasses whose message
  says what to check (the server address, the model name, the key), with the httpx chain suppressed:
  :class:`ServerUnreachableError`, :class:`RequestRejectedError`, :class:`BadCompletionError` (a body that
  is not a chat completion).
* **Reasoning models** (OpenAI's o-series and gpt-5, and servers copying them) refuse ``max_tokens``, ``stop``
  and any ``temperature`` but 1 with an HTTP 400 naming the parameter. The agent then adapts and asks
  again, once per parameter and for the rest of its life (``rejected_parameters``): the budget goes as
  ``max_completion_tokens``, the temperature is left to the server (with a warning: sampling is then not
  greedy), and the stop sequences are dropped (the client-side cut still ends each turn after its first code
  block). Any other rejection fails with the server's own message. Such a model spends part of the budget on
  hidden reasoning: a completion that is empty because reasoning used the whole budget raises
  :class:`BadCompletionError` saying so (raise ``max_tokens``), instead of passing as an empty action.
* **Empty completions** (``""`` or no content) become an empty action, which the env answers with a
  format-error observation; ``usage.empty_completions`` counts them.
* **Usage.** ``usage`` sums the server-reported prompt and completion tokens of the episode's calls
  (0 when a server reports none).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import openai

from agents.players.api import AgentError, Usage
from toolr1_env.openai_client import count_attempts, error_text, is_transient, make_client
from toolr1_env.parsing import SERVER_STOP, cut_after_first_block

DEFAULT_SYSTEM_PROMPT = """\
You are an expert assistant who solves tasks by writing Python code. You work in a loop of Thought, Code \
and Observation steps.

At each step, first write "Thought:" and your reasoning, then the code to run in a fenced block, like this:

Thought: I will compute the product with Python.
```py
result = 17 * 23
print(result)
```

The code runs in a persistent Python interpreter: variables, imports and functions survive from one \
step to the next. You then receive an "Observation:" holding what the code printed (use print to see \
values) or the error. Write one code block per step and never write the observation yourself. When you \
know the answer, call final_answer(answer) in code; this ends the task."""

#: Stop sequences sent with each request (see the module docstring).
DEFAULT_STOP: tuple[str, ...] = SERVER_STOP

#: Request parameters a reasoning model may refuse, which the agent can do without (see the module docstring).
ADAPTABLE_PARAMETERS = ("max_tokens", "temperature", "stop")

_NAMED_PARAMETER = re.compile(r"'(max_tokens|temperature|stop)'")


def rejected_parameter(error: openai.APIStatusError) -> str | None:
    """The parameter of :data:`ADAPTABLE_PARAMETERS` that a 400 rejection says is unsupported, or None.

    OpenAI names it in the error body's ``param`` (code ``unsupported_parameter`` or ``unsupported_value``);
    other servers only in the message, which must then say the parameter is not supported.
    """
    if error.status_code not in (400, 422):
        return None
    message = str(getattr(error, "message", "") or error).lower()
    unsupported = "unsupported" in str(getattr(error, "code", "") or "").lower() or "support" in message
    param = getattr(error, "param", None)
    if param in ADAPTABLE_PARAMETERS and unsupported:
        return str(param)
    found = _NAMED_PARAMETER.search(message)
    return found.group(1) if found and unsupported else None


class ServerUnreachableError(AgentError):
    """No completion after every retry: connection refused, timeouts, 429 or 5xx."""


class RequestRejectedError(AgentError):
    """The server refused the request (HTTP 4xx other than 408/409/429): model name, key or parameters."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class BadCompletionError(AgentError):
    """The server answered 200 with something that is not a chat completion."""


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
        response_prefix: text every assistant turn starts with (sent for the server to continue, and
            prepended to the returned action), as a trained run's ``--response_prefix``.
        cut_after_code: cut each completion after its first complete code block.
        max_retries: the openai client's retries on connection errors, timeouts, 408/409/429, 5xx.
        timeout: seconds allowed for one request.
        client: an ``openai.OpenAI`` to share between agents (built by :func:`toolr1_env.openai_client.make_client`).
    """

    def __init__(self, base_url: str, model: str, api_key: str | None = None, *,
                 system_prompt: str = DEFAULT_SYSTEM_PROMPT, temperature: float = 0.0, max_tokens: int = 512,
                 stop: tuple[str, ...] | list[str] = DEFAULT_STOP, observation_prefix: str = "Observation:\n",
                 response_prefix: str = "", cut_after_code: bool = True, max_retries: int = 3,
                 timeout: float = 120.0, client: openai.OpenAI | None = None) -> None:
        if not base_url or not model:
            raise ValueError("OpenAIAgent needs a non-empty base_url and model")
        if max_retries < 0 or timeout <= 0 or max_tokens < 1:
            raise ValueError(f"OpenAIAgent: need max_retries >= 0, timeout > 0, max_tokens >= 1; "
                             f"got {max_retries}, {timeout}, {max_tokens}")
        self.base_url, self.model = base_url, model
        self.system_prompt, self.temperature, self.max_tokens = system_prompt, temperature, max_tokens
        self.stop = list(stop)
        self.observation_prefix, self.response_prefix = observation_prefix, response_prefix
        self.cut_after_code = cut_after_code
        self.max_retries, self.timeout = max_retries, timeout
        self.client = client or make_client(base_url, api_key, timeout=timeout, max_retries=max_retries)
        self.usage = Usage()
        self.messages: list[dict[str, str]] = []
        self.rejected_parameters: set[str] = set()  # refused by the server (a reasoning model): not sent again
        self._turn = 0

    @classmethod
    def for_run(cls, run: str | Path, base_url: str, model: str, api_key: str | None = None,
                **kwargs: Any) -> OpenAIAgent:
        """An agent that talks to a served trained policy exactly as its training run did.

        Args:
            run: the run, checkpoint or adapter folder written by ``agents/train_grpo.py``.
            base_url, model, api_key: the server serving that policy (base model plus adapter).
            **kwargs: other :class:`OpenAIAgent` options (``temperature``, ``max_retries``...); the
                conversation options (system prompt, observation framing, response prefix, ``max_tokens``)
                come from the run unless given here.
        """
        from agents.players.trained_run import TrainedRun

        conversation = TrainedRun.load(run).conversation
        kwargs.setdefault("system_prompt", conversation.system_prompt or "")
        kwargs.setdefault("observation_prefix", "")  # the learner sends the raw observation as the user turn
        kwargs.setdefault("response_prefix", conversation.response_prefix)
        kwargs.setdefault("max_tokens", conversation.max_new_tokens)
        return cls(base_url, model, api_key, **kwargs)

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
        if self.response_prefix:
            text = self.response_prefix + self.complete(
                [*self.messages, {"role": "assistant", "content": self.response_prefix}])
        else:
            text = self.complete(self.messages)
        if self.cut_after_code:
            text = cut_after_first_block(text)
        self.messages.append({"role": "assistant", "content": text})
        return text

    def check(self) -> None:
        """Send a one-token request; raise a readable :class:`AgentError` if the server or model is wrong."""
        self._request([{"role": "user", "content": "Say OK."}], max_tokens=1, stop=[])

    def complete(self, messages: list[dict[str, str]]) -> str:
        """One completion of ``messages``; updates ``usage``; ``""`` for an empty completion.

        When the last message is the assistant's, the server is asked to continue it.
        """
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
            reasoning = int(getattr(getattr(usage, "completion_tokens_details", None), "reasoning_tokens", 0) or 0)
            if reasoning and getattr(choice, "finish_reason", None) == "length":
                raise BadCompletionError(f"{self.model!r} spent the whole completion budget ({self.max_tokens} tokens) "
                                         f"on hidden reasoning ({reasoning} reasoning tokens) and wrote no answer: "
                                         "raise max_tokens (agents/evaluate.py --max_tokens)")
            self.usage.empty_completions += 1
            return ""
        return content

    def _request(self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str]) -> Any:
        """POST one chat completion (the client retries transient failures); raise readable errors."""
        while True:
            options = self._options(messages, max_tokens=max_tokens, stop=stop)
            with count_attempts() as attempts:
                try:
                    return self.client.chat.completions.create(**options)
                except openai.OpenAIError as exc:
                    failure = exc
                finally:
                    self.usage.retries += attempts.retries
            refused = rejected_parameter(failure) if isinstance(failure, openai.APIStatusError) else None
            if refused is None or refused in self.rejected_parameters:
                break
            self._adapt(refused, error_text(failure))
        detail = error_text(failure)
        if is_transient(failure):
            raise ServerUnreachableError(f"no completion from {self.base_url} after {attempts.value} attempts "
                                         f"(last: {detail}); is the server running and reachable?")
        if isinstance(failure, openai.APIStatusError):
            status = failure.status_code
            raise RequestRejectedError(self._rejection(status, detail), status)
        raise BadCompletionError(f"{self.base_url}: unreadable response ({detail})")

    def _options(self, messages: list[dict[str, str]], *, max_tokens: int, stop: list[str]) -> dict[str, Any]:
        """The request's parameters, less those the server refused (see :data:`ADAPTABLE_PARAMETERS`)."""
        options: dict[str, Any] = {"model": self.model, "messages": messages}
        budget = "max_completion_tokens" if "max_tokens" in self.rejected_parameters else "max_tokens"
        options[budget] = max_tokens
        if "temperature" not in self.rejected_parameters:
            options["temperature"] = self.temperature
        if stop and "stop" not in self.rejected_parameters:
            options["stop"] = stop
        if messages and messages[-1]["role"] == "assistant":  # a response prefix: continue that message
            options["extra_body"] = {"continue_final_message": True, "add_generation_prompt": False}
        return options

    def _adapt(self, parameter: str, detail: str) -> None:
        """Stop sending ``parameter`` (the server refused it); warn where that changes what is measured."""
        self.rejected_parameters.add(parameter)
        if parameter == "temperature" and self.temperature != 1:
            warnings.warn(f"{self.model!r} refuses temperature={self.temperature} ({detail}): sampling at the "
                          "server's default temperature instead", stacklevel=4)

    def _rejection(self, status: int, detail: str) -> str:
        hint = {
            400: f"check the model name {self.model!r} (transformers serve wants the served folder's exact path) "
                 "and the request parameters",
            401: "check the API key (api_key or $OPENAI_API_KEY)",
            403: "check the API key's permissions",
            404: f"check the model name {self.model!r} and that base_url ends with /v1",
        }.get(status, "the request was not retried")
        if status in (400, 422) and re.search(r"unsupported|not supported", detail, re.IGNORECASE):
            hint = f"{self.model!r} does not accept a parameter of this request (the server's message names it)"
        return f"{self.base_url} rejected the request ({detail}): {hint}"
