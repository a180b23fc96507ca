"""Train smolagents' unchanged ``CodeAgent`` with GRPO, through the recording proxy, on a fixed pool of tasks.

    python -m agents.proxy.train                                   # the CPU demo: 4 warm-up tasks x 4 samples
    python -m agents.proxy.train --iterations 8 --output_dir runs/proxy-demo
    python -m agents.proxy.train --help

Each iteration: every task of the pool is played ``group_size`` times by ``CodeAgent`` (its own loop,
prompt and parser; our sandbox as its executor; our policy behind the proxy), concurrently, so the
agents' calls share sampling batches; the env's scorer pays each episode; the recorded calls become
transitions (:mod:`agents.proxy.transitions`), one advantage per episode; one GRPO update
(:func:`agents.learner.update.update_policy`); the policy version is bumped. Single-transition successes
enter the learner's sample queue and top up groups with no signal (a transition of a re-rendered episode
is not a whole episode, so it is never replayed alone).

``--screen_tasks N`` (after the warm-up) plays ``N`` candidate tasks ``--screen_samples`` times each with no
update and keeps as the pool the ``--num_tasks`` whose success rate is nearest one half (DAPO's and our
learner's ``--task_choice learnable``, once, for a fixed pool): a task the policy always or never solves
gives its group equal rewards and no gradient.

``--warmup_tasks N`` first imitates ``N`` other tasks' reference solutions in ``CodeAgent``'s own format
(:mod:`agents.proxy.demonstrations`: the scripts are played through the unchanged agent, so the imitated
tokens are the ones it will show the policy), as ``agents/train_grpo.py``'s supervised warm-up does for our
rollout: the base model never answers through ``CodeAgent``, and groups without a success carry no signal.

Where it departs from ``agents/train_grpo.py``, and why: no held-out evaluation (a demonstration sized for
CPU minutes); the pool is fixed so the reward curve compares like with like; the harness, not the env, runs
the episode loop.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from agents.cli import arg, parse
from agents.learner.grpo import zero_signal_groups
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.sample_queue import SampleQueue
from agents.learner.update import UpdateConfig, update_policy
from agents.proxy.backend import PolicyBackend, ProxyConfig
from agents.proxy.demonstrations import play_demonstrations, warm_up_through_harness
from agents.proxy.harness import EnvScorer, merge_stats, play_episodes
from agents.proxy.server import ProxyServer
from agents.proxy.smolagents_harness import COMPACT_SYSTEM_PROMPT, CodeAgentHarness
from agents.proxy.transitions import ProxyEpisode, training_pairs
from toolr1_env.tasks import Task


@dataclass
class Args:
    """Every knob of a proxy training run."""

    model: str = arg("smollm2-135m", "model alias or folder; tiny-random: a 2-layer random model (smoke tests)")
    tasks: str = arg("warmup", "bundled split the task pool is drawn from")
    num_tasks: int = arg(4, "tasks in the fixed pool (each is one GRPO group per iteration)")
    group_size: int = arg(4, "episodes per task per iteration")
    iterations: int = arg(4, "GRPO iterations")
    max_steps: int = arg(2, "CodeAgent's max_steps")
    max_tokens: int = arg(64, "completion tokens per call")
    concurrency: int = arg(16, "harness episodes in flight (their calls share sampling batches; the proxy samples "
                               "at most 16 rows at once)")
    request_timeout: float = arg(600.0, "seconds CodeAgent's client waits for one proxy call (a timeout is an "
                                        "infrastructure error: raise it on a loaded CPU)")
    warmup_tasks: int = arg(0, "tasks (apart from the pool) whose reference solutions, played through CodeAgent as "
                               "scripted replies, are imitated before GRPO (0: no warm-up; the base model then "
                               "earns no reward)")
    screen_tasks: int = arg(0, "candidate tasks screened after the warm-up; the pool becomes the --num_tasks of them "
                               "solved nearest half the time (0: the pool is drawn directly)")
    screen_samples: int = arg(4, "episodes per candidate task when screening")
    warmup_passes: int = arg(3, "supervised passes over the verified scripted episodes")
    warmup_lr: float = arg(1e-3, "AdamW learning rate of the warm-up (GRPO then starts a fresh AdamW at --lr)")
    lr: float = arg(2e-4, "AdamW learning rate of the LoRA adapter")
    loss_aggregation: str = arg("token", "token (every trained token of the batch weighs alike, DAPO) or sequence "
                                         "(every episode weighs once, its transitions together, GRPO): "
                                         "agents/learner/update.py", ("token", "sequence"))
    advantage_scale: str = arg("std", "group advantage scaling: std (GRPO) or none (Dr. GRPO, the multistep "
                                      "recipe's: a group's tiny reward std does not blow a small difference up)",
                               ("std", "none"))
    exec_bonus: str = arg("always", "when clean execution earns the env's exec_weight: always, or correct (only "
                                    "on a correct answer, the multistep recipe's)", ("always", "correct"))
    epochs: int = arg(1, "optimiser steps per batch (each a pass over it; from the second on the PPO clip acts)")
    lora_r: int = arg(16, "LoRA rank")
    temperature: float = arg(1.0, "sampling temperature (also the one the update scores at)")
    smolagents_prompt: bool = arg(False, "keep smolagents' own ~2,700-token system prompt (default: a compact one)")
    queue: bool = arg(True, "replay single-transition successes into groups with no signal")
    seed: int = arg(0, "task pool, sampling and update seed")
    output_dir: str = arg("", "where metrics.jsonl and the adapter go (default runs/proxy__<time>)")


def iteration_metrics(episodes: list[ProxyEpisode], seconds: float) -> dict[str, float]:
    """Mean reward and its parts over scored episodes, merge statistics, episode cost."""
    scored = [e for e in episodes if e.infra_error is None]
    parts = [t.reward_components for e in scored for t in e.transitions[:1]]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    return {"reward": mean([e.reward for e in scored]),
            "answer_score": mean([p.get("answer_score", 0.0) for p in parts]),
            "exec_success": mean([p.get("exec_success", 0.0) for p in parts]),
            "answered": mean([p.get("answered", 0.0) for p in parts]),
            "infra_errors": float(len(episodes) - len(scored)),
            "episode_seconds": mean([e.seconds for e in episodes]), "iteration_seconds": seconds,
            "signal_groups": signal_group_share(scored), **merge_stats(episodes).as_metrics()}


def signal_group_share(episodes: list[ProxyEpisode]) -> float:
    """Share of groups whose scored episodes' rewards differ (the others carry no GRPO gradient)."""
    groups = {e.group_id for e in episodes}
    flat = zero_signal_groups([e.reward for e in episodes], [e.group_id for e in episodes])
    return (len(groups) - len(flat)) / len(groups) if groups else 0.0


