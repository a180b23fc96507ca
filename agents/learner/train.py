"""GRPO for code-acting agents on ToolR1-GAIA-v0, with Tool-R1's dynamic sample queue.

    python agents/train_grpo.py                      # defaults: bundled model, warm-up + level-1 tasks, CPU
    python agents/train_grpo.py --help               # every argument, with its help line
    accelerate launch agents/train_grpo.py ...       # data-parallel over GPUs (one rollout shard per process)

Data parallel (``agents.learner.data_parallel``): every process chooses the same tasks, plays a share of
the groups, and gathers the whole batch; groups, queue and advantages are then the same everywhere, each
process trains on its share with one global token denominator, and the adapters stay bit-identical
(``dp/adapter_checksum/rank{i}`` is logged at every update). ``tasks_per_iteration`` is the whole batch's.

Each iteration: pick ``tasks_per_iteration`` tasks from a fixed pool of training tasks; play ``group_size``
episodes per task (fewer when the sample queue holds successes for a task the policy keeps failing); every
turn is one batched generation over all live episodes, and all their code runs at once in their sandboxes;
groups with no learning signal get cached successes of the *same* task from the queue; group-normalised
advantages; ``epochs`` passes of the clipped token-level loss (``agents.learner.grpo``). Tool output tokens are in
the attention but masked out of the loss. Episodes flagged ``infra_error`` are left out.

Where this departs from textbook GRPO, and why: see ``agents/grpo.py`` (token-level normalisation,
asymmetric clipping, optional KL) and ``agents/sample_queue.py`` (the queue: our design of an unpublished
idea). Old log-probs are the sampler's own (computed at sampling time, no extra forward pass); on CPU the
saved forward pass is worth more than the ~1e-4 drift between KV-cached and full-sequence numerics.
"""

from __future__ import annotations

import dataclasses
import json
import pickle
import random
import sys
import time
import zlib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from agents.cli import arg
from agents.engine import EpisodeRequest
from agents.learner.checkpointing import (
    check_compatible,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
)
from agents.learner.data_parallel import DataParallel, from_accelerator
from agents.learner.demonstrations import STYLES
from agents.learner.episode_stats import episode_record, episode_stats
from agents.learner.model_loading import load_model_and_tokenizer, make_tiny_model
from agents.learner.playing import (
    collect_everywhere,
    demonstration_turns,
    group_owner,
    offer_repairs,
    play_pool_demonstrations,
    seed_queue_with_demonstrations,
)
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.presets import parse_with_preset, preset_names
from agents.learner.records import Trajectory
from agents.learner.run_log import RunLog, plot_curves
from agents.learner.sample_queue import SampleQueue, SampleQueueConfig
from agents.learner.update import (
    NonFiniteLossError,
    UpdateConfig,
    build_groups,
    compute_advantages,
    rescore,
    trainable,
    update_policy,
    without_infra_errors,
)
from agents.learner.warmup import warm_up
from toolr1_env.env import ToolR1Env, resolve_tasks
from toolr1_env.tasks import Task, TaskSet
from toolr1_env.vector import ThreadVectorEnv

#: The queue's own defaults are the trainer's defaults (one source).
QUEUE = SampleQueueConfig()


