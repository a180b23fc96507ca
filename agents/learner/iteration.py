"""One GRPO iteration: choose tasks, roll out, fill groups from the queue, advantages, update, log.

:func:`train_iteration` is what the trainer's RL phase (``agents.learner.train.rl_phase``) calls once per
iteration, and what the benchmarks drive to time our side. Its steps, in order:

1. Choose ``tasks_per_iteration`` tasks from the shared stream (mastered tasks skipped) and ``group_size``
   episode requests per task (fewer when the sample queue holds successes for a task the policy keeps failing).
2. Play them (each data-parallel process its share) and gather every episode; infra errors are left out.
3. Repair failures with demonstration turns (``fixes``), fill flat groups from the queue, advantages per group.
4. Update on this process's groups (``agents.learner.update``; with ``--rl_demo_coef`` a slice of the
   warm-up's demonstrations joins them) and bump the policy version. With ``--min_signal_groups N`` the
   trainable groups are held back (:class:`HeldUpdate`) until N of them carry signal, then trained in one
   step: the weights do not change in between, so every held episode is still on-policy when it is trained
   (adaptive batch size, the accumulating form of DAPO's dynamic sampling).
5. Metrics: rewards, groups, advantages, the update's (``update/*``, and the sampler-vs-trainer log-prob gap
   ``rollout/logprob_gap/*`` measured in its first pass), the queue's, and per-process digests
   (``dp/adapter_checksum``, ``dp/task_digest``, ``dp/queue_checksum``) that show the processes in lockstep.
"""

from __future__ import annotations

import pickle
import random
import sys
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents.engine import EpisodeRequest
from agents.learner.config import Args
from agents.learner.data_parallel import DataParallel
from agents.learner.episode_stats import episode_record
from agents.learner.heldout import episode_metrics
from agents.learner.playing import collect_everywhere, group_owner, offer_repairs
from agents.learner.policy import Policy
from agents.learner.records import Trajectory
from agents.learner.reference import AdapterSnapshot
from agents.learner.run_log import RunLog
from agents.learner.sample_queue import SampleQueue
from agents.learner.task_choice import TaskChooser
from agents.learner.update import (
    NonFiniteLossError,
    UpdateConfig,
    build_groups,
    compute_advantages,
    rescore,
    trainable,
    update_policy,
    without_infra_errors,
)
from agents.learner.warmup import anchor_batch
from toolr1_env.tasks import TaskSet
from toolr1_env.vector import ThreadVectorEnv

__all__ = ["HeldUpdate", "train_iteration"]


@dataclass
class HeldUpdate:
    """Trainable episodes held back until enough groups carry signal (``--min_signal_groups``).

    The same on every data-parallel process: ``pairs`` holds the whole batch's (trajectory, advantage) pairs
    and each process trains its share when the step comes. Kept in the checkpoint, so a killed run resumes
    with what it held.
    """

    pairs: list[tuple[Trajectory, float]] = field(default_factory=list)
    #: Distinct groups among ``pairs`` with a non-zero advantage.
    signal_groups: int = 0
    #: Iterations whose episodes ``pairs`` holds.
    iterations: int = 0