def answer_rates(episodes: list[ProxyEpisode]) -> dict[str, float]:
    """Mean answer score of every task's scored episodes (a task whose episodes all failed is left out)."""
    scores: dict[str, list[float]] = {}
    for episode in episodes:
        if episode.infra_error is None and episode.transitions:
            scores.setdefault(episode.task_id, []).append(
                episode.transitions[0].reward_components.get("answer_score", 0.0))
    return {task_id: sum(values) / len(values) for task_id, values in scores.items()}


def learnable_pool(candidates: list[Task], rates: dict[str, float], num_tasks: int) -> list[Task]:
    """The ``num_tasks`` candidates whose success rate is nearest one half, in candidate order on ties.

    Raises:
        ValueError: fewer than ``num_tasks`` candidates were scored.
    """
    scored = [task for task in candidates if task.task_id in rates]
    if len(scored) < num_tasks:
        raise ValueError(f"screening scored {len(scored)} candidate tasks, fewer than --num_tasks {num_tasks}")
    order = sorted(range(len(scored)), key=lambda i: (abs(rates[scored[i].task_id] - 0.5), i))
    return [scored[i] for i in sorted(order[:num_tasks])]


def draw_tasks(task_set: Any, num_tasks: int, num_warmup: int, rng: random.Random) -> tuple[list[Task], list[Task]]:
    """The fixed RL pool and, apart from it (no task id in both), the warm-up's tasks.

    Raises:
        ValueError: a bundled (not generated) split holds fewer tasks than both need.
    """
    if task_set.is_generated:
        pool = [task_set.pick(rng.randrange(2**31)) for _ in range(num_tasks)]
        taken = {t.task_id for t in pool}
        warmup: list[Task] = []
        while len(warmup) < num_warmup:
            task = task_set.pick(rng.randrange(2**31))
            if task.task_id not in taken:
                taken.add(task.task_id)
                warmup.append(task)
        return pool, warmup
    tasks = list(task_set.tasks)
    if num_tasks + num_warmup > len(tasks):
        raise ValueError(f"{task_set.name} holds {len(tasks)} tasks; the pool and the warm-up need "
                         f"{num_tasks} + {num_warmup}")
    chosen = rng.sample(tasks, num_tasks + num_warmup)
    return chosen[:num_tasks], chosen[num_tasks:]


