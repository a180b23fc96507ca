"""One GRPO update: groups -> advantages -> several clipped-loss passes with gradient accumulation.

The loss itself lives in :mod:`agents.learner.grpo` (pure functions); this module only batches trajectories,
runs the forward passes through :class:`agents.learner.policy.Policy` and steps the optimiser.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from agents.learner.grpo import AdvantageScale, group_advantages, grpo_loss, truncated_importance_weights
from agents.learner.policy import Policy
from agents.learner.records import TrainBatch, Trajectory
from agents.learner.sample_queue import SampleQueue


@dataclass(frozen=True)
class UpdateConfig:
    """Optimisation settings of one update (see ``agents/train_grpo.py`` for their help texts)."""

    epochs: int = 1
    micro_batch_size: int = 4
    clip_low: float = 0.2
    clip_high: float = 0.28
    kl_coef: float = 0.0
    max_grad_norm: float = 1.0
    advantage_scale: AdvantageScale = "std"
    zero_signal_tol: float = 1e-6
    mask_truncated: bool = False
    is_weight_cap: float = 1.0


class NonFiniteLossError(FloatingPointError):
    """The loss or the gradient was NaN/inf; the optimiser step was skipped."""


@torch.no_grad()
def rescore(policy: Policy, trajectories: Sequence[Trajectory], batch_size: int = 8) -> None:
    """Set ``old_logprobs`` of each trajectory to the current policy's log-probs (in place).

    Used for replayed queue entries before an update (so the clipped ratio starts at 1 against the
    current policy, instead of being clipped at once against a stale sampler) and for demonstrations,
    whose tokens no policy sampled. A policy-sampled trajectory keeps its sampler's log-probs in
    ``behaviour_logprobs`` (the denominator of the truncated importance weight); a demonstration
    (``metadata["demonstration"]``) has no sampler and keeps none, so its weight is 1.
    """
    was_training = policy.model.training
    policy.model.eval()
    try:
        for chunk in _prompt_chunks(list(trajectories), batch_size):
            batch = TrainBatch.collate(chunk, [0.0] * len(chunk), policy.pad_token_id)
            scores = policy.sequence_logprobs(batch.token_ids, batch.attention_mask,
                                              first_position=batch.first_position,
                                              shared_prefix=batch.shared_prefix).logprobs  # [B, T]
            scores = (scores * batch.loss_mask.to(scores.device)).cpu()  # [B, T], 0 off the mask
            for row, traj in enumerate(chunk):
                if traj.behaviour_logprobs is None and not traj.metadata.get("demonstration"):
                    traj.behaviour_logprobs = traj.old_logprobs
                traj.old_logprobs = scores[row, : len(traj.token_ids)].tolist()
    finally:
        policy.model.train(was_training)


def _prompt_chunks(items: list, size: int, key: Callable[[object], object] | None = None) -> list[list]:
    """Split ``items`` into chunks of at most ``size`` whose members share a prompt (first-seen order), so
    each chunk's prompt runs once (:meth:`Policy.sequence_logprobs` ``shared_prefix``)."""
    key = key or (lambda t: tuple(t.token_ids[: t.prompt_len]))
    by_prompt: dict[object, list] = defaultdict(list)
    for item in items:
        by_prompt[key(item)].append(item)
    return [members[i: i + size] for members in by_prompt.values() for i in range(0, len(members), size)]


def without_infra_errors(trajectories: Sequence[Trajectory]) -> list[Trajectory]:
    """Drop episodes that failed for reasons outside the policy (judge or sandbox outage): scoring them
    as wrong answers would teach the policy that correct work is bad."""
    return [t for t in trajectories if t.infra_error is None]


def build_groups(trajectories: Sequence[Trajectory], queue: SampleQueue | None, policy_version: int,
                 group_size: int, tol: float) -> tuple[list[Trajectory], dict[str, float]]:
    """Group online trajectories by ``group_id`` and let the sample queue top up or fix flat groups.

    ``trajectories`` must already exclude infra errors. Returns the training batch (online members plus
    injected cached ones) and the share of zero-signal groups before and after the queue.
    """
    groups: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajectories:
        groups[t.group_id].append(t)
    batch: list[Trajectory] = []
    flat_before = flat_after = 0
    for group in groups.values():
        flat_before += _flat(group, tol)
        if queue is not None:
            group = queue.fill_group(group, group[0].task_id, policy_version, tol=tol, group_size=group_size)
        flat_after += _flat(group, tol)
        batch += group
    count = max(len(groups), 1)
    return batch, {"groups/count": float(len(groups)), "groups/zero_signal_before": flat_before / count,
                   "groups/zero_signal_after": flat_after / count,
                   "batch/from_queue": float(sum(t.source == "cache" for t in batch))}


def _flat(group: Sequence[Trajectory], tol: float) -> bool:
    rewards = [t.reward for t in group]
    return max(rewards) - min(rewards) <= tol


