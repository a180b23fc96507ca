"""Training step against TRL: our GRPO learner versus TRL's ``GRPOTrainer``, same model, settings and tasks.

    pip install -e '.[train,bench]'                                        # trl, for this benchmark only
    python -m benchmarks.bench_trl [--steps 5] [--seeds 0 1 2] [--model smollm2-135m]
    python -m benchmarks.bench_trl --model tiny-random --steps 1 --seeds 0   # smoke run (writes nothing)

What is compared: one GRPO training step (rollouts, rewards, advantages, one optimiser step) on
``ToolR1-GAIA-v0``, single-turn (``max_turns=1``: one code action, then the episode ends with its reward),
so TRL can run it too. Ours is ``agents.learner.train.train_iteration`` itself, sample queue off. TRL's is
``GRPOTrainer`` with a reward function that plays each completion as the one action of a fresh episode of
our env on the completion's task (``score_completions``; episodes run concurrently in a ``ThreadVectorEnv``
of the same size as ours, so the env is not a bottleneck on either side). Each side runs in its own
subprocess (``--side ours|trl``; the TRL side lives in ``benchmarks/trl_side.py``, what both share in
``benchmarks/trl_common.py``), so its peak memory is
its own; the parent prints and records the table.

Same settings on both sides (one dataclass, :class:`BenchArgs`): the model (bundled SmolLM2-135M-Instruct,
fp32), LoRA r=16 / alpha=32 / dropout 0 on q,k,v,o,gate,up,down projections, 4 tasks per step x group of
8 = 32 episodes, 64 new tokens, temperature 1.0 (top-p 1, top-k off), AdamW lr 5e-4 (constant, no weight
decay, grad-norm clip 1.0), one optimisation pass per batch in micro-batches of 8 (TRL:
``per_device_train_batch_size=8``, ``gradient_accumulation_steps=4``, so one generation batch = one
optimiser step), no KL (``beta=0``), clip 0.2 / 0.28, token-level loss normalised by the batch's token
count (TRL ``loss_type="dapo"``: divided by the active tokens of the whole generation batch, like ours;
``bnpo`` would normalise per micro-batch), group-std advantage scaling, no gradient checkpointing, no
bf16. The tasks are the ``warmup`` split's fixed pool exactly as ``make_task_pool`` builds it (32 tasks);
a seeded schedule draws 4 distinct tasks per step and both sides play the same tasks at the same step
(TRL: a dataset in schedule order, ``shuffle_dataset=False``; ours: each step's pool is that step's 4
tasks). Prompts: the env's compact prompt (what ``reset()`` returns) as the single user message, in the
chat template. Step 0 is a warm-up, excluded; ``--steps`` steps are measured.

Where the two libraries differ, and what we chose:

* Response prefix. Our trainer forces "```py\\n" at the start of the assistant turn by default; TRL has
  no assistant prefix, so both sides run without one (``response_prefix=""``), the env receives the
  completion as is (it runs the code blocks it finds).
* Stop rules. Ours ends a turn at a closing code fence or ``</code>``; TRL's ``generate`` call cannot take
  stop strings (they need the tokenizer passed to ``generate``). By default both stop only at EOS or the
  token limit, so both generate the same amount of text; ``--our_stop_rules`` turns ours back on (fewer
  tokens per step on our side).
* Environment concurrency. ``--num_envs`` (default 32, our trainer's default) sandboxes on both sides. Our
  rollout keeps that many episodes live, so with 32 it samples a step's 32 completions in one batch, like
  TRL's single ``generate`` call; TRL then scores them ``num_envs`` at a time.
* Work skipped. Ours leaves zero-advantage trajectories out of the backward pass (their loss is exactly 0
  without KL) and runs a group's shared prompt once, in sampling and in the loss; TRL computes every
  completion, each with its own copy of the prompt. Ours uses the sampler's log-probs as old log-probs;
  TRL, with one pass per generation batch, uses the detached new ones. Both skip the extra forward pass.
* Advantages: ours divides by the population std (+1e-6), TRL by the sample std (+1e-4); TRL's dapo
  denominator counts zero-advantage completions' tokens too. These change numbers, not cost.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from agents.cli import as_argv, parse
from agents.learner.train import make_envs, make_task_pool
from benchmarks.results_file import markdown_table, write_section
from benchmarks.trl_common import (
    LORA_TARGETS,
    RESULT_MARK,
    BenchArgs,
    load_model,
    memory_summary,
    rss_mib,
    seed_everything,
    sync,
    task_schedule,
)

TITLE = "Training step against TRL GRPOTrainer (bench_trl.py)"


def run_ours(bench: BenchArgs) -> dict[str, Any]:
    """Our learner: ``train_iteration`` once per scheduled step; per-step seconds, tokens and time split."""
    from transformers import set_seed

    from agents.learner.policy import Policy, PolicyConfig
    from agents.learner.train import train_iteration
    from agents.learner.update import UpdateConfig

    args = bench.train_args()
    seed_everything(bench.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    pool = make_task_pool(args, 0)
    schedule = task_schedule(pool, bench.steps + 1, bench.tasks_per_step, bench.seed)
    model, tokenizer = load_model(bench.model, bench.seed)
    stops = {} if bench.our_stop_rules else {"stop_at_code_end": False}
    set_seed(bench.seed)  # as GRPOTrainer does right before get_peft_model: the same adapter init
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=args.lora_r, lora_alpha=args.lora_alpha,
                                                   lora_target_modules=LORA_TARGETS, temperature=args.temperature,
                                                   max_new_tokens=args.max_new_tokens, **stops))
    policy.model.to(device)
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=args.lr, weight_decay=args.weight_decay)
    config = UpdateConfig(epochs=args.epochs, micro_batch_size=args.micro_batch_size, clip_low=args.clip_low,
                          clip_high=args.clip_high, kl_coef=args.kl_coef, advantage_scale="std",
                          mask_truncated=args.mask_truncated, is_weight_cap=args.queue_is_cap)
    rng = random.Random(args.seed * 1000)
    steps: list[dict[str, float]] = []
    envs = make_envs(pool, args)
    try:
        envs.reset_some(range(envs.num_envs), options=[{"task_id": schedule[0][0]}] * envs.num_envs)  # start sandboxes
        rss_before = rss_mib()
        for step, task_ids in enumerate(schedule):
            step_pool = pool.subset(f"{pool.name}-step{step}", [pool.get(t) for t in task_ids])
            sync()
            started = time.perf_counter()
            metrics, _ = train_iteration(step, policy, optimizer, envs, step_pool, None, config, args, rng, None)
            sync()
            seconds = time.perf_counter() - started
            tokens = metrics["rollout/generated_tokens"]
            generation = tokens / metrics["rollout/tokens_per_s"] if tokens else 0.0
            env_steps = metrics["rollout/env_steps"]
            env = env_steps / metrics["rollout/env_steps_per_s"] if env_steps else 0.0
            steps.append({"seconds": seconds, "tokens": float(tokens), "generation_s": generation, "env_s": env,
                          "update_s": metrics["time/update_s"],
                          "reward": metrics.get("reward/mean", 0.0),
                          "trained": metrics.get("update/trajectories", 0.0),
                          "episodes": metrics["rollout/episodes"]})
            print(f"[ours] step {step}: {seconds:.1f} s, {tokens:.0f} tokens", file=sys.stderr, flush=True)
    finally:
        envs.close()
    return memory_summary({"side": "ours", "steps": steps, "rss_before_steps_mib": rss_before, "device": str(device)})



def run_side(side: str, bench: BenchArgs, seed: int) -> dict[str, Any]:
    """Run one side for one seed in a fresh Python process and return the JSON result it prints."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    argv = as_argv(dataclasses.replace(bench, side=side, seed=seed, seeds=[seed]))
    process = subprocess.run([sys.executable, "-m", "benchmarks.bench_trl", *argv], stdout=subprocess.PIPE,
                             text=True, env=env, cwd=Path(__file__).resolve().parents[1])
    lines = [line for line in process.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if process.returncode != 0 or not lines:
        sys.exit(f"the {side} side failed (exit code {process.returncode}); its output:\n{process.stdout[-3000:]}")
    return json.loads(lines[-1][len(RESULT_MARK):])


def summarise(result: dict[str, Any]) -> dict[str, float]:
    """Means over one run's measured steps (the first, warm-up step excluded when there are more)."""
    steps = result["steps"][1:] or result["steps"]
    mean = {k: statistics.fmean(s[k] for s in steps) for k in ("seconds", "tokens", "generation_s", "env_s",
                                                                "update_s", "reward")}
    mean["tokens_per_s"] = mean["tokens"] / mean["seconds"]
    mean["other_s"] = mean["seconds"] - mean["generation_s"] - mean["env_s"] - mean["update_s"]
    mean["peak_rss_mib"] = result["peak_rss_mib"]
    mean["rss_before_steps_mib"] = result["rss_before_steps_mib"]
    if "cuda_peak_mib" in result:
        mean["cuda_peak_mib"] = result["cuda_peak_mib"]
    if "trained" in steps[0]:
        mean["trained"] = statistics.fmean(s["trained"] for s in steps)
    return mean


def over_seeds(runs: list[dict[str, Any]]) -> dict[str, tuple[float, float, float]]:
    """``{metric: (mean, min, max)}`` over the seeds' per-run means."""
    per_run = [summarise(r) for r in runs]
    keys = set.intersection(*(set(m) for m in per_run))
    return {k: (statistics.fmean(m[k] for m in per_run), min(m[k] for m in per_run), max(m[k] for m in per_run))
            for k in keys}


def _spread(value: tuple[float, float, float], digits: int) -> str:
    mean, low, high = value
    return f"{mean:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})" if high > low else f"{mean:.{digits}f}"


def report(bench: BenchArgs, ours: list[dict[str, Any]], trl: list[dict[str, Any]]) -> str:
    """The markdown table (one row per side, mean and min-max over seeds, plus the ratios) and the notes."""
    o, t = over_seeds(ours), over_seeds(trl)
    cuda = "cuda_peak_mib" in o and "cuda_peak_mib" in t
    header = ["side", "s/step", "completion tokens/step", "completion tokens/s", "peak RSS MiB",
              *(["peak CUDA MiB"] if cuda else []), "generation s", "env s", "update s", "other s",
              "trajectories trained/step"]
    per_step = bench.tasks_per_step * bench.group_size

    def row(name: str, m: dict[str, tuple[float, float, float]], trained: str) -> list[object]:
        return [name, _spread(m["seconds"], 2), _spread(m["tokens"], 0), _spread(m["tokens_per_s"], 1),
                _spread(m["peak_rss_mib"], 0), *([_spread(m["cuda_peak_mib"], 0)] if cuda else []),
                _spread(m["generation_s"], 2), _spread(m["env_s"], 2), _spread(m["update_s"], 2),
                _spread(m["other_s"], 2), trained]

    ratio = ["TRL / ours (tokens/s: ours / TRL)", _ratio(t["seconds"][0], o["seconds"][0]), "",
             _ratio(o["tokens_per_s"][0], t["tokens_per_s"][0]), _ratio(t["peak_rss_mib"][0], o["peak_rss_mib"][0]),
             *([_ratio(t["cuda_peak_mib"][0], o["cuda_peak_mib"][0])] if cuda else []),
             _ratio(t["generation_s"][0], o["generation_s"][0]), _ratio(t["env_s"][0], o["env_s"][0]),
             _ratio(t["update_s"][0], o["update_s"][0]), "", ""]
    trained = _spread(o["trained"], 1) + f" of {per_step} (zero-advantage rows skipped)" if "trained" in o else ""
    table = markdown_table(header, [row("toolr1 (train_iteration)", o, trained),
                                    row("TRL GRPOTrainer", t, f"{per_step} of {per_step} (all rows)"), ratio])
    stops = "ours with its code-block stop rule, TRL at EOS only" if bench.our_stop_rules else "EOS only, both"
    notes = (
        f"\nMean over {len(bench.seeds)} seed(s) ({', '.join(map(str, bench.seeds))}) of each run's mean over "
        f"{bench.steps} measured step(s) after one warm-up step; in brackets the min-max over seeds. "
        f"Model `{bench.model}` (fp32, device {ours[0]['device']}), LoRA r={bench.lora_r} alpha={bench.lora_alpha} "
        f"on {', '.join(LORA_TARGETS)}; {bench.tasks_per_step} tasks x group {bench.group_size} = {per_step} "
        f"single-turn episodes per step from the `{bench.tasks}` pool ({bench.task_pool_size} tasks, the same "
        f"tasks at the same step on both sides), {bench.max_new_tokens} new tokens (stops: {stops}), temperature "
        f"{bench.temperature}, lr {bench.lr}, one pass in micro-batches of {bench.micro_batch_size}, no KL, clip "
        f"{bench.clip_low}/{bench.clip_high}, token-level loss, {bench.num_envs} envs on each side, no response "
        f"prefix; TRL {trl[0]['trl_version']}, torch {torch.__version__}.\n\n"
        "**The two sides do not do equal work**, and the ratios include these differences: (1) ours leaves "
        "zero-advantage trajectories out of the backward pass (their loss is exactly 0 without KL; see the last "
        "column), TRL runs every row; (2) ours runs a group's shared prompt once, in sampling and in the loss, "
        "TRL computes every completion with its own copy of the prompt; (3) the loss denominators differ: ours "
        "divides by the tokens of the trained trajectories, TRL's `dapo` by the tokens of all completions, so "
        "the same batch gets a different step size; (4) ours uses the sampler's log-probs as old log-probs, TRL "
        "(one pass per generation batch) the detached new ones. Both skip an extra forward pass. "
        "Each side ran in its own process: peak RSS is that process's whole life (model, libraries, "
        "training; sandboxes are separate processes and not counted). "
        f"Mean reward per step: {o['reward'][0]:.3f} (ours), {t['reward'][0]:.3f} (TRL). TRL's chat prompt ids "
        f"{'match' if all(r.get('prompt_ids_match') for r in trl) else 'DO NOT match'} ours.\n"
    )
    return table + "\n" + notes


def _ratio(numerator: float, denominator: float) -> str:
    """``"1.23x"``, or ``"n/a"`` when the denominator is (about) zero, e.g. an update with nothing to train."""
    return f"{numerator / denominator:.2f}x" if denominator > 1e-2 else "n/a"


def main(argv: list[str] | None = None) -> None:
    """Run both sides for every seed (each in its own process), print the table, record it unless a smoke run."""
    bench = parse(BenchArgs, argv, description=__doc__)
    if bench.side != "both":
        if bench.side == "ours":
            result = run_ours(bench)
        else:
            from benchmarks.trl_side import run_trl  # TRL is imported only in its own process

            result = run_trl(bench)
        print(RESULT_MARK + json.dumps(result), flush=True)
        return
    ours = [run_side("ours", bench, seed) for seed in bench.seeds]
    trl = [run_side("trl", bench, seed) for seed in bench.seeds]
    text = report(bench, ours, trl)
    print(text)
    if bench.no_write or bench.model == "tiny-random":
        print("(not written to RESULTS.md: smoke run or --no_write)")
        return
    print(f"written to {write_section(TITLE, text)}")


if __name__ == "__main__":
    main()