def replay_into_flat_groups(episodes: list[ProxyEpisode], queue: SampleQueue, version: int,
                            group_size: int) -> list[ProxyEpisode]:
    """Admit single-transition successes to the queue; give groups whose rewards are all equal cached ones."""
    by_group: dict[str, list[ProxyEpisode]] = {}
    for episode in episodes:
        by_group.setdefault(episode.group_id, []).append(episode)
        if episode.infra_error is None and len(episode.transitions) == 1:
            queue.add(episode.transitions[0], version)
    out: list[ProxyEpisode] = []
    for group_id, members in by_group.items():
        single = all(len(e.transitions) == 1 and e.infra_error is None for e in members)
        if single:
            filled = queue.fill_group([e.transitions[0] for e in members], members[0].task_id, version,
                                      group_size=group_size)
            members = [ProxyEpisode(t.metadata.get("episode_id", f"cache-{i}"), t.task_id, group_id, [t],
                                    reward=t.reward) for i, t in enumerate(filled)]
        out += members
    return out


def screen(server: ProxyServer, harness: CodeAgentHarness, candidates: list[Task], scorer: EnvScorer,
           args: Args) -> tuple[list[Task], dict[str, Any]]:
    """Play every candidate ``--screen_samples`` times (no update) and keep the learnable pool."""
    started = time.perf_counter()
    episodes = play_episodes(server, harness, candidates, group_size=args.screen_samples, scorer=scorer,
                             concurrency=args.concurrency, group_prefix="screen-")
    rates = answer_rates(episodes)
    pool = learnable_pool(candidates, rates, args.num_tasks)
    metrics = {f"screen/{k}": v for k, v in iteration_metrics(episodes, time.perf_counter() - started).items()}
    metrics["screen/learnable_candidates"] = float(sum(0.0 < r < 1.0 for r in rates.values()))
    metrics["screen/pool_answer_score"] = sum(rates[t.task_id] for t in pool) / len(pool)
    print(f"[proxy-train] screening: {len(candidates)} tasks x {args.screen_samples}: answer "
          f"{metrics['screen/answer_score']:.3f}; {metrics['screen/learnable_candidates']:.0f} solved sometimes; "
          f"pool of {len(pool)} at answer {metrics['screen/pool_answer_score']:.3f}, "
          f"{metrics['screen/iteration_seconds']:.0f}s", flush=True)
    return pool, {"metrics": metrics, "rates": rates}


