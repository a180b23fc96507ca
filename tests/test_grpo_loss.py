"""The GRPO objective against hand-computed numbers (agents/grpo.py, agents/records.TrainBatch)."""

from __future__ import annotations

import math

import pytest
import torch

from agents.learner.grpo import group_advantages, grpo_loss, truncated_importance_weights, zero_signal_groups
from agents.learner.records import TrainBatch, Trajectory


def test_group_advantages_std_matches_hand_computation():
    rewards = [1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.0]
    groups = ["a"] * 4 + ["b"] * 4 + ["c"] * 2
    adv = group_advantages(rewards, groups, scale="std", eps=0.0)
    std_a = math.sqrt(0.75 * 0.25)  # population std of [1, 0, 0, 0]
    expected = [0.75 / std_a] + [-0.25 / std_a] * 3 + [0.0] * 4 + [1.0, -1.0]
    assert adv.tolist() == pytest.approx(expected, abs=1e-6)
    assert adv[0].item() == pytest.approx(math.sqrt(3), abs=1e-6)


def test_group_advantages_none_only_centres():
    adv = group_advantages([1.0, 0.0, 0.0, 0.0, 3.0, 1.0], ["a"] * 4 + ["b"] * 2, scale="none")
    assert adv.tolist() == pytest.approx([0.75, -0.25, -0.25, -0.25, 1.0, -1.0])


def test_near_equal_rewards_are_zero_signal_not_huge_advantages():
    rewards = [1.0, 1.0 + 1e-9, 1.0 - 1e-9, 0.0, 1.0]
    groups = ["flat", "flat", "flat", "real", "real"]
    adv = group_advantages(rewards, groups, scale="std", eps=1e-6, tol=1e-6)
    assert adv[:3].tolist() == [0.0, 0.0, 0.0]
    assert adv[3:].tolist() == pytest.approx([-1.0, 1.0], abs=1e-4)
    assert zero_signal_groups(rewards, groups, tol=1e-6) == ["flat"]
    assert zero_signal_groups(rewards, groups, tol=1e-12) == []


def test_group_advantages_rejects_mismatched_lengths_and_bad_scale():
    with pytest.raises(ValueError):
        group_advantages([1.0, 0.0], ["a"])
    with pytest.raises(ValueError):
        group_advantages([1.0, 0.0], ["a", "a"], scale="max")  # type: ignore[arg-type]


def _loss_inputs():
    # Row 0: advantage +1, tokens 0-1 trained, token 2 masked with an absurd log-prob.
    # Row 1: advantage -1, all three tokens trained.
    ratios = torch.tensor([[1.5, 0.5, 1.0], [0.5, 1.2, 2.0]])
    old = torch.tensor([[-1.0, -2.0, -3.0], [-0.5, -1.5, -2.5]])
    logprobs = (old + ratios.log()).clone()
    logprobs[0, 2] = 80.0  # exp(80 - old) overflows float32 if it ever leaks through the mask
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    advantages = torch.tensor([1.0, -1.0])
    return logprobs.requires_grad_(True), old, advantages, mask


def test_grpo_loss_matches_hand_computation():
    logprobs, old, advantages, mask = _loss_inputs()
    loss, metrics = grpo_loss(logprobs, old, advantages, mask, clip_low=0.2, clip_high=0.28)
    # Row 0 (A=+1): -min(1.5, 1.28) - min(0.5, 0.8) = -1.28 - 0.5
    # Row 1 (A=-1): -min(-0.5, -0.8) - min(-1.2, -1.2) - min(-2.0, -1.28) = 0.8 + 1.2 + 2.0
    assert loss.item() == pytest.approx((-1.28 - 0.5 + 0.8 + 1.2 + 2.0) / 5, abs=1e-6)
    assert metrics["clip_frac_high"] == pytest.approx(0.2)
    assert metrics["clip_frac_low"] == pytest.approx(0.2)
    assert metrics["ratio_mean"] == pytest.approx((1.5 + 0.5 + 0.5 + 1.2 + 2.0) / 5, abs=1e-6)
    assert metrics["ratio_max"] == pytest.approx(2.0, abs=1e-6)
    assert metrics["num_tokens"] == 5.0
    kl = [(r - 1) - math.log(r) for r in (1.5, 0.5, 0.5, 1.2, 2.0)]
    assert metrics["approx_kl"] == pytest.approx(sum(kl) / 5, abs=1e-6)


