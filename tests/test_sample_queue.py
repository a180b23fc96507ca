"""The dynamic sample queue (agents/sample_queue.py): admission, same-task injection, staleness, state."""

from __future__ import annotations

import json

import pytest

from agents.learner.grpo import group_advantages
from agents.learner.records import Trajectory, Turn
from agents.learner.sample_queue import SampleQueue, SampleQueueConfig


def make_traj(task: str, group: str, reward: float, version: int = 0, salt: int = 0, **fields) -> Trajectory:
    """A 3-token prompt, 2 generated tokens (unique per salt), a 1-token observation, 1 more generated."""
    traj = Trajectory.start(task, group, [1, 2, 3], reward=reward, policy_version=version, **fields)
    traj.append_generated([100 + salt, 200 + salt], [-0.5, -0.25])
    traj.append_forced([7])
    traj.append_generated([300 + salt], [-0.125])
    traj.check()
    return traj


def failures(task: str, group: str, n: int, version: int = 0) -> list[Trajectory]:
    return [make_traj(task, group, 0.0, version, salt=1000 + i) for i in range(n)]


def test_admission_rule():
    queue = SampleQueue(SampleQueueConfig(min_reward=1.0))
    assert queue.add(make_traj("a", "g", 1.0, salt=1))
    assert not queue.add(make_traj("a", "g", 0.5, salt=2))  # below threshold
    assert not queue.add(make_traj("a", "g", 1.0, salt=3, infra_error="judge timeout"))
    assert not queue.add(make_traj("a", "g", 1.0, salt=4, truncated=True))
    assert not queue.add(make_traj("a", "g", 1.0, salt=5, source="cache"))
    errored = make_traj("a", "g", 1.0, salt=6)
    errored.turns = [Turn(3, 5, 6, execution_error="NameError: x")]
    assert not queue.add(errored)
    assert len(queue) == 1 and queue.counters["rejected"] == 5
    assert queue.add(make_traj("a", "g", 1.0, version=3, salt=1))  # same tokens again: refreshed, not doubled
    assert len(queue) == 1 and queue.entries("a")[0].policy_version == 3


def test_capacity_evicts_lowest_reward_then_oldest():
    queue = SampleQueue(SampleQueueConfig(min_reward=1.0, per_task_capacity=2, total_capacity=3))
    queue.add(make_traj("a", "g", 1.0, version=0, salt=1))
    queue.add(make_traj("a", "g", 1.5, version=0, salt=2))
    assert queue.add(make_traj("a", "g", 1.0, version=1, salt=3))  # evicts the older reward-1.0 entry
    assert sorted((e.reward, e.policy_version) for e in queue.entries("a")) == [(1.0, 1), (1.5, 0)]
    assert not queue.add(make_traj("a", "g", 1.0, version=0, salt=4))  # not better than the worst
    queue.add(make_traj("b", "g", 2.0, salt=5))
    queue.add(make_traj("b", "g", 2.0, salt=6))  # 4 entries > total 3: global worst (a, 1.0) goes
    assert len(queue) == 3
    assert [e.reward for e in queue.entries("a")] == [1.5]
    assert queue.counters["evicted"] == 2


def test_injection_rescues_a_zero_signal_group_of_the_same_task_only():
    queue = SampleQueue(SampleQueueConfig(min_reward=1.0, max_inject=2))
    success = make_traj("a", "old", 1.0, version=4, salt=1)
    queue.add(success)
    queue.add(make_traj("b", "old", 1.0, version=4, salt=2))
    group = failures("a", "g7", 4, version=5)
    mixed = queue.fill_group(group, "a", current_version=5)
    assert len(mixed) == 4
    cached = [t for t in mixed if t.source == "cache"]
    assert len(cached) == 1  # only task a's one entry, never task b's
    injected = cached[0]
    assert injected.task_id == "a" and injected.group_id == "g7"
    assert injected.token_ids == success.token_ids and injected.loss_mask == success.loss_mask
    assert injected.old_logprobs == success.old_logprobs and injected.policy_version == 4
    assert injected.metadata["queue_age"] == 1
    assert mixed[0] is group[0]  # online members kept in place; the last one was replaced
    adv = group_advantages([t.reward for t in mixed], [t.group_id for t in mixed])
    assert adv.abs().min().item() > 0.1
    assert adv[mixed.index(injected)].item() == pytest.approx(3**0.5, abs=1e-4)
    stats = queue.stats()
    assert stats["zero_signal_before"] == 1 and stats["zero_signal_after"] == 0 and stats["hit_rate"] == 1.0