@dataclass
class Args:
    """Every knob of a training run."""

    preset: str = arg("", "named defaults applied before the other flags (agents/learner/presets.py): multistep, "
                          "warmup", preset_names())
    model: str = arg("smollm2-135m", "bundled alias, local folder, HF id (offline), or tiny-random (tests)")
    tasks: str = arg("warmup", "training split name, GAIA folder or task JSONL")
    task_pool_size: int = arg(32, "fixed pool of training tasks drawn from a generated split (0 = all)")
    eval_tasks: str = arg("warmup-eval", "held-out fixed split for periodic evaluation; 'pool' = the training pool")
    eval_size: int = arg(32, "tasks of eval_tasks used per evaluation (first N, fixed)")
    eval_level: int = arg(-1, "evaluate only the tasks of this level of eval_tasks (-1 = every level)")
    eval_at_start: bool = arg(True, "evaluate before the first update (the untrained model's held-out score)")
    eval_every: int = arg(4, "evaluate every N iterations (0 = only at start and end)")
    iterations: int = arg(12, "training iterations (one optimiser step per epoch each)")
    tasks_per_iteration: int = arg(4, "distinct tasks per iteration (over all processes; a multiple of their number)")
    group_size: int = arg(8, "episodes per task (the GRPO group)")
    num_envs: int = arg(32, "parallel environments, each with a sandbox (~130 MB); 32 = one generation batch")
    max_turns: int = arg(1, "code actions per episode")
    max_new_tokens: int = arg(64, "tokens per generated turn")
    max_episode_tokens: int = arg(1536, "token budget of a whole episode (prompt included)")
    max_observation_chars: int = arg(400, "observation text cap (head + tail)")
    step_timeout: float = arg(5.0, "seconds per code action")
    temperature: float = arg(1.0, "sampling temperature for training rollouts")
    system_prompt: str = arg("", "optional system message before the task prompt")
    prompt_style: str = arg("compact", "task prompt style: compact (small models) or full (every tool documented)")
    response_prefix: str = arg("```py\n", "text forced at the start of every assistant turn (not trained)")
    lr: float = arg(5e-4, "AdamW learning rate of the LoRA adapter")
    weight_decay: float = arg(0.0, "AdamW weight decay")
    lora_r: int = arg(16, "LoRA rank")
    lora_alpha: int = arg(32, "LoRA alpha")
    epochs: int = arg(1, "optimisation passes over each batch")
    micro_batch_size: int = arg(8, "trajectories per forward/backward (accumulated); a group's prompt runs once")
    clip_low: float = arg(0.2, "lower clip of the ratio: 1 - clip_low")
    clip_high: float = arg(0.28, "upper clip of the ratio: 1 + clip_high")
    kl_coef: float = arg(0.0, "k3 KL penalty to the base model (adapter off); 0 = none")
    advantage_scale: str = arg("std", "group advantage scaling: std or none")
    mask_truncated: bool = arg(True, "leave truncated episodes (turn or token limit, no answer) out of the loss; "
                                     "the default by measurement (benchmarks/bench_truncation.py)")
    use_queue: bool = arg(True, "enable the dynamic sample queue")
    queue_capacity_per_task: int = arg(QUEUE.per_task_capacity, "cached successes kept per task")
    queue_max_inject: int = arg(QUEUE.max_inject, "cached members per group, at most")
    queue_max_age: int = arg(QUEUE.max_age, "retire cached samples older than N policy versions")
    queue_max_reuse: int = arg(QUEUE.max_reuse, "retire a cached sample after N injections")
    queue_demonstrations: bool = arg(True, "seed the queue with the pool's verified reference solutions")
    demonstrations: str = arg("reference", "demonstration style: reference (the task's solution, one step per "
                                           "turn), compact (look, then copy the answer from the observation), "
                                           "compact-web (compact for web tasks only) or "
                                           "parse (look, then answer with code that parses what was read)", STYLES)
    demo_warmup_epochs: int = arg(0, "supervised passes over the pool's verified demonstrations before the first "
                                     "GRPO iteration (agents/learner/warmup.py; not in the paper); 0 = none")
    demo_warmup_batch: int = arg(16, "demonstrations per optimiser step of the warm-up")
    repair_demonstrations: bool = arg(False, "continue each group's first failed episode after its first execution "
                                             "error with the task's demonstration, the failure kept as context out "
                                             "of the loss (agents/learner/repairs.py)")
    queue_admit_online: bool = arg(True, "admit the policy's own successes to the queue (false: only demonstrations)")
    queue_inject_when: str = arg(QUEUE.inject_when, "inject cached successes into groups that are: flat, or "
                                                    "no_success", ("flat", "no_success"))
    queue_is_cap: float = arg(1.0, "cap c of token weight min(pi_now / pi_sampler, c) on replayed samples; 0 = off")
    answer_weight: float = arg(1.0, "reward weight of the judged answer")
    exec_weight: float = arg(0.2, "reward weight of execution success")
    seed: int = arg(0, "random seed")
    output_dir: str = arg("", "run folder (default runs/<tasks>__grpo__<seed>__<time>)")
    resume: bool = arg(False, "continue from the latest checkpoint in output_dir")
    checkpoint_every: int = arg(1, "checkpoint every N iterations (1: a killed run loses only the iteration in flight)")
    keep_checkpoints: int = arg(2, "checkpoints kept on disk (older ones are pruned)")
    results_file: str = arg("", "also write the final summary JSON here")
    dtype: str = arg("float32", "model weight dtype (bfloat16 halves the weights' memory on GPUs)",
                     choices=("float32", "bfloat16"))
    bf16: bool = arg(False, "bfloat16 autocast for forward passes (log-probs stay fp32)")
    gradient_checkpointing: bool = arg(False, "recompute activations in backward (less memory, no prompt sharing "
                                              "in the loss)")
    prefix_sharing: bool = arg(True, "prefill a group's prompt once when sampling and scoring (needs a model "
                                     "with a DynamicCache; --no_prefix_sharing for others)")
    merge_for_sampling: bool = arg(True, "sample on merged LoRA weights (faster; one copy of the adapted weights "
                                         "while sampling)")
    logprob_chunk_tokens: int = arg(512, "positions whose full-vocabulary logits are alive at once in the loss")


