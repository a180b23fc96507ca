"""Repair demonstrations: a failed episode continued after its first error by a verified fix."""

from __future__ import annotations

from agents.learner.records import Trajectory, Turn
from agents.learner.repairs import choose_repairs, mask_context, repair_script
from agents.learner.sample_queue import SampleQueue

PREFIX = "```py\n"


def failed_episode(errors: list[str | None], answer_score: float = 0.0, group_id: str = "0-0") -> Trajectory:
    """A two-token-per-turn episode whose turns raised ``errors`` (None: clean)."""
    traj = Trajectory.start("task-a", group_id, [1, 2, 3])
    for i, error in enumerate(errors):
        start, end = traj.append_generated([10 + i, 20 + i], [-0.5, -0.25])
        _, obs_end = traj.append_forced([7, 8])
        traj.turns.append(Turn(start, end, obs_end, action=f"{PREFIX}step_{i}()\n```", execution_error=error))
    traj.num_turns = len(errors)
    traj.reward_components = {"answer_score": answer_score}
    return traj


def test_the_script_replays_the_turns_up_to_the_first_error_then_the_fix():
    fix = ["look()\n```\n", "final_answer(1)\n```\n"]
    script, context = repair_script(failed_episode([None, "NameError", "TypeError"]), fix, PREFIX, max_turns=4)
    assert script == ["step_0()\n```", "step_1()\n```", *fix]  # the prefix is forced, so not in the script
    assert context == 2


def test_nothing_to_repair_without_an_error_after_a_correct_answer_or_without_room():
    fix = ["look()\n```\n", "final_answer(1)\n```\n"]
    assert repair_script(failed_episode([None, None]), fix, PREFIX, 4) is None  # no error
    assert repair_script(failed_episode(["NameError"], answer_score=1.0), fix, PREFIX, 4) is None  # correct
    assert repair_script(failed_episode([None, None, "NameError"]), fix, PREFIX, 4) is None  # 3 + 2 > 4 turns
    assert repair_script(failed_episode(["NameError"]), [], PREFIX, 4) is None  # the task has no fix


def test_one_repair_per_group_and_none_for_tasks_without_a_fix():
    fix = {"task-a": ["look()\n```\n", "final_answer(1)\n```\n"]}
    online = [failed_episode(["E"], group_id="0-0"), failed_episode(["E"], group_id="0-0"),
              failed_episode(["E"], group_id="0-1")]
    online[2].task_id = "task-b"
    repairs = choose_repairs(online, fix, PREFIX, 4)
    assert [(r.task_id, r.group_id, r.context_turns) for r in repairs] == [("task-a", "repair-0-0", 1)]


def test_context_turns_leave_the_loss_and_their_error_does_not_block_the_queue():
    traj = failed_episode(["LookupError", None, None])
    traj.reward, traj.metadata["demonstration"] = 1.13, True
    assert not SampleQueue().admissible(traj)  # a taught error is never cached
    mask_context(traj, 1)
    first, rest = traj.turns[0], traj.turns[1:]
    assert traj.loss_mask[first.gen_start:first.gen_end] == [0, 0]
    assert traj.old_logprobs[first.gen_start:first.gen_end] == [0.0, 0.0]
    assert all(traj.loss_mask[t.gen_start:t.gen_end] == [1, 1] for t in rest)
    assert traj.num_generated_tokens == 4
    assert traj.has_execution_error and not traj.trained_execution_error
    assert SampleQueue().admissible(traj)


def test_a_real_failure_is_repaired_through_the_env_and_cached_with_its_error_as_context():
    from agents.engine import EpisodeRequest
    from agents.learner.model_loading import make_tiny_model
    from agents.learner.playing import demonstration_turns, offer_repairs, play_demonstrations
    from agents.learner.policy import Policy, PolicyConfig
    from agents.learner.train import Args, make_envs, make_task_pool

    args = Args(model="tiny-random", tasks="train-easy", task_pool_size=8, num_envs=2, max_turns=4,
                demonstrations="compact", repair_demonstrations=True)
    model, tokenizer = make_tiny_model(seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, max_new_tokens=48))
    pool, queue = make_task_pool(args, 0), SampleQueue()
    fixes = {k: v for k, v in demonstration_turns(pool, args).items() if v[0].startswith("print(read_page(")}
    task_id = next(iter(fixes))
    with make_envs(pool, args) as envs:
        # The policy's failure: a page title that does not exist (LookupError), then a wrong answer.
        failure = play_demonstrations(policy, envs, [EpisodeRequest(task_id, "3-0", seed=0)],
                                      [["print(read_page('No Such Page'))\n```\n", "final_answer('no idea')\n```\n"]],
                                      args)[0]
        failure.metadata.pop("demonstration")
        assert failure.turns[0].execution_error and failure.reward_components["answer_score"] == 0.0
        stats = offer_repairs(policy, envs, [failure], fixes, queue, args)
    assert stats == {"queue/repairs_offered": 1.0, "queue/repairs_admitted": 1.0}
    (entry,) = queue.entries(task_id)
    repair = entry.trajectory
    assert repair.metadata["repair"] and repair.context_turns == 1
    assert repair.reward_components["answer_score"] == 1.0
    assert [t.action.removeprefix(args.response_prefix) for t in repair.turns] == [
        "print(read_page('No Such Page'))\n```\n", *fixes[task_id]]
    assert "No page at 'No Such Page'" in repair.turns[0].observation  # the policy reads its own error
    first = repair.turns[0]
    assert not any(repair.loss_mask[first.gen_start:first.gen_end])  # ... and is not taught it
    assert all(any(repair.loss_mask[t.gen_start:t.gen_end]) for t in repair.turns[1:])
    assert all(lp < 0 for lp, m in zip(repair.old_logprobs, repair.loss_mask, strict=True) if m)  # re-scored
