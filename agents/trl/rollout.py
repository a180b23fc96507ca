"""TRL ``GRPOTrainer``'s ``rollout_func``: our multi-turn code episodes, with Tool-R1's dynamic sample queue.

    from agents.trl import make_rollout_func, toolr1_reward
    from toolr1_env.integrations.trl import task_dataset

    rollout = make_rollout_func("warmup-eval", num_envs=16, env_kwargs={"max_turns": 2, "prompt_style": "compact"},
                                conversation=Conversation(response_prefix="```py\\n", max_new_tokens=64),
                                queue=SampleQueueConfig(), demonstrations=True)
    trainer = GRPOTrainer(model, reward_funcs=[toolr1_reward], train_dataset=task_dataset("warmup-eval"),
                          args=GRPOConfig(num_generations=8, ...), rollout_func=rollout)

What one call does (TRL calls it once per generation batch with this process's prompts, each dataset row
repeated ``num_generations`` times in a row; TRL's group ``k`` is global rows ``k*G .. k*G+G-1``):

1. Read each prompt's task id (:func:`~toolr1_env.integrations.trl.row_task_id`) and group the rows as TRL will.
2. With the queue, in training: ``SampleQueue.rollouts_needed`` decides how many fresh episodes each whole group
   plays (fewer when the task keeps failing and the cache holds successes); with ``demonstrations`` each task's
   reference solution is played through the env and offered to the queue the first time the task is seen
   (:func:`agents.learner.playing.seed_queue_with_demonstrations`, the learner's own seeding).
3. Play every episode through the one episode engine (:func:`agents.learner.rollout.collect`): one batched
   generation per turn for all live episodes, all their code at once in ``ThreadVectorEnv`` sandboxes, each
   observation appended as token ids (token in / token out). Tokens come from ``trainer.model`` or TRL's vLLM
   engine (:mod:`agents.trl.generation`).
4. With the queue: ``SampleQueue.fill_group`` tops each group up and replaces members of groups without signal
   by cached successes of the same task (their token ids, masks and behaviour log-probs), exactly as our
   learner does (``agents.learner.update.build_groups``); then the online members are offered to the cache.
   Episodes with an infrastructure error stay in their group (TRL needs ``G`` rows) with reward None, which
   TRL leaves out of the baseline; they never enter the queue. A group the cache cannot fill plays the rest
   online.
5. Return :func:`agents.trl.batch.to_trl_batch` of the rows in TRL's order.

Where this differs from our learner (``agents.learner.train``): TRL computes advantages and the loss (its own
``loss_type``, clipping and normalisation); a cached sample's old log-probs are TRL's own forward pass (ratio 1
at the first pass), and only TRL's vLLM importance-sampling correction weights stale samples (see
:mod:`agents.trl.batch`). Groups split across processes (per-process batch not a multiple of ``G``) are played
but never touched by the queue, which sees only whole local groups.

State: the queue and the seed RNG are saved into every TRL checkpoint and restored on resume
(:mod:`agents.trl.checkpoint`); the first call registers the callback on the trainer.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.engine import EpisodeRequest
from agents.learner.policy import Policy
from agents.learner.records import Trajectory
from agents.learner.rollout import Conversation, RolloutStats, collect
from agents.learner.sample_queue import SampleQueue, SampleQueueConfig, is_flat
from agents.trl.batch import to_trl_batch
from agents.trl.checkpoint import SampleQueueCheckpoint, checkpoint_dir, state_file
from agents.trl.generation import PolicyCache, trainer_policy
from toolr1_env.env import TasksSpec, ToolR1Env, resolve_tasks
from toolr1_env.integrations.trl import row_task_id
from toolr1_env.tasks import TaskSet
from toolr1_env.vector import ThreadVectorEnv

STATE_FORMAT = 1


@dataclass
class TRLGroup:
    """The rows of one TRL group held by this process.

    Args:
        index: TRL's global group index (global row // ``num_generations``).
        task_id: the task every row of the group poses.
        rows: positions of the group's rows in this process's prompt list.
        full: all ``num_generations`` rows are local (the queue only acts on whole groups).
    """

    index: int
    task_id: str
    rows: list[int] = field(default_factory=list)
    full: bool = False


def trl_groups(task_ids: Sequence[str], group_size: int, first_row: int = 0) -> list[TRLGroup]:
    """Group local rows the way TRL normalises advantages: global row ``first_row + i`` is in group
    ``(first_row + i) // group_size``. Raises ``ValueError`` when a group mixes tasks."""
    groups: dict[int, TRLGroup] = {}
    for i, task_id in enumerate(task_ids):
        index = (first_row + i) // group_size
        group = groups.setdefault(index, TRLGroup(index, task_id))
        if group.task_id != task_id:
            raise ValueError(f"TRL group {index} mixes tasks {group.task_id!r} and {task_id!r}: the rollout function "
                             "needs each prompt repeated num_generations times in a row (GRPOTrainer's sampler)")
        group.rows.append(i)
    for group in groups.values():
        group.full = len(group.rows) == group_size
    return list(groups.values())