def train_iteration(iteration: int, policy: Policy, optimizer: torch.optim.Optimizer, envs: ThreadVectorEnv,
                    pool: TaskSet, queue: SampleQueue | None, config: UpdateConfig, args: Args,
                    rng: random.Random, dp: DataParallel | None = None, log: RunLog | None = None,
                    fixes: Mapping[str, list[str]] | None = None, *, chooser: TaskChooser | None = None,
                    reference: AdapterSnapshot | None = None, anchors: Sequence[Trajectory] = (),
                    held: HeldUpdate | None = None, last: bool = True) -> tuple[dict[str, float], int]:
    """Rollouts, queue, advantages and one update; returns (metrics, online rollouts spent).

    ``rng`` is the stream every process shares: it chooses the tasks (through ``chooser``, default uniform
    over ``pool``), the env seeds, and seeds this process's own stream for its shard of the update, so every
    process makes the same draws from it whatever its shard holds. With ``fixes`` (task id ->
    demonstration turns) and a queue, the iteration's failures are repaired before the groups are built
    (:func:`offer_repairs`). With ``args.rl_demo_coef`` > 0, a slice of ``anchors`` (the warm-up pool's
    played demonstrations, :func:`~agents.learner.warmup.anchor_batch`) joins the
    update. With ``log``, the online episodes go to ``<run>/episodes/train-<iteration + 1>.jsonl``.

    ``held`` (with ``args.min_signal_groups`` > 0): this iteration's trainable pairs join it, and the step is
    taken only when it holds that many signal groups or ``last`` is set (the run's last iteration trains
    whatever is held); otherwise the weights and the policy version stay as they are (``update/held`` 1).
    """
    dp = dp or DataParallel()
    chooser = chooser or TaskChooser([t.task_id for t in pool.tasks])
    mastered = {t for t in chooser.task_ids if queue.is_mastered(t)} if queue is not None else set()
    chosen = chooser.choose(args.tasks_per_iteration, rng, skip=mastered)
    requests = []
    for k, task_id in enumerate(chosen):
        fresh = queue.rollouts_needed(task_id, args.group_size) if queue is not None else args.group_size
        requests += [EpisodeRequest(task_id, f"{iteration}-{k}", seed=rng.randrange(2**31)) for _ in range(fresh)]
    shard_rng = random.Random(rng.getrandbits(64) + dp.rank)  # this process's own stream, drawn equally everywhere
    online, stats = collect_everywhere(dp, policy, envs, requests, max_episode_tokens=args.max_episode_tokens,
                                       system_prompt=args.system_prompt or None, response_prefix=args.response_prefix)
    clean = without_infra_errors(online)
    chooser.observe((t.task_id, t.reward_components.get("answer_score", 0.0) >= 1.0) for t in clean)
    if log is not None:
        log.write_episodes(f"train-{iteration + 1}", [episode_record(t) for t in online])
    repair_stats = offer_repairs(policy, envs, clean, fixes, queue, args, dp) if fixes and queue is not None else {}
    batch, group_stats = build_groups(clean, queue, policy.version, args.group_size, config.zero_signal_tol)
    advantages = compute_advantages(batch, config)
    metrics: dict[str, Any] = {**episode_metrics(clean, "reward"), **stats.as_metrics(), **chooser.stats()}
    metrics["rollout/task_ids"] = ",".join(chosen)  # which tasks, for the record
    metrics.update({**group_stats, **repair_stats, **_signal_stats(batch, advantages),
                    "rollout/infra_errors": float(len(online) - len(clean)),
                    "advantage/mean": float(np.mean(advantages)) if advantages else 0.0,
                    "advantage/std": float(np.std(advantages)) if advantages else 0.0,
                    "advantage/abs_max": float(np.max(np.abs(advantages))) if advantages else 0.0})
    for i, value in enumerate(dp.gather_objects(zlib.crc32(",".join(chosen).encode()))):
        metrics[f"dp/task_digest/rank{i}"] = float(value)
    update_start = time.perf_counter()
    held = held if held is not None else HeldUpdate()
    held.pairs += trainable(batch, advantages, config)
    held.signal_groups += len({t.group_id for t, a in zip(batch, advantages, strict=True) if a != 0.0})
    held.iterations += 1
    metrics.update({"update/held_signal_groups": float(held.signal_groups),
                    "update/held_iterations": float(held.iterations)})
    if held.signal_groups < args.min_signal_groups and not last:
        metrics["update/held"] = 1.0  # no step: the next iteration samples with the same weights
        metrics["time/update_s"] = time.perf_counter() - update_start
        return _queue_metrics(metrics, queue, dp), len(requests)
    metrics["update/held"] = 0.0
    # --lr_by_signal: the step's size follows the share of its groups that carry signal
    lr_scale = held.signal_groups / (args.tasks_per_iteration * held.iterations) if args.lr_by_signal else 1.0
    pairs, held.pairs, held.signal_groups, held.iterations = held.pairs, [], 0, 0
    owner = group_owner([t.group_id for t, _ in pairs], dp.world_size)
    mine = [pair for pair in pairs if owner[pair[0].group_id] == dp.rank]
    # --rl_demo_coef: warm-up demonstrations join the update at ratio 1 (their log-likelihood gradient).
    mixed = anchor_batch(anchors, iteration, args.rl_demo_batch, args.seed) if args.rl_demo_coef > 0 else []
    demo_owner = group_owner([d.group_id for d in mixed], dp.world_size)
    demos = [d for d in mixed if demo_owner[d.group_id] == dp.rank]
    rescore(policy, [t for t, _ in mine if t.source == "cache"] + demos)
    if mixed:
        nll_sum, demo_tokens = dp.sum_floats([-sum(sum(d.old_logprobs) for d in demos),
                                              float(sum(d.num_generated_tokens for d in demos))])
        metrics["rl_demo/nll_before"] = nll_sum / max(demo_tokens, 1.0)  # the policy's NLL of them, before the step
        metrics["rl_demo/demonstrations"] = float(len(mixed))
    mine += [(d, args.rl_demo_coef) for d in demos]
    try:
        with scaled_lr(optimizer, lr_scale):
            metrics.update(update_policy(policy, optimizer, mine, config, rng=shard_rng, dp=dp, reference=reference))
    except NonFiniteLossError as exc:  # raised on every process alike: they stay in step
        print(f"[iteration {iteration}] {exc}", file=sys.stderr)
        metrics["update/non_finite"] = 1.0
    metrics["update/lr_scale"] = lr_scale
    metrics["time/update_s"] = time.perf_counter() - update_start
    policy.version += 1
    for i, value in enumerate(dp.gather_checksums(policy.trainable_parameters())):
        metrics[f"dp/adapter_checksum/rank{i}"] = float(value)
    return _queue_metrics(metrics, queue, dp), len(requests)


