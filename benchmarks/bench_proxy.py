"""Cost per episode: smolagents' CodeAgent through the recording proxy vs our own rollout, same tasks and model.

    python benchmarks/bench_proxy.py [--num_tasks 4] [--group_size 4] [--max_steps 2] [--max_tokens 64]

Both sides play the same pool of warm-up tasks ``group_size`` times with SmolLM2-135M (LoRA r=16, sampling
at temperature 1, ``max_tokens`` per call, at most ``max_steps`` code steps), then make one GRPO update
from the same starting adapter:

* **ours**: :func:`agents.learner.rollout.collect` (``PolicyPlayer`` over ``ToolR1Env``, compact prompt,
  one batched generation per turn over every live episode, token in / token out);
* **proxy**: :class:`agents.proxy.smolagents_harness.CodeAgentHarness` (``CodeAgent`` with its own loop
  and parser, our sandbox as executor, its compact system prompt) through :class:`agents.proxy.server.ProxyServer`,
  all episodes concurrent so their calls share sampling batches.

Per episode: wall seconds and this process's CPU seconds (the fairer figure on a shared machine: other
processes' load moves wall time; sandboxes run in child processes and are not counted), model calls,
prompt tokens fed to the model (every call re-reads its whole prompt: neither side keeps a KV cache across
calls), generated tokens, training sequences (transitions) and tokens the update reads, and update seconds.
Before either side is timed, one untimed sampling call and the import of smolagents are paid (:func:`warm_up`),
so that the side that runs first does not carry the process's one-off costs.

Roughly 5-10 minutes on an idle 2-core CPU (model load, 2 x 16 episodes, 2 updates); never on a machine
shared with a timed run, whose load moves both wall and CPU time.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path[0] = str(Path(__file__).resolve().parents[1])

from agents.engine import EpisodeRequest  # noqa: E402
from agents.learner.model_loading import load_model_and_tokenizer  # noqa: E402
from agents.learner.policy import Policy, PolicyConfig  # noqa: E402
from agents.learner.rollout import collect  # noqa: E402
from agents.learner.update import UpdateConfig, compute_advantages, trainable, update_policy  # noqa: E402
from agents.proxy.backend import PolicyBackend, ProxyConfig  # noqa: E402
from agents.proxy.harness import EnvScorer, merge_stats, play_episodes  # noqa: E402
from agents.proxy.server import ProxyServer  # noqa: E402
from agents.proxy.smolagents_harness import CodeAgentHarness  # noqa: E402
from agents.proxy.transitions import training_pairs  # noqa: E402
from benchmarks.results_file import write_section  # noqa: E402
from toolr1_env.env import ToolR1Env, resolve_tasks  # noqa: E402
from toolr1_env.sandbox import SandboxConfig  # noqa: E402
from toolr1_env.vector import ThreadVectorEnv  # noqa: E402


def timed_update(policy: Policy, pairs: list, lr: float) -> float:
    """Seconds of one GRPO update over ``pairs``."""
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=lr)
    started = time.perf_counter()
    update_policy(policy, optimizer, pairs, UpdateConfig())
    return time.perf_counter() - started


def warm_up(policy: Policy) -> None:
    """Pay the one-off costs outside the timed regions: the first kernels of a sampling call, smolagents' import."""
    import smolagents  # noqa: F401 - CodeAgentHarness imports it lazily, on the first episode

    import toolr1_env.integrations.smolagents  # noqa: F401

    prompt = policy.tokenizer("Warm up.", add_special_tokens=False)["input_ids"]
    policy.sample([prompt, prompt], max_new_tokens=8, generator=torch.Generator().manual_seed(0))


