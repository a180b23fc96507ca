"""``--min_signal_groups``: the trainable groups are held back until enough carry signal, then trained in one step.

While episodes are held the weights do not change, so when the step comes every held episode is still
on-policy: the sampler's log-probs of the first iteration's tokens are the log-probs of the weights trained.
"""

from __future__ import annotations

import random

import pytest
import torch

from agents.learner import iteration as iteration_module
from agents.learner.iteration import HeldUpdate, train_iteration
from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.train import Args, check_args, make_envs, make_task_pool
from agents.learner.update import UpdateConfig


def _weights(policy: Policy) -> list[torch.Tensor]:
    return [p.detach().clone() for p in policy.trainable_parameters()]


def test_groups_are_held_until_enough_carry_signal_then_trained_on_policy_in_one_step(tokenizer, monkeypatch):
    model, _ = make_tiny_model(tokenizer, seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8, max_new_tokens=12, stop_at_code_end=False))
    args = Args(model="tiny-random", tasks="train-easy", task_pool_size=2, num_envs=2, tasks_per_iteration=1,
                group_size=2, max_turns=1, max_new_tokens=12, max_episode_tokens=1024, min_signal_groups=2)
    # A random model answers nothing right: give every group a signal (+1 / -1), so the count is what is tested.
    monkeypatch.setattr(iteration_module, "compute_advantages",
                        lambda batch, config: [1.0 if i % 2 == 0 else -1.0 for i in range(len(batch))])
    trained: list[list[str]] = []
    real_update = iteration_module.update_policy

    def recording_update(policy, optimizer, pairs, config, **kwargs):
        trained.append(sorted({t.group_id for t, _ in pairs}))
        return real_update(policy, optimizer, pairs, config, **kwargs)

    monkeypatch.setattr(iteration_module, "update_policy", recording_update)
    optimizer = torch.optim.SGD(policy.trainable_parameters(), lr=0.5)
    pool, rng, held = make_task_pool(args), random.Random(0), HeldUpdate()
    start = _weights(policy)
    with make_envs(pool, args) as envs:
        first, _ = train_iteration(0, policy, optimizer, envs, pool, None, UpdateConfig(micro_batch_size=2), args,
                                   rng, held=held, last=False)
        assert first["update/held"] == 1.0 and first["update/held_signal_groups"] == 1.0
        assert trained == [] and policy.version == 0 and len(held.pairs) == 2
        assert all(torch.equal(a, b) for a, b in zip(start, _weights(policy), strict=True))  # nothing stepped
        second, _ = train_iteration(1, policy, optimizer, envs, pool, None, UpdateConfig(micro_batch_size=2), args,
                                    rng, held=held, last=False)
    assert second["update/held"] == 0.0 and second["update/held_signal_groups"] == 2.0
    assert trained == [["0-0", "1-0"]] and second["update/trajectories"] == 4.0  # both iterations, one step
    assert policy.version == 1 and held.pairs == [] and held.signal_groups == 0 and held.iterations == 0
    assert any(not torch.equal(a, b) for a, b in zip(start, _weights(policy), strict=True))
    # On-policy: every trained token was sampled by the weights being trained (iteration 0's included).
    assert second["rollout/logprob_gap/tokens"] == second["update/num_tokens"] > 0
    assert second["rollout/logprob_gap/max"] < 1e-4


def test_the_last_iteration_trains_what_is_held_and_zero_steps_every_iteration(tokenizer):
    model, _ = make_tiny_model(tokenizer, seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8, max_new_tokens=12, stop_at_code_end=False))
    # No signal from a random model; the KL term keeps its zero-advantage episodes trainable.
    config = UpdateConfig(micro_batch_size=2, kl_coef=0.05)
    optimizer = torch.optim.SGD(policy.trainable_parameters(), lr=0.1)
    held = HeldUpdate()
    for min_groups, last, stepped in ((1, False, False), (1, True, True), (0, False, True)):
        args = Args(model="tiny-random", tasks="train-easy", task_pool_size=2, num_envs=2, tasks_per_iteration=1,
                    group_size=2, max_turns=1, max_new_tokens=12, max_episode_tokens=1024,
                    min_signal_groups=min_groups)
        pool = make_task_pool(args)
        version = policy.version
        with make_envs(pool, args) as envs:
            metrics, _ = train_iteration(0, policy, optimizer, envs, pool, None, config, args, random.Random(0),
                                         held=held, last=last)
        assert metrics["update/held"] == (0.0 if stepped else 1.0)
        assert policy.version == version + stepped
        if last:  # the held iteration's episodes were trained with this one's
            assert metrics["update/trajectories"] == 4.0


def test_a_negative_signal_threshold_is_refused():
    with pytest.raises(ValueError, match="--min_signal_groups"):
        check_args(Args(min_signal_groups=-1))


def test_held_episodes_survive_a_checkpoint(tokenizer, tmp_path):
    from agents.learner.checkpointing import latest_checkpoint, load_checkpoint, save_checkpoint
    from agents.learner.records import Trajectory

    model, _ = make_tiny_model(tokenizer, seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8, max_new_tokens=4))
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-3)
    episode = Trajectory.start("task-1", "3-0", [1, 2, 3])
    episode.append_generated([4, 5], [-0.5, -0.25])
    held = HeldUpdate([(episode, 0.5)], signal_groups=1, iterations=2)
    save_checkpoint(tmp_path, 3, policy, optimizer, None, Args(min_signal_groups=4), {"held": held})
    extra = load_checkpoint(latest_checkpoint(tmp_path), policy, optimizer, None)["extra"]
    restored = extra["held"]
    assert isinstance(restored, HeldUpdate) and (restored.signal_groups, restored.iterations) == (1, 2)
    (traj, advantage), = restored.pairs
    assert (traj.group_id, traj.token_ids, traj.old_logprobs, advantage) == ("3-0", [1, 2, 3, 4, 5],
                                                                              [0.0, 0.0, 0.0, -0.5, -0.25], 0.5)


def test_with_lr_by_signal_the_step_shrinks_with_the_share_of_groups_that_carry_signal(tokenizer, monkeypatch):
    model, _ = make_tiny_model(tokenizer, seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8, max_new_tokens=12, stop_at_code_end=False))
    args = Args(model="tiny-random", tasks="train-easy", task_pool_size=4, num_envs=4, tasks_per_iteration=4,
                group_size=2, max_turns=1, max_new_tokens=12, max_episode_tokens=1024, lr_by_signal=True)
    # One group of the four carries signal (+1 / -1), the other three none.
    monkeypatch.setattr(iteration_module, "compute_advantages",
                        lambda batch, config: [(1.0 if i % 2 == 0 else -1.0) if t.group_id == batch[0].group_id
                                               else 0.0 for i, t in enumerate(batch)])
    rates: list[float] = []
    real_update = iteration_module.update_policy

    def recording_update(policy, optimizer, pairs, config, **kwargs):
        rates.append(optimizer.param_groups[0]["lr"])
        return real_update(policy, optimizer, pairs, config, **kwargs)

    monkeypatch.setattr(iteration_module, "update_policy", recording_update)
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-3)
    pool = make_task_pool(args)
    with make_envs(pool, args) as envs:
        metrics, _ = train_iteration(0, policy, optimizer, envs, pool, None, UpdateConfig(micro_batch_size=2), args,
                                     random.Random(0))
    assert rates == [pytest.approx(2.5e-4)] and metrics["update/lr_scale"] == 0.25  # 1 of 4 groups
    assert optimizer.param_groups[0]["lr"] == 1e-3  # the schedule's rate is back for the next iteration
