"""What the proxy records: every chat-completion call of every episode, token ids and sampler log-probs.

An episode is opened before its harness runs (:meth:`Recorder.open`), receives one :class:`CallRecord` per
successful completion (:meth:`Recorder.record`), and is closed once (:meth:`Recorder.close`), which returns
its calls in order. A call for an episode that was never opened, or that is already closed, raises
:class:`UnknownEpisodeError` / :class:`FinishedEpisodeError` *before* anything is sampled or recorded, so a
late or misrouted request can never leak into another episode's training data.

Token in, token out. Besides the calls, each open episode keeps the *conversation so far as token ids*
(:attr:`EpisodeLog.context`): the messages of the last call, the ids the model saw and sampled, and the
text the harness received. When the next request repeats those messages, adds the returned assistant text
unchanged and one new observation message, the proxy continues from those ids instead of re-tokenising the
chat (``agents.proxy.backend``): the recorded prompt then extends the previous call's tokens exactly, and
``agents.proxy.transitions`` merges the two calls into one sequence.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class ProxyRequestError(ValueError):
    """A request the proxy refuses; ``status`` and ``code`` become the OpenAI-style error the harness sees."""

    status = 400
    code = "invalid_request_error"

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code


class UnknownEpisodeError(ProxyRequestError):
    """The request names an episode the recorder never opened."""

    status = 404
    code = "unknown_episode"


class FinishedEpisodeError(ProxyRequestError):
    """The request names an episode that has already ended (its calls are already training samples)."""

    status = 409
    code = "episode_finished"


@dataclass(frozen=True)
class CallRecord:
    """One chat completion as the policy saw and produced it.

    Args:
        prompt_ids: the exact token ids the policy was conditioned on.
        completion_ids: the sampled token ids (including the end-of-turn token or the token that completed a
            stop string).
        logprobs: the sampler's log-prob of each completion token (``Policy.sample``'s, tempered), same length.
        finish_reason: ``"stop"``, ``"eos"`` or ``"length"`` (as in :class:`~agents.learner.records.Generation`).
        text: the content returned to the harness (stop sequences cut, as OpenAI does).
        policy_version: ``Policy.version`` of the weights that sampled it.
        continued: True when the prompt continued the previous call's token ids (no re-tokenisation).
    """

    prompt_ids: tuple[int, ...]
    completion_ids: tuple[int, ...]
    logprobs: tuple[float, ...]
    finish_reason: str
    text: str
    policy_version: int = 0
    continued: bool = False

    def __post_init__(self) -> None:
        if len(self.completion_ids) != len(self.logprobs):
            raise ValueError(f"{len(self.completion_ids)} completion ids but {len(self.logprobs)} log-probs")


@dataclass
class Context:
    """The token-level state after an episode's last call (see the module docstring)."""

    messages: list[dict[str, str]]
    token_ids: list[int]
    reply: str
    ended_with_eos: bool


@dataclass
class EpisodeLog:
    """One episode's calls, in order, and its token-level context."""

    episode_id: str
    task_id: str = ""
    group_id: str = ""
    calls: list[CallRecord] = field(default_factory=list)
    context: Context | None = None
    finished: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


class Recorder:
    """Thread-safe registry of open episodes and their recorded calls."""

    def __init__(self) -> None:
        self._episodes: dict[str, EpisodeLog] = {}
        self._closed: set[str] = set()
        self._lock = threading.Lock()

    def open(self, episode_id: str, task_id: str = "", group_id: str = "", **metadata: Any) -> EpisodeLog:
        """Start recording ``episode_id`` (ids are single-use: an id seen before is refused)."""
        if not episode_id or "/" in episode_id:
            raise ValueError(f"an episode id is a non-empty string without '/', got {episode_id!r}")
        with self._lock:
            if episode_id in self._episodes or episode_id in self._closed:
                raise ValueError(f"episode {episode_id!r} was already opened; episode ids are single-use")
            log = EpisodeLog(episode_id, task_id, group_id, metadata=dict(metadata))
            self._episodes[episode_id] = log
            return log

    def get(self, episode_id: str) -> EpisodeLog:
        """The open episode ``episode_id``; raises :class:`UnknownEpisodeError` or :class:`FinishedEpisodeError`."""
        with self._lock:
            return self._open_log(episode_id)

    def _open_log(self, episode_id: str) -> EpisodeLog:
        log = self._episodes.get(episode_id)
        if log is None:
            if episode_id in self._closed:
                raise FinishedEpisodeError(f"episode {episode_id!r} has ended; its calls are no longer recorded")
            raise UnknownEpisodeError(f"no open episode {episode_id!r}: open it (Recorder.open) before the "
                                      "harness calls the proxy, and use the base URL the proxy gave for it")
        return log

    def record(self, episode_id: str, call: CallRecord, context: Context) -> None:
        """Append ``call`` to the episode and remember its token-level ``context`` (refused once closed)."""
        with self._lock:
            log = self._open_log(episode_id)
            log.calls.append(call)
            log.context = context

    def close(self, episode_id: str) -> EpisodeLog:
        """End the episode: later calls for it are refused; return its log (calls in order)."""
        with self._lock:
            log = self._open_log(episode_id)
            del self._episodes[episode_id]
            self._closed.add(episode_id)
            log.finished = True
            return log

    @property
    def open_episodes(self) -> Sequence[str]:
        """Ids of the episodes being recorded now."""
        with self._lock:
            return list(self._episodes)