def ours(policy: Policy, pool: list, args: argparse.Namespace) -> dict[str, float]:
    """Our rollout (PolicyPlayer over ToolR1Env) and one update; per-episode figures."""
    n = len(pool) * args.group_size

    def factory() -> ToolR1Env:
        return ToolR1Env(tasks=pool, max_turns=args.max_steps, prompt_style="compact",
                         sandbox=SandboxConfig(preload=(), step_timeout=5.0))

    requests = [EpisodeRequest.of(task, seed=i) for task in pool for i in range(args.group_size)]
    with ThreadVectorEnv([factory] * min(n, args.concurrency)) as envs:
        wall, cpu = time.perf_counter(), time.process_time()
        trajectories, stats = collect(policy, envs, requests, max_episode_tokens=4096,
                                      generator=torch.Generator().manual_seed(0))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    config = UpdateConfig()
    pairs = trainable(trajectories, compute_advantages(trajectories, config), config)
    prompt_tokens = sum(t.turns[k].gen_start for t in trajectories for k in range(len(t.turns)))
    return {"wall_s": wall / n, "cpu_s": cpu / n, "calls": sum(t.num_turns for t in trajectories) / n,
            "prompt_tokens": prompt_tokens / n, "generated_tokens": stats.generated_tokens / n,
            "sequences": 1.0, "trained_tokens": sum(len(t.token_ids) for t in trajectories) / n,
            "update_s": timed_update(policy, pairs, args.lr) / n,
            "reward": sum(t.reward for t in trajectories) / n, "rerender_rate": 0.0}


def proxied(policy: Policy, pool: list, args: argparse.Namespace) -> dict[str, float]:
    """CodeAgent through the proxy and one update; per-episode figures."""
    n = len(pool) * args.group_size
    harness = CodeAgentHarness(max_steps=args.max_steps, max_tokens=args.max_tokens)
    backend = PolicyBackend(policy, config=ProxyConfig(model_name="bench", seed=0))
    scorer = EnvScorer.of(ToolR1Env(tasks=pool))  # the same judge and reward weights as ours
    try:
        with ProxyServer(backend) as server:
            wall, cpu = time.perf_counter(), time.process_time()
            episodes = play_episodes(server, harness, pool, group_size=args.group_size, scorer=scorer,
                                     concurrency=args.concurrency)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            batches = backend.batcher.batches
    finally:
        harness.close()
    transitions = [t for e in episodes for t in e.transitions]
    stats = merge_stats(episodes)
    prompt_tokens = sum(turn.gen_start for t in transitions for turn in t.turns)
    return {"wall_s": wall / n, "cpu_s": cpu / n, "calls": stats.calls / n, "prompt_tokens": prompt_tokens / n,
            "generated_tokens": sum(t.num_generated_tokens for t in transitions) / n,
            "sequences": len(transitions) / n, "trained_tokens": sum(len(t.token_ids) for t in transitions) / n,
            "update_s": timed_update(policy, training_pairs(episodes, UpdateConfig()), args.lr) / n,
            "reward": sum(e.reward for e in episodes) / n, "rerender_rate": stats.rerender_rate,
            "rows_per_batch": stats.calls / max(batches, 1)}


def main() -> None:
    """Run both sides from the same adapter; print and record the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num_tasks", type=int, default=4)
    parser.add_argument("--group_size", type=int, default=4)
    parser.add_argument("--max_steps", type=int, default=2)
    parser.add_argument("--max_tokens", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--no_write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    torch.manual_seed(0)
    model, tokenizer = load_model_and_tokenizer()
    base = Policy(model, tokenizer, PolicyConfig(lora_r=16, max_new_tokens=args.max_tokens))
    warm_up(base)
    task_set = resolve_tasks("warmup")
    pool = [task_set.pick(i) for i in range(args.num_tasks)]
    rows = {"ours (PolicyPlayer, ToolR1Env)": ours(copy.deepcopy(base), pool, args),
            "smolagents CodeAgent via proxy": proxied(copy.deepcopy(base), pool, args)}
    keys = ["wall_s", "cpu_s", "calls", "prompt_tokens", "generated_tokens", "sequences", "trained_tokens",
            "update_s", "reward", "rerender_rate"]
    lines = ["| per episode | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[k]:.3g}" for k in keys) + " |")
    body = (f"{args.num_tasks} warm-up tasks x {args.group_size} samples, SmolLM2-135M, LoRA r=16, temperature 1, "
            f"{args.max_tokens} tokens per call, at most {args.max_steps} code steps, {args.concurrency} episodes in "
            "flight; per-episode means; cpu_s is this process's CPU time (sandboxes excluded); update_s is one "
            "GRPO update's time divided by the episodes.\n\n" + "\n".join(lines))
    print(body)
    if not args.no_write:
        write_section("Cost per episode: smolagents through the recording proxy vs our rollout (bench_proxy.py)", body)


if __name__ == "__main__":
    main()
