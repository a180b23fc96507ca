"""One GRPO iteration of multi-turn code episodes: TRL's GRPOTrainer with our rollout function vs our own learner.

    pip install -e '.[train,trl]'
    python benchmarks/bench_trl_rollout.py                                   # bundled model, small size
    python benchmarks/bench_trl_rollout.py --model tiny-random --steps 1     # smoke run (writes nothing)

Both sides play the same multi-turn ToolR1-GAIA-v0 episodes with the same code: the one episode engine, our
sampler (``Policy.sample``) and ``ThreadVectorEnv`` sandboxes built by ``agents.learner.train.make_envs``, the
same forced ``"```py\\n"`` response prefix, token budgets and tasks (a seeded schedule draws ``tasks_per_step``
pool tasks per iteration; both sides play the same tasks at the same iteration). What differs is everything
around the rollout:

* ours: ``agents.learner.train.train_iteration`` (rollouts, groups, our clipped token-level loss in
  micro-batches that share a group's prompt, zero-advantage trajectories skipped, one AdamW step);
* TRL: ``GRPOTrainer(rollout_func=agents.trl.make_rollout_func(...), reward_funcs=[toolr1_reward])`` with the
  same LoRA, learning rate, clipping and token-level normalisation (``loss_type="dapo"``), one generation batch
  per optimiser step (``gradient_accumulation_steps = tasks x group / micro_batch_size``); TRL runs every
  completion through its loss, each with its own copy of the prompt.

The dynamic sample queue (``--queue``, on both sides or neither) is seeded with the pool's reference solutions
before the first iteration on both sides (``ToolR1Rollout.seed_demonstrations`` on the TRL side), as our learner
does. Each side runs in its own process, so its peak memory is its own; iteration 0 is a warm-up and is excluded.
"""

from __future__ import annotations

import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from agents.cli import arg, as_argv, parse  # noqa: E402
from agents.learner.policy import LORA_TARGETS  # noqa: E402
from agents.learner.train import Args, make_envs, make_task_pool  # noqa: E402
from benchmarks.results_file import markdown_table, write_section  # noqa: E402
from toolr1_env.tasks import TaskSet  # noqa: E402

TITLE = "GRPO iteration through TRL with our rollout function (bench_trl_rollout.py)"


@dataclass
class BenchArgs:
    """One GRPO iteration through TRL + our rollout function vs our own learner (same tasks, model, group)."""

    model: str = arg("smollm2-135m", "bundled alias, local folder, or tiny-random (smoke run)")
    steps: int = arg(2, "measured iterations (after one warm-up iteration)")
    seed: int = arg(0, "random seed (task schedule, adapter init, sampling)")
    tasks: str = arg("warmup", "training split the task pool is drawn from")
    task_pool_size: int = arg(32, "fixed pool of training tasks")
    tasks_per_step: int = arg(2, "distinct tasks per iteration")
    group_size: int = arg(4, "episodes per task (the GRPO group)")
    micro_batch_size: int = arg(4, "trajectories per forward/backward")
    num_envs: int = arg(8, "parallel environments (sandboxes) on each side")
    max_turns: int = arg(2, "code actions per episode")
    max_new_tokens: int = arg(32, "tokens per generated turn")
    max_episode_tokens: int = arg(1536, "token budget of a whole episode")
    temperature: float = arg(1.0, "sampling temperature")
    lr: float = arg(5e-4, "learning rate of the LoRA adapter")
    lora_r: int = arg(16, "LoRA rank")
    lora_alpha: int = arg(32, "LoRA alpha")
    queue: bool = arg(True, "the dynamic sample queue seeded with reference solutions, on both sides")
    repeats: int = arg(2, "runs of each side, ordered ours, TRL, TRL, ours, ... (a shared machine's load drifts)")
    side: str = arg("both", "internal: run one side in this process", choices=("both", "ours", "trl"))
    result_file: str = arg("", "internal: where a side writes its JSON result")
    no_write: bool = arg(False, "print the table without writing benchmarks/RESULTS.md")

    def train_args(self) -> Args:
        """Our learner's settings for this benchmark (the learner's defaults for everything not listed)."""
        return Args(model=self.model, tasks=self.tasks, task_pool_size=self.task_pool_size,
                    tasks_per_iteration=self.tasks_per_step, group_size=self.group_size, num_envs=self.num_envs,
                    max_turns=self.max_turns, max_new_tokens=self.max_new_tokens,
                    max_episode_tokens=self.max_episode_tokens, temperature=self.temperature, lr=self.lr,
                    lora_r=self.lora_r, lora_alpha=self.lora_alpha, micro_batch_size=self.micro_batch_size,
                    kl_coef=0.0, use_queue=self.queue, queue_demonstrations=self.queue, seed=self.seed)


