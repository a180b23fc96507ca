"""Training step against TRL: our GRPO learner versus TRL's ``GRPOTrainer``, same model, settings and tasks.

    pip install -e '.[train,bench]'                                # trl, for this benchmark only
    python benchmarks/bench_trl.py [--steps 3] [--model smollm2-135m]
    python benchmarks/bench_trl.py --model tiny-random --steps 1   # smoke run (writes nothing)

What is compared: one GRPO training step (rollouts, rewards, advantages, one optimiser step) on
``ToolR1-GAIA-v0``, single-turn (``max_turns=1``: one code action, then the episode ends with its reward),
so TRL can run it too. Ours is ``agents.learner.train.train_iteration`` itself, sample queue off. TRL's is
``GRPOTrainer`` with a reward function that plays each completion as the one action of a fresh episode of
our env on the completion's task (``score_completions``; episodes run concurrently in a ``ThreadVectorEnv``
of the same size as ours, so the env is not a bottleneck on either side). Each side runs in its own
subprocess (``--side ours|trl``; the TRL side lives in ``benchmarks/trl_side.py``), so its peak memory is
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

import argparse
import dataclasses
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from agents.learner.model_loading import load_model_and_tokenizer, make_tiny_model  # noqa: E402
from agents.learner.train import Args, make_envs, make_task_pool  # noqa: E402
from benchmarks.results_file import markdown_table, write_section  # noqa: E402
from toolr1_env.tasks import TaskSet  # noqa: E402
from toolr1_env.vector import ThreadVectorEnv  # noqa: E402

TITLE = "Training step against TRL GRPOTrainer (bench_trl.py)"
RESULT_MARK = "BENCH_TRL_RESULT "
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class BenchArgs:
    """The settings both sides share (every field is also a command-line flag)."""

    model: str = "smollm2-135m"
    steps: int = 3
    seed: int = 0
    tasks: str = "warmup"
    task_pool_size: int = 32
    tasks_per_step: int = 4
    group_size: int = 8
    micro_batch_size: int = 8
    num_envs: int = 32
    max_new_tokens: int = 64
    temperature: float = 1.0
    lr: float = 5e-4
    lora_r: int = 16
    lora_alpha: int = 32
    clip_low: float = 0.2
    clip_high: float = 0.28
    our_stop_rules: bool = False
    no_write: bool = False

    def train_args(self) -> Args:
        """Our trainer's :class:`Args` with these settings (single-turn, no prefix, queue off, no KL)."""
        return Args(model=self.model, tasks=self.tasks, task_pool_size=self.task_pool_size,
                    tasks_per_iteration=self.tasks_per_step, group_size=self.group_size, num_envs=self.num_envs,
                    max_turns=1, max_new_tokens=self.max_new_tokens, temperature=self.temperature,
                    prompt_style="compact", response_prefix="", lr=self.lr, weight_decay=0.0, lora_r=self.lora_r,
                    lora_alpha=self.lora_alpha, epochs=1, micro_batch_size=self.micro_batch_size,
                    clip_low=self.clip_low, clip_high=self.clip_high, kl_coef=0.0, advantage_scale="std",
                    use_queue=False, queue_demonstrations=False, seed=self.seed)


def task_schedule(pool: TaskSet, steps: int, per_step: int, seed: int) -> list[list[str]]:
    """Task ids of each step (warm-up first): ``per_step`` distinct pool tasks per step, drawn from ``seed``."""
    rng = random.Random(seed)
    ids = [t.task_id for t in pool.tasks]
    return [rng.sample(ids, min(per_step, len(ids))) for _ in range(steps)]


def load_model(name: str, seed: int) -> tuple[Any, Any]:
    """The base model and tokenizer (``tiny-random``: a 2-layer random Llama with the SmolLM2 tokenizer)."""
    if name == "tiny-random":
        return make_tiny_model(seed=seed)
    return load_model_and_tokenizer(name)


def score_completions(envs: ThreadVectorEnv, task_ids: Sequence[str], completions: Sequence[str]) -> list[float]:
    """Play each completion as the single action of a fresh episode on its task; return the end rewards.

    Episodes run ``envs.num_envs`` at a time (every env's code at once). The envs must be single-turn
    (``max_turns=1``), so the one step ends the episode and pays its reward.
    """
    if len(task_ids) != len(completions):
        raise ValueError("one task id per completion")
    rewards: list[float] = []
    for start in range(0, len(completions), envs.num_envs):
        chunk = list(range(start, min(start + envs.num_envs, len(completions))))
        slots = list(range(len(chunk)))
        envs.reset_some(slots, options=[{"task_id": task_ids[i]} for i in chunk])
        outcomes = envs.step_live({slot: completions[i] for slot, i in zip(slots, chunk, strict=True)})
        for slot in slots:
            if not outcomes[slot].done:
                envs.abandon(slot)
                raise RuntimeError("an episode did not end after one action: the envs must have max_turns=1")
            rewards.append(float(outcomes[slot].reward))
    return rewards