def test_masked_and_clipped_tokens_get_exactly_zero_gradient():
    logprobs, old, advantages, mask = _loss_inputs()
    loss, _ = grpo_loss(logprobs, old, advantages, mask, clip_low=0.2, clip_high=0.28)
    loss.backward()
    grad = logprobs.grad
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    assert grad[0, 2].item() == 0.0  # masked
    assert grad[0, 0].item() == 0.0  # ratio 1.5 > 1.28 with A > 0: clipped
    assert grad[1, 0].item() == 0.0  # ratio 0.5 < 0.8 with A < 0: clipped
    # Unclipped: d(-A * ratio)/d logp / N = -A * ratio / 5
    assert grad[0, 1].item() == pytest.approx(-0.5 / 5, abs=1e-6)
    assert grad[1, 1].item() == pytest.approx(1.2 / 5, abs=1e-6)
    assert grad[1, 2].item() == pytest.approx(2.0 / 5, abs=1e-6)


def test_on_policy_ratio_is_one_and_gradient_is_minus_advantage():
    logprobs = torch.tensor([[-1.0, -2.0, -0.5, -0.7]], requires_grad=True)
    mask = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    loss, metrics = grpo_loss(logprobs, logprobs.detach(), torch.tensor([0.5]), mask)
    loss.backward()
    assert loss.item() == pytest.approx(-0.5)
    assert metrics["clip_frac_low"] == metrics["clip_frac_high"] == 0.0
    assert logprobs.grad[0].tolist() == pytest.approx([0.0, -0.25, -0.25, 0.0])


def test_k3_kl_penalty_to_reference():
    logprobs = torch.tensor([[-1.0, -1.0]], requires_grad=True)
    ref = torch.tensor([[-1.0 + math.log(2.0), -1.0]])
    mask = torch.ones(1, 2)
    zero_adv = torch.zeros(1)
    loss, metrics = grpo_loss(logprobs, logprobs.detach(), zero_adv, mask, ref_logprobs=ref, kl_coef=0.5)
    k3 = 2.0 - math.log(2.0) - 1.0
    assert metrics["kl_ref"] == pytest.approx(k3 / 2, abs=1e-6)
    assert loss.item() == pytest.approx(0.5 * k3 / 2, abs=1e-6)
    with pytest.raises(ValueError):
        grpo_loss(logprobs, logprobs.detach(), zero_adv, mask, kl_coef=0.1)


def test_micro_batches_with_global_token_count_sum_to_full_batch_loss():
    torch.manual_seed(0)
    logprobs = -torch.rand(4, 6)
    old = logprobs + 0.1 * torch.randn(4, 6)
    mask = (torch.rand(4, 6) > 0.3).float()
    adv = torch.tensor([1.0, -0.5, 0.3, -2.0])
    full, _ = grpo_loss(logprobs, old, adv, mask)
    total = float(mask.sum())
    parts = [grpo_loss(logprobs[i : i + 2], old[i : i + 2], adv[i : i + 2], mask[i : i + 2], num_tokens=total)[0]
             for i in (0, 2)]  # fmt: skip
    assert (parts[0] + parts[1]).item() == pytest.approx(full.item(), abs=1e-6)


