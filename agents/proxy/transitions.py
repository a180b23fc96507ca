"""Recorded calls -> training samples: merged sequences, separate transitions, one advantage per episode.

An episode's calls become :class:`~agents.learner.records.Trajectory` objects, the learner's own record:

* **Merged.** When a call's prompt starts with the previous call's prompt + completion (token for token),
  the call continues the same sequence: the new prompt tokens (the end of the assistant turn, the
  harness's observation message, the next assistant opening) are appended with mask 0, the completion with
  mask 1 and the sampler's log-probs. This is exactly the layout of our own rollout
  (:class:`~agents.learner.rollout.PolicyPlayer`), so the loss sees the same tensors.
* **Separate.** When the harness re-rendered the history (edited, summarised or re-formatted earlier turns,
  as smolagents' ``CodeAgent`` does when it appends "Calling tools: ..." to its own reply), the prompt no
  longer extends the previous tokens. The call then starts a new *transition*: its whole prompt is context
  (mask 0) and only its completion is trained. Training on a re-tokenised copy of earlier completions would
  train on tokens the policy never sampled, with log-probs it never had.

Every transition of an episode carries the episode's reward and its ``group_id``. Advantages are computed
once per *episode* (:func:`episode_advantages`: the group's mean and std over episodes, never over
transitions, so an episode that happened to be split in three does not weigh three times in its group's
baseline) and shared by its transitions. :class:`MergeStats` counts how often the harness re-rendered: the
share of calls after an episode's first that did not extend the previous call's tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agents.learner.records import Trajectory, Turn
from agents.learner.update import UpdateConfig, compute_advantages, trainable
from agents.proxy.recorder import CallRecord


@dataclass
class MergeStats:
    """How an episode's (or many episodes') calls became sequences."""

    calls: int = 0
    transitions: int = 0
    rerendered: int = 0
    """Calls after an episode's first whose prompt did not extend the previous call's tokens."""

    @property
    def rerender_rate(self) -> float:
        """Share of follow-up calls that re-rendered the history (0 when no episode had two calls)."""
        followups = self.calls - self.transitions + self.rerendered
        return self.rerendered / followups if followups else 0.0

    def add(self, other: MergeStats) -> None:
        """Accumulate ``other`` into this one."""
        self.calls += other.calls
        self.transitions += other.transitions
        self.rerendered += other.rerendered

    def as_metrics(self) -> dict[str, float]:
        """Flat metrics for the logger."""
        return {"proxy/calls": float(self.calls), "proxy/transitions": float(self.transitions),
                "proxy/rerendered": float(self.rerendered), "proxy/rerender_rate": self.rerender_rate}


def extends(prompt_ids: Sequence[int], previous: Sequence[int]) -> bool:
    """True when ``prompt_ids`` starts with every token of ``previous`` (and is longer)."""
    return len(prompt_ids) > len(previous) and list(prompt_ids[: len(previous)]) == list(previous)


def build_transitions(calls: Sequence[CallRecord], *, episode_id: str, task_id: str, group_id: str,
                      level: int = 1) -> tuple[list[Trajectory], MergeStats]:
    """Turn one episode's calls (in order) into trajectories (see the module docstring); no reward yet."""
    trajectories: list[Trajectory] = []
    stats = MergeStats(calls=len(calls))
    current: Trajectory | None = None
    for index, call in enumerate(calls):
        if current is not None and extends(call.prompt_ids, current.token_ids):
            last = current.turns[-1]
            _, last.obs_end = current.append_forced(call.prompt_ids[len(current.token_ids):])
        else:
            if current is not None:
                stats.rerendered += 1
            current = Trajectory.start(task_id, group_id, call.prompt_ids, level=level,
                                       policy_version=call.policy_version)
            current.metadata.update(episode_id=episode_id, transition=len(trajectories), first_call=index)
            trajectories.append(current)
        start, end = current.append_generated(call.completion_ids, call.logprobs)
        finish = call.finish_reason if call.finish_reason in ("stop", "eos", "length") else "stop"
        current.turns.append(Turn(start, end, end, action=call.text, finish_reason=finish))  # type: ignore[arg-type]
        current.num_turns += 1
        current.policy_version = min(current.policy_version, call.policy_version)
    stats.transitions = len(trajectories)
    for traj in trajectories:
        traj.metadata["transitions"] = len(trajectories)
        traj.check()
    return trajectories, stats


def finish_transitions(trajectories: Sequence[Trajectory], *, reward: float, components: dict[str, float],
                       final_answer: str | None, truncated: bool, infra_error: str | None = None,
                       infra_kind: str | None = None, exec_errors: int = 0) -> None:
    """Give every transition of one episode the episode's outcome (in place).

    ``exec_errors > 0`` marks the last turn of the last transition with an execution error, so the sample
    queue (which admits only cleanly executed successes) treats the episode as the env would.
    """
    for traj in trajectories:
        traj.reward = float(reward)
        traj.reward_components = dict(components)
        traj.final_answer = final_answer
        traj.truncated = truncated
        traj.infra_error, traj.infra_kind = infra_error, infra_kind
    if exec_errors and trajectories and trajectories[-1].turns:
        trajectories[-1].turns[-1].execution_error = "ExecutionError"


@dataclass
class ProxyEpisode:
    """One harness episode played through the proxy: its transitions and outcome."""

    episode_id: str
    task_id: str
    group_id: str
    transitions: list[Trajectory] = field(default_factory=list)
    stats: MergeStats = field(default_factory=MergeStats)
    reward: float = 0.0
    final_answer: str | None = None
    infra_error: str | None = None
    infra_kind: str | None = None
    seconds: float = 0.0


def episode_advantages(episodes: Sequence[ProxyEpisode], config: UpdateConfig) -> list[float]:
    """One group-normalised advantage per episode (grouped by ``group_id``; infra errors must be left out)."""
    stand_ins = [Trajectory(e.task_id, e.group_id, [0], [0], [0.0], 1, reward=e.reward) for e in episodes]
    return compute_advantages(stand_ins, config)


def training_pairs(episodes: Sequence[ProxyEpisode], config: UpdateConfig) -> list[tuple[Trajectory, float]]:
    """The ``(transition, advantage)`` pairs for :func:`agents.learner.update.update_policy`.

    Episodes with an infrastructure error (a crashed harness, an unreachable judge) are left out before the
    advantages are computed; every transition of an episode shares its episode's advantage; the learner's
    :func:`~agents.learner.update.trainable` then drops what carries no gradient.
    """
    kept = [e for e in episodes if e.infra_error is None and e.transitions]
    advantages = episode_advantages(kept, config)
    flat = [(traj, adv) for episode, adv in zip(kept, advantages, strict=True) for traj in episode.transitions]
    return trainable([t for t, _ in flat], [a for _, a in flat], config)