def queue_config(args: Args) -> SampleQueueConfig:
    """The sample queue's settings from the run's arguments; admission follows ``--answer_weight``."""
    return SampleQueueConfig.for_reward_weights(
        args.answer_weight, per_task_capacity=args.queue_capacity_per_task, max_inject=args.queue_max_inject,
        max_age=args.queue_max_age, max_reuse=args.queue_max_reuse, inject_when=args.queue_inject_when,
        admit_online=args.queue_admit_online)


def make_task_pool(args: Args, process_index: int) -> TaskSet:
    """The fixed training pool: a generated split is sampled once at seeds 0..pool-1 (so tasks recur and
    the queue can help); a fixed split or folder is used as is."""
    task_set = resolve_tasks(args.tasks)
    if task_set.is_generated:
        if args.task_pool_size <= 0:
            return task_set
        seeds = range(process_index * args.task_pool_size, (process_index + 1) * args.task_pool_size)
        return task_set.subset(f"{task_set.name}-pool", [task_set.pick(s) for s in seeds])
    return task_set


def make_envs(task_set: TaskSet, args: Args, num_envs: int | None = None) -> ThreadVectorEnv:
    """``num_envs`` (default ``args.num_envs``) environments over one task set, with its tools (threads:
    the work happens in sandbox processes)."""
    def factory() -> ToolR1Env:
        return ToolR1Env(tasks=task_set, step_timeout=args.step_timeout, max_turns=args.max_turns,
                         max_observation_chars=args.max_observation_chars, answer_weight=args.answer_weight,
                         exec_weight=args.exec_weight, prompt_style=args.prompt_style)
    return ThreadVectorEnv([factory] * (num_envs or args.num_envs))


def episode_metrics(trajectories: list[Trajectory], prefix: str) -> dict[str, float]:
    """Mean reward and components, success per level, lengths."""
    if not trajectories:
        return {}
    out: dict[str, float] = {f"{prefix}/mean": float(np.mean([t.reward for t in trajectories]))}
    for key in ("answer_score", "exec_success", "answered"):
        out[f"{prefix}/{key}"] = float(np.mean([t.reward_components.get(key, 0.0) for t in trajectories]))
    by_level: dict[int, list[float]] = defaultdict(list)
    for t in trajectories:
        by_level[t.level].append(t.reward_components.get("answer_score", 0.0))
    for level, scores in sorted(by_level.items()):
        out[f"{prefix}/success_level{level}"] = float(np.mean(scores))
    out[f"{prefix}/turns"] = float(np.mean([t.num_turns for t in trajectories]))
    out[f"{prefix}/response_tokens"] = float(np.mean([t.num_generated_tokens for t in trajectories]))
    out[f"{prefix}/episode_tokens"] = float(np.mean([len(t.token_ids) for t in trajectories]))
    out[f"{prefix}/truncated"] = float(np.mean([t.truncated for t in trajectories]))
    out.update(episode_stats(trajectories, prefix))
    return out


