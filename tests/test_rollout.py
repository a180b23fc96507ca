"""Rollouts with a tiny random model through real envs: token in / token out, masks, infra errors."""

from __future__ import annotations

import pytest
import torch

from agents.engine import EpisodeRequest
from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.rollout import collect
from agents.learner.update import UpdateConfig, build_groups, compute_advantages, without_infra_errors
from toolr1_env import Task
from toolr1_env.env import ToolR1Env
from toolr1_env.judge import LLMJudge
from toolr1_env.sandbox import SandboxConfig
from toolr1_env.vector import ThreadVectorEnv

TASKS = [Task("mul", "What is 17 * 23?", "391", level=0), Task("cap", "Capital of France?", "Paris")]
PREFIX = "```py\nresult ="


@pytest.fixture(scope="module")
def policy():
    model, tokenizer = make_tiny_model(seed=0)
    return Policy(model, tokenizer, PolicyConfig(lora_r=4, max_new_tokens=12))


def make_envs(n=2, **kwargs) -> ThreadVectorEnv:
    def factory():
        return ToolR1Env(tasks=TASKS, max_turns=3, sandbox=SandboxConfig(preload=()), max_observation_chars=120,
                         **kwargs)
    return ThreadVectorEnv([factory] * n)


def test_token_ids_and_masks_line_up_across_turns(policy):
    with make_envs() as envs:
        requests = [EpisodeRequest("mul", "g0", seed=i) for i in range(3)]
        trajectories, stats = collect(policy, envs, requests, max_episode_tokens=4096, response_prefix=PREFIX,
                                      generator=torch.Generator().manual_seed(0))
    assert [t.group_id for t in trajectories] == ["g0"] * 3 and stats.episodes == 3
    prefix_ids = policy.tokenize(PREFIX)
    for traj in trajectories:
        traj.check()
        assert traj.num_turns == len(traj.turns) == 3  # a random model never answers: truncated at 3 turns
        assert traj.truncated and traj.reward_components["steps"] == 3
        mask = [0] * len(traj.token_ids)
        for k, turn in enumerate(traj.turns):
            assert traj.token_ids[turn.gen_start - len(prefix_ids): turn.gen_start] == prefix_ids
            assert turn.action.startswith(PREFIX)
            mask[turn.gen_start: turn.gen_end] = [1] * (turn.gen_end - turn.gen_start)
            if k < 2:  # the observation sits between this turn's tokens and the next turn's prefix
                observation_text = policy.tokenizer.decode(traj.token_ids[turn.gen_end: turn.obs_end])
                assert turn.observation.strip()[:40] in observation_text
        assert traj.loss_mask == mask  # 1 exactly on sampled tokens: prompt, prefix, observations are 0
        assert all(lp == 0.0 for lp, m in zip(traj.old_logprobs, traj.loss_mask, strict=True) if not m)


def test_episodes_with_an_infra_error_are_left_out_of_training(policy):
    judge = LLMJudge(base_url="http://127.0.0.1:9/v1", model="x", max_retries=0, timeout=1,
                     exact_match_shortcut=False)
    with make_envs(judge=judge) as envs:
        # The forced prefix answers at once, so the (unreachable) judge is consulted.
        trajectories, _ = collect(policy, envs, [EpisodeRequest("mul", "g", seed=0)] * 2, max_episode_tokens=4096,
                                  response_prefix="```py\nfinal_answer(391)\n```\n")
    assert all(t.infra_error and t.final_answer == "391" for t in trajectories)
    assert without_infra_errors(trajectories) == []


def test_a_sandbox_killed_mid_episode_is_left_out_of_training_and_the_env_plays_on(policy):
    import os
    import signal

    holder: list[ThreadVectorEnv] = []

    def crash() -> str:
        """Kill this env's sandbox fork server from the host, as an OOM killer would."""
        zygote = holder[0].envs[0].sandbox._zygote
        os.kill(zygote.pid, signal.SIGKILL)
        zygote.wait(timeout=10)
        return "killed"

    with make_envs(n=1, tools=[crash]) as envs:
        holder.append(envs)
        scripts = [["```py\ncrash()\n```"], ["```py\nfinal_answer(391)\n```"]]
        trajectories, _ = collect(policy, envs, [EpisodeRequest("mul", "g", seed=0)] * 2, max_episode_tokens=4096,
                                  scripts=scripts)
    crashed, fine = trajectories
    assert crashed.infra_kind == "sandbox" and "fork server" in crashed.infra_error and crashed.reward == 0.0
    assert fine.infra_error is None and fine.reward == pytest.approx(1.2)  # same env, a fresh sandbox
    assert without_infra_errors(trajectories) == [fine]


def test_token_budget_cuts_an_episode_without_an_env_reward(policy):
    with make_envs(n=1) as envs:
        (traj,), _ = collect(policy, envs, [EpisodeRequest("mul", "g", seed=0)], max_episode_tokens=1)
    assert traj.truncated and traj.metadata["token_limit"] and traj.reward == 0.0
    assert envs.live == [False]


def test_groups_from_rollouts_get_advantages_per_group(policy):
    with make_envs() as envs:
        requests = [EpisodeRequest("mul", "a", seed=0), EpisodeRequest("mul", "a", seed=1),
                    EpisodeRequest("cap", "b", seed=2)]
        trajectories, _ = collect(policy, envs, requests, max_episode_tokens=4096)
    trajectories[0].reward = 1.2  # pretend one member of group "a" answered correctly
    batch, stats = build_groups(trajectories, None, policy_version=0, group_size=2, tol=1e-6)
    advantages = compute_advantages(batch, UpdateConfig())
    assert stats["groups/count"] == 2.0
    assert advantages[0] > 0 > advantages[1] and advantages[2] == 0.0  # group "b" alone has no signal