@contextmanager
def scaled_lr(optimizer: torch.optim.Optimizer, scale: float) -> Iterator[None]:
    """Within the block every parameter group's learning rate is multiplied by ``scale``; afterwards restored."""
    rates = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] *= scale
    try:
        yield
    finally:
        for group, rate in zip(optimizer.param_groups, rates, strict=True):
            group["lr"] = rate


def _queue_metrics(metrics: dict[str, Any], queue: SampleQueue | None, dp: DataParallel) -> dict[str, Any]:
    """``metrics`` plus the queue's counters and every process's queue fingerprint."""
    if queue is not None:
        metrics.update({f"queue/{k}": float(v) for k, v in queue.stats().items()})
        fingerprint = zlib.crc32(pickle.dumps(queue.state_dict()))
        for i, value in enumerate(dp.gather_objects(fingerprint)):
            metrics[f"dp/queue_checksum/rank{i}"] = float(value)
    return metrics


def _signal_stats(batch: list[Trajectory], advantages: list[float]) -> dict[str, float]:
    """Groups whose members differ in correctness, and the share of advantage mass in groups that do not
    (signal that comes only from the execution bonus)."""
    by_group: dict[str, list[tuple[bool, float]]] = {}
    for traj, adv in zip(batch, advantages, strict=True):
        by_group.setdefault(traj.group_id, []).append((traj.reward_components.get("answer_score", 0.0) >= 1.0, adv))
    mixed = {g for g, members in by_group.items() if len({c for c, _ in members}) > 1}
    total = sum(abs(a) for a in advantages)
    uniform = sum(abs(a) for members in (m for g, m in by_group.items() if g not in mixed) for _, a in members)
    return {"groups/correctness_signal": len(mixed) / max(len(by_group), 1),
            "advantage/uniform_correctness_share": uniform / total if total else 0.0}