def same_tools(a: TaskSet, b: TaskSet) -> bool:
    """Whether two task sets call the very same tools (then one set's envs can play the other's tasks)."""
    return a.tools == b.tools and a.hidden_tools == b.hidden_tools


def evaluate(policy: Policy, envs: ThreadVectorEnv, tasks: list[Task], args: Args,
             dp: DataParallel | None = None, log: RunLog | None = None, step: int = 0) -> dict[str, float]:
    """Greedy success rate on the fixed evaluation tasks, each process playing a share.

    ``envs`` must hold the evaluation set's tools: the training envs when the two sets share them,
    else envs of their own (:func:`main` chooses; a task played with another world's ``read_page``
    finds none of its pages).

    With ``log``, the episodes are also written to ``<run>/episodes/eval-<step>.jsonl`` (for reading).
    """
    start = time.perf_counter()
    requests = [EpisodeRequest(task.task_id, f"eval-{task.task_id}", seed=0, task=task) for task in tasks]
    trajectories, _ = collect_everywhere(dp or DataParallel(), policy, envs, requests,
                                         max_episode_tokens=args.max_episode_tokens,
                                         system_prompt=args.system_prompt or None, temperature=0.0,
                                         response_prefix=args.response_prefix)
    clean = without_infra_errors(trajectories)
    if log is not None:
        log.write_episodes(f"eval-{step}", [episode_record(t) for t in trajectories])
    metrics = episode_metrics(clean, "eval")
    metrics["eval/success"] = metrics.pop("eval/answer_score", 0.0)
    metrics["eval/infra_errors"] = float(len(trajectories) - len(clean))
    metrics["time/eval_s"] = time.perf_counter() - start
    return metrics


