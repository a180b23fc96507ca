"""Play any agent harness through the recording proxy and score it with the environment's own scorer.

A *harness* is any function that solves one task by calling an OpenAI-compatible server::

    def harness(call: HarnessCall) -> HarnessResult:
        client = openai.OpenAI(base_url=call.base_url, api_key="x")
        ...  # its own loop, prompts, parsing and code execution
        return HarnessResult(answer, steps=..., errors=...)

:func:`play_episodes` opens one recorded episode per (task, sample), runs the harnesses concurrently (their
calls meet in the proxy's batcher), closes each episode when its harness returns, and turns the recorded
calls into transitions (``agents.proxy.transitions``). The reward is the environment's: its judge scores the
answer against the task's ground truth and :func:`toolr1_env.reward.episode_reward` combines it with the
share of the harness's code steps that ran cleanly, exactly as ``ToolR1Env`` pays its own episodes
(:class:`EnvScorer`).

Infrastructure errors are left out, never scored: a harness that raises (a crash of its own, a refused
proxy call it did not handle), an unreachable judge. Their episodes carry ``infra_error`` and
``infra_kind`` (``"agent"`` or ``"judge"``) and :func:`~agents.proxy.transitions.training_pairs` drops them.
"""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from agents.proxy.server import ProxyServer
from agents.proxy.transitions import MergeStats, ProxyEpisode, build_transitions, finish_transitions
from toolr1_env.judge import Judge
from toolr1_env.reward import RewardWeights, episode_reward, exec_success
from toolr1_env.tasks import Task


@dataclass(frozen=True)
class HarnessCall:
    """What a harness gets for one episode: the task and the proxy base URL recording it."""

    episode_id: str
    task: Task
    base_url: str
    model: str
    api_key: str = "toolr1-proxy"


@dataclass(frozen=True)
class HarnessResult:
    """What a harness reports: its final answer (None: it gave up) and its code steps and failed steps."""

    answer: str | None
    steps: int = 0
    errors: int = 0
    truncated: bool = False


Harness = Callable[[HarnessCall], HarnessResult]


class EnvScorer:
    """The environment's reward for a harness episode: its judge and :class:`RewardWeights`.

    Build it from a ``ToolR1Env`` (``EnvScorer.of(env)``) so that proxy episodes are paid exactly as the
    env pays its own: ``answer_weight * judge score + exec_weight * clean-step share``.
    """

    def __init__(self, judge: Judge, weights: RewardWeights) -> None:
        self.judge = judge
        self.weights = weights

    @classmethod
    def of(cls, env: Any) -> EnvScorer:
        """The scorer of a ``ToolR1Env`` (its ``judge`` and ``weights``)."""
        return cls(env.judge, env.weights)

    def score(self, task: Task, result: HarnessResult) -> tuple[float, dict[str, float], str | None]:
        """``(reward, components, judge infra error or None)`` for ``result`` on ``task``."""
        success = exec_success(result.steps, result.errors)
        verdict = self.judge.judge(task.question, result.answer, task.answer)
        score = verdict.score if result.answer is not None else 0.0
        components = {"answer_score": score, "exec_success": success, "steps": float(result.steps),
                      "errors": float(result.errors), "answered": float(result.answer is not None)}
        return episode_reward(score, success, self.weights), components, verdict.infra_error


def play_one(server: ProxyServer, harness: Harness, task: Task, group_id: str, scorer: EnvScorer) -> ProxyEpisode:
    """Open an episode, run the harness, close the episode, build its transitions and score it."""
    episode_id = f"{task.task_id}-{uuid.uuid4().hex[:12]}"
    recorder = server.backend.recorder
    recorder.open(episode_id, task.task_id, group_id)
    episode = ProxyEpisode(episode_id, task.task_id, group_id)
    started = time.perf_counter()
    result: HarnessResult | None = None
    try:
        result = harness(HarnessCall(episode_id, task, server.base_url(episode_id), server.backend.config.model_name))
    except Exception as exc:  # noqa: BLE001 - a crashed harness is an infrastructure error, never a wrong answer
        episode.infra_error = f"harness crashed: {type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        episode.infra_kind = "agent"
    log = recorder.close(episode_id)
    episode.seconds = time.perf_counter() - started
    episode.transitions, episode.stats = build_transitions(log.calls, episode_id=episode_id, task_id=task.task_id,
                                                           group_id=group_id, level=task.level)
    if result is not None:
        reward, components, judge_error = scorer.score(task, result)
        if judge_error:
            episode.infra_error, episode.infra_kind = judge_error, "judge"
        episode.reward, episode.final_answer = reward, result.answer
        finish_transitions(episode.transitions, reward=reward, components=components, final_answer=result.answer,
                           truncated=result.truncated or result.answer is None, exec_errors=result.errors,
                           infra_error=episode.infra_error, infra_kind=episode.infra_kind)
    else:
        finish_transitions(episode.transitions, reward=0.0, components={}, final_answer=None, truncated=True,
                           infra_error=episode.infra_error, infra_kind=episode.infra_kind)
    return episode


def play_episodes(server: ProxyServer, harness: Harness, tasks: Sequence[Task], *, group_size: int,
                  scorer: EnvScorer, concurrency: int = 4, group_prefix: str = "") -> list[ProxyEpisode]:
    """Play ``group_size`` episodes of every task, ``concurrency`` at a time; one GRPO group per task.

    Returns the episodes in task order (a task's samples together).
    """
    if group_size < 1 or concurrency < 1:
        raise ValueError(f"need group_size >= 1 and concurrency >= 1, got {group_size}, {concurrency}")
    jobs = [(task, f"{group_prefix}{task.task_id}") for task in tasks for _ in range(group_size)]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="harness") as pool:
        futures = [pool.submit(play_one, server, harness, task, group, scorer) for task, group in jobs]
        return [f.result() for f in futures]


def merge_stats(episodes: Sequence[ProxyEpisode]) -> MergeStats:
    """The merge statistics of many episodes together (the re-rendering rate of a harness)."""
    total = MergeStats()
    for episode in episodes:
        total.add(episode.stats)
    return total