class ToolR1Rollout:
    """A ``rollout_func`` for TRL's ``GRPOTrainer`` (see the module docstring); build it with :func:`make_rollout_func`.

    Attributes:
        queue: the dynamic sample queue (None when off).
        last_trajectories: the rows returned by the latest call, in TRL's order (for inspection and tests).
        last_metrics: that call's counters (also handed to the reward function as ``rollout_metrics``).
        calls: how many times TRL called the function.
        policies: the policy every call samples from, built once (:class:`~agents.trl.generation.PolicyCache`).
    """

    def __init__(self, task_set: TaskSet | None, *, envs: ThreadVectorEnv | None, num_envs: int,
                 env_kwargs: Mapping[str, Any], conversation: Conversation, queue: SampleQueue | None,
                 demonstrations: bool, seed: int) -> None:
        if task_set is None and envs is None:
            raise ValueError("give the tasks or the envs")
        self._envs = envs
        self.task_set: TaskSet = task_set if task_set is not None else envs.envs[0].unwrapped.task_set  # type: ignore[union-attr]
        self.num_envs = envs.num_envs if envs is not None else num_envs
        self.env_kwargs = dict(env_kwargs)
        self.conversation = conversation
        self.queue = queue
        self.demonstrations = demonstrations
        self.calls = 0
        self.last_trajectories: list[Trajectory] = []
        self.last_metrics: dict[str, float] = {}
        self._rng = random.Random(seed)
        self._demonstrated: set[str] = set()
        self._bound: Any = None
        self.policies = PolicyCache()  # one Policy for every call (see agents.trl.generation)
        self.restored_step: int | None = None

    # ------------------------------------------------------------------------------------------- the call

    def __call__(self, prompts: Sequence[Any], trainer: Any) -> dict[str, Any]:
        """Play this process's prompts (``num_generations`` rows per group) and return TRL's rollout dict."""
        started = time.perf_counter()
        self._bind(trainer)
        training = bool(trainer.model.training)
        group_size = trainer.num_generations if training else trainer.num_generations_eval
        first_row = trainer.accelerator.process_index * len(prompts)
        groups = trl_groups([row_task_id(p) for p in prompts], group_size, first_row)
        queue = self.queue if training else None
        with trainer_policy(trainer, self.conversation, self.policies) as policy:
            if queue is not None and self.demonstrations:
                self._seed_demonstrations(policy, queue, {g.task_id for g in groups})
            rows, metrics = self._play_groups(policy, groups, len(prompts), queue)
            eos = policy.eos_token_ids
            close = int(policy.tokenizer.eos_token_id)
        self.calls += 1
        metrics["rollout_s"] = time.perf_counter() - started
        if queue is not None:
            stats = queue.stats()
            metrics.update({"queue_size": stats["size"], "queue_injected_total": stats["injected"],
                            "queue_hit_rate": stats["hit_rate"]})
        self.last_trajectories, self.last_metrics = rows, metrics
        return to_trl_batch(rows, eos, close, metrics)

    def _play_groups(self, policy: Policy, groups: list[TRLGroup], num_rows: int,
                     queue: SampleQueue | None) -> tuple[list[Trajectory], dict[str, float]]:
        version = policy.version
        tol = queue.config.tol if queue is not None else 1e-6
        owners = [g for g in groups for _ in range(queue.rollouts_needed(g.task_id, len(g.rows))
                                                   if queue is not None and g.full else len(g.rows))]
        online, stats = self._collect(policy, owners)
        placed: dict[int, list[Trajectory]] = {g.index: [] for g in groups}
        for group, traj in zip(owners, online, strict=True):
            placed[group.index].append(traj)
        flat_before = flat_after = 0
        for group in groups:
            clean = [t for t in placed[group.index] if t.infra_error is None]
            broken = [t for t in placed[group.index] if t.infra_error is not None]
            flat_before += (bool(clean) and is_flat([t.reward for t in clean], tol))
            if queue is not None and group.full and clean:
                clean = queue.fill_group(clean, group.task_id, version, group_size=len(group.rows) - len(broken))
            flat_after += (bool(clean) and is_flat([t.reward for t in clean], tol))
            placed[group.index] = clean + broken
        short = [g for g in groups for _ in range(len(g.rows) - len(placed[g.index]))]
        extra: list[Trajectory] = []
        if short:  # the cache held fewer usable entries than rollouts_needed counted on: play the rest online
            extra, more = self._collect(policy, short)
            stats.generated_tokens += more.generated_tokens
            stats.generation_seconds += more.generation_seconds
            stats.env_steps += more.env_steps
            for group, traj in zip(short, extra, strict=True):
                placed[group.index].append(traj)
            if queue is not None:
                queue.observe(extra)
                for traj in extra:
                    queue.add(traj, version)
        rows: list[Trajectory] = [None] * num_rows  # type: ignore[list-item]
        for group in groups:
            for position, traj in zip(group.rows, placed[group.index], strict=True):
                rows[position] = traj
        everything = online + extra
        metrics = {"episodes": float(len(everything)), "env_steps": float(stats.env_steps),
                   "generated_tokens": float(stats.generated_tokens),
                   "tokens_per_s": stats.generated_tokens / max(stats.generation_seconds, 1e-9),
                   "infra_errors": float(sum(t.infra_error is not None for t in everything)),
                   "zero_signal_before": flat_before / len(groups), "zero_signal_after": flat_after / len(groups),
                   "cached_rows": float(sum(t.source == "cache" for t in rows))}
        return rows, metrics

    def _collect(self, policy: Policy, owners: Sequence[TRLGroup]) -> tuple[list[Trajectory], RolloutStats]:
        """Play one episode per entry of ``owners`` (its group's task) through the episode engine."""
        requests = [EpisodeRequest(g.task_id, f"{self.calls}-{g.index}", seed=self._rng.randrange(2**31))
                    for g in owners]
        c = self.conversation
        return collect(policy, self.envs, requests, max_episode_tokens=c.max_episode_tokens,
                       system_prompt=c.system_prompt, response_prefix=c.response_prefix)

    def seed_demonstrations(self, trainer: Any, task_ids: Iterable[str] | None = None) -> int:
        """Seed the queue now with the reference solutions of ``task_ids`` (default: every task of a fixed task
        set), as our learner does before its first iteration, rather than when each task is first played.
        Returns the queue's size."""
        if self.queue is None:
            raise ValueError("seed_demonstrations needs the sample queue (make_rollout_func(queue=...))")
        ids = set(task_ids) if task_ids is not None else {t.task_id for t in self.task_set.tasks}
        with trainer_policy(trainer, self.conversation, self.policies) as policy:
            self._seed_demonstrations(policy, self.queue, ids)
        return len(self.queue)

    def _seed_demonstrations(self, policy: Policy, queue: SampleQueue, task_ids: set[str]) -> None:
        """Offer the reference solutions of tasks seen for the first time to the queue (the learner's seeding)."""
        from agents.learner.playing import seed_queue_with_demonstrations
        from agents.learner.train import Args

        new = sorted(task_ids - self._demonstrated)
        self._demonstrated.update(new)
        tasks = [t for t in (self.task_set.get(i) for i in new) if t.reference_solution]
        if not tasks:
            return
        c = self.conversation
        args = Args(response_prefix=c.response_prefix, max_episode_tokens=c.max_episode_tokens,
                    system_prompt=c.system_prompt or "")
        seed_queue_with_demonstrations(policy, self.envs, TaskSet("demonstrations", tasks), queue, args)

    # ------------------------------------------------------------------------------------------ the envs

    @property
    def envs(self) -> ThreadVectorEnv:
        """The vector env episodes are played on (started at first use)."""
        if self._envs is None:
            task_set, kwargs = self.task_set, self.env_kwargs
            self._envs = ThreadVectorEnv([lambda: ToolR1Env(tasks=task_set, **kwargs)] * self.num_envs)
        return self._envs

    def close(self) -> None:
        """Close the envs (their sandboxes)."""
        if self._envs is not None:
            self._envs.close()
            self._envs = None

    # ------------------------------------------------------------------------------------- checkpoints

    def _bind(self, trainer: Any) -> None:
        """At the first call with ``trainer``: register the checkpoint callback, restore state when resumed."""
        if self._bound is trainer:
            return
        self._bound = trainer
        if not any(isinstance(cb, SampleQueueCheckpoint) and cb.rollout is self
                   for cb in trainer.callback_handler.callbacks):
            trainer.add_callback(SampleQueueCheckpoint(self))
        step = int(trainer.state.global_step)
        if step > 0 and self.restored_step != step:
            folder = checkpoint_dir(trainer.args.output_dir, step)
            if self.queue is not None or state_file(folder, trainer.args.process_index).exists():
                self.load(folder, trainer.args.process_index)

    def state_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot: the queue, the seed RNG, the call count, the demonstrated tasks."""
        return {"format": STATE_FORMAT, "calls": self.calls, "rng": self._rng.getstate(),
                "queue": None if self.queue is None else self.queue.state_dict(),
                "demonstrated": sorted(self._demonstrated)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from :meth:`state_dict` (the queue's entries, counters and config included)."""
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"rollout state format {state.get('format')!r}, expected {STATE_FORMAT}")
        self.calls = int(state["calls"])
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self._demonstrated = set(state["demonstrated"])
        if state["queue"] is not None:
            if self.queue is None:
                self.queue = SampleQueue()
            self.queue.load_state_dict(state["queue"])

    def save(self, checkpoint: str | Path, process_index: int = 0) -> Path:
        """Write :meth:`state_dict` into a checkpoint folder; return the file."""
        path = state_file(checkpoint, process_index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.state_dict()))
        return path

    def load(self, checkpoint: str | Path, process_index: int = 0) -> None:
        """Restore the state saved in a checkpoint folder (``FileNotFoundError`` when it holds none)."""
        path = state_file(checkpoint, process_index)
        if not path.exists():
            raise FileNotFoundError(f"{path}: this checkpoint holds no toolr1 rollout state (was it saved by a run "
                                    "with agents.trl.make_rollout_func?)")
        self.load_state_dict(json.loads(path.read_text()))
        self.restored_step = _step_of(Path(checkpoint))