def schedule(pool: TaskSet, bench: BenchArgs) -> list[list[str]]:
    """Task ids of each iteration (warm-up first): ``tasks_per_step`` distinct pool tasks each, seeded."""
    rng = random.Random(bench.seed)
    ids = [t.task_id for t in pool.tasks]
    return [rng.sample(ids, min(bench.tasks_per_step, len(ids))) for _ in range(bench.steps + 1)]


def load(bench: BenchArgs) -> tuple[Any, Any]:
    """Model and tokenizer (``tiny-random``: a 2-layer random Llama with the SmolLM2 tokenizer)."""
    from agents.learner.model_loading import load_model_and_tokenizer, make_tiny_model

    return make_tiny_model(seed=bench.seed) if bench.model == "tiny-random" else load_model_and_tokenizer(bench.model)


def queue_for(args: Args) -> Any:
    """Our learner's sample queue for these settings (None when off)."""
    from agents.learner.sample_queue import SampleQueue, SampleQueueConfig

    if not args.use_queue:
        return None
    return SampleQueue(SampleQueueConfig(per_task_capacity=args.queue_capacity_per_task,
                                         max_inject=args.queue_max_inject, max_age=args.queue_max_age,
                                         max_reuse=args.queue_max_reuse, inject_when=args.queue_inject_when))


def run_ours(bench: BenchArgs) -> dict[str, Any]:
    """``agents.learner.train.train_iteration`` once per scheduled iteration."""
    from transformers import set_seed

    from agents.learner.playing import seed_queue_with_demonstrations
    from agents.learner.policy import Policy, PolicyConfig
    from agents.learner.train import train_iteration
    from agents.learner.update import UpdateConfig

    args = bench.train_args()
    pool = make_task_pool(args, 0)
    plan = schedule(pool, bench)
    model, tokenizer = load(bench)
    set_seed(bench.seed)  # as GRPOTrainer does before wrapping the model: the same adapter initialisation
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=args.lora_r, lora_alpha=args.lora_alpha,
                                                   lora_target_modules=LORA_TARGETS, temperature=args.temperature,
                                                   max_new_tokens=args.max_new_tokens))
    policy.model.to("cuda" if torch.cuda.is_available() else "cpu")
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=args.lr, weight_decay=0.0)
    config = UpdateConfig(micro_batch_size=args.micro_batch_size, clip_low=args.clip_low, clip_high=args.clip_high,
                          kl_coef=0.0, advantage_scale="std", is_weight_cap=args.queue_is_cap)
    queue, rng, steps = queue_for(args), random.Random(bench.seed * 1000), []
    envs = make_envs(pool, args)
    try:
        if queue is not None:
            seed_queue_with_demonstrations(policy, envs, pool, queue, args)
        rss_before, cpu_start = _rss_mib(), (*_cpu_times(), _self_cpu_s())
        for step, task_ids in enumerate(plan):
            step_pool = TaskSet(f"{pool.name}-step{step}", [pool.get(t) for t in task_ids], pool.tools)
            _sync()
            started, cpu = time.perf_counter(), _self_cpu_s()
            metrics, _ = train_iteration(step, policy, optimizer, envs, step_pool, queue, config, args, rng, None)
            _sync()
            seconds = time.perf_counter() - started
            steps.append({"seconds": seconds, "cpu_s": _self_cpu_s() - cpu, "rollout_s": metrics["rollout/wall_s"],
                          "update_s": metrics["time/update_s"], "episodes": metrics["rollout/episodes"],
                          "tokens": metrics["rollout/generated_tokens"], "reward": metrics.get("reward/mean", 0.0),
                          "from_queue": metrics.get("batch/from_queue", 0.0)})
            print(f"[ours] iteration {step}: {seconds:.1f} s", file=sys.stderr, flush=True)
    finally:
        envs.close()
    return _memory({"side": "ours", "steps": steps, "rss_before_steps_mib": rss_before, "cpu_start": cpu_start})


