"""Supervised warm-up on the pool's verified demonstrations, before the first GRPO iteration.

``--demo_warmup_epochs N`` makes ``N`` supervised passes over every demonstration that reached a correct
answer without an execution error (the ones the sample queue admits), then GRPO starts from there.

Why: a 135M model that has never read a page and then copied a value out of it almost never does so by
chance, so GRPO from the base model sees groups without a success and learns only from demonstrations
injected by the sample queue. This is the "cold start" of DeepSeek-R1; the Tool-R1 paper trains with RL alone,
so this is our departure, off by default and on in the ``multistep`` preset. What it measured, and what RL
adds after it: ``docs/training_result.md``.

How: the GRPO loss itself, with advantage 1 on every demonstration and the ratio taken against the same
forward pass's own detached log-probs (``UpdateConfig.ratio_to_current``), so every ratio is 1, nothing is
clipped and no re-scoring pass is needed. Its gradient is then the gradient of the token-mean negative
log-likelihood of the demonstration's own turns; prompt, tool output and
a repair's replayed failure stay masked as in every update. One optimiser step per ``batch_size``
demonstrations; data parallel like an update (each process steps on its share, one token denominator).
The policy version does not move: it counts GRPO updates, which age the sample queue.
"""

from __future__ import annotations

import dataclasses
import random
import statistics
import time
from collections.abc import Callable, Sequence

import torch

from agents.learner.data_parallel import DataParallel
from agents.learner.playing import group_owner
from agents.learner.policy import Policy
from agents.learner.records import Trajectory
from agents.learner.update import UpdateConfig, update_policy


def verified(demonstration: Trajectory) -> bool:
    """A demonstration worth imitating: a correct answer, no execution error in a trained turn, not cut off."""
    return (demonstration.reward_components.get("answer_score", 0.0) >= 1.0
            and demonstration.infra_error is None
            and not demonstration.truncated
            and not demonstration.trained_execution_error
            and demonstration.num_generated_tokens > 0)


def anchor_batch(demonstrations: Sequence[Trajectory], iteration: int, size: int, seed: int) -> list[Trajectory]:
    """The ``size`` verified demonstrations mixed into RL update ``iteration`` (``--rl_demo_coef``): one fixed
    shuffle of ``demonstrations`` (by ``seed``), walked in consecutive slices, so every demonstration comes
    round equally often. Deterministic, and drawn from no shared stream: every process picks the same ones and
    the RL task choice is the same with or without the mixing."""
    usable = [d for d in demonstrations if verified(d)]
    if not usable:
        return []
    random.Random(f"rl-demo-{seed}").shuffle(usable)
    start = iteration * size
    return [usable[(start + k) % len(usable)] for k in range(min(size, len(usable)))]


def warm_up(policy: Policy, optimizer: torch.optim.Optimizer, demonstrations: Sequence[Trajectory],
            epochs: range, config: UpdateConfig, rng: random.Random, dp: DataParallel | None = None,
            batch_size: int = 16, after_epoch: Callable[[int], None] | None = None) -> dict[str, float]:
    """Supervised passes ``epochs`` (e.g. ``range(2, 4)`` to finish a resumed warm-up) over the verified
    ``demonstrations``; ``after_epoch(k)`` runs after epoch ``k`` (the trainer checkpoints there).

    Every process passes the same ``demonstrations`` and ``rng`` state (same order everywhere) and trains
    the ones it owns. Returns ``warmup/*`` metrics: demonstrations used, the token-mean NLL of the
    demonstrations over the first and over the last epoch (each batch scored by its own step's forward
    pass, before the step), optimiser steps, seconds, and the median seconds of one pass.

    Raises:
        ValueError: no demonstration is verified (nothing to imitate; the run would silently be plain GRPO).
    """
    dp = dp or DataParallel()
    start = time.perf_counter()
    usable = [d for d in demonstrations if verified(d)]
    if not usable:
        raise ValueError(f"--demo_warmup_epochs: none of the {len(demonstrations)} demonstrations reached a "
                         "correct answer without an error; there is nothing to warm up on")
    update_config = dataclasses.replace(config, epochs=1, kl_coef=0.0, mask_truncated=False, is_weight_cap=0.0,
                                        ratio_to_current=True)
    owner = group_owner([d.group_id for d in usable], dp.world_size)
    # ``rng`` orders the demonstrations and is shared by every process; each process's shard of a step is
    # shuffled by a stream of its own, drawn from it alike everywhere, so the shared stream never drifts.
    shard_rng = random.Random(rng.getrandbits(64) + dp.rank)
    metrics: dict[str, float] = {"warmup/demonstrations": float(len(usable))}
    steps = 0
    pass_seconds = []
    for epoch in epochs:
        pass_start = time.perf_counter()
        order = list(usable)
        rng.shuffle(order)
        nll_sum = tokens = 0.0  # over the epoch, each batch scored by the forward pass of its own step
        for i in range(0, len(order), batch_size):
            mine = [d for d in order[i : i + batch_size] if owner[d.group_id] == dp.rank]
            step = update_policy(policy, optimizer, [(d, 1.0) for d in mine], update_config, rng=shard_rng, dp=dp)
            nll_sum += step["update/nll"] * step["update/num_tokens"]  # both over every process's share
            tokens += step["update/num_tokens"]
            steps += 1
        metrics.setdefault("warmup/nll_first_epoch", nll_sum / tokens)
        metrics["warmup/nll_last_epoch"] = nll_sum / tokens
        pass_seconds.append(time.perf_counter() - pass_start)
        if after_epoch is not None:
            after_epoch(epoch)
    metrics["warmup/steps"] = float(steps)
    metrics["warmup/seconds_per_pass"] = statistics.median(pass_seconds) if pass_seconds else 0.0
    metrics["time/warmup_s"] = time.perf_counter() - start
    return metrics
