"""Judges: decide at the end of an episode how right the agent's final answer is.

A :class:`Judge` turns ``(question, prediction, ground_truth)`` into a :class:`Verdict`: a score in
[0, 1], the raw text the decision came from, and ``infra_error`` when the judge itself failed (so that
training can leave the sample out instead of scoring an outage as a wrong answer).

Two judges are provided:

* :class:`ExactMatchJudge` (the default): the GAIA leaderboard's :func:`~toolr1_env.scoring.question_scorer`.
  Deterministic, offline, free, and exactly what GAIA numbers are reported with.
* :class:`LLMJudge`: an LLM behind any OpenAI-compatible ``/v1/chat/completions`` endpoint, as in the
  Tool-R1 paper (which does not name its judge). It forgives format slips the exact scorer punishes
  (``"The capital is Paris"`` for ``"Paris"``), at the price of a network call and some noise.

Choices made for :class:`LLMJudge`, and why:

* **Prompt.** :data:`DEFAULT_JUDGE_PROMPT` puts the three inputs in XML-like tags (so answers holding
  newlines or quotes cannot blur the sections) and asks for a last line ``SCORE: 1`` or ``SCORE: 0``.
  The *last* ``SCORE: <number>`` in the reply is parsed, so a model that reasons first still parses.
  A number in [0, 1] is accepted as partial credit; anything else is an unparseable reply.
* **Determinism.** ``temperature=0``.
* **Shortcuts.** A ``None`` or blank prediction scores 0 with no call (nothing to judge). With
  ``exact_match_shortcut`` (default on) a prediction the exact scorer accepts scores 1 with no call:
  the LLM would only add noise and cost there.
* **Retries.** The openai client's own (:mod:`toolr1_env.openai_client`): connection errors, timeouts,
  HTTP 408/409/429 and 5xx are retried ``max_retries`` times with exponential backoff; other HTTP errors
  (400, 401, 404: a wrong model name or key) fail at once: retrying cannot fix them.
* **Failures are flagged, never hidden.** When the judge cannot be reached or its reply cannot be
  parsed, the verdict is ``score=0.0`` with ``infra_error`` saying why, and it is *not* cached, so the
  next call tries again.
* **Cache.** Successful verdicts are cached in memory keyed by ``(question, ground_truth, prediction)``
  and, with ``cache_path``, appended to a JSONL file that a new instance reloads. Each line also records
  the model and a fingerprint of the prompt template; lines written for another model or prompt are
  ignored on load, so a cache file cannot leak verdicts across judges. A line that does not parse (a
  write cut short by a crash) is skipped with a warning.
* **Threads and processes.** One lock guards the cache and the file; it is never held during a request,
  so threads judge in parallel. A judge pickles (for subprocess vector envs): the client and lock are
  rebuilt on the other side and the in-memory cache travels with it. Several processes may append to
  the same cache file (each verdict is one short ``write`` in append mode).
* **API key.** ``api_key=None`` uses ``$OPENAI_API_KEY`` when set, else the placeholder ``"EMPTY"``
  that local servers (vLLM, ``transformers serve``) ignore.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import openai

from toolr1_env.openai_client import error_text, is_transient, make_client
from toolr1_env.scoring import question_scorer

log = logging.getLogger(__name__)

#: The judge prompt; ``{question}``, ``{ground_truth}`` and ``{prediction}`` are filled in.
DEFAULT_JUDGE_PROMPT = """\
You are grading an answer to a question. Decide whether the predicted answer means the same as the \
ground-truth answer.

Rules:
- Judge only the final answer, not how it was obtained.
- Differences in capitalisation, whitespace, articles, units written out or abbreviated, and number \
formatting (1000 vs 1,000 vs 1e3) do not matter.
- A different number, name, item or list (missing, extra or wrong elements) is incorrect.
- An answer that hedges between several options is incorrect.

<question>
{question}
</question>

<ground_truth>
{ground_truth}
</ground_truth>

<prediction>
{prediction}
</prediction>