def run_trl(bench: BenchArgs) -> dict[str, Any]:
    """TRL's ``GRPOTrainer`` with our rollout function, ``steps + 1`` optimiser steps."""
    import trl
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from agents.learner.rollout import Conversation
    from agents.trl import make_rollout_func, toolr1_reward
    from toolr1_env.integrations.trl import task_rows

    args = bench.train_args()
    per_step = bench.tasks_per_step * bench.group_size
    if per_step % bench.micro_batch_size:
        raise ValueError("tasks_per_step * group_size must be a multiple of micro_batch_size")
    pool = make_task_pool(args, 0)
    plan = schedule(pool, bench)
    rows = [row for task_ids in plan for t in task_ids for row in task_rows([pool.get(t)])]  # in schedule order
    model, tokenizer = load(bench)
    conversation = Conversation(system_prompt=args.system_prompt or None, response_prefix=args.response_prefix,
                                max_new_tokens=args.max_new_tokens, max_episode_tokens=args.max_episode_tokens)
    rollout = make_rollout_func(envs=make_envs(pool, args), conversation=conversation, queue=queue_for(args),
                                demonstrations=args.use_queue, seed=bench.seed)
    steps: list[dict[str, float]] = []

    class Timer(TrainerCallback):
        started = cpu = 0.0

        def on_step_begin(self, *a: Any, **k: Any) -> None:
            _sync()
            Timer.started, Timer.cpu = time.perf_counter(), _self_cpu_s()

        def on_step_end(self, *a: Any, **k: Any) -> None:
            _sync()
            seconds, m = time.perf_counter() - Timer.started, rollout.last_metrics
            rewards = [t.reward for t in rollout.last_trajectories if t.source == "online" and not t.infra_error]
            steps.append({"seconds": seconds, "cpu_s": _self_cpu_s() - Timer.cpu, "rollout_s": m["rollout_s"],
                          "update_s": seconds - m["rollout_s"],
                          "episodes": m["episodes"], "tokens": m["generated_tokens"],
                          "reward": statistics.fmean(rewards) if rewards else 0.0, "from_queue": m["cached_rows"]})
            print(f"[trl] iteration {len(steps) - 1}: {seconds:.1f} s", file=sys.stderr, flush=True)

    try:
        with tempfile.TemporaryDirectory(prefix="bench_trl_rollout_") as output_dir:
            config = GRPOConfig(
                output_dir=output_dir, seed=bench.seed, max_steps=len(plan), shuffle_dataset=False,
                per_device_train_batch_size=bench.micro_batch_size,
                gradient_accumulation_steps=per_step // bench.micro_batch_size, num_generations=bench.group_size,
                temperature=bench.temperature, top_p=1.0, top_k=0, learning_rate=bench.lr,
                lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, optim="adamw_torch",
                max_grad_norm=1.0, beta=0.0, num_iterations=1, epsilon=args.clip_low, epsilon_high=args.clip_high,
                loss_type="dapo", scale_rewards="group", bf16=False, fp16=False, gradient_checkpointing=False,
                use_cpu=not torch.cuda.is_available(), report_to="none", logging_strategy="no", save_strategy="no",
                disable_tqdm=True, log_completions=False, remove_unused_columns=False)
            peft_config = LoraConfig(r=bench.lora_r, lora_alpha=bench.lora_alpha, lora_dropout=0.0,
                                     target_modules=list(LORA_TARGETS), task_type="CAUSAL_LM")
            trainer = GRPOTrainer(model=model, reward_funcs=[toolr1_reward], args=config,
                                  train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                                  peft_config=peft_config, rollout_func=rollout, callbacks=[Timer()])
            if args.use_queue:  # before the first iteration, as our learner seeds its whole pool
                rollout.seed_demonstrations(trainer, [t.task_id for t in pool.tasks])
            rss_before, cpu_start = _rss_mib(), (*_cpu_times(), _self_cpu_s())
            trainer.train()
    finally:
        rollout.close()
    return _memory({"side": "trl", "steps": steps, "rss_before_steps_mib": rss_before, "cpu_start": cpu_start,
                    "trl_version": trl.__version__})


