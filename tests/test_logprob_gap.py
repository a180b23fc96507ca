"""The sampler-vs-trainer log-prob gap, measured in the update's first pass and logged at every GRPO iteration.

``rollout/logprob_gap/mean`` and ``/max`` compare the log-probs the sampler recorded (the loss's old log-probs)
with the training forward's for the same tokens, before the step: with one policy on both sides they differ by
the numerics of the two forward passes only (KV-cache decoding vs one full-sequence pass).
"""

from __future__ import annotations

import math
import random

import pytest
import torch

from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.records import Trajectory
from agents.learner.update import UpdateConfig, rescore, update_policy

GAP_KEYS = ("rollout/logprob_gap/mean", "rollout/logprob_gap/max", "rollout/logprob_gap/tokens")
# Bounds, from what was measured on 2 CPU cores (2026-12-06) with the tiny model, LoRA B ~ N(0, 0.05):
# fp32 mean ~1e-7 / max ~1e-6 (the rounding of two fp32 forward passes); under --bf16 (bf16 autocast, fp32
# weights, merge_for_sampling on, so sampling runs the unmerged adapter) mean 1e-4..3e-4 / max 5e-4..1.1e-3,
# varying from run to run with the sampled tokens. bf16 has 8 mantissa bits: one rounding of a logit of
# magnitude ~4 is ~0.016, so a mean of 2e-3 (a ~10x margin) still means "numerics", while a sampler that runs
# another policy (a delta merged into bf16 weights, a stale adapter) is off by far more (0.5 in the shifted test).
BOUNDS = {False: (1e-5, 1e-4), True: (2e-3, 1e-2)}  # bf16 -> (mean, max)


def tiny_policy(tokenizer, bf16: bool) -> Policy:
    model, _ = make_tiny_model(tokenizer, seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8, max_new_tokens=16, bf16=bf16,
                                                   stop_at_code_end=False))
    with torch.no_grad():  # LoRA B starts at zero; make the adapter matter
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(1))
    return policy


def sampled_group(policy: Policy, size: int, group_id: str, seed: int) -> list[Trajectory]:
    prompt = policy.encode_prompt([{"role": "user", "content": f"What is {seed} * 23? Write code."}])
    group = []
    for gen in policy.sample([prompt] * size, generator=torch.Generator().manual_seed(seed)):
        traj = Trajectory.start("task", group_id, prompt, policy_version=policy.version)
        traj.append_generated(gen.token_ids, gen.logprobs)
        group.append(traj)
    return group


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_the_update_measures_the_gap_on_fresh_samples_only(tokenizer, bf16):
    policy = tiny_policy(tokenizer, bf16)
    fresh = sampled_group(policy, 3, "a", seed=0)
    replay, demo = sampled_group(policy, 2, "b", seed=1)
    replay.source = "cache"
    replay.old_logprobs = [lp - 2.0 if m else 0.0 for lp, m in zip(replay.old_logprobs, replay.loss_mask,
                                                                    strict=True)]  # sampled by an older policy
    demo.metadata["demonstration"] = True
    rescore(policy, [replay, demo])  # as the trainer does: both now hold the current policy's log-probs
    pairs = list(zip([*fresh, replay, demo], [1.0, -1.0, 0.5, 1.0, -1.0], strict=True))
    optimizer = torch.optim.SGD(policy.trainable_parameters(), lr=0.1)
    metrics = update_policy(policy, optimizer, pairs, UpdateConfig(epochs=2, micro_batch_size=2),
                            rng=random.Random(0))
    gap_mean, gap_max, tokens = (metrics[k] for k in GAP_KEYS)
    assert tokens == sum(t.num_generated_tokens for t in fresh) > 20  # the replay and the demonstration left out
    mean_bound, max_bound = BOUNDS[bf16]
    assert math.isfinite(gap_mean) and math.isfinite(gap_max)
    assert 0.0 <= gap_mean <= gap_max and gap_mean < mean_bound and gap_max < max_bound, (gap_mean, gap_max)
    print(f"\nlogprob gap ({'bf16' if bf16 else 'fp32'}): mean {gap_mean:.3g}, max {gap_max:.3g} over {tokens:.0f}")


def test_a_sampler_that_runs_another_policy_shows_up_as_the_gap(tokenizer):
    policy = tiny_policy(tokenizer, bf16=False)
    group = sampled_group(policy, 2, "a", seed=0)
    for traj in group:  # the sampler's log-probs half a nat off on every token
        traj.old_logprobs = [lp + 0.5 if m else 0.0 for lp, m in zip(traj.old_logprobs, traj.loss_mask, strict=True)]
    optimizer = torch.optim.SGD(policy.trainable_parameters(), lr=0.0)
    metrics = update_policy(policy, optimizer, list(zip(group, [1.0, -1.0], strict=True)), UpdateConfig())
    assert metrics["rollout/logprob_gap/mean"] == pytest.approx(0.5, abs=1e-4)
    assert metrics["rollout/logprob_gap/max"] == pytest.approx(0.5, abs=1e-4)


def test_an_update_with_nothing_to_train_logs_an_empty_gap(tokenizer):
    policy = tiny_policy(tokenizer, bf16=False)
    optimizer = torch.optim.SGD(policy.trainable_parameters(), lr=0.0)
    metrics = update_policy(policy, optimizer, [], UpdateConfig())
    assert metrics["update/skipped"] == 1.0 and [metrics[k] for k in GAP_KEYS] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("bf16", [False, True], ids=["fp32", "bf16"])
def test_every_grpo_iteration_logs_the_gap(tokenizer, bf16):
    from agents.learner.iteration import train_iteration
    from agents.learner.train import Args, make_envs, make_task_pool

    args = Args(model="tiny-random", tasks="train-easy", task_pool_size=2, num_envs=2, tasks_per_iteration=1,
                group_size=2, max_turns=1, max_new_tokens=12, max_episode_tokens=1024, bf16=bf16)
    policy = tiny_policy(tokenizer, bf16)
    # A KL term keeps zero-advantage episodes in the loss: a random model's group (all wrong) is still trained.
    config = UpdateConfig(micro_batch_size=2, kl_coef=0.05)
    optimizer = torch.optim.SGD(policy.trainable_parameters(), lr=0.01)
    pool, rng = make_task_pool(args), random.Random(0)
    with make_envs(pool, args) as envs:
        for iteration in range(2):
            metrics, _ = train_iteration(iteration, policy, optimizer, envs, pool, None, config, args, rng)
            gap_mean, gap_max, tokens = (metrics[k] for k in GAP_KEYS)
            assert tokens == metrics["update/num_tokens"] > 0  # every trained token is a fresh sample's
            mean_bound, max_bound = BOUNDS[bf16]
            assert math.isfinite(gap_mean) and 0.0 <= gap_mean <= gap_max < max_bound and gap_mean < mean_bound
            print(f"\niteration {iteration} ({'bf16' if bf16 else 'fp32'}): gap mean {gap_mean:.3g}, "
                  f"max {gap_max:.3g} over {tokens:.0f} tokens")
    assert policy.version == 2
