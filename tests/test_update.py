"""The update step (agents/update.py): re-scoring replays, staleness weights, prompt-shared micro-batches."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from agents.learner.policy import Policy
from agents.learner.records import Trajectory
from agents.learner.update import UpdateConfig, rescore, update_policy


@pytest.fixture()
def policy(make_lora_policy):
    return make_lora_policy(max_new_tokens=6)


def sampled_group(policy: Policy, size: int, group_id: str = "g") -> list[Trajectory]:
    prompt = policy.encode_prompt([{"role": "user", "content": "What is 17 * 23?"}])
    generations = policy.sample([prompt] * size, generator=torch.Generator().manual_seed(0))
    group = []
    for gen in generations:
        traj = Trajectory.start("task", group_id, prompt)
        traj.append_generated(gen.token_ids, gen.logprobs)
        group.append(traj)
    return group


def test_rescore_keeps_the_samplers_logprobs_as_behaviour_but_not_for_demonstrations(policy):
    replay, demo = sampled_group(policy, 2)
    demo.metadata["demonstration"] = True
    sampler = list(replay.old_logprobs)
    replay.old_logprobs = [lp - 0.5 if m else 0.0 for lp, m in zip(sampler, replay.loss_mask, strict=True)]
    stale = list(replay.old_logprobs)
    rescore(policy, [replay, demo])
    assert replay.behaviour_logprobs == stale
    assert demo.behaviour_logprobs is None
    assert replay.old_logprobs == pytest.approx(sampler, abs=1e-4)  # the current policy sampled these tokens


@pytest.mark.parametrize(("shift", "expected"), [(1.0, math.exp(-1.0)), (-1.0, 1.0)])
def test_stale_replays_are_down_weighted_and_never_up_weighted(policy, shift, expected):
    group = sampled_group(policy, 4)
    for traj in group:  # pretend an older policy sampled them, `shift` nats more (less) sure of every token
        traj.behaviour_logprobs = [lp + shift if m else 0.0 for lp, m in zip(traj.old_logprobs, traj.loss_mask,
                                                                                strict=True)]
    optimizer = torch.optim.SGD(policy.trainable_parameters(), lr=0.0)
    pairs = list(zip(group, [1.0, -1.0, 0.5, -0.5], strict=True))
    metrics = update_policy(policy, optimizer, pairs, UpdateConfig(is_weight_cap=1.0))
    assert metrics["update/behaviour_weight_mean"] == pytest.approx(expected, rel=1e-3)
    off = update_policy(policy, optimizer, pairs, UpdateConfig(is_weight_cap=0.0))
    assert "update/behaviour_weight_mean" not in off


def test_micro_batch_size_does_not_change_the_update(policy):
    group = sampled_group(policy, 6, "g1") + sampled_group(policy, 2, "g2")
    advantages = [1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 1.0, -1.0]
    results = []
    for micro_batch in (8, 3, 1):
        clone = copy.deepcopy(policy)
        optimizer = torch.optim.SGD(clone.trainable_parameters(), lr=0.1)
        update_policy(clone, optimizer, list(zip(group, advantages, strict=True)),
                      UpdateConfig(micro_batch_size=micro_batch, max_grad_norm=1e9))
        results.append(torch.cat([p.detach().flatten() for p in clone.trainable_parameters()]))
    before = torch.cat([p.detach().flatten() for p in policy.trainable_parameters()])
    assert not torch.allclose(results[0], before)
    assert torch.allclose(results[0], results[1], atol=1e-6) and torch.allclose(results[0], results[2], atol=1e-6)