Think briefly if you need to, then end your reply with exactly one line: "SCORE: 1" if the predicted \
answer is correct, or "SCORE: 0" if it is not."""

_SCORE_LINE = re.compile(r"SCORE\s*:\s*\**\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+))", re.IGNORECASE)


@dataclass(frozen=True)
class Verdict:
    """A judge's decision on one answer.

    Args:
        score: how right the answer is, in [0, 1] (0 when ``infra_error`` is set).
        raw: the judge's raw output, or the scorer's decision as text.
        infra_error: why the judge itself failed (unreachable, unparseable reply); None when it worked.
            A verdict with an infra error says nothing about the answer and should not be trained on.
    """

    score: float
    raw: str
    infra_error: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"Verdict.score must be in [0, 1], got {self.score!r}")


@runtime_checkable
class Judge(Protocol):
    """Anything that scores a final answer against the ground truth."""

    def judge(self, question: str, prediction: str | None, ground_truth: str) -> Verdict:
        """Return the verdict on ``prediction`` (None: the agent gave no answer)."""
        ...


class ExactMatchJudge:
    """The GAIA leaderboard scorer as a judge: score 1 or 0, deterministic and offline."""

    def judge(self, question: str, prediction: str | None, ground_truth: str) -> Verdict:
        """Score ``prediction`` with :func:`~toolr1_env.scoring.question_scorer`."""
        correct = question_scorer(prediction, ground_truth)
        return Verdict(score=1.0 if correct else 0.0, raw=f"question_scorer: {correct}")

    def __repr__(self) -> str:
        return "ExactMatchJudge()"


def parse_judge_reply(reply: str) -> float | None:
    """Return the score of the last ``SCORE: <number>`` line in ``reply``, or None if absent/out of [0, 1]."""
    matches = _SCORE_LINE.findall(reply)
    if not matches:
        return None
    score = float(matches[-1])
    return score if 0.0 <= score <= 1.0 else None


class LLMJudge:
    """An LLM behind an OpenAI-compatible chat-completions endpoint, used as a judge.

    See the module docstring for the prompt, retry, cache and failure policies.

    Args:
        base_url: the endpoint's base URL, e.g. ``"http://127.0.0.1:8000/v1"``.
        model: the model name sent with each request.
        api_key: the key; None uses ``$OPENAI_API_KEY`` or the placeholder ``"EMPTY"``.
        prompt_template: the prompt, with ``{question}``, ``{ground_truth}`` and ``{prediction}`` fields.
        max_retries: retries after the first attempt on connection errors, timeouts, 408/409/429, 5xx.
        timeout: seconds allowed for one request.
        cache_path: optional JSONL file of verdicts, reloaded at start and appended to.
        exact_match_shortcut: score 1 without a call when the exact GAIA scorer already accepts.
        request_options: extra fields of each request, e.g. ``{"reasoning_effort": "low"}``; a field set to
            None is left out (``{"temperature": None}``: reasoning models such as o3 or gpt-5 refuse
            ``temperature=0``, which is sent otherwise).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        prompt_template: str = DEFAULT_JUDGE_PROMPT,
        max_retries: int = 3,
        timeout: float = 30.0,
        cache_path: str | os.PathLike[str] | None = None,
        exact_match_shortcut: bool = True,
        request_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not base_url or not model:
            raise ValueError("LLMJudge needs a non-empty base_url and model")
        if max_retries < 0 or timeout <= 0:
            raise ValueError(f"LLMJudge: need max_retries >= 0, timeout > 0; got {max_retries}, {timeout}")
        try:
            prompt_template.format(question="", ground_truth="", prediction="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                "LLMJudge: prompt_template must use only the fields {question}, {ground_truth} and "
                f"{{prediction}} (write literal braces as {{{{ }}}}): {exc!r}"
            ) from None
        self.base_url = base_url
        self.model = model
        self.api_key = api_key
        self.prompt_template = prompt_template
        self.max_retries = max_retries
        self.timeout = timeout
        self.cache_path = os.fspath(cache_path) if cache_path is not None else None
        self.exact_match_shortcut = exact_match_shortcut
        self.request_options = dict(request_options or {})
        self._prompt_sha = hashlib.sha256(prompt_template.encode()).hexdigest()[:16]
        self._cache: dict[tuple[str, str, str], Verdict] = {}
        self._setup()
        if self.cache_path is not None:
            self._load_cache(self.cache_path)

    def _setup(self) -> None:
        self._client = make_client(self.base_url, self.api_key, timeout=self.timeout, max_retries=self.max_retries)
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_client"], state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def __repr__(self) -> str:
        return f"LLMJudge(base_url={self.base_url!r}, model={self.model!r}, cache_path={self.cache_path!r})"

    # ------------------------------------------------------------------ cache

    def _load_cache(self, path: str) -> None:
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    if rec.get("model") != self.model or rec.get("prompt_sha") != self._prompt_sha:
                        continue
                    key = (str(rec["question"]), str(rec["ground_truth"]), str(rec["prediction"]))
                    verdict = Verdict(score=float(rec["score"]), raw=str(rec["raw"]))
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    log.warning("%s, line %d: skipping unreadable judge-cache line (%s)", path, lineno, exc)
                    continue
                self._cache[key] = verdict

    def _store(self, key: tuple[str, str, str], verdict: Verdict) -> None:
        record = {
            "model": self.model,
            "prompt_sha": self._prompt_sha,
            "question": key[0],
            "ground_truth": key[1],
            "prediction": key[2],
            "score": verdict.score,
            "raw": verdict.raw,
        }
        with self._lock:
            self._cache[key] = verdict
            if self.cache_path is not None:
                parent = os.path.dirname(os.path.abspath(self.cache_path))
                os.makedirs(parent, exist_ok=True)
                with open(self.cache_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record, ensure_ascii=False) + "\n")

    def cached(self, question: str, prediction: str, ground_truth: str) -> Verdict | None:
        """Return the cached verdict for these inputs, or None."""
        with self._lock:
            return self._cache.get((question, ground_truth, prediction))

    # ------------------------------------------------------------------ judging

    def judge(self, question: str, prediction: str | None, ground_truth: str) -> Verdict:
        """Judge ``prediction``; see the class and module docstrings for shortcuts, retries and caching."""
        if prediction is None or not prediction.strip():
            return Verdict(score=0.0, raw="no prediction")
        if self.exact_match_shortcut and question_scorer(prediction, ground_truth):
            return Verdict(score=1.0, raw="exact match (question_scorer), judge not called")
        key = (question, ground_truth, prediction)
        hit = self.cached(question, prediction, ground_truth)
        if hit is not None:
            return hit
        prompt = self.prompt_template.format(
            question=question, ground_truth=ground_truth, prediction=prediction
        )
        reply, error = self._complete(prompt)
        if error is not None:
            return Verdict(score=0.0, raw=reply, infra_error=error)
        score = parse_judge_reply(reply)
        if score is None:
            return Verdict(
                score=0.0,
                raw=reply,
                infra_error=f"judge reply unparseable: no 'SCORE: <0..1>' line in {reply[-200:]!r}",
            )
        verdict = Verdict(score=score, raw=reply)
        self._store(key, verdict)
        return verdict

    def _complete(self, prompt: str) -> tuple[str, str | None]:
        """Send one prompt (the client retries); return ``(reply text, None)`` or ``(detail, infra error)``."""
        try:
            options = {"temperature": 0, **self.request_options}
            response = self._client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": prompt}],
                **{k: v for k, v in options.items() if v is not None})
        except openai.OpenAIError as exc:
            detail = error_text(exc)
            if is_transient(exc):
                return detail, f"judge unavailable at {self.base_url} after {self.max_retries + 1} attempts: {detail}"
            if isinstance(exc, openai.APIStatusError):
                return detail, f"judge rejected the request ({detail}; not retried)"
            return detail, f"judge request failed: {detail}"
        content = _message_content(response)
        if content is None:
            text = str(response)[:500]
            return text, f"judge reply unparseable: not a chat completion with text content: {text[:200]!r}"
        return content, None


