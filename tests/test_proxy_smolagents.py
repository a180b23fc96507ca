"""smolagents' unchanged CodeAgent through the recording proxy, and the proxy training script, on a tiny model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
                             "--output_dir", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["iteration"] for m in lines] == [0, 1]
    assert all(m["proxy/calls"] >= 2 and m["infra_errors"] == 0 for m in lines), lines  # >= 1 call per episode
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["rewards"]) == 2 and (out / "adapter" / "adapter_config.json").is_file()
