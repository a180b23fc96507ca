"""The GRPO objective as pure functions: group advantages, zero-signal detection, the clipped token loss.

One loss, named and explained. Departures from GRPO as published (DeepSeekMath, Shao et al. 2024):

* **Token-level normalisation** (DAPO, Yu et al. 2025). GRPO averages the per-token loss within each
  sequence, then across sequences, so a token in a long trajectory weighs less than one in a short one and
  long wrong answers are under-penalised. We sum over every unmasked token of the trajectories that are
  trained and divide by their count (``num_tokens`` lets gradient-accumulation micro-batches share one
  global denominator). Trajectories with zero advantage are not trained (without KL their loss and
  gradient are exactly 0), so their tokens are not in the count either: TRL's ``dapo`` loss counts them,
  which scales its step down by the share of zero-advantage tokens.
  ``loss_aggregation="sequence"`` (``row_weights`` = one over each row's trained tokens, and ``num_tokens`` the
  number of rows) restores GRPO's per-sequence mean: every episode then weighs its advantage once, whatever
  its length, so a group whose failures are longer than its successes no longer pushes probability down on
  balance (with centred advantages the signed sum per group is zero).
* **Asymmetric clipping** (DAPO's clip-higher). Separate ``clip_low`` / ``clip_high`` bounds
  (default 0.2 / 0.28): a larger upper bound lets rare, good tokens gain probability faster, which keeps
  entropy from collapsing early.
* **KL to the reference is optional, default off** (``kl_coef=0``). With LoRA the reference is the base
  model with the adapter disabled, one extra no-grad forward pass per batch; recent agentic-RL work finds
  the penalty unnecessary for outcome rewards. When on, we use the k3 estimator
  ``exp(ref - logp) - (ref - logp) - 1`` (unbiased, always >= 0), added per token like GRPO.
* **Advantages** are ``(r - mean_group) / (std_group + eps)`` with the population std (``scale="std"``),
  or just ``r - mean_group`` (``scale="none"``, Dr. GRPO's unbiased variant). A group whose rewards are
  equal within ``tol`` gets exactly zero advantage: ``std == 0`` tests miss float noise, and ``eps``
  alone would turn noise into huge advantages.
* **Behaviour weights** (optional, per token): a truncated importance weight ``min(pi_prox / pi_behav, c)``
  for replayed (stale) samples, where the ratio is taken against a recomputed proximal policy
  (decoupled PPO). See :func:`truncated_importance_weights` and ``agents.learner.sample_queue``.

Masked tokens (prompt, tool output, padding) enter every sum multiplied by 0 through ``torch.where``, so
they receive exactly zero gradient even if their log-probs are extreme.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Literal

import torch

AdvantageScale = Literal["std", "none"]
#: How the per-token loss is averaged: over every trained token of the batch (DAPO) or per sequence (GRPO).
LossAggregation = Literal["token", "sequence"]


def _group_index(group_ids: Sequence[Hashable]) -> tuple[torch.Tensor, list[Hashable]]:
    """Map arbitrary group ids to ``0..G-1`` (first-seen order); return ``(index [N], ids [G])``."""
    order: dict[Hashable, int] = {}
    index = [order.setdefault(g, len(order)) for g in group_ids]
    return torch.tensor(index, dtype=torch.long), list(order)


def _group_stats(rewards: torch.Tensor, index: torch.Tensor, groups: int) -> tuple[torch.Tensor, ...]:
    """Per-group mean, population std, min and max of ``rewards [N]``, each ``[G]``."""
    rewards = rewards.double()  # [N]
    counts = torch.zeros(groups, dtype=rewards.dtype).index_add_(0, index, torch.ones_like(rewards))  # [G]
    mean = torch.zeros(groups, dtype=rewards.dtype).index_add_(0, index, rewards) / counts  # [G]
    sq = torch.zeros(groups, dtype=rewards.dtype).index_add_(0, index, (rewards - mean[index]) ** 2)  # [G]
    std = (sq / counts).sqrt()  # [G]
    low = torch.full((groups,), float("inf"), dtype=rewards.dtype).scatter_reduce(0, index, rewards, "amin")
    high = torch.full((groups,), float("-inf"), dtype=rewards.dtype).scatter_reduce(0, index, rewards, "amax")
    return mean, std, low, high  # [G] each


def group_advantages(
    rewards: torch.Tensor | Sequence[float],
    group_ids: Sequence[Hashable],
    scale: AdvantageScale = "std",
    eps: float = 1e-6,
    tol: float = 1e-6,
) -> torch.Tensor:
    """Group-normalised advantages, one per trajectory.

    Args:
        rewards: ``[N]`` scalar rewards.
        group_ids: ``N`` group keys (trajectories of one prompt share a key).
        scale: ``"std"`` divides by the group's population std plus ``eps``; ``"none"`` only centres.
        eps: added to the std.
        tol: groups with ``max - min <= tol`` carry no signal and get advantage 0.

    Returns:
        ``[N]`` float32 advantages.
    """
    rewards = torch.as_tensor(rewards, dtype=torch.float64)  # [N]
    if rewards.ndim != 1 or len(group_ids) != rewards.shape[0]:
        raise ValueError(f"need one group id per reward: {len(group_ids)} ids, rewards {tuple(rewards.shape)}")
    if rewards.numel() == 0:
        return torch.zeros(0)
    index, groups = _group_index(group_ids)  # [N]
    mean, std, low, high = _group_stats(rewards, index, len(groups))  # [G] each
    centred = rewards - mean[index]  # [N]
    if scale == "std":
        advantages = centred / (std[index] + eps)  # [N]
    elif scale == "none":
        advantages = centred  # [N]
    else:
        raise ValueError(f"scale must be 'std' or 'none', got {scale!r}")
    flat = (high - low) <= tol  # [G]
    return torch.where(flat[index], torch.zeros_like(advantages), advantages).float()  # [N]


def zero_signal_groups(
    rewards: torch.Tensor | Sequence[float], group_ids: Sequence[Hashable], tol: float = 1e-6
) -> list[Hashable]:
    """Group ids whose rewards are all equal within ``tol`` (``max - min <= tol``), in first-seen order."""
    rewards = torch.as_tensor(rewards, dtype=torch.float64)  # [N]
    if rewards.numel() == 0:
        return []
    index, groups = _group_index(group_ids)  # [N]
    _, _, low, high = _group_stats(rewards, index, len(groups))  # [G]
    return [g for g, flat in zip(groups, ((high - low) <= tol).tolist(), strict=True) if flat]


def truncated_importance_weights(
    proximal_logprobs: torch.Tensor, behaviour_logprobs: torch.Tensor, loss_mask: torch.Tensor, cap: float
) -> torch.Tensor:
    """Per-token ``min(exp(proximal - behaviour), cap)``, 0 off the mask, no gradient.

    For a replayed sample the behaviour policy is the old policy version that sampled it (its stored
    log-probs). Recompute ``proximal_logprobs`` with the current weights before the update, use them as
    ``old_logprobs`` in :func:`grpo_loss` (so the clipped ratio is measured against the current policy),
    and pass these weights as ``behaviour_weights`` to correct for the older sampler. ``cap`` bounds the
    variance (truncated importance sampling); tokens the current policy now finds less likely get
    weight < 1, which fades out samples that have gone stale.

    Shapes: all inputs ``[B, T]``; returns ``[B, T]``.
    """
    with torch.no_grad():
        log_ratio = torch.where(loss_mask > 0, proximal_logprobs - behaviour_logprobs, 0.0)  # [B, T]
        weights = log_ratio.clamp(max=math.log(cap)).exp()  # [B, T]
        return weights * (loss_mask > 0)  # [B, T]


def grpo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    loss_mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    behaviour_weights: torch.Tensor | None = None,
    num_tokens: float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped-ratio policy loss with token-level normalisation (see the module docstring).

    Args:
        logprobs: ``[B, T]`` current log-probs (with gradient).
        old_logprobs: ``[B, T]`` log-probs of the policy the ratio is measured against.
        advantages: ``[B]`` (one per sequence) or ``[B, T]`` (per token).
        loss_mask: ``[B, T]``, 1 on tokens to train (generated), 0 elsewhere.
        clip_low, clip_high: the ratio is clipped to ``[1 - clip_low, 1 + clip_high]``.
        ref_logprobs: ``[B, T]`` reference log-probs for the KL penalty, or None.
        kl_coef: weight of the k3 KL penalty (needs ``ref_logprobs`` when > 0).
        behaviour_weights: ``[B, T]`` per-token importance weights (no gradient), or None.
        num_tokens: denominator; default the number of masked tokens in this batch. Pass the total over
            all micro-batches (and all data-parallel processes) when accumulating gradients so their sum
            equals the full-batch loss.

    Returns:
        ``(loss, metrics)``: a scalar tensor and plain floats (``clip_frac_low``, ``clip_frac_high``,
        ``approx_kl`` (old -> new, k3), ``ratio_mean``/``min``/``max``, ``pg_loss``, ``kl_ref``,
        ``num_tokens``, ``advantage_mean``). :func:`grpo_loss_terms` returns the metrics as tensors.
    """
    loss, terms = grpo_loss_terms(logprobs, old_logprobs, advantages, loss_mask, clip_low, clip_high, ref_logprobs,
                                  kl_coef, behaviour_weights, num_tokens)
    values = torch.stack([loss.detach().float(), *(t.float() for t in terms.values())]).tolist()  # one sync
    return loss, {"loss": values[0], **dict(zip(terms, values[1:], strict=True))}


