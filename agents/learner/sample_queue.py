"""The dynamic sample queue: a bounded per-task cache of successful trajectories, replayed into groups
that would otherwise teach nothing.

Tool-R1 names the idea (cache high-reward, successfully executed trajectories to cut online sampling) but
publishes no details. Our design, every number configurable in :class:`SampleQueueConfig`:

Admission (:meth:`SampleQueue.add`). An *online* trajectory enters its task's bucket when its reward is
``>= min_reward``, it has no infrastructure error, no sandbox execution error in a turn it trains on (a
repair demonstration's replayed failure is context: ``agents.learner.repairs``), was not truncated, and
generated at least one token. It is stored whole: token ids, loss mask (tool output stays masked when
replayed), behaviour log-probs, reward and the policy version that sampled it. An identical token sequence
replaces its older copy (fresher log-probs) instead of being stored twice.
With ``admit_online=False`` only demonstrations are admitted (an ablation of the queue's sources).

Capacity and eviction. At most ``per_task_capacity`` entries per task and ``total_capacity`` overall. A
full bucket evicts its worst entry (lowest reward, then oldest policy version, then oldest insertion) if
the newcomer is better; the total limit evicts the worst entry across all tasks the same way.

Staleness. Entries older than ``max_age`` policy versions are retired, and an entry is retired after
being injected ``max_reuse`` times (repeated replays of one success would overfit it). Before an update
the trainer re-scores each injected copy with the current weights (``agents.learner.update.rescore``): those
log-probs become ``old_logprobs``, so the clipped ratio is measured against the current policy, and the
stored sampler log-probs become ``behaviour_logprobs``. The loss multiplies each replayed token by the
truncated importance weight ``min(pi_now / pi_sampler, c)`` (:func:`agents.learner.grpo.truncated_importance_weights`,
``UpdateConfig.is_weight_cap``, ``--queue_is_cap``; decoupled PPO). With the default ``c = 1`` a stale sample
is never up-weighted, and tokens the policy has moved away from fade out. Demonstrations have no sampler:
their weight is 1.

Injection (:meth:`SampleQueue.fill_group`). Only into a group of the *same task* (cross-task replacement,
as in TRL's replay trainer, breaks the group baseline). Two cases:

1. *Top-up*: the group is smaller than ``group_size`` because :meth:`rollouts_needed` asked for fewer fresh
   samples; cached entries fill the gap.
2. *Zero signal*: all rewards equal within ``tol``; up to ``max_inject`` online members (from the end) are
   replaced by cached entries whose reward differs, so the recomputed group advantages are non-zero. At
   least one online member always stays.

Injected copies take the group's ``group_id`` and ``source="cache"``; the caller recomputes advantages on
the returned, mixed group.

Fewer rollouts (:meth:`rollouts_needed`). When a task's recent online success rate is below
``low_success_rate`` and its bucket holds ``k`` usable entries, sample ``group_size - min(k, max_inject)``
fresh trajectories (never fewer than ``min_fresh``): those groups would be all-failure and receive the
cached successes anyway, so the replaced rollouts would be wasted compute. Otherwise sample the full group.

Mastery (:meth:`is_mastered`). A task whose last ``mastery_window`` online outcomes were all successes is
mastered: every group would have zero signal, so the trainer may skip it.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agents.learner.records import Trajectory


@dataclass
class SampleQueueConfig:
    """Sample-queue settings (see the module docstring for the rules they drive)."""

    min_reward: float = 1.0
    """Admission threshold: the reward of a correct answer. It depends on the env's reward weights, so
    build the config with :meth:`for_reward_weights` (the trainer does): ``answer_weight`` times a full
    answer score."""
    per_task_capacity: int = 4
    """Entries kept per task."""
    total_capacity: int = 2048
    """Entries kept over all tasks."""
    max_inject: int = 2
    """Cached members per group, at most (top-up and replacement together)."""
    max_age: int = 8
    """Retire entries sampled more than this many policy versions ago."""
    max_reuse: int = 3
    """Retire an entry after this many injections."""
    tol: float = 1e-6
    """Rewards within tol are equal (zero-signal test)."""
    success_window: int = 16
    """Recent online outcomes remembered per task."""
    low_success_rate: float = 0.25
    """Below this recent success rate a task with cached successes gets fewer fresh rollouts."""
    min_fresh: int = 2
    """rollouts_needed never returns fewer than this (capped at group_size)."""
    mastery_window: int = 16
    """A task is mastered when its last mastery_window online outcomes were all successes."""
    inject_when: str = "no_success"
    """"flat": replace members only in zero-signal groups (the paper's case); "no_success": also in groups
    where no member reached ``min_reward`` (their only signal is secondary, e.g. execution success)."""
    admit_online: bool = True
    """Admit the policy's own successes (the paper's queue). False keeps only demonstrations (trajectories
    with ``metadata["demonstration"]``): an ablation that separates what each source contributes."""

    @classmethod
    def for_reward_weights(cls, answer_weight: float, **options: Any) -> SampleQueueConfig:
        """A config whose admission threshold is the reward of a correct answer under ``answer_weight``.

        Raises ``ValueError`` for ``answer_weight <= 0``: no reward would then mark a correct answer, and
        the queue would admit nothing (demonstrations included) without saying so.
        """
        if answer_weight <= 0:
            raise ValueError(f"the sample queue admits correct answers, so answer_weight must be > 0 "
                             f"(got {answer_weight}); turn the queue off instead (--use_queue false)")
        return cls(min_reward=answer_weight, **options)


@dataclass
class QueueEntry:
    """One cached trajectory and its bookkeeping."""

    trajectory: Trajectory
    reward: float
    policy_version: int
    reuse: int = 0
    seq: int = 0

    def rank(self) -> tuple[float, int, int]:
        """Sort key: larger is better (higher reward, then newer version, then newer insertion)."""
        return (self.reward, self.policy_version, self.seq)


class SampleQueue:
    """A bounded, per-task cache of successful trajectories (see the module docstring)."""

    def __init__(self, config: SampleQueueConfig | None = None) -> None:
        self.config = config or SampleQueueConfig()
        self._buckets: dict[str, list[QueueEntry]] = {}
        self._outcomes: dict[str, deque[bool]] = {}
        self._seq = 0
        self._version = 0
        self.counters: dict[str, int] = dict.fromkeys(
            ("admitted", "rejected", "evicted", "retired_age", "retired_reuse", "retired_demonstrations",
             "injected", "groups", "zero_signal_before", "zero_signal_after", "hits"), 0,
        )  # fmt: skip

    # ------------------------------------------------------------------------------- admission

    def admissible(self, trajectory: Trajectory) -> bool:
        """True when ``trajectory`` meets the admission rule (ignoring capacity and age)."""
        return (
            trajectory.source == "online"
            and (self.config.admit_online or bool(trajectory.metadata.get("demonstration")))
            and trajectory.reward >= self.config.min_reward
            and trajectory.infra_error is None
            and not trajectory.truncated
            and not trajectory.trained_execution_error
            and trajectory.num_generated_tokens > 0
        )

    def add(self, trajectory: Trajectory, current_version: int | None = None) -> bool:
        """Offer a trajectory to the cache; return True if it was stored."""
        if current_version is not None:
            self._version = max(self._version, current_version)
        too_old = self._version - trajectory.policy_version > self.config.max_age
        if not self.admissible(trajectory) or too_old:
            self.counters["rejected"] += 1
            return False
        bucket = self._buckets.setdefault(trajectory.task_id, [])
        self._seq += 1
        entry = QueueEntry(trajectory.replace(), trajectory.reward, trajectory.policy_version, 0, self._seq)
        for i, old in enumerate(bucket):
            if old.trajectory.token_ids == trajectory.token_ids:
                bucket[i] = entry  # same episode sampled again: keep the fresher log-probs
                self.counters["admitted"] += 1
                return True
        if len(bucket) >= self.config.per_task_capacity:
            worst = min(bucket, key=QueueEntry.rank)
            if worst.rank() >= entry.rank():
                self.counters["rejected"] += 1
                return False
            bucket.remove(worst)
            self.counters["evicted"] += 1
        bucket.append(entry)
        self.counters["admitted"] += 1
        while len(self) > self.config.total_capacity:
            task, worst = min(
                ((task, e) for task, b in self._buckets.items() for e in b), key=lambda item: item[1].rank()
            )
            self._remove(task, worst)
            self.counters["evicted"] += 1
        return True

    def _remove(self, task_id: str, entry: QueueEntry) -> None:
        bucket = self._buckets[task_id]
        bucket.remove(entry)
        if not bucket:
            del self._buckets[task_id]

    def retire(self, current_version: int) -> int:
        """Drop entries older than ``max_age`` versions; return how many were dropped."""
        self._version = max(self._version, current_version)
        stale = [
            (task, e)
            for task, bucket in self._buckets.items()
            for e in bucket
            if self._version - e.policy_version > self.config.max_age
        ]
        for task, entry in stale:
            self._remove(task, entry)
        self.counters["retired_age"] += len(stale)
        self.counters["retired_demonstrations"] += sum(bool(e.trajectory.metadata.get("demonstration"))
                                                       for _, e in stale)
        return len(stale)

    # ------------------------------------------------------------------------------- injection

    def fill_group(
        self,
        group: Sequence[Trajectory],
        task_id: str,
        current_version: int,
        tol: float | None = None,
        group_size: int | None = None,
        admit: bool = True,
    ) -> list[Trajectory]:
        """Return the group to train on: ``group`` topped up and, if it has no signal, mixed with successes.

        Args:
            group: the online trajectories of one group (all of task ``task_id``; infra errors removed).
            task_id: the group's task; only this task's cache entries are used.
            current_version: the learner's policy version now (for staleness).
            tol: zero-signal tolerance (default ``config.tol``).
            group_size: the intended group size; a smaller ``group`` is topped up from the cache.
            admit: afterwards, record the online outcomes and offer the online members to the cache.

        Raises:
            ValueError: a member belongs to another task, or the group is empty.
        """
        if not group:
            raise ValueError(f"fill_group: empty group for task {task_id!r}")
        wrong = sorted({t.task_id for t in group if t.task_id != task_id})
        if wrong:
            raise ValueError(f"fill_group: group for task {task_id!r} holds trajectories of tasks {wrong}")
        tol = self.config.tol if tol is None else tol
        group_id = group[0].group_id
        self.retire(current_version)
        target = max(group_size or len(group), len(group))
        online_ids = [t.token_ids for t in group]
        candidates = sorted(
            (e for e in self._buckets.get(task_id, []) if e.trajectory.token_ids not in online_ids),
            key=QueueEntry.rank,
            reverse=True,
        )
        result = list(group)
        injected = 0
        while len(result) < target and injected < self.config.max_inject and candidates:
            result.append(self._inject(task_id, candidates.pop(0), group_id, current_version))
            injected += 1
        self.counters["groups"] += 1
        if is_flat([t.reward for t in group], tol):
            self.counters["zero_signal_before"] += 1
        no_success = not any(t.reward >= self.config.min_reward for t in result)
        if is_flat([t.reward for t in result], tol) or (self.config.inject_when == "no_success" and no_success):
            # A useful entry is better than every member. A worse one (a repair that recovered from an error,
            # injected into an all-correct group) would only get a negative advantage for a correct answer.
            best = max(t.reward for t in result)
            useful = [e for e in candidates if e.reward > best + tol]
            # Replace online members from the end, keeping at least one online member.
            slot = len(group) - 1
            while useful and injected < self.config.max_inject and slot >= 1:
                result[slot] = self._inject(task_id, useful.pop(0), group_id, current_version)
                injected += 1
                slot -= 1
        if is_flat([t.reward for t in group], tol) and not is_flat([t.reward for t in result], tol):
            self.counters["hits"] += 1
        if is_flat([t.reward for t in result], tol):
            self.counters["zero_signal_after"] += 1
        if admit:
            self.observe(group)
            for trajectory in group:
                self.add(trajectory, current_version)
        return result

    def _inject(self, task_id: str, entry: QueueEntry, group_id: str, current_version: int) -> Trajectory:
        entry.reuse += 1
        self.counters["injected"] += 1
        if entry.reuse >= self.config.max_reuse:
            self._remove(task_id, entry)
            self.counters["retired_reuse"] += 1
            self.counters["retired_demonstrations"] += bool(entry.trajectory.metadata.get("demonstration"))
        copy = entry.trajectory.replace(group_id=group_id, source="cache")
        copy.metadata = {**copy.metadata, "queue_age": current_version - entry.policy_version}
        return copy

    # -------------------------------------------------------------------------- sampling budget

    def observe(self, group: Sequence[Trajectory]) -> None:
        """Record the success/failure of each online, infra-error-free member (for rates and mastery)."""
        window = max(self.config.success_window, self.config.mastery_window)
        for t in group:
            if t.source == "online" and t.infra_error is None:
                outcomes = self._outcomes.setdefault(t.task_id, deque(maxlen=window))
                outcomes.append(t.reward >= self.config.min_reward)

    def success_rate(self, task_id: str) -> float | None:
        """Fraction of successes among the task's last ``success_window`` online outcomes (None if none)."""
        outcomes = list(self._outcomes.get(task_id, ()))[-self.config.success_window :]
        return sum(outcomes) / len(outcomes) if outcomes else None

    def usable(self, task_id: str) -> int:
        """Number of cached entries of ``task_id`` that are neither stale nor used up."""
        return sum(
            1
            for e in self._buckets.get(task_id, [])
            if self._version - e.policy_version <= self.config.max_age and e.reuse < self.config.max_reuse
        )

    def rollouts_needed(self, task_id: str, group_size: int) -> int:
        """How many fresh trajectories to sample for a group of ``group_size`` (rule in the module docstring)."""
        rate = self.success_rate(task_id)
        cached = self.usable(task_id)
        if cached == 0 or rate is None or rate >= self.config.low_success_rate:
            return group_size
        return max(min(self.config.min_fresh, group_size), group_size - min(cached, self.config.max_inject))

    def is_mastered(self, task_id: str) -> bool:
        """True when the task's last ``mastery_window`` online outcomes were all successes."""
        outcomes = list(self._outcomes.get(task_id, ()))[-self.config.mastery_window :]
        return len(outcomes) >= self.config.mastery_window and all(outcomes)

    # ------------------------------------------------------------------------ stats and state

    def __len__(self) -> int:
        """Total number of cached entries."""
        return sum(len(b) for b in self._buckets.values())

    def entries(self, task_id: str) -> list[QueueEntry]:
        """The cached entries of one task (a copy of the list; entries are live)."""
        return list(self._buckets.get(task_id, []))

    def stats(self) -> dict[str, float]:
        """Counters plus size, task count, hit rate (zero-signal groups rescued), mean age and reuse."""
        entries = [e for b in self._buckets.values() for e in b]
        before = self.counters["zero_signal_before"]
        return {
            **{k: float(v) for k, v in self.counters.items()},
            "size": float(len(entries)),
            "tasks": float(len(self._buckets)),
            "hit_rate": self.counters["hits"] / before if before else 0.0,
            "mean_age": sum(self._version - e.policy_version for e in entries) / len(entries) if entries else 0.0,
            "mean_reuse": sum(e.reuse for e in entries) / len(entries) if entries else 0.0,
        }

    def state_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot (config, entries, outcome windows, counters)."""
        return {
            "config": dataclasses.asdict(self.config),
            "entries": [
                {
                    "trajectory": e.trajectory.to_dict(),
                    "reward": e.reward,
                    "policy_version": e.policy_version,
                    "reuse": e.reuse,
                    "seq": e.seq,
                }
                for b in self._buckets.values()
                for e in b
            ],  # fmt: skip
            "outcomes": {task: list(o) for task, o in self._outcomes.items()},
            "counters": dict(self.counters),
            "seq": self._seq,
            "version": self._version,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state_dict` (replaces config, entries, outcomes and counters)."""
        self.config = SampleQueueConfig(**state["config"])
        self._buckets = {}
        for item in state["entries"]:
            traj = Trajectory.from_dict(item["trajectory"])
            entry = QueueEntry(traj, item["reward"], item["policy_version"], item["reuse"], item["seq"])
            self._buckets.setdefault(traj.task_id, []).append(entry)
        window = max(self.config.success_window, self.config.mastery_window)
        self._outcomes = {task: deque(o, maxlen=window) for task, o in state["outcomes"].items()}
        self.counters.update(state["counters"])
        self._seq = state["seq"]
        self._version = state["version"]


def is_flat(rewards: Sequence[float], tol: float) -> bool:
    """Whether a group's rewards are all equal within ``tol`` (no learning signal); an empty group is flat."""
    return not rewards or max(rewards) - min(rewards) <= tol