def make_rollout_func(tasks: TasksSpec | None = None, *, envs: ThreadVectorEnv | None = None, num_envs: int = 8,
                      env_kwargs: Mapping[str, Any] | None = None, conversation: Conversation | None = None,
                      queue: SampleQueue | SampleQueueConfig | bool | None = None, demonstrations: bool = False,
                      seed: int = 0) -> ToolR1Rollout:
    """A ``rollout_func`` for ``GRPOTrainer`` that plays ToolR1-GAIA-v0 code episodes (see the module docstring).

    Args:
        tasks: the task set the dataset's task ids come from (split name, GAIA folder, task JSONL, ``TaskSet``,
            list of ``Task``); the dataset itself comes from :func:`toolr1_env.integrations.trl.task_dataset`.
        envs: a ready vector env over those tasks, instead of ``num_envs`` / ``env_kwargs``.
        num_envs: parallel environments (each with a sandbox, ~130 MB); one generation batch per process is ideal.
        env_kwargs: :class:`~toolr1_env.env.ToolR1Env` arguments (``max_turns``, ``prompt_style``, ``step_timeout``...).
        conversation: system prompt, forced response prefix and token budgets (per turn and per episode),
            as for our learner.
        queue: the dynamic sample queue: a ``SampleQueue``, its ``SampleQueueConfig``, True (defaults), or None.
        demonstrations: seed the queue with each task's verified reference solution (our learner's
            ``--queue_demonstrations``).
        seed: seeds the env seeds of the episodes.
    """
    if isinstance(queue, SampleQueueConfig):
        queue = SampleQueue(queue)
    elif queue is True:
        queue = SampleQueue()
    elif queue is False:
        queue = None
    if demonstrations and queue is None:
        raise ValueError("demonstrations seed the sample queue: give queue= too")
    return ToolR1Rollout(None if tasks is None else resolve_tasks(tasks), envs=envs, num_envs=num_envs,
                         env_kwargs=env_kwargs or {}, conversation=conversation or Conversation(),
                         queue=queue, demonstrations=demonstrations, seed=seed)



def _step_of(checkpoint: Path) -> int | None:
    tail = checkpoint.name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else None
