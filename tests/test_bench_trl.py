"""The TRL benchmark's reward function scores completions through the real env (no model, no TRL needed)."""

from __future__ import annotations

import pytest

from agents.learner.train import make_envs, make_task_pool
from benchmarks.trl_common import BenchArgs, EnvReward, score_completions, task_schedule


@pytest.fixture(scope="module")
def setup():
    args = BenchArgs(num_envs=2).train_args()
    pool = make_task_pool(args, 0)
    envs = make_envs(pool, args)
    yield args, pool, envs
    envs.close()


def test_reference_solution_scores_full_reward_and_garbage_scores_zero(setup):
    args, pool, envs = setup
    tasks = pool.tasks[:3]
    good = [f"Let me compute it.\n```py\n{t.reference_solution.strip()}\n```" for t in tasks]
    ids = [t.task_id for t in tasks] * 2
    rewards = score_completions(envs, ids, [*good, "no code here", "```py\nx = 1 / 0\n```", ""])
    assert rewards[:3] == pytest.approx([args.answer_weight + args.exec_weight] * 3)
    assert rewards[3:] == [0.0, 0.0, 0.0]


def test_env_reward_takes_trl_conversational_completions_and_counts_tokens(setup):
    args, pool, envs = setup
    task = pool.tasks[0]
    reward = EnvReward(envs)
    completions = [[{"role": "assistant", "content": f"```py\n{task.reference_solution}\n```"}],
                   [{"role": "assistant", "content": "```py\nfinal_answer('wrong')\n```"}]]
    out = reward(prompts=[[], []], completions=completions, completion_ids=[[1, 2, 3], [4, 5]],
                 task_id=[task.task_id] * 2, trainer_state=None)
    assert out == pytest.approx([args.answer_weight + args.exec_weight, args.exec_weight])
    assert reward.tokens == 5 and reward.seconds > 0 and reward.rewards == out


def test_schedule_is_seeded_and_draws_distinct_pool_tasks(setup):
    _, pool, _ = setup
    first = task_schedule(pool, 4, 4, seed=0)
    assert first == task_schedule(pool, 4, 4, seed=0) and first != task_schedule(pool, 4, 4, seed=1)
    ids = {t.task_id for t in pool.tasks}
    assert all(len(set(step)) == 4 and set(step) <= ids for step in first)