# ------------------------------------------------------------------------------------------- measuring


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_times() -> tuple[float, float]:
    """Seconds of CPU the whole machine spent busy, and its capacity, so far (``/proc/stat``, all CPUs)."""
    ticks = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = ticks
    hz = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq + steal) / hz, sum(ticks) / hz


def _self_cpu_s() -> float:
    """CPU seconds this process (all its threads) has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _memory(result: dict[str, Any]) -> dict[str, Any]:
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    (busy, total), self_cpu = _cpu_times(), _self_cpu_s()
    start_busy, start_total, start_self = result.pop("cpu_start")
    # Whatever else kept the CPUs busy meanwhile (other users' jobs; also this side's sandboxes, a small share).
    result["others_share"] = max(0.0, (busy - start_busy) - (self_cpu - start_self)) / max(total - start_total, 1e-9)
    result["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    if torch.cuda.is_available():
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def run_side(bench: BenchArgs, side: str) -> dict[str, Any]:
    """One side in a fresh Python process (its own peak memory); returns its JSON result."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_file = handle.name
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "TRL_EXPERIMENTAL_SILENCE": "1"}
    child = replace(bench, side=side, result_file=result_file)
    process = subprocess.run([sys.executable, str(Path(__file__).resolve()), *as_argv(child)], env=env)
    try:
        if process.returncode != 0:
            sys.exit(f"the {side} side failed (exit code {process.returncode})")
        return json.loads(Path(result_file).read_text())
    finally:
        Path(result_file).unlink(missing_ok=True)


def summarise(results: list[dict[str, Any]]) -> dict[str, float]:
    """Means over every run's measured iterations (each run's warm-up excluded when it has more)."""
    steps = [s for r in results for s in (r["steps"][1:] or r["steps"])]
    mean = {k: statistics.fmean(s[k] for s in steps) for k in steps[0]}
    per_run = [statistics.fmean(s["seconds"] for s in (r["steps"][1:] or r["steps"])) for r in results]
    out = {**mean, "run_min_s": min(per_run), "run_max_s": max(per_run), "iterations": float(len(steps)),
           "peak_rss_mib": max(r["peak_rss_mib"] for r in results),
           "rss_before_steps_mib": statistics.fmean(r["rss_before_steps_mib"] for r in results),
           "others_share": statistics.fmean(r["others_share"] for r in results)}
    if all("cuda_peak_mib" in r for r in results):
        out["cuda_peak_mib"] = max(r["cuda_peak_mib"] for r in results)
    return out