def main(args: Args) -> dict[str, Any]:
    """Run the training loop; write ``metrics.jsonl``, ``summary.json`` and the adapter; return the summary."""
    from agents.learner.model_loading import load_model_and_tokenizer
    from toolr1_env.env import ToolR1Env, resolve_tasks

    if args.screen_tasks and args.screen_tasks < args.num_tasks:
        raise ValueError(f"--screen_tasks {args.screen_tasks} must be 0 or at least --num_tasks {args.num_tasks}")
    out = Path(args.output_dir or f"runs/proxy__{int(time.time())}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "args.json").write_text(json.dumps(asdict(args), indent=2))
    torch.manual_seed(args.seed)
    if args.model == "tiny-random":
        from agents.learner.model_loading import make_tiny_model

        model, tokenizer = make_tiny_model(seed=args.seed)
    else:
        model, tokenizer = load_model_and_tokenizer(args.model)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=args.lora_r, temperature=args.temperature,
                                                   max_new_tokens=args.max_tokens))
    task_set = resolve_tasks(args.tasks)
    rng = random.Random(args.seed)
    pool, warmup_tasks = draw_tasks(task_set, args.screen_tasks or args.num_tasks, args.warmup_tasks, rng)
    scorer = EnvScorer.of(ToolR1Env(tasks=task_set, exec_bonus=args.exec_bonus))  # the env's judge and weights
    harness = CodeAgentHarness(max_steps=args.max_steps, max_tokens=args.max_tokens,
                               system_prompt=None if args.smolagents_prompt else COMPACT_SYSTEM_PROMPT,
                               request_timeout=args.request_timeout)
    config = UpdateConfig(epochs=args.epochs, loss_aggregation=args.loss_aggregation,  # type: ignore[arg-type]
                          advantage_scale=args.advantage_scale)  # type: ignore[arg-type]
    warmup_metrics: dict[str, Any] = {}
    if warmup_tasks:
        episodes = play_demonstrations(policy, harness, warmup_tasks, scorer,
                                       config=ProxyConfig(model_name=args.model, max_context=4096))
        warmup_metrics = warm_up_through_harness(policy, episodes, args.warmup_passes, args.warmup_lr, seed=args.seed)
        with open(out / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"iteration": -1, "phase": "warmup", **warmup_metrics}) + "\n")
        print(f"[proxy-train] warm-up: {warmup_metrics['warmup/verified_episodes']:.0f} of "
              f"{len(warmup_tasks)} scripted episodes verified, {args.warmup_passes} passes, NLL "
              f"{warmup_metrics['warmup/nll_first_epoch']:.3f} -> {warmup_metrics['warmup/nll_last_epoch']:.3f}",
              flush=True)
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=args.lr)
    queue = SampleQueue() if args.queue else None
    history = []
    screening: dict[str, Any] = {}
    backend = PolicyBackend(policy, config=ProxyConfig(model_name=args.model, max_context=4096, seed=args.seed))
    try:
        with ProxyServer(backend) as server:
            if args.screen_tasks:
                pool, screening = screen(server, harness, pool, scorer, args)
                with open(out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps({"iteration": -1, "phase": "screening", **screening["metrics"]}) + "\n")
            for iteration in range(args.iterations):
                started = time.perf_counter()
                episodes = play_episodes(server, harness, pool, group_size=args.group_size, scorer=scorer,
                                         concurrency=args.concurrency, group_prefix=f"it{iteration}-")
                metrics = iteration_metrics(episodes, 0.0)
                batch = replay_into_flat_groups(episodes, queue, policy.version, args.group_size) if queue else episodes
                update = update_policy(policy, optimizer, training_pairs(batch, config), config)
                policy.version += 1
                metrics.update(update, iteration=iteration, iteration_seconds=time.perf_counter() - started)
                history.append(metrics)
                with open(out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(metrics) + "\n")
                print(f"[proxy-train] it {iteration}: reward {metrics['reward']:.3f} answer "
                      f"{metrics['answer_score']:.3f} exec {metrics['exec_success']:.3f} signal groups "
                      f"{metrics['signal_groups']:.2f} rerender "
                      f"{metrics['proxy/rerender_rate']:.2f} infra {metrics['infra_errors']:.0f} "
                      f"{metrics['iteration_seconds']:.0f}s", flush=True)
                crashed = [e.infra_error for e in episodes if e.infra_error]
                if crashed:  # what made them infrastructure errors (a timeout, a crash), first line of the first
                    print(f"[proxy-train]   first infrastructure error: {crashed[0].splitlines()[0]}", flush=True)
    finally:
        harness.close()
    policy.save_adapter(str(out / "adapter"))
    summary = {"rewards": [m["reward"] for m in history], "answer_scores": [m["answer_score"] for m in history],
               "signal_groups": [m["signal_groups"] for m in history],
               "exec_success": [m["exec_success"] for m in history],
               "rerender_rate": [m["proxy/rerender_rate"] for m in history],
               "seconds": [m["iteration_seconds"] for m in history], "pool": [t.task_id for t in pool],
               "screening": screening, "warmup": warmup_metrics, "warmup_tasks": [t.task_id for t in warmup_tasks]}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def cli(argv: list[str] | None = None) -> int:
    """The command (``python -m agents.proxy.train``)."""
    main(parse(Args, argv, description=__doc__))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
