"""smolagents' unchanged CodeAgent through the recording proxy, and the proxy training script, on a tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.update import UpdateConfig, update_policy
from agents.proxy.backend import PolicyBackend, ProxyConfig
from agents.proxy.harness import EnvScorer, merge_stats, play_episodes
from agents.proxy.server import ProxyServer
from agents.proxy.smolagents_harness import CodeAgentHarness
from agents.proxy.transitions import training_pairs
from toolr1_env.env import ToolR1Env, resolve_tasks

ROOT = Path(__file__).resolve().parents[1]


def test_code_agent_plays_bundled_tasks_through_the_proxy_and_its_calls_train():
    model, tokenizer = make_tiny_model(seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, max_new_tokens=8))
    task_set = resolve_tasks("warmup")
    tasks = [task_set.pick(0), task_set.pick(1)]
    harness = CodeAgentHarness(max_steps=1, max_tokens=8)
    try:
        with ProxyServer(PolicyBackend(policy, config=ProxyConfig(model_name="tiny"))) as server:
            scorer = EnvScorer.of(ToolR1Env(tasks=task_set))
            episodes = play_episodes(server, harness, tasks, group_size=2, scorer=scorer, concurrency=4)
    finally:
        harness.close()
    assert len(episodes) == 4 and all(e.infra_error is None for e in episodes)
    stats = merge_stats(episodes)
    # One step, then smolagents' own "give the final answer" call after max_steps: two calls per episode.
    assert stats.calls == 8 and 4 <= stats.transitions <= 8
    for episode in episodes:
        assert episode.transitions and episode.transitions[0].task_id == episode.task_id
        for traj in episode.transitions:
            traj.check()
            assert traj.num_generated_tokens > 0 and traj.reward == episode.reward
    # Give the group a signal by hand (a random model earns none) and check the update consumes the calls.
    for k, episode in enumerate(episodes):
        episode.reward = float(k % 2)
    pairs = training_pairs(episodes, UpdateConfig())
    assert len(pairs) == sum(len(e.transitions) for e in episodes)
    metrics = update_policy(policy, torch.optim.AdamW(policy.trainable_parameters(), lr=1e-3), pairs, UpdateConfig())
    assert metrics["update/num_tokens"] == sum(t.num_generated_tokens for t, _ in pairs)


def test_the_training_script_runs_end_to_end(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "agents.proxy.train", "--model", "tiny-random", "--num_tasks", "1",
                             "--group_size", "2", "--iterations", "2", "--max_tokens", "6", "--max_steps", "1",
                             "--loss_aggregation", "sequence", "--epochs", "2", "--advantage_scale", "none",
                             "--exec_bonus", "correct", "--screen_tasks", "2", "--screen_samples", "1",
                             "--output_dir", str(out)],
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    recorded = json.loads((out / "args.json").read_text())
    assert (recorded["loss_aggregation"], recorded["epochs"]) == ("sequence", 2)
    assert (recorded["advantage_scale"], recorded["exec_bonus"]) == ("none", "correct")
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in lines] == [-1, 0, 1] and lines[0]["phase"] == "screening"
    assert lines[0]["screen/learnable_candidates"] == 0.0  # a random model solves nothing
    lines = lines[1:]
    # A random model answers nothing: exec_bonus=correct pays no clean-execution bonus, so every group is flat.
    assert all(m["reward"] == 0.0 and m["signal_groups"] == 0.0 for m in lines), lines
    assert all(m["proxy/calls"] >= 2 and m["infra_errors"] == 0 for m in lines), lines  # >= 1 call per episode
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["rewards"]) == 2 and (out / "adapter" / "adapter_config.json").is_file()
    assert len(summary["screening"]["rates"]) == 2 and len(summary["pool"]) == 1
    assert summary["pool"][0] in summary["screening"]["rates"]


def test_screening_keeps_the_tasks_solved_nearest_half_the_time():
    from agents.learner.records import Trajectory
    from agents.proxy.train import answer_rates, learnable_pool
    from agents.proxy.transitions import ProxyEpisode
    from toolr1_env.tasks import Task

    def episode(task_id: str, score: float, infra: str | None = None) -> ProxyEpisode:
        turn = Trajectory(task_id, task_id, [0], [0], [0.0], 1, reward_components={"answer_score": score})
        return ProxyEpisode(f"{task_id}-{score}", task_id, task_id, [turn], infra_error=infra)

    played = ([episode("always", 1.0)] * 4 + [episode("never", 0.0)] * 4 + [episode("quarter", 1.0)]
              + [episode("quarter", 0.0)] * 3 + [episode("half", 1.0), episode("half", 0.0)]
              + [episode("half", 1.0, infra="sandbox down")] + [episode("crashed", 1.0, infra="harness crashed")])
    rates = answer_rates(played)
    assert rates == {"always": 1.0, "never": 0.0, "quarter": 0.25, "half": 0.5}  # infra errors left out
    candidates = [Task(task_id=t, question="q", answer="a") for t in ("never", "half", "always", "quarter", "crashed")]
    assert [t.task_id for t in learnable_pool(candidates, rates, 2)] == ["half", "quarter"]
    assert [t.task_id for t in learnable_pool(candidates, rates, 3)] == ["never", "half", "quarter"]  # tie: order
    with pytest.raises(ValueError, match="fewer than --num_tasks 5"):
        learnable_pool(candidates, rates, 5)


def test_signal_group_share_counts_groups_whose_rewards_differ():
    from agents.proxy.train import signal_group_share
    from agents.proxy.transitions import ProxyEpisode

    def episode(group: str, reward: float) -> ProxyEpisode:
        return ProxyEpisode(f"{group}-{reward}", "task", group, reward=reward)

    episodes = [episode("a", 1.2), episode("a", 0.0), episode("b", 0.2), episode("b", 0.2), episode("c", 0.0)]
    assert signal_group_share(episodes) == 1 / 3
    assert signal_group_share([]) == 0.0


def test_scripted_demonstrations_play_through_code_agent_and_warm_up_lowers_their_nll():
    from agents.proxy.demonstrations import code_agent_script, play_demonstrations, warm_up_through_harness

    model, tokenizer = make_tiny_model(seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, max_new_tokens=8))
    task_set = resolve_tasks("warmup")
    tasks = [t for t in (task_set.pick(s) for s in range(12)) if len(code_agent_script(t)) == 1
             and len(tokenizer(code_agent_script(t)[0])["input_ids"]) < 90][:3]
    assert len(tasks) == 3
    harness = CodeAgentHarness(max_steps=2, max_tokens=96)
    try:
        episodes = play_demonstrations(policy, harness, tasks, EnvScorer.of(ToolR1Env(tasks=task_set)))
    finally:
        harness.close()
    # The unchanged CodeAgent parsed each scripted reply, ran it in our sandbox and answered correctly.
    assert [e.reward for e in episodes] == [1.2, 1.2, 1.2], [(e.final_answer, e.infra_error) for e in episodes]
    for episode, task in zip(episodes, tasks, strict=True):
        assert episode.final_answer is not None and str(episode.final_answer) == str(task.answer)
        (traj,) = episode.transitions
        reply = code_agent_script(task)[0]
        generated = [i for i, m in zip(traj.token_ids, traj.loss_mask, strict=True) if m]
        # Recorded as the sampler would have: the reply through the stop string "</code>", no end-of-turn token.
        assert tokenizer.decode(generated) == reply
    before = policy.version
    metrics = warm_up_through_harness(policy, episodes, passes=12, lr=5e-2)
    assert metrics["warmup/verified_episodes"] == 3 and metrics["warmup/demonstrations"] == 3
    assert metrics["warmup/nll_last_epoch"] < metrics["warmup/nll_first_epoch"] - 0.1  # a random model: small steps
    assert policy.version == before  # supervised passes are not GRPO updates


def test_a_call_beyond_the_script_is_refused_and_the_episode_left_out():
    from agents.proxy.demonstrations import DemonstrationBackend

    model, tokenizer = make_tiny_model(seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, max_new_tokens=8))
    task_set = resolve_tasks("warmup")
    task = task_set.pick(0)
    # A reply that runs but never answers: CodeAgent asks again, and the script has nothing more to say.
    backend = DemonstrationBackend(policy, {task.task_id: ["Thought: look.\n<code>\nx = 1\n</code>"]})
    harness = CodeAgentHarness(max_steps=3, max_tokens=32)
    try:
        with ProxyServer(backend) as server:
            (episode,) = play_episodes(server, harness, [task], group_size=1,
                                       scorer=EnvScorer.of(ToolR1Env(tasks=task_set)))
    finally:
        harness.close()
    assert episode.infra_error is not None
    assert "the demonstration has 1 replies, and this is call 2" in episode.infra_error
    assert training_pairs([episode], UpdateConfig()) == []


def test_screening_fewer_candidates_than_the_pool_fails_before_any_work(tmp_path):
    from agents.proxy.train import Args, main

    with pytest.raises(ValueError, match="--screen_tasks 2 must be 0 or at least --num_tasks 4"):
        main(Args(model="tiny-random", num_tasks=4, screen_tasks=2, output_dir=str(tmp_path / "run")))
    assert not (tmp_path / "run").exists()