def test_no_injection_without_same_task_entries_and_mixed_groups_are_rejected():
    queue = SampleQueue()
    queue.add(make_traj("b", "old", 1.0, salt=2))
    group = failures("a", "g", 3)
    assert queue.fill_group(group, "a", current_version=0) == group
    assert queue.stats()["zero_signal_after"] == 1 and queue.stats()["hit_rate"] == 0.0
    with pytest.raises(ValueError):
        queue.fill_group(group + [make_traj("b", "g", 0.0)], "a", current_version=0)


def test_group_with_signal_is_left_alone_and_successes_are_admitted_afterwards():
    queue = SampleQueue()
    queue.add(make_traj("a", "old", 1.0, salt=1))
    group = failures("a", "g", 3) + [make_traj("a", "g", 1.0, salt=9)]
    assert queue.fill_group(group, "a", current_version=0) == group
    assert len(queue.entries("a")) == 2  # the online success was admitted after injection
    assert queue.counters["injected"] == 0


def test_staleness_retires_by_age_and_by_reuse():
    queue = SampleQueue(SampleQueueConfig(max_age=3, max_reuse=2, max_inject=1))
    queue.add(make_traj("a", "old", 1.0, version=0, salt=1))
    queue.fill_group(failures("a", "g1", 2, version=1), "a", current_version=1, admit=False)
    queue.fill_group(failures("a", "g2", 2, version=2), "a", current_version=2, admit=False)
    assert len(queue) == 0 and queue.counters["retired_reuse"] == 1  # used twice
    queue.add(make_traj("a", "old", 1.0, version=2, salt=2))
    assert queue.retire(current_version=5) == 0  # age 3 == max_age: kept
    assert queue.retire(current_version=6) == 1  # age 4 > max_age: retired
    assert not queue.add(make_traj("a", "old", 1.0, version=2, salt=3))  # too old to admit at version 6


def test_rollouts_needed_and_mastery():
    config = SampleQueueConfig(max_inject=2, low_success_rate=0.25, min_fresh=2, mastery_window=4)
    queue = SampleQueue(config)
    assert queue.rollouts_needed("a", 8) == 8  # nothing known
    queue.add(make_traj("a", "old", 1.0, salt=1))
    queue.add(make_traj("a", "old", 1.0, salt=2))
    queue.add(make_traj("a", "old", 1.0, salt=3))
    queue.observe(failures("a", "g", 8))
    assert queue.success_rate("a") == 0.0
    assert queue.rollouts_needed("a", 8) == 6  # 2 of the 8 will come from the cache
    assert queue.rollouts_needed("a", 3) == 2  # never fewer than min_fresh
    topped = queue.fill_group(failures("a", "g", 6), "a", current_version=0, group_size=8)
    assert len(topped) == 8 and sum(t.source == "cache" for t in topped) == 2
    assert not queue.is_mastered("a")
    queue.observe([make_traj("a", "g", 1.0, salt=50 + i) for i in range(4)])
    assert queue.is_mastered("a")
    assert queue.rollouts_needed("a", 8) == 8  # success rate back above the threshold