def grpo_loss_terms(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    loss_mask: torch.Tensor,
    clip_low: float = 0.2,
    clip_high: float = 0.28,
    ref_logprobs: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    behaviour_weights: torch.Tensor | None = None,
    num_tokens: float | None = None,
    row_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:func:`grpo_loss` with its metrics as 0-dim tensors on the inputs' device (no device-to-host sync).

    ``row_weights`` (``[B]``, no gradient): each row's per-token loss (policy and KL terms) is multiplied by
    its weight before the sum; with one over the row's trained tokens and ``num_tokens`` the number of rows,
    the loss is GRPO's mean over sequences of each sequence's token mean. The metrics stay token means.

    Every tensor is made on ``logprobs.device``; nothing here reads a value, so the whole loss runs on any
    device, the ``meta`` device included (the tests' check that no tensor is left behind on the CPU).
    """
    if kl_coef > 0 and ref_logprobs is None:
        raise ValueError("kl_coef > 0 needs ref_logprobs")
    mask = loss_mask > 0  # [B, T] bool
    maskf = mask.to(logprobs.dtype)  # [B, T]
    adv = advantages[:, None] if advantages.ndim == 1 else advantages  # [B, 1] or [B, T]
    adv = adv.to(logprobs.dtype).expand_as(logprobs)  # [B, T]
    log_ratio = torch.where(mask, logprobs - old_logprobs, torch.zeros_like(logprobs))  # [B, T]
    ratio = log_ratio.exp()  # [B, T], exactly 1 off the mask
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high)  # [B, T]
    per_token = -torch.minimum(ratio * adv, clipped * adv)  # [B, T]
    if behaviour_weights is not None:
        per_token = per_token * behaviour_weights.detach()  # [B, T]
    kl_ref = None
    if ref_logprobs is not None:
        ref_delta = torch.where(mask, ref_logprobs - logprobs, torch.zeros_like(logprobs))  # [B, T]
        kl_ref = ref_delta.exp() - ref_delta - 1.0  # [B, T] k3 estimator of KL(pi || ref), >= 0
        if kl_coef > 0:
            per_token = per_token + kl_coef * kl_ref  # [B, T]
    if row_weights is not None:
        per_token = per_token * row_weights.detach().to(per_token.dtype)[:, None]  # [B, T]
    count = maskf.sum()  # scalar
    total = torch.where(mask, per_token, torch.zeros_like(per_token)).sum()  # scalar
    loss = total / float(num_tokens) if num_tokens is not None else total / count.clamp(min=1.0)  # scalar

    with torch.no_grad():
        n = count.clamp(min=1.0)
        some = count > 0
        one = torch.ones_like(count)
        terms = {
            "pg_loss": torch.where(mask, -torch.minimum(ratio * adv, clipped * adv), 0.0).sum() / n,
            "clip_frac_low": ((ratio < 1.0 - clip_low) & (adv < 0) & mask).sum() / n,
            "clip_frac_high": ((ratio > 1.0 + clip_high) & (adv > 0) & mask).sum() / n,
            "approx_kl": torch.where(mask, (ratio - 1.0) - log_ratio, 0.0).sum() / n,
            "ratio_mean": torch.where(some, (ratio * maskf).sum() / n, one),
            "ratio_min": torch.where(some, torch.where(mask, ratio, float("inf")).amin(), one),
            "ratio_max": torch.where(some, torch.where(mask, ratio, float("-inf")).amax(), one),
            "num_tokens": count,
            "advantage_mean": (adv * maskf).sum() / n,
        }
        if kl_ref is not None:
            terms["kl_ref"] = (kl_ref * maskf).sum() / n
        if behaviour_weights is not None:
            terms["behaviour_weight_mean"] = (behaviour_weights * maskf).sum() / n
    return loss, terms
