"""Micro-batches of the update (agents/learner/update.py ``_prompt_chunks``): rows of different prompts that share
a header run together, groups stay whole unless they alone exceed the token bound, the bound holds, and the
gradient does not change."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from agents.learner.policy import Policy
from agents.learner.records import Trajectory
from agents.learner.update import UpdateConfig, _forward_tokens, _prompt_chunks, update_policy

HEADER = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]


def trajectory(prompt: list[int], completion: list[int], group: str) -> Trajectory:
    traj = Trajectory.start("task", group, prompt)
    traj.append_generated(completion, [-0.5] * len(completion))
    return traj


def test_forward_tokens_counts_the_shared_prefix_once_and_pads_every_row():
    a = trajectory([*HEADER, 1, 2], [5, 6, 7], "a")  # 15 tokens
    b = trajectory([*HEADER, 3], [5], "b")  # 12 tokens
    assert _forward_tokens([a]) == 15 and _forward_tokens([b]) == 12
    assert _forward_tokens([a, b]) == 10 + 2 * (15 - 10)  # header once, each row padded to 15


def test_single_rows_of_one_header_join_up_to_the_size():
    singles = [trajectory([*HEADER, 100 + i], [5, 6], f"g{i}") for i in range(10)]
    chunks = _prompt_chunks(singles, size=4)
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert sorted(id(t) for c in chunks for t in c) == sorted(id(t) for t in singles)


def test_a_group_stays_whole_and_unrelated_prompts_stay_apart():
    group = [trajectory([*HEADER, 7, 7, 7], [5, 6, i], "group") for i in range(4)]
    stranger = trajectory([90, 91, 92, 93, 94, 95, 96, 97, 98, 99, 1, 2, 3], [5, 6, 7], "stranger")
    chunks = _prompt_chunks([stranger, *group], size=8, key=lambda t: t.group_id)
    assert sorted(len(c) for c in chunks) == [1, 4]  # no shared column: joining would cost more than apart
    assert {t.group_id for c in chunks for t in c if len(c) == 4} == {"group"}


def test_joining_stops_at_the_token_bound():
    singles = [trajectory([*HEADER, 100 + i], [5] * 20, f"g{i}") for i in range(6)]  # 31 tokens each
    unbounded = _prompt_chunks(singles, size=8)
    assert [len(c) for c in unbounded] == [6]
    bounded = _prompt_chunks(singles, size=8, max_tokens=10 + 3 * 21)
    assert [len(c) for c in bounded] == [3, 3]
    assert all(_forward_tokens(c) <= 10 + 3 * 21 for c in bounded)


def test_a_group_over_the_token_bound_runs_in_parts_that_fit():
    group = [trajectory([*HEADER, 7, 7], [5] * 20, "group") for _ in range(4)]  # prompt 12, rows 32 tokens
    assert _forward_tokens(group) == 12 + 4 * 20
    chunks = _prompt_chunks(group, size=8, max_tokens=12 + 2 * 20, key=lambda t: t.group_id)
    assert [len(c) for c in chunks] == [2, 2] and all(_forward_tokens(c) <= 12 + 2 * 20 for c in chunks)
    assert sorted(id(t) for c in chunks for t in c) == sorted(id(t) for t in group)
    alone = _prompt_chunks(group, size=8, max_tokens=20, key=lambda t: t.group_id)  # a row over the bound runs alone
    assert [len(c) for c in alone] == [1, 1, 1, 1]
    assert [len(c) for c in _prompt_chunks(group, size=8, max_tokens=0, key=lambda t: t.group_id)] == [4]


@pytest.fixture()
def policy(make_lora_policy) -> Policy:
    return make_lora_policy(max_new_tokens=6)


def assert_same_step(policy: Policy, pairs: list, *configs: UpdateConfig) -> None:
    """One SGD step on ``pairs`` under each config (from copies of ``policy``) moves the adapter, identically."""
    results = []
    for config in configs:
        clone = copy.deepcopy(policy)
        optimizer = torch.optim.SGD(clone.trainable_parameters(), lr=0.1)
        update_policy(clone, optimizer, pairs, dataclasses.replace(config, max_grad_norm=1e9))
        results.append(torch.cat([p.detach().flatten() for p in clone.trainable_parameters()]))
    before = torch.cat([p.detach().flatten() for p in policy.trainable_parameters()])
    assert not torch.allclose(results[0], before)
    assert all(torch.allclose(results[0], other, atol=1e-6) for other in results[1:])


def test_joined_micro_batches_make_the_same_step_as_one_row_at_a_time(policy):
    questions = ["What is 17 * 23?", "What is 18 * 29?", "Name the capital of Oslavia.", "Sum 1, 2 and 3."]
    rows = []
    for i, question in enumerate(questions):
        prompt = policy.encode_prompt([{"role": "user", "content": question}])
        (generation,) = policy.sample([prompt], generator=torch.Generator().manual_seed(i))
        traj = Trajectory.start(f"task{i}", f"g{i}", prompt)
        traj.append_generated(generation.token_ids, generation.logprobs)
        rows.append(traj)
    pairs = list(zip(rows, [1.0, -1.0, 0.5, -0.5], strict=True))
    assert len(_prompt_chunks(pairs, 8, row=lambda p: p[0], key=lambda p: p[0].group_id)) == 1  # they do join
    assert_same_step(policy, pairs, UpdateConfig(micro_batch_size=8), UpdateConfig(micro_batch_size=1))


def test_a_group_split_by_the_token_bound_makes_the_same_step(policy):
    prompt = policy.encode_prompt([{"role": "user", "content": "What is 17 * 23?"}])
    pairs = []
    for i, advantage in enumerate([1.0, -1.0, 0.5, -0.5]):
        (generation,) = policy.sample([prompt], generator=torch.Generator().manual_seed(i))
        traj = Trajectory.start("task", "group", prompt)
        traj.append_generated(generation.token_ids, generation.logprobs)
        pairs.append((traj, advantage))
    whole = _forward_tokens([t for t, _ in pairs])
    bound = len(prompt) + 2 * 6  # two rows of 6 generated tokens at most per part
    assert whole > bound and len(_prompt_chunks(pairs, 8, bound, row=lambda p: p[0], key=lambda p: p[0].group_id)) >= 2
    assert_same_step(policy, pairs, UpdateConfig(micro_batch_tokens=0), UpdateConfig(micro_batch_tokens=bound))