def test_state_dict_round_trips_through_json():
    queue = SampleQueue(SampleQueueConfig(max_inject=1))
    queue.add(make_traj("a", "old", 1.0, version=2, salt=1))
    queue.add(make_traj("b", "old", 1.5, version=3, salt=2))
    queue.fill_group(failures("a", "g", 4, version=3), "a", current_version=3)
    state = json.loads(json.dumps(queue.state_dict()))
    restored = SampleQueue()
    restored.load_state_dict(state)
    assert restored.stats() == queue.stats()
    assert restored.config == queue.config
    assert restored.entries("b")[0].trajectory == queue.entries("b")[0].trajectory
    assert restored.success_rate("a") == queue.success_rate("a") == 0.0
    again = restored.fill_group(failures("a", "g2", 4, version=4), "a", current_version=4)
    expected = queue.fill_group(failures("a", "g2", 4, version=4), "a", current_version=4)
    assert [t.source for t in again] == [t.source for t in expected]


@pytest.mark.parametrize(("mode", "injected"), [("flat", 0), ("no_success", 1)])
def test_groups_without_a_success_get_a_cached_one_only_in_no_success_mode(mode, injected):
    queue = SampleQueue(SampleQueueConfig(min_reward=1.0, max_inject=1, inject_when=mode))
    queue.add(make_traj("a", "seed", 1.2, salt=1))
    group = [make_traj("a", "g", r, salt=10 + i) for i, r in enumerate([0.2, 0.0, 0.1, 0.0])]  # signal, no success
    mixed = queue.fill_group(group, "a", current_version=0, admit=False)
    assert sum(t.source == "cache" for t in mixed) == injected
    assert len(mixed) == 4 and mixed[0].source == "online"  # at least one online member always stays
    if injected:
        assert max(t.reward for t in mixed) == 1.2 and mixed[-1].group_id == "g"


def test_admission_follows_the_answer_weight() -> None:
    from agents.learner.train import Args, queue_config

    half = queue_config(Args(answer_weight=0.5, exec_weight=0.2))
    assert half.min_reward == 0.5  # a correct answer scores 0.5 (+ 0.2 for clean execution): admitted
    queue = SampleQueue(half)
    assert queue.add(make_traj("t", "g", 0.5 + 0.2, salt=1)) and not queue.add(make_traj("t", "g", 0.2, salt=2))
    with pytest.raises(ValueError, match="answer_weight must be > 0"):
        queue_config(Args(answer_weight=0.0))


def test_the_trainer_defaults_are_the_queue_defaults() -> None:
    from agents.learner.train import Args, queue_config

    assert queue_config(Args()) == SampleQueueConfig()


def test_demonstrations_only_queue_refuses_the_policys_own_successes():
    queue = SampleQueue(SampleQueueConfig(min_reward=1.0, admit_online=False))
    assert not queue.add(make_traj("a", "g", 1.0, salt=1))
    demo = make_traj("a", "g", 1.0, salt=2)
    demo.metadata["demonstration"] = True
    assert queue.add(demo)
    # Online successes of a later group are still counted for rates, never cached.
    queue.fill_group([make_traj("a", "g2", 1.0, salt=3), *failures("a", "g2", 3)], "a", 0, group_size=4)
    assert [e.trajectory.metadata.get("demonstration") for e in queue.entries("a")] == [True]
    assert queue.success_rate("a") == 0.25


def test_a_worse_cached_entry_never_joins_an_all_correct_group_and_retired_demonstrations_are_counted():
    queue = SampleQueue(SampleQueueConfig(min_reward=1.0, max_inject=2, max_reuse=1))
    repair = make_traj("a", "old", 1.1, salt=1)  # correct, but it recovered from an error: a lower reward
    repair.metadata["demonstration"] = True
    queue.add(repair)
    correct = [make_traj("a", "g", 1.2, salt=10 + i) for i in range(4)]
    assert queue.fill_group(correct, "a", current_version=0, admit=False) == correct  # no negative advantage
    rescued = queue.fill_group(failures("a", "h", 4), "a", current_version=0, admit=False)
    assert sum(t.source == "cache" for t in rescued) == 1  # an all-wrong group still gets it ...
    assert queue.stats()["retired_demonstrations"] == 1.0  # ... and its one allowed reuse retires it, counted