def main(args: Args) -> dict[str, float]:
    """Train; return the final summary (also written to ``summary.json`` in the run folder)."""
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    rank, world = accelerator.process_index, accelerator.num_processes
    if args.advantage_scale not in ("std", "none"):
        raise ValueError(f"--advantage_scale must be 'std' or 'none', got {args.advantage_scale!r}")
    if args.tasks_per_iteration % world:
        raise ValueError(f"--num_processes {world} does not divide --tasks_per_iteration {args.tasks_per_iteration}: "
                         "every process plays whole groups of the batch; use a multiple of the process count")
    # Every process seeds alike before the adapter is made (identical LoRA init), and apart afterwards.
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    run_dir = Path(args.output_dir or f"runs/{args.tasks}__grpo__{args.seed}__{int(time.time())}")
    run_dir.mkdir(parents=True, exist_ok=True)

    # Derived settings, in one place (a bad combination fails here, before any model is loaded).
    queue_settings = queue_config(args) if args.use_queue else None
    update_config = UpdateConfig(epochs=args.epochs, micro_batch_size=args.micro_batch_size, clip_low=args.clip_low,
                                 clip_high=args.clip_high, kl_coef=args.kl_coef,
                                 advantage_scale=args.advantage_scale,  # type: ignore[arg-type]
                                 mask_truncated=args.mask_truncated, is_weight_cap=args.queue_is_cap)
    pool = make_task_pool(args, 0)  # one pool shared by every process
    eval_set = pool if args.eval_tasks == "pool" else resolve_tasks(args.eval_tasks)
    eval_tasks = [t for t in eval_set.tasks if args.eval_level < 0 or t.level == args.eval_level][: args.eval_size]
    if not pool.tasks or not eval_tasks:
        raise ValueError("the training pool and the evaluation set must both hold tasks")

    if args.model == "tiny-random":
        model, tokenizer = make_tiny_model(seed=args.seed)
    else:
        model, tokenizer = load_model_and_tokenizer(args.model, dtype=getattr(torch, args.dtype))
    policy = Policy(model, tokenizer, PolicyConfig(
        lora_r=args.lora_r, lora_alpha=args.lora_alpha, temperature=args.temperature,
        max_new_tokens=args.max_new_tokens, gradient_checkpointing=args.gradient_checkpointing, bf16=args.bf16,
        prefix_sharing=args.prefix_sharing, merge_for_sampling=args.merge_for_sampling,
        logprob_chunk_tokens=args.logprob_chunk_tokens))
    if args.system_prompt:
        policy.check_conversation(args.system_prompt)
    # The model is not wrapped in DDP: sampling, the adapter switch and saving need the bare PEFT model.
    # Data parallelism is explicit (agents.learner.data_parallel): rank 0's adapter is copied to every
    # process, each plays and trains a share of the batch, and one all-reduce sums the LoRA gradients.
    policy.model.to(accelerator.device)
    dp = from_accelerator(accelerator, run_dir / ".dp")
    dp.broadcast_(policy.trainable_parameters())
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=args.lr, weight_decay=args.weight_decay)
    random.seed(args.seed + rank)  # sampling differs between processes from here on
    np.random.seed(args.seed + rank)
    torch.manual_seed(args.seed + rank)
    queue = SampleQueue(queue_settings) if queue_settings is not None else None
    start_iteration, online_rollouts, started = 0, 0, time.time()
    trainer_rng_state, warmup_done, last_logged = None, 0, -1
    if args.resume:
        checkpoint = latest_checkpoint(run_dir)
        if checkpoint is None:
            raise FileNotFoundError(f"--resume: no checkpoint in {run_dir}/checkpoints")
        check_compatible(checkpoint, args)
        state = load_checkpoint(checkpoint, policy, optimizer, queue, rank=rank, world_size=world)
        start_iteration = state["iteration"] + 1
        online_rollouts = state["extra"].get("online_rollouts", 0)
        started -= state["extra"].get("elapsed_s", 0.0)  # wall time keeps counting from where the run stopped
        trainer_rng_state = state["extra"].get("trainer_rng")
        warmup_done = state["extra"].get("warmup_epochs_done", 0)
        last_logged = state["iteration"] + 1 if state["iteration"] >= 0 else -1  # a warm-up checkpoint: no rows
    if accelerator.is_main_process:
        (run_dir / "args.json").write_text(json.dumps(dataclasses.asdict(args), indent=2))

    log = RunLog(run_dir, enabled=accelerator.is_main_process)
    if args.resume:
        log.truncate(last_logged)  # rows the killed run logged after its last checkpoint are redone
    envs = make_envs(pool, args)
    # Held-out tasks of another world need that world's tools (its pages, its search index): own envs.
    eval_envs = envs if same_tools(pool, eval_set) else make_envs(eval_set, args, min(args.num_envs, len(eval_tasks)))
    rng = random.Random(args.seed * 1000 + start_iteration)  # the same on every process: the same tasks
    if trainer_rng_state is not None:  # task choice and env seeds continue exactly as without the kill
        rng.setstate(_as_rng_state(trainer_rng_state))
    summary: dict[str, float] = {}

    def save_checkpoint_everywhere(iteration: int, extra: dict[str, float]) -> None:
        """Checkpoint after ``iteration`` (-1: during the warm-up), with the trainer's clock and generator."""
        rng_states = dp.gather_objects(rng_state())  # every process's own generators; one queue replica
        if dp.is_main:
            save_checkpoint(run_dir, iteration, policy, optimizer, queue, args,
                            {"warmup_epochs_done": args.demo_warmup_epochs, **extra,
                             "elapsed_s": time.time() - started, "trainer_rng": rng.getstate()},
                            rng_states=rng_states, keep=args.keep_checkpoints)

    try:
        initial: dict[str, float] = {}
        warmup_epochs = range(warmup_done, args.demo_warmup_epochs) if start_iteration == 0 else range(0)
        seed_queue = queue is not None and args.queue_demonstrations and not args.resume  # a resumed queue is whole
        demonstrations = demonstration_turns(pool, args) if queue is not None or warmup_epochs else {}
        played = play_pool_demonstrations(policy, envs, demonstrations, args, dp) if seed_queue or warmup_epochs else []
        if seed_queue:
            initial = seed_queue_with_demonstrations(policy, envs, pool, queue, args, dp, played=played)
        if warmup_epochs:
            def checkpoint_warmup(epoch: int) -> None:  # a kill during the warm-up loses one epoch at most
                save_checkpoint_everywhere(-1, {"warmup_epochs_done": epoch + 1})
            initial.update(warm_up(policy, optimizer, played, warmup_epochs, update_config, rng, dp,
                                   args.demo_warmup_batch, checkpoint_warmup))
        # A fix must be a script the policy could write: every turn within one generated turn's budget.
        fixes = {task_id: turns for task_id, turns in demonstrations.items()
                 if all(len(policy.tokenize(turn)) <= args.max_new_tokens for turn in turns)
                 } if args.repair_demonstrations else {}
        if start_iteration == 0:
            first = evaluate(policy, eval_envs, eval_tasks, args, dp, log, 0) if args.eval_at_start else {}
            log.log(0, {**initial, **first})
        progress = _progress(range(start_iteration, args.iterations), accelerator.is_main_process)
        for iteration in progress:
            metrics, rollouts = train_iteration(iteration, policy, optimizer, envs, pool, queue, update_config,
                                                args, rng, dp, log, fixes)
            online_rollouts += rollouts
            metrics["rollout/online_total"] = float(online_rollouts)
            metrics["time/elapsed_s"] = time.time() - started
            last = iteration + 1 == args.iterations
            if (args.eval_every and (iteration + 1) % args.eval_every == 0) or last:
                metrics.update(evaluate(policy, eval_envs, eval_tasks, args, dp, log, iteration + 1))
            log.log(iteration + 1, metrics)
            if hasattr(progress, "set_postfix"):
                progress.set_postfix(reward=f"{metrics.get('reward/mean', 0):.2f}",
                                     eval=f"{metrics.get('eval/success', float('nan')):.2f}")
            if (iteration + 1) % args.checkpoint_every == 0 or last:
                save_checkpoint_everywhere(iteration, {"online_rollouts": online_rollouts})
        if not accelerator.is_main_process:
            return summary
        rows = log.rows()
        evals = [r for r in rows if "eval/success" in r]
        start_rows = [r for r in evals if r["step"] == 0]
        summary.update({"eval_success_start": start_rows[0]["eval/success"] if start_rows else float("nan"),
                        "eval_success_end": evals[-1]["eval/success"] if evals else float("nan"),
                        "online_rollouts": float(online_rollouts), "iterations": float(args.iterations),
                        "wall_seconds": time.time() - started})
        plot_curves(rows, run_dir / "curves.png")
        (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        if args.results_file:
            Path(args.results_file).write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary, indent=2))
        return summary
    except BaseException as exc:
        dp.record_failure(exc)  # the other processes quote this note when they stop
        raise
    finally:
        envs.close()
        if eval_envs is not envs:
            eval_envs.close()
        log.close()