def report(bench: BenchArgs, ours: list[dict[str, Any]], trl: list[dict[str, Any]]) -> str:
    """The markdown table and what differs between the sides, next to each figure."""
    o, t = summarise(ours), summarise(trl)
    cuda = "cuda_peak_mib" in o and "cuda_peak_mib" in t
    header = ["side", "s / iteration", "CPU s / iteration", "rollout s", "update s", "peak RSS MiB",
              *(["peak CUDA MiB"] if cuda else []),
              "episodes", "generated tokens", "mean reward"]

    def row(name: str, m: dict[str, float]) -> list[object]:
        spread = f" ({m['run_min_s']:.1f}-{m['run_max_s']:.1f})" if len(ours) > 1 else ""
        return [name, f"{m['seconds']:.2f}{spread}", f"{m['cpu_s']:.1f}", f"{m['rollout_s']:.2f}",
                f"{m['update_s']:.2f}", f"{m['peak_rss_mib']:.0f}", *([f"{m['cuda_peak_mib']:.0f}"] if cuda else []),
                f"{m['episodes']:.0f}", f"{m['tokens']:.0f}", f"{m['reward']:.3f}"]

    ratio = ["TRL / ours", _ratio(t["seconds"], o["seconds"]), _ratio(t["cpu_s"], o["cpu_s"]),
             _ratio(t["rollout_s"], o["rollout_s"]),
             _ratio(t["update_s"], o["update_s"]), _ratio(t["peak_rss_mib"], o["peak_rss_mib"]),
             *([_ratio(t["cuda_peak_mib"], o["cuda_peak_mib"])] if cuda else []), "", "", ""]
    table = markdown_table(header, [row("toolr1 learner (`train_iteration`)", o),
                                    row("TRL `GRPOTrainer` + `agents.trl` rollout", t), ratio])
    episodes = bench.tasks_per_step * bench.group_size
    others = f"{100 * o['others_share']:.0f}% (ours), {100 * t['others_share']:.0f}% (TRL)"
    busy = ("\n- **The machine was shared**: other jobs held a large share of its CPUs, so wall times are inflated "
            "several-fold and their ratio is noisy; compare CPU s and memory, or rerun on a quiet machine."
            if min(o["others_share"], t["others_share"]) > 0.3 else "")
    notes = f"""
Model `{bench.model}` (fp32, {ours[0]['device']}), LoRA r={bench.lora_r} alpha={bench.lora_alpha} on all
projections; {bench.tasks_per_step} tasks x group {bench.group_size} = {episodes} episodes per iteration of up to
{bench.max_turns} code actions, {bench.max_new_tokens} new tokens per turn, from the `{bench.tasks}` pool
({bench.task_pool_size} tasks; the same tasks at the same iteration on both sides), {bench.num_envs} envs per side,
queue {'on' if bench.queue else 'off'}. {len(ours)} run(s) per side (order: ours, TRL, TRL, ours, ...), each a
warm-up iteration then {bench.steps} measured; means over the {o['iterations']:.0f} measured iterations per side
(in brackets: the fastest and slowest run's mean). TRL {trl[0]['trl_version']}, torch {torch.__version__}.

- *s / iteration*: one GRPO iteration end to end (rollouts, rewards, advantages, one optimiser step), wall time.
- *CPU s / iteration*: CPU time of the side's own process (all threads) in that iteration: the work done, which
  other jobs on a shared machine do not inflate as much as they inflate wall time.
- *rollout s*: the same code on both sides (the episode engine, our sampler on the training model, the same envs
  and settings); what differs is the episodes themselves (sampling, and a policy that has moved differently after
  the warm-up update), hence their lengths and turn counts.
- *update s*: where the sides really differ. Ours: `update_policy`, a group's shared prompt run once,
  zero-advantage trajectories skipped. TRL: everything in its step after our rollout returned (reward function,
  advantages, bookkeeping, {episodes // bench.micro_batch_size} micro-batches through its loss, every completion
  with its own copy of the prompt, logging).
- *peak RSS*: the largest over the side's runs, each its own process (model, libraries, training; the sandboxes
  are separate processes, not counted). Before the first iteration: {o['rss_before_steps_mib']:.0f} MiB (ours),
  {t['rss_before_steps_mib']:.0f} MiB (TRL, which also loads `datasets` and its trainer stack).
- *mean reward*: the online episodes' env reward (1.0 per correct answer + 0.2 x clean execution; injected cached
  samples not counted). Cached samples trained per iteration: {o['from_queue']:.1f} (ours), {t['from_queue']:.1f}
  (TRL).
- Other work on the machine during the measured iterations (busy CPU time not spent by the side's own
  process, as a share of all {os.cpu_count()} CPUs; includes that side's sandboxes): {others}.{busy}
"""
    return table + "\n" + notes


def _ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.2f}x" if denominator > 1e-2 else "n/a"


def main() -> None:
    """Run both sides, each in its own process; print the table and record it (not for a smoke run)."""
    bench = parse(BenchArgs, description=__doc__)
    if bench.side != "both":
        result = run_ours(bench) if bench.side == "ours" else run_trl(bench)
        Path(bench.result_file).write_text(json.dumps(result))
        return
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "trl": []}
    for r in range(bench.repeats):
        for side in (("ours", "trl") if r % 2 == 0 else ("trl", "ours")):
            runs[side].append(run_side(bench, side))
    text = report(bench, runs["ours"], runs["trl"])
    print(text)
    if bench.no_write or bench.model == "tiny-random":
        print("(not written to RESULTS.md: smoke run or --no_write)")
        return
    print(f"written to {write_section(TITLE, text)}")


if __name__ == "__main__":
    main()