def test_behaviour_weights_scale_tokens_and_are_truncated():
    proximal = torch.tensor([[-1.0, -1.0, -1.0]])
    behaviour = torch.tensor([[-1.0, -1.0 - math.log(4.0), -1.0 + math.log(2.0)]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    weights = truncated_importance_weights(proximal, behaviour, mask, cap=2.0)
    assert weights[0].tolist() == pytest.approx([1.0, 2.0, 0.0])  # 4 capped at 2; masked -> 0
    logprobs = proximal.clone().requires_grad_(True)
    loss, metrics = grpo_loss(logprobs, proximal, torch.tensor([1.0]), mask, behaviour_weights=weights)
    assert loss.item() == pytest.approx(-(1.0 + 2.0) / 2)
    assert metrics["behaviour_weight_mean"] == pytest.approx(1.5)


def test_collate_pads_right_and_keeps_alignment():
    a = Trajectory.start("t1", "g", [5, 6, 7])
    a.append_generated([8, 9], [-0.1, -0.2])
    a.append_forced([10])
    a.append_generated([11], [-0.3])
    b = Trajectory.start("t1", "g", [5, 6])
    b.append_generated([12], [-0.4])
    for t in (a, b):
        t.check()
    batch = TrainBatch.collate([a, b], [1.0, -1.0], pad_token_id=0)
    assert batch.token_ids.tolist() == [[5, 6, 7, 8, 9, 10, 11], [5, 6, 12, 0, 0, 0, 0]]
    assert batch.loss_mask.tolist() == [[0, 0, 0, 1, 1, 0, 1], [0, 0, 1, 0, 0, 0, 0]]
    assert batch.old_logprobs[0].tolist() == pytest.approx([0, 0, 0, -0.1, -0.2, 0, -0.3])
    assert batch.attention_mask.sum(1).tolist() == [7, 3]
    assert batch.first_position == 2
    assert batch.advantages.tolist() == [1.0, -1.0]


def test_trajectory_check_catches_misalignment():
    t = Trajectory.start("t", "g", [1, 2])
    t.append_generated([3], [-0.5])
    t.old_logprobs.append(0.0)
    with pytest.raises(ValueError):
        t.check()
    u = Trajectory.start("t", "g", [1, 2])
    u.loss_mask[0] = 1
    with pytest.raises(ValueError):
        u.check()
    assert Trajectory.from_dict(t.to_dict()) == t


def test_sequence_aggregation_weighs_every_episode_once_whatever_its_length():
    from agents.learner.grpo import grpo_loss_terms

    logprobs = torch.full((2, 4), -1.0, requires_grad=True)  # [B, T]
    mask = torch.tensor([[1.0, 0, 0, 0], [1.0, 1, 1, 0]])  # a 1-token success, a 3-token failure
    advantages = torch.tensor([1.0, -1.0])
    token_loss, _ = grpo_loss_terms(logprobs, logprobs.detach(), advantages, mask)
    (token_grad,) = torch.autograd.grad(token_loss, logprobs)
    assert token_loss.item() == pytest.approx(0.5)  # -(1 - 3) / 4: the failure's 3 tokens outweigh the success
    assert token_grad[0, 0].item() == pytest.approx(-0.25) and token_grad[1, :3].tolist() == pytest.approx([0.25] * 3)
    seq_loss, terms = grpo_loss_terms(logprobs, logprobs.detach(), advantages, mask, num_tokens=2.0,
                                      row_weights=1.0 / mask.sum(dim=1))
    (seq_grad,) = torch.autograd.grad(seq_loss, logprobs)
    assert seq_loss.item() == pytest.approx(0.0, abs=1e-6)  # -(1 * 1 - 1 * 1) / 2: balanced
    assert seq_grad[0, 0].item() == pytest.approx(-0.5)
    assert seq_grad[1, :3].tolist() == pytest.approx([1 / 6] * 3) and seq_grad[:, 3].tolist() == [0.0, 0.0]
    assert terms["num_tokens"].item() == 4.0  # the metrics stay per token


def test_the_update_averages_per_sequence_when_asked(tokenizer):
    import random

    from agents.learner.update import UpdateConfig, rescore, update_policy
    from tests.test_logprob_gap import sampled_group, tiny_policy

    policy = tiny_policy(tokenizer, bf16=False)
    short, long = sampled_group(policy, 2, "g", seed=3)
    long.token_ids, long.old_logprobs, long.loss_mask = (long.token_ids + long.token_ids[long.prompt_len:],
                                                         long.old_logprobs + long.old_logprobs[long.prompt_len:],
                                                         long.loss_mask + long.loss_mask[long.prompt_len:])
    assert long.num_generated_tokens == 2 * short.num_generated_tokens  # a failure twice as long
    rescore(policy, [short, long])  # old log-probs = the policy's own, so every ratio is 1
    pairs = [(short, 1.0), (long, -1.0)]
    optimizer = torch.optim.SGD(policy.trainable_parameters(), lr=0.0)
    by_mode = {mode: update_policy(policy, optimizer, pairs, UpdateConfig(loss_aggregation=mode, is_weight_cap=0.0),
                                   rng=random.Random(0))["update/loss"] for mode in ("token", "sequence")}
    # Ratio 1 on fresh samples: token mean -(L - 2L) / 3L = 1/3; per sequence -(1 - 1) / 2 = 0.
    assert by_mode["token"] == pytest.approx(1 / 3, abs=1e-4)
    assert by_mode["sequence"] == pytest.approx(0.0, abs=1e-4)


def test_an_episode_of_several_transitions_counts_once_per_sequence():
    from agents.learner.update import episode_weights

    def row(tokens: int, episode: str | None = None) -> Trajectory:
        traj = Trajectory.start("t", "g", [1, 2])
        traj.append_generated(list(range(3, 3 + tokens)), [-1.0] * tokens)
        if episode:
            traj.metadata["episode_id"] = episode
        return traj

    first, second, alone = row(2, "e1"), row(6, "e1"), row(4)
    weights = episode_weights([first, second, alone])
    assert [weights[id(t)] for t in (first, second, alone)] == pytest.approx([0.25, 0.75, 1.0])
    assert sum(weights.values()) == pytest.approx(2.0)  # two episodes