class EnvReward:
    """A TRL reward function that scores completions through our env, timing itself and counting tokens.

    Called by ``GRPOTrainer`` as ``reward(prompts=..., completions=..., completion_ids=..., task_id=...,
    **kwargs)``; ``task_id`` is the dataset column of that name, repeated per completion.
    """

    __name__ = "toolr1_env_reward"

    def __init__(self, envs: ThreadVectorEnv) -> None:
        self.envs = envs
        self.seconds = 0.0
        self.tokens = 0
        self.rewards: list[float] = []

    def __call__(self, prompts: list, completions: list, task_id: list[str], **kwargs: Any) -> list[float]:
        """One reward per completion (conversational completions: the assistant message's text)."""
        texts = [c[-1]["content"] if isinstance(c, list) else str(c) for c in completions]
        self.tokens += sum(len(ids) for ids in kwargs.get("completion_ids") or [])
        started = time.perf_counter()
        rewards = score_completions(self.envs, task_id, texts)
        self.seconds += time.perf_counter() - started
        self.rewards += rewards
        return rewards


# ------------------------------------------------------------------------------------------- the two sides


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _rss_mib() -> float:
    """Current resident memory of this process in MiB."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _memory(result: dict[str, Any]) -> dict[str, Any]:
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if torch.cuda.is_available():
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def run_ours(bench: BenchArgs) -> dict[str, Any]:
    """Our learner: ``train_iteration`` once per scheduled step; per-step seconds, tokens and time split."""
    from transformers import set_seed

    from agents.learner.policy import Policy, PolicyConfig
    from agents.learner.train import train_iteration
    from agents.learner.update import UpdateConfig

    args = bench.train_args()
    _seed_everything(bench.seed)
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
        rss_before = _rss_mib()
        for step, task_ids in enumerate(schedule):
            step_pool = TaskSet(f"{pool.name}-step{step}", [pool.get(t) for t in task_ids], pool.tools)
            _sync()
            started = time.perf_counter()
            metrics, _ = train_iteration(step, policy, optimizer, envs, step_pool, None, config, args, rng, None)
            _sync()
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
    return _memory({"side": "ours", "steps": steps, "rss_before_steps_mib": rss_before, "device": str(device)})



def run_side(side: str, argv: list[str]) -> dict[str, Any]:
    """Run one side in a fresh Python process and return the JSON result it prints."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--side", side, *argv],
                             stdout=subprocess.PIPE, text=True, env=env)
    lines = [line for line in process.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if process.returncode != 0 or not lines:
        sys.exit(f"the {side} side failed (exit code {process.returncode}); its output:\n{process.stdout[-3000:]}")
    return json.loads(lines[-1][len(RESULT_MARK):])


def summarise(result: dict[str, Any]) -> dict[str, float]:
    """Means over the measured steps (the first, warm-up step excluded when there are more)."""
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


def report(bench: BenchArgs, ours: dict[str, Any], trl: dict[str, Any]) -> str:
    """The markdown table (one row per side plus the ratios) and the explanation."""
    o, t = summarise(ours), summarise(trl)
    cuda = "cuda_peak_mib" in o and "cuda_peak_mib" in t
    header = ["side", "s/step", "completion tokens/step", "completion tokens/s", "peak RSS MiB",
              *(["peak CUDA MiB"] if cuda else []), "generation s", "env s", "update s", "other s"]

    def row(name: str, m: dict[str, float]) -> list[object]:
        return [name, f"{m['seconds']:.2f}", f"{m['tokens']:.0f}", f"{m['tokens_per_s']:.1f}",
                f"{m['peak_rss_mib']:.0f}", *([f"{m['cuda_peak_mib']:.0f}"] if cuda else []),
                f"{m['generation_s']:.2f}", f"{m['env_s']:.2f}", f"{m['update_s']:.2f}", f"{m['other_s']:.2f}"]

    ratio = ["TRL / ours (tokens/s: ours / TRL)", _ratio(t["seconds"], o["seconds"]), "",
             _ratio(o["tokens_per_s"], t["tokens_per_s"]), _ratio(t["peak_rss_mib"], o["peak_rss_mib"]),
             *([_ratio(t["cuda_peak_mib"], o["cuda_peak_mib"])] if cuda else []),
             _ratio(t["generation_s"], o["generation_s"]), _ratio(t["env_s"], o["env_s"]),
             _ratio(t["update_s"], o["update_s"]), ""]
    table = markdown_table(header, [row("toolr1 (train_iteration)", o), row("TRL GRPOTrainer", t), ratio])
    measured = len(ours["steps"]) - 1 if len(ours["steps"]) > 1 else len(ours["steps"])
    stops = "ours with its code-fence stop rules, TRL at EOS only" if bench.our_stop_rules else "EOS only, both"
    notes = (
        f"\nModel `{bench.model}` (fp32, device {ours['device']}), LoRA r={bench.lora_r} alpha={bench.lora_alpha} "
        f"on {', '.join(LORA_TARGETS)}; {bench.tasks_per_step} tasks x group {bench.group_size} = "
        f"{bench.tasks_per_step * bench.group_size} single-turn episodes per step from the `{bench.tasks}` pool "
        f"({bench.task_pool_size} tasks, the same tasks at the same step on both sides), {bench.max_new_tokens} new "
        f"tokens (stops: {stops}), temperature {bench.temperature}, lr {bench.lr}, one pass in micro-batches of "
        f"{bench.micro_batch_size}, no KL, clip {bench.clip_low}/{bench.clip_high}, token-level loss (TRL "
        f"`loss_type=\"dapo\"`), {bench.num_envs} envs on each side, no response prefix. Means over {measured} "
        f"measured step(s) after one warm-up step; TRL {trl['trl_version']}, torch {torch.__version__}. "
        f"Each side ran in its own process: peak RSS is that process's whole life (model, libraries, "
        f"training; sandboxes are separate processes and not counted); before the first step it was "
        f"{o['rss_before_steps_mib']:.0f} MiB (ours) and {t['rss_before_steps_mib']:.0f} MiB (TRL). "
        "Every ratio above 1 favours ours. "
        f"Mean reward per step: {o['reward']:.3f} (ours), {t['reward']:.3f} (TRL). Ours trained "
        f"{o.get('trained', float('nan')):.1f} of {bench.tasks_per_step * bench.group_size} trajectories per step "
        "(zero-advantage ones carry no gradient without KL and are skipped); TRL runs all of them. TRL's chat "
        f"prompt ids {'match' if trl.get('prompt_ids_match') else 'DO NOT match'} ours.\n\n"
        "Where the time goes. *generation*: sampling (ours: `Policy.sample`, the KV-cached loop that prefills "
        "a group's shared prompt once; TRL: `model.generate` inside `_generate_single_turn`, one batch with "
        "every prompt copy prefilled). *env*: resets and code execution in the sandboxes (ours: inside the "
        "rollout; TRL: the reward function). *update*: forward, backward and optimiser step (ours: "
        "`update_policy`, prompts shared per group, zero-advantage rows skipped; TRL: everything after "
        "generation and scoring, 4 micro-batches of mixed prompts, chunked fused LM-head log-probs). "
        "*other*: the rest (tokenising, decoding, advantages, bookkeeping). Ours keeps "
        f"{bench.num_envs} episodes live, so it samples in batches of up to {bench.num_envs}; TRL samples the "
        "whole step in one batch.\n"
    )
    return table + "\n" + notes


def _ratio(numerator: float, denominator: float) -> str:
    """``"1.23x"``, or ``"n/a"`` when the denominator is (about) zero, e.g. an update with nothing to train."""
    return f"{numerator / denominator:.2f}x" if denominator > 1e-2 else "n/a"


def parse_args(argv: list[str] | None = None) -> tuple[BenchArgs, str]:
    """Command line -> (settings, side); every :class:`BenchArgs` field is a flag."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for f in dataclasses.fields(BenchArgs):
        if f.type in ("bool", bool):
            parser.add_argument(f"--{f.name}", action="store_true")
        else:
            kind = {"int": int, "float": float, "str": str}[f.type if isinstance(f.type, str) else f.type.__name__]
            parser.add_argument(f"--{f.name}", type=kind, default=f.default)
    parser.add_argument("--side", choices=["both", "ours", "trl"], default="both",
                        help="internal: run one side in this process and print its JSON result")
    ns = vars(parser.parse_args(argv))
    side = ns.pop("side")
    return BenchArgs(**ns), side


def to_argv(bench: BenchArgs) -> list[str]:
    """The flags that rebuild ``bench`` in a child process."""
    argv: list[str] = []
    for f in dataclasses.fields(BenchArgs):
        value = getattr(bench, f.name)
        if isinstance(value, bool):
            argv += [f"--{f.name}"] if value else []
        else:
            argv += [f"--{f.name}", str(value)]
    return argv


def main() -> None:
    """Run both sides (each in its own process), print the table, record it unless a smoke run."""
    bench, side = parse_args()
    if side != "both":
        if side == "ours":
            result = run_ours(bench)
        else:
            from benchmarks.trl_side import run_trl  # TRL is imported only in its own process

            result = run_trl(bench)
        print(RESULT_MARK + json.dumps(result), flush=True)
        return
    ours = run_side("ours", to_argv(bench))
    trl = run_side("trl", to_argv(bench))
    text = report(bench, ours, trl)
    print(text)
    if bench.no_write or bench.model == "tiny-random":
        print("(not written to RESULTS.md: smoke run or --no_write)")
        return
    print(f"written to {write_section(TITLE, text)}")


if __name__ == "__main__":
    main()