def compute_advantages(trajectories: Sequence[Trajectory], config: UpdateConfig) -> list[float]:
    """Group-normalised advantages, one per trajectory, grouped by ``group_id``."""
    if not trajectories:
        return []
    advantages = group_advantages([t.reward for t in trajectories], [t.group_id for t in trajectories],
                                  scale=config.advantage_scale, tol=config.zero_signal_tol)  # [N]
    return advantages.tolist()


def trainable(trajectories: Sequence[Trajectory], advantages: Sequence[float],
              config: UpdateConfig) -> list[tuple[Trajectory, float]]:
    """The (trajectory, advantage) pairs that carry gradient.

    Zero-advantage trajectories are dropped when there is no KL term (their loss is exactly 0), and
    truncated ones when ``mask_truncated`` (DAPO's overlong masking: a cut episode is not evidence of a
    bad answer); both still counted in their group's mean and std above.
    """
    pairs = []
    for traj, adv in zip(trajectories, advantages, strict=True):
        if config.mask_truncated and traj.truncated:
            continue
        if adv == 0.0 and config.kl_coef == 0.0:
            continue
        if traj.num_generated_tokens == 0:
            continue
        pairs.append((traj, adv))
    return pairs


def update_policy(policy: Policy, optimizer: torch.optim.Optimizer, pairs: Sequence[tuple[Trajectory, float]],
                  config: UpdateConfig, *, rng: random.Random | None = None,
                  sync_gradients: Callable[[list[torch.nn.Parameter]], None] | None = None) -> dict[str, float]:
    """Run ``config.epochs`` passes over ``pairs`` (one optimiser step per pass) and return mean metrics.

    ``sync_gradients`` averages gradients across data-parallel processes before clipping (accelerate).
    Raises :class:`NonFiniteLossError` (after zeroing the gradient) when a loss or gradient is not finite.
    """
    params = policy.trainable_parameters()
    if not pairs:
        if sync_gradients is None:
            return {"update/skipped": 1.0}
        # Data-parallel: the gradient all-reduce is a collective, so a process with nothing to train on
        # still joins it (with zero gradients) and steps with the averaged gradient like every other one.
        for _ in range(config.epochs):
            for p in params:
                p.grad = torch.zeros_like(p)
            sync_gradients(params)
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return {"update/skipped": 1.0}
    rng = rng or random.Random(0)
    totals: dict[str, list[float]] = defaultdict(list)
    num_tokens = float(sum(t.num_generated_tokens for t, _ in pairs))
    policy.model.train()
    for _ in range(config.epochs):
        order = list(pairs)
        rng.shuffle(order)
        optimizer.zero_grad(set_to_none=True)
        # One optimiser step per pass, so the order of micro-batches does not change the gradient:
        # chunk by prompt and each chunk's prompt runs once.
        for chunk in _prompt_chunks(order, config.micro_batch_size, key=lambda pair: pair[0].group_id):
            batch = TrainBatch.collate([t for t, _ in chunk], [a for _, a in chunk], policy.pad_token_id)
            out = policy.sequence_logprobs(batch.token_ids, batch.attention_mask, first_position=batch.first_position,
                                           with_entropy=True, shared_prefix=batch.shared_prefix)
            ref = None
            if config.kl_coef > 0:
                with torch.no_grad():
                    ref = policy.sequence_logprobs(batch.token_ids, batch.attention_mask,
                                                   first_position=batch.first_position, use_adapter=False,
                                                   shared_prefix=batch.shared_prefix).logprobs
            weights = None
            if config.is_weight_cap > 0:  # 1 on fresh tokens; < 1 where a replayed sample went stale
                assert batch.behaviour_logprobs is not None
                weights = truncated_importance_weights(batch.old_logprobs, batch.behaviour_logprobs, batch.loss_mask,
                                                       config.is_weight_cap).to(out.logprobs.device)  # [B, T]
            loss, metrics = grpo_loss(out.logprobs, batch.old_logprobs, batch.advantages, batch.loss_mask,
                                      clip_low=config.clip_low, clip_high=config.clip_high, ref_logprobs=ref,
                                      kl_coef=config.kl_coef, behaviour_weights=weights, num_tokens=num_tokens)
            if not torch.isfinite(loss):
                optimizer.zero_grad(set_to_none=True)
                raise NonFiniteLossError(f"non-finite loss {float(loss)}; the update was skipped")
            loss.backward()
            weight = metrics["num_tokens"] / num_tokens
            for key, value in metrics.items():
                totals[key].append(value * weight if key != "num_tokens" else value)
            assert out.entropy is not None
            entropy = float((out.entropy * batch.loss_mask).sum() / batch.loss_mask.sum().clamp(min=1))
            totals["entropy"].append(entropy * weight)
        if sync_gradients is not None:
            sync_gradients(params)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm))
        if not math.isfinite(grad_norm):
            optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(f"non-finite gradient norm {grad_norm}; the update was skipped")
        totals["grad_norm"].append(grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    summary = {f"update/{k}": sum(v) / config.epochs for k, v in totals.items() if k not in ("num_tokens", "grad_norm")}
    summary["update/grad_norm"] = sum(totals["grad_norm"]) / config.epochs
    summary["update/num_tokens"] = num_tokens
    summary["update/trajectories"] = float(len(pairs))
    return summary