def _message_content(response: Any) -> str | None:
    """The text of the first choice of a chat completion, or None when the response is not one."""
    try:
        content = response.choices[0].message.content
    except (AttributeError, IndexError, TypeError):
        return None
    return content if isinstance(content, str) else None


_LLM_JUDGE_KEYS = {
    "base_url",
    "model",
    "api_key",
    "prompt_template",
    "max_retries",
    "timeout",
    "cache_path",
    "exact_match_shortcut",
    "request_options",
}


def make_judge(spec: Judge | Mapping[str, Any] | None = None) -> Judge:
    """Build a judge from a spec.

    Args:
        spec: None for :class:`ExactMatchJudge`; a judge instance (returned as is); or a mapping of
            :class:`LLMJudge` arguments, at least ``{"base_url": ..., "model": ...}``.
    """
    if spec is None:
        return ExactMatchJudge()
    if isinstance(spec, Mapping):
        unknown = set(spec) - _LLM_JUDGE_KEYS
        if unknown:
            raise ValueError(
                f"make_judge: unknown LLMJudge option(s) {sorted(unknown)}; "
                f"allowed: {sorted(_LLM_JUDGE_KEYS)}"
            )
        missing = {"base_url", "model"} - set(spec)
        if missing:
            raise ValueError(
                f"make_judge: an LLM judge spec needs {sorted(missing)}, got keys {sorted(spec)}"
            )
        return LLMJudge(**spec)
    if isinstance(spec, Judge):
        return spec
    raise TypeError(
        f"make_judge: expected None, a Judge or a dict of LLMJudge options, got {type(spec).__name__}"
    )
