"""The proxy's model side: validate a chat-completions request, build its prompt ids, sample, record.

:class:`PolicyBackend` answers one OpenAI chat-completions request for one episode with the learner's
:class:`~agents.learner.policy.Policy`:

1. **Validate** (nothing is sampled or recorded on failure; the harness gets an OpenAI-style error):
   the episode must be open; ``model`` must be the served name; ``n`` must be 1; content must be text;
   native ``tools`` are refused (code agents write code); the prompt must fit the context.
2. **Prompt ids, token in / token out.** If the messages are the previous call's messages, then the text
   the proxy returned for it (unchanged), then one observation message, the prompt is the previous call's
   prompt + completion ids + :meth:`Policy.encode_observation` of that message: the ids the policy really
   produced, never a re-tokenised copy. Otherwise the chat template renders the messages afresh
   (:meth:`Policy.encode_prompt`), and the call becomes a separate transition (``agents.proxy.transitions``).
3. **Sample** through :class:`~agents.proxy.batcher.Batcher`, which puts concurrent requests of all
   episodes with the same sampling settings into one ``Policy.sample`` batch.
4. **Record** prompt ids, completion ids and the sampler's log-probs under the episode
   (:class:`~agents.proxy.recorder.Recorder`), then return the text (stop sequences cut, as OpenAI does).

Sampling settings: ``temperature``, ``top_p``, ``max_tokens`` or ``max_completion_tokens`` (the name
reasoning-model clients send) and ``stop`` (a string or up to 4 strings) are honoured; ``max_tokens`` is
clamped to the room left in the context. ``temperature`` and ``top_p`` are honoured only with
``ProxyConfig.honour_sampling``: by default the policy samples at its own ``PolicyConfig`` settings, the
distribution the update re-scores, so a harness's ``temperature=0.7`` cannot silently skew the
importance ratio. ``seed`` is ignored (the proxy's one generator makes a run reproducible).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.learner.policy import Policy
from agents.learner.records import Generation
from agents.proxy.batcher import Batcher, SampleJob
from agents.proxy.recorder import CallRecord, Context, ProxyRequestError, Recorder

#: Stop sequences a request may send (OpenAI's limit). Fields the proxy does not read are ignored.
_STOP_LIMIT = 4


@dataclass(frozen=True)
class ProxyConfig:
    """How the proxy serves the policy."""

    model_name: str = "toolr1-policy"
    """The model name harnesses must send (a different name is refused, as real servers do)."""
    max_context: int = 4096
    """Prompt + completion tokens allowed per call; a longer prompt is refused."""
    default_max_tokens: int = 512
    """Completion budget when the request names none."""
    max_batch: int = 16
    """Requests sampled together at most."""
    batch_wait_s: float = 0.02
    """How long the first request of a batch waits for others (concurrent episodes' calls)."""
    seed: int = 0
    """Seed of the sampling generator (a request's ``seed`` is ignored: one generator makes a run reproducible)."""
    honour_sampling: bool = False
    """Sample at the request's ``temperature``/``top_p``. Off (the default for training): the policy's own
    settings, whatever the harness sends, so the recorded log-probs are those the update re-scores."""
    stop_at_code_end: bool = False
    """Also end a turn after its first complete code block (our grammar); harnesses send their own ``stop``."""


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat-completions request."""

    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float | None
    top_p: float | None
    stop: tuple[str, ...]
    stream: bool
    include_usage: bool


def message_text(message: Mapping[str, Any], index: int) -> dict[str, str]:
    """``{"role", "content"}`` with the content as one string (text parts joined; images refused)."""
    if not isinstance(message, Mapping):
        raise ProxyRequestError(f"messages[{index}] is not an object")
    role, content = message.get("role"), message.get("content")
    if not isinstance(role, str) or not role:
        raise ProxyRequestError(f"messages[{index}] has no role")
    if message.get("tool_calls"):
        raise ProxyRequestError(f"messages[{index}] holds native tool calls; this proxy serves code agents "
                                "(tools are Python functions the model calls in its code)")
    if content is None:
        content = ""
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
                raise ProxyRequestError(f"messages[{index}]: content part of type {kind!r}; only text is served")
            texts.append(part["text"])
        content = "".join(texts)
    if not isinstance(content, str):
        raise ProxyRequestError(f"messages[{index}].content must be a string or a list of text parts")
    role = {"tool": "user", "tool-response": "user", "developer": "system"}.get(role, role)
    return {"role": role, "content": content}


def parse_request(body: Any, config: ProxyConfig) -> ChatRequest:
    """Validate a request body (see the module docstring); raise :class:`ProxyRequestError` when refused."""
    if not isinstance(body, Mapping):
        raise ProxyRequestError("the request body must be a JSON object")
    if body.get("model") != config.model_name:
        raise ProxyRequestError(f"model {body.get('model')!r} is not served here; this proxy serves "
                                f"{config.model_name!r}", status=404, code="model_not_found")
    if body.get("n", 1) not in (1, None):
        raise ProxyRequestError(f"n={body.get('n')!r}: the proxy samples one completion per request; send n "
                                "requests for n samples (each is recorded under its own episode)")
    if body.get("tools"):
        raise ProxyRequestError("native tool calling is not served: the policy acts by writing code")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ProxyRequestError("messages must be a non-empty list")
    parsed = [message_text(m, i) for i, m in enumerate(messages)]
    if parsed[-1]["role"] == "assistant":
        raise ProxyRequestError("the last message is the assistant's: continuing a partial reply is not served")
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is None:
        limit = config.default_max_tokens
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ProxyRequestError(f"max_tokens must be a positive integer, got {limit!r}")
    stop = body.get("stop") or ()
    stop = (stop,) if isinstance(stop, str) else stop
    if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) and s for s in stop) \
            or len(stop) > _STOP_LIMIT:
        raise ProxyRequestError(f"stop must be a string or up to {_STOP_LIMIT} non-empty strings")
    options = body.get("stream_options") or {}
    return ChatRequest(parsed, int(limit), _number(body, "temperature", 0.0, 2.0), _number(body, "top_p", 0.0, 1.0),
                       tuple(stop), bool(body.get("stream")), bool(options.get("include_usage")))


def _number(body: Mapping[str, Any], name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ProxyRequestError(f"{name} must be a number in [{low}, {high}], got {value!r}")
    return float(value)


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any stop sequence (OpenAI returns it without the stop)."""
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    return text[: min(cuts)] if cuts else text


@dataclass(frozen=True)
class Completion:
    """What one request produced (the server turns it into a response or a stream)."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


class PolicyBackend:
    """Answers chat-completions requests with a :class:`Policy` and records them (see the module docstring)."""

    def __init__(self, policy: Policy, recorder: Recorder | None = None, config: ProxyConfig | None = None) -> None:
        self.policy = policy
        self.recorder = recorder or Recorder()
        self.config = config or ProxyConfig()
        self.batcher = Batcher(policy, max_batch=self.config.max_batch, wait_s=self.config.batch_wait_s,
                               seed=self.config.seed, stop_at_code_end=self.config.stop_at_code_end)

    def close(self) -> None:
        """Stop the batcher's thread."""
        self.batcher.close()

    def prompt_ids(self, episode_id: str, messages: list[dict[str, str]]) -> tuple[list[int], bool]:
        """The request's prompt ids and whether they continue the episode's previous call (module docstring)."""
        context = self.recorder.get(episode_id).context
        if context is not None:
            n = len(context.messages)
            if (len(messages) == n + 2 and messages[:n] == context.messages
                    and messages[n] == {"role": "assistant", "content": context.reply}
                    and messages[n + 1]["role"] == self.policy.config.observation_role):
                return context.token_ids + self.policy.encode_observation(
                    messages[n + 1]["content"], ended_with_eos=context.ended_with_eos), True
        return self.policy.encode_prompt(messages), False

    def generate(self, episode_id: str, job: SampleJob) -> Generation:
        """The completion of one validated call: sampled by the policy, batched with concurrent calls.
        (:class:`agents.proxy.demonstrations.DemonstrationBackend` answers from a script instead.)"""
        return self.batcher.sample(job)

    def complete(self, episode_id: str, body: Any) -> tuple[ChatRequest, Completion]:
        """Validate, sample and record one request; raise :class:`ProxyRequestError` when it is refused."""
        request = parse_request(body, self.config)
        self.recorder.get(episode_id)  # unknown or finished: refused before any work
        if request.messages[0]["role"] == "system":
            self.policy.check_conversation(request.messages[0]["content"])
        prompt, continued = self.prompt_ids(episode_id, request.messages)
        room = self.config.max_context - len(prompt)
        if room < 1:
            raise ProxyRequestError(f"the prompt is {len(prompt)} tokens; the context holds {self.config.max_context}",
                                    code="context_length_exceeded")
        budget = min(request.max_tokens, room)
        honour = self.config.honour_sampling
        generation = self.generate(episode_id, SampleJob(prompt, budget, request.temperature if honour else None,
                                                         request.top_p if honour else None, request.stop))
        ids, logprobs = list(generation.token_ids), list(generation.logprobs)
        text = cut_at_stop(generation.text, request.stop) if request.stop else generation.text
        finish = "length" if generation.finish_reason == "length" else "stop"
        call = CallRecord(tuple(prompt), tuple(ids), tuple(logprobs), generation.finish_reason, text,
                          self.policy.version, continued)
        eos = bool(ids) and ids[-1] in self.policy.eos_token_ids
        self.recorder.record(episode_id, call, Context(request.messages, prompt + ids, text, eos))
        return request, Completion(text, finish, len(prompt), len(ids))
