"""Supervised warm-up on the pool's verified demonstrations, before the first GRPO iteration.

``--demo_warmup_epochs N`` makes ``N`` supervised passes over every demonstration that reached a correct
answer without an execution error (the ones the sample queue admits), then GRPO starts from there.

Why (measured, ``docs/training_result.md``): a 135M model that has never read a page and then copied a value
out of it almost never does so by chance, so the first GRPO iterations see groups without a success and
learn only from demonstrations injected into them by the sample queue. With 6 of 48 pool tasks per
iteration, each demonstration is trained on about twice in a 15-iteration run, and held-out level-1 success
ended at 0-6 of 32 in five such runs. Six supervised passes over the same 48 demonstrations take it from 0 to
11-15 of 32 (three seeds of the ``multistep`` preset, evaluated right after the warm-up). This is the "cold
start" of DeepSeek-R1; the Tool-R1 paper trains with RL alone, so this is our departure, off by default and on
in the ``multistep`` preset.

How: the GRPO loss itself, with advantage 1 on every demonstration and the old log-probs re-scored by the
current policy just before each step, so every ratio is 1 and nothing is clipped. Its gradient is then the
gradient of the token-mean negative log-likelihood of the demonstration's own turns; prompt, tool output and
a repair's replayed failure stay masked as in every update. One optimiser step per ``batch_size``
demonstrations; data parallel like an update (each process steps on its share, one token denominator).
The policy version does not move: it counts GRPO updates, which age the sample queue.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence

import torch

from agents.learner.data_parallel import DataParallel
from agents.learner.playing import group_owner
from agents.learner.policy import Policy
from agents.learner.records import Trajectory
from agents.learner.update import UpdateConfig, rescore, update_policy


def verified(demonstration: Trajectory) -> bool:
    """A demonstration worth imitating: a correct answer, no execution error in a trained turn, not cut off."""
    return (demonstration.reward_components.get("answer_score", 0.0) >= 1.0
            and demonstration.infra_error is None
            and not demonstration.truncated
            and not demonstration.trained_execution_error
            and demonstration.num_generated_tokens > 0)


def mean_nll(trajectories: Sequence[Trajectory]) -> float:
    """Token-mean negative log-likelihood of the trained tokens, from each trajectory's ``old_logprobs``."""
    total = sum(-lp for t in trajectories for lp, m in zip(t.old_logprobs, t.loss_mask, strict=True) if m)
    tokens = sum(t.num_generated_tokens for t in trajectories)
    return total / tokens if tokens else float("nan")


def warm_up(policy: Policy, optimizer: torch.optim.Optimizer, demonstrations: Sequence[Trajectory],
            epochs: range, config: UpdateConfig, rng: random.Random, dp: DataParallel | None = None,
            batch_size: int = 16, after_epoch: Callable[[int], None] | None = None) -> dict[str, float]:
    """Supervised passes ``epochs`` (e.g. ``range(2, 4)`` to finish a resumed warm-up) over the verified
    ``demonstrations``; ``after_epoch(k)`` runs after epoch ``k`` (the trainer checkpoints there).

    Every process passes the same ``demonstrations`` and ``rng`` state (same order everywhere) and trains
    the ones it owns. Returns ``warmup/*`` metrics: demonstrations used, the token-mean NLL of the
    demonstrations over the first and over the last epoch (each batch scored just before its step),
    optimiser steps, seconds.

    Raises:
        ValueError: no demonstration is verified (nothing to imitate; the run would silently be plain GRPO).
    """
    dp = dp or DataParallel()
    start = time.perf_counter()
    usable = [d for d in demonstrations if verified(d)]
    if not usable:
        raise ValueError(f"--demo_warmup_epochs: none of the {len(demonstrations)} demonstrations reached a "
                         "correct answer without an error; there is nothing to warm up on")
    update_config = UpdateConfig(epochs=1, micro_batch_size=config.micro_batch_size, clip_low=config.clip_low,
                                 clip_high=config.clip_high, max_grad_norm=config.max_grad_norm,
                                 advantage_scale=config.advantage_scale, mask_truncated=False, is_weight_cap=0.0)
    owner = group_owner([d.group_id for d in usable], dp.world_size)
    metrics: dict[str, float] = {"warmup/demonstrations": float(len(usable))}
    steps = 0
    for epoch in epochs:
        order = list(usable)
        rng.shuffle(order)
        nll_sum = tokens = 0.0  # over the epoch, each batch scored just before its step
        for i in range(0, len(order), batch_size):
            mine = [d for d in order[i : i + batch_size] if owner[d.group_id] == dp.rank]
            rescore(policy, mine)  # ratio 1 at the step: the gradient is the NLL's
            mine_tokens = float(sum(d.num_generated_tokens for d in mine))
            batch_nll, batch_tokens = dp.sum_floats([mean_nll(mine) * mine_tokens if mine else 0.0, mine_tokens])
            nll_sum, tokens = nll_sum + batch_nll, tokens + batch_tokens
            update_policy(policy, optimizer, [(d, 1.0) for d in mine], update_config, rng=rng, dp=dp)
            steps += 1
        metrics.setdefault("warmup/nll_first_epoch", nll_sum / tokens)
        metrics["warmup/nll_last_epoch"] = nll_sum / tokens
        if after_epoch is not None:
            after_epoch(epoch)
    metrics["warmup/steps"] = float(steps)
    metrics["time/warmup_s"] = time.perf_counter() - start
    return metrics