def train_iteration(iteration: int, policy: Policy, optimizer: torch.optim.Optimizer, envs: ThreadVectorEnv,
                    pool: TaskSet, queue: SampleQueue | None, config: UpdateConfig, args: Args,
                    rng: random.Random, dp: DataParallel | None = None, log: RunLog | None = None,
                    fixes: Mapping[str, list[str]] | None = None) -> tuple[dict[str, float], int]:
    """Rollouts, queue, advantages and one update; returns (metrics, online rollouts spent).

    With ``fixes`` (task id -> demonstration turns) and a queue, the iteration's failures are repaired
    before the groups are built (:func:`offer_repairs`), so a repair can join its own failure's group.

    With several processes (``dp``) each plays and trains its share of the groups; everything between
    (groups, queue, advantages) is computed from the gathered batch, identically on every process. With
    ``log``, the online episodes are written to ``<run>/episodes/train-<iteration + 1>.jsonl`` (for reading:
    the sampled episodes are where recoveries after an error show first).
    """
    dp = dp or DataParallel()
    candidates = [t.task_id for t in pool.tasks]
    if queue is not None:
        unmastered = [t for t in candidates if not queue.is_mastered(t)]
        candidates = unmastered or candidates
    chosen = rng.sample(candidates, min(args.tasks_per_iteration, len(candidates)))
    requests = []
    for k, task_id in enumerate(chosen):
        fresh = queue.rollouts_needed(task_id, args.group_size) if queue is not None else args.group_size
        requests += [EpisodeRequest(task_id, f"{iteration}-{k}", seed=rng.randrange(2**31)) for _ in range(fresh)]
    online, stats = collect_everywhere(dp, policy, envs, requests, max_episode_tokens=args.max_episode_tokens,
                                       system_prompt=args.system_prompt or None, response_prefix=args.response_prefix)
    clean = without_infra_errors(online)
    if log is not None:
        log.write_episodes(f"train-{iteration + 1}", [episode_record(t) for t in online])
    repair_stats = offer_repairs(policy, envs, clean, fixes, queue, args, dp) if fixes and queue is not None else {}
    batch, group_stats = build_groups(clean, queue, policy.version, args.group_size, config.zero_signal_tol)
    advantages = compute_advantages(batch, config)
    metrics: dict[str, float] = {**episode_metrics(clean, "reward"), **stats.as_metrics()}
    metrics["rollout/task_ids"] = ",".join(chosen)  # type: ignore[assignment]  # which tasks, for the record
    metrics.update({**group_stats, **repair_stats,
                    "rollout/infra_errors": float(len(online) - len(clean)),
                    "advantage/mean": float(np.mean(advantages)) if advantages else 0.0,
                    "advantage/std": float(np.std(advantages)) if advantages else 0.0,
                    "advantage/abs_max": float(np.max(np.abs(advantages))) if advantages else 0.0})
    update_start = time.perf_counter()
    owner = group_owner([t.group_id for t in batch], dp.world_size)
    mine = [pair for pair in trainable(batch, advantages, config) if owner[pair[0].group_id] == dp.rank]
    rescore(policy, [t for t, _ in mine if t.source == "cache"])
    try:
        metrics.update(update_policy(policy, optimizer, mine, config, rng=rng, dp=dp))
    except NonFiniteLossError as exc:  # raised on every process alike: they stay in step
        print(f"[iteration {iteration}] {exc}", file=sys.stderr)
        metrics["update/non_finite"] = 1.0
    metrics["time/update_s"] = time.perf_counter() - update_start
    policy.version += 1
    for i, value in enumerate(dp.gather_checksums(policy.trainable_parameters())):
        metrics[f"dp/adapter_checksum/rank{i}"] = float(value)
    if queue is not None:
        metrics.update({f"queue/{k}": float(v) for k, v in queue.stats().items()})
        fingerprint = zlib.crc32(pickle.dumps(queue.state_dict()))
        for i, value in enumerate(dp.gather_objects(fingerprint)):
            metrics[f"dp/queue_checksum/rank{i}"] = float(value)
    return metrics, len(requests)


def _as_rng_state(state: object) -> tuple:
    """A ``random.Random`` state as ``setstate`` wants it (tuples, whatever serialisation did to them)."""
    version, internal, gauss = state  # type: ignore[misc]
    return (version, tuple(internal), gauss)


def _progress(iterable: range, enabled: bool) -> object:
    try:
        from tqdm import tqdm

        return tqdm(iterable, desc="GRPO", disable=not enabled, dynamic_ncols=True)
    except ImportError:
        return iterable


def parse_args(argv: list[str] | None = None) -> Args:
    """Parse the command line into :class:`Args` (``--help`` lists every field with its help line)."""
    return parse_with_preset(Args, argv, description=__doc__)


def cli(argv: list[str] | None = None) -> int:
    """The training command (``toolr1-train``, ``python agents/train_grpo.py``): exit status 0 when done."""
    main(parse_args(argv))
    return 0
