"""GRPO for code-acting agents on ToolR1-GAIA-v0, with Tool-R1's dynamic sample queue.

    python agents/train_grpo.py                      # the main recipe (preset multistep): warm-up, then GRPO
    python agents/train_grpo.py --preset single-step # one code action per episode, GRPO only
    python agents/train_grpo.py --help               # every argument, with its help line
    accelerate launch agents/train_grpo.py ...       # data-parallel over GPUs (one rollout shard per process)

A run is four phases, called in order by :func:`main`:

1. :func:`set_up`: model, adapter (fresh or ``--init_adapter``), task pools, envs, queue, resume state.
2. :func:`warm_up_phase`: supervised passes over verified demonstrations of the warm-up pool
   (``agents.learner.warmup``), checkpointed every pass; the result is kept as ``checkpoints/warmup``.
3. :func:`rl_phase`: GRPO iterations (``agents.learner.iteration.train_iteration``) on the RL pool with a
   fresh optimiser, the RL learning rate and its schedule, a KL to the policy RL started from, and learnable
   task choice; with ``--select_tasks`` the run ends on the adapter that scored best on that validation split
   (``agents.learner.selection``).
4. Held-out evaluations (``agents.learner.heldout``) before the warm-up, after it, and at the end, and a table.

Each GRPO iteration: choose ``tasks_per_iteration`` tasks; play ``group_size`` episodes per task (fewer when
the sample queue holds successes for a task the policy keeps failing); every turn is one batched generation
over all live episodes, and all their code runs at once in their sandboxes; groups with no learning signal get
cached successes of the *same* task from the queue; advantages per group; ``epochs`` passes of the clipped
token-level loss (``agents.learner.grpo``). Tool output tokens are in the attention but masked out of the
loss. Episodes flagged ``infra_error`` are left out.

Data parallel (``agents.learner.data_parallel``): one random stream that every process shares chooses the
tasks and the env seeds (so every process chooses the same, logged as ``dp/task_digest/rank{i}``); each
process then plays and trains its share of the groups with a stream of its own, and the gathered batch
(groups, queue, advantages) is the same everywhere; one all-reduce per step keeps the adapters identical
(``dp/adapter_checksum/rank{i}``).

Where this departs from textbook GRPO, and why: ``agents/learner/grpo.py`` (token-level normalisation,
asymmetric clipping, optional KL), ``agents/learner/sample_queue.py`` (the queue: our design of an unpublished
idea), ``agents/learner/warmup.py`` (the warm-up: not in the paper). Old log-probs are the sampler's own
(computed at sampling time, no extra forward pass); the update's first pass measures how far they are from the
trainer's (``rollout/logprob_gap/mean`` and ``/max``: numerics only, ~1e-7 in fp32 and ~1e-4 under ``--bf16``
on the tiny model, since the sampler never merges the adapter in bf16 and both sides use one fp32 head).
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.learner.checkpointing import (
    check_compatible,
    init_adapter_dir,
    keep_adapter,
    latest_checkpoint,
    load_checkpoint,
    load_matching_adapter,
    rng_state,
    save_checkpoint,
)
from agents.learner.config import Args, check_args, make_rl_pool, make_task_pool, queue_config
from agents.learner.data_parallel import DataParallel, from_accelerator
from agents.learner.heldout import (
    EvalSet,
    clock,
    close_eval_sets,
    evaluate,
    make_envs,
    make_eval_sets,
    progress_lines,
    release_sandboxes,
    result_table,
    same_tools,
)
from agents.learner.iteration import HeldUpdate, train_iteration
from agents.learner.model_loading import load_model_and_tokenizer, make_tiny_model
from agents.learner.playing import (
    demonstration_turns,
    play_pool_demonstrations,
    seed_queue_with_demonstrations,
)
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.presets import parse_with_preset
from agents.learner.records import Trajectory
from agents.learner.reference import AdapterSnapshot
from agents.learner.run_log import RunLog, plot_curves
from agents.learner.sample_queue import SampleQueue
from agents.learner.selection import BestAdapter
from agents.learner.task_choice import TaskChooser, make_chooser
from agents.learner.update import UpdateConfig
from agents.learner.warmup import warm_up
from toolr1_env.tasks import TaskSet
from toolr1_env.vector import ThreadVectorEnv

__all__ = ["Args", "cli", "main", "make_envs", "make_task_pool", "parse_args", "queue_config", "same_tools",
           "train_iteration"]


@dataclass
class Run:
    """What the phases of one training run share (built by :func:`set_up`)."""

    args: Args
    run_dir: Path
    dp: DataParallel
    policy: Policy
    update_config: UpdateConfig
    warmup_pool: TaskSet
    rl_pool: TaskSet
    envs: ThreadVectorEnv  # the warm-up pool's (and the RL pool's when both share tools)
    rl_envs: ThreadVectorEnv  # the RL pool's: ``envs``, or envs of its own world (``--rl_tasks``)
    eval_sets: list[EvalSet]
    select_sets: list[EvalSet]  # --select_tasks (empty without): the validation split RL keeps its best adapter on
    log: RunLog
    queue: SampleQueue | None
    chooser: TaskChooser
    shared_rng: random.Random
    optimizer: torch.optim.Optimizer
    started: float
    start_iteration: int = 0
    warmup_done: int = 0
    online_rollouts: int = 0
    reference: AdapterSnapshot | None = None
    best: BestAdapter | None = None  # the best adapter on --select_tasks so far
    held: HeldUpdate = field(default_factory=HeldUpdate)  # episodes waiting for --min_signal_groups
    demonstrations: list[Trajectory] = field(default_factory=list)  # the warm-up pool's, as played (once)
    demonstrations_retired: int = 0  # demonstrations the queue has retired (said once each time it grows)
    results: list[tuple[str, dict[str, float]]] = field(default_factory=list)

    @property
    def warmup_dir(self) -> Path:
        """Where the warmed-up adapter is kept (playable with ``agents/evaluate.py --adapter``)."""
        return self.run_dir / "checkpoints" / "warmup"

    def say(self, message: str) -> None:
        """A progress line on the main process (stderr, flushed: it shows in logs and background jobs)."""
        if self.dp.is_main:
            print(f"[{clock(time.time() - self.started)}] {message}", file=sys.stderr, flush=True)

    def checkpoint(self, iteration: int, extra: dict[str, Any]) -> None:
        """Checkpoint after ``iteration`` (-1: during the warm-up) with the trainer's clock and generators."""
        rng_states = self.dp.gather_objects(rng_state())  # every process's own generators; one queue replica
        if self.dp.is_main:
            save_checkpoint(self.run_dir, iteration, self.policy, self.optimizer, self.queue, self.args,
                            {"warmup_epochs_done": self.args.demo_warmup_epochs, **extra,
                             "elapsed_s": time.time() - self.started, "trainer_rng": self.shared_rng.getstate(),
                             "chooser": self.chooser.state_dict(), "online_rollouts": self.online_rollouts,
                             "held": self.held},
                            rng_states=rng_states, keep=self.args.keep_checkpoints)


def main(args: Args) -> dict[str, float]:
    """Train; return the final summary (also written to ``summary.json`` in the run folder)."""
    run = set_up(args)
    try:
        if run.start_iteration == 0:
            base = evaluation_point(run, "start", "base", prefix="eval_base") \
                if args.eval_base and run.warmup_done == 0 else {}
            initial = warm_up_phase(run)
            first = evaluation_point(run, "after warm-up" if args.demo_warmup_epochs else "start", "0") \
                if args.eval_at_start else {}
            run.log.log(0, {**base, **initial, **first})
        if run.rl_envs is not run.envs and args.iterations > run.start_iteration:
            release_sandboxes(run.envs)  # the warm-up pool's sandboxes idle while RL plays in its own world
        rl_phase(run)
        summary = finish(run)
    except BaseException as exc:
        run.dp.record_failure(exc)  # the other processes quote this note when they stop
        raise
    finally:
        run.envs.close()
        if run.rl_envs is not run.envs:
            run.rl_envs.close()
        close_eval_sets(run.eval_sets)
        close_eval_sets(run.select_sets)
        run.log.close()
    run.dp.close()
    return summary


def set_up(args: Args) -> Run:
    """Phase 1: everything a run needs, with every bad argument refused before the model loads."""
    from accelerate import Accelerator
    from accelerate.utils import broadcast_object_list

    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    rank, world = accelerator.process_index, accelerator.num_processes
    check_args(args, world)
    # Every process seeds alike before the adapter is made (identical LoRA init), and apart afterwards.
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    name = [args.output_dir or f"runs/{args.tasks}__grpo__{args.seed}__{int(time.time())}"]
    if world > 1:
        broadcast_object_list(name)  # the main process names the folder: every process uses its name
    run_dir = Path(name[0])
    run_dir.mkdir(parents=True, exist_ok=True)

    update_config = UpdateConfig(epochs=args.epochs, micro_batch_size=args.micro_batch_size,
                                 micro_batch_tokens=args.micro_batch_tokens, clip_low=args.clip_low,
                                 clip_high=args.clip_high, kl_coef=args.kl_coef,
                                 advantage_scale=args.advantage_scale,  # type: ignore[arg-type]
                                 loss_aggregation=args.loss_aggregation,  # type: ignore[arg-type]
                                 negative_advantages=args.negative_advantages, mask_truncated=args.mask_truncated,
                                 is_weight_cap=args.queue_is_cap)
    queue_settings = queue_config(args) if args.use_queue else None
    warmup_pool = make_task_pool(args)
    rl_pool = make_rl_pool(args, warmup_pool)
    if not warmup_pool.tasks:
        raise ValueError("the training pool holds no task")
    init_adapter = init_adapter_dir(args) if args.init_adapter else None

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
    if init_adapter is not None:
        load_matching_adapter(policy, init_adapter)
    # The model is not wrapped in DDP: sampling, the adapter switch and saving need the bare PEFT model.
    policy.model.to(accelerator.device)
    dp = from_accelerator(accelerator, run_dir / ".dp")
    dp.broadcast_(policy.trainable_parameters())
    random.seed(args.seed + rank)  # sampling differs between processes from here on
    np.random.seed(args.seed + rank)
    torch.manual_seed(args.seed + rank)

    one_world = same_tools(warmup_pool, rl_pool)  # else the RL pool lives in a world of its own (--rl_tasks)
    training_set = warmup_pool if rl_pool is warmup_pool or not one_world else warmup_pool.subset(
        f"{warmup_pool.name}+rl", [*warmup_pool.tasks, *rl_pool.tasks])
    envs = make_envs(training_set, args)
    run = Run(args=args, run_dir=run_dir, dp=dp, policy=policy, update_config=update_config,
              warmup_pool=warmup_pool, rl_pool=rl_pool, envs=envs,
              rl_envs=envs if one_world else make_envs(rl_pool, args),
              eval_sets=make_eval_sets(args.eval_tasks, args.eval_level, args.eval_size, args, training_set, envs),
              select_sets=make_eval_sets(args.select_tasks, args.eval_level, args.select_size, args, training_set,
                                         envs) if args.select_tasks and args.iterations > 0 else [],
              log=RunLog(run_dir, enabled=dp.is_main),
              queue=SampleQueue(queue_settings) if queue_settings is not None else None,
              chooser=make_chooser(rl_pool, args.task_choice),
              shared_rng=random.Random(args.seed * 1000),
              optimizer=torch.optim.AdamW(policy.trainable_parameters(), lr=args.lr, weight_decay=args.weight_decay),
              started=time.time())
    if run.select_sets:
        run.best = BestAdapter(run_dir / "checkpoints" / "best", write=dp.is_main)
    if args.resume:
        _resume(run)
    if dp.is_main:
        (run_dir / "args.json").write_text(json.dumps(dataclasses.asdict(args), indent=2))
    return run


def warm_up_phase(run: Run) -> dict[str, float]:
    """Phase 2: the warm-up pool's demonstrations into the queue and/or supervised passes over them; the
    result is kept as ``checkpoints/warmup``. Returns the step-0 metrics it produced."""
    args, metrics = run.args, {}
    epochs = range(run.warmup_done, args.demo_warmup_epochs)
    seed_queue = run.queue is not None and args.queue_demonstrations and not args.resume  # a resumed queue is whole
    if not (seed_queue or epochs):
        return metrics
    played = played_demonstrations(run)
    if seed_queue:
        metrics = seed_queue_with_demonstrations(run.policy, run.envs, run.warmup_pool, run.queue, args, run.dp,
                                                 played=played)
    if epochs:
        pass_started = time.time()

        def after_pass(epoch: int) -> None:  # a kill during the warm-up loses one pass at most
            run.checkpoint(-1, {"warmup_epochs_done": epoch + 1})
            done = epoch + 1 - epochs.start
            left = (time.time() - pass_started) / done * (epochs.stop - epoch - 1)
            run.say(f"warm-up pass {epoch + 1}/{args.demo_warmup_epochs} done, about {clock(left)} left")

        run.say(f"warm-up: {len(epochs)} supervised passes over the verified demonstrations")
        metrics.update(warm_up(run.policy, run.optimizer, played, epochs, run.update_config, run.shared_rng, run.dp,
                               args.demo_warmup_batch, after_pass))
        if run.dp.is_main:
            keep_adapter(run.policy, run.warmup_dir, args)
        run.say(f"warm-up done; adapter kept in {run.warmup_dir}")
    return metrics


def played_demonstrations(run: Run) -> list[Trajectory]:
    """The warm-up pool's demonstrations played through the env (once per run; the warm-up, the queue and
    ``--rl_demo_coef`` share them)."""
    if not run.demonstrations:
        demonstrations = demonstration_turns(run.warmup_pool, run.args)
        run.say(f"playing {len(demonstrations)} demonstrations of the warm-up pool")
        run.demonstrations = play_pool_demonstrations(run.policy, run.envs, demonstrations, run.args, run.dp)
    return run.demonstrations


def rl_phase(run: Run) -> None:
    """Phase 3: GRPO iterations from ``run.start_iteration`` with the RL optimiser, schedule and reference."""
    args = run.args
    if run.start_iteration >= args.iterations:
        return
    if run.start_iteration == 0:  # a resumed run restored both in _resume
        run.optimizer = rl_optimizer(run.policy, args)
        run.reference = AdapterSnapshot(run.policy.trainable_parameters()) \
            if args.kl_coef > 0 and args.kl_ref == "start" else None
    # A fix must be a script the policy could write: every turn within one generated turn's budget.
    fixes = {task_id: turns for task_id, turns in demonstration_turns(run.rl_pool, args).items()
             if all(len(run.policy.tokenize(turn)) <= args.max_new_tokens for turn in turns)
             } if args.repair_demonstrations and run.queue is not None else {}
    anchors = played_demonstrations(run) if args.rl_demo_coef > 0 else []
    run.say(f"GRPO: {args.iterations - run.start_iteration} iterations of {args.tasks_per_iteration} tasks x "
            f"{args.group_size} episodes on a pool of {len(run.rl_pool.tasks)} tasks")
    if run.best is not None and run.best.best is None:  # the adapter RL starts from is a candidate too
        run.log.log(run.start_iteration, selection_point(run, run.best, run.start_iteration))
    progress = _progress(range(run.start_iteration, args.iterations), run.dp.is_main)
    for iteration in progress:
        _set_lr(run.optimizer, rl_learning_rate(args, iteration))
        metrics, rollouts = train_iteration(iteration, run.policy, run.optimizer, run.rl_envs, run.rl_pool, run.queue,
                                            run.update_config, args, run.shared_rng, run.dp, run.log, fixes,
                                            chooser=run.chooser, reference=run.reference, anchors=anchors,
                                            held=run.held, last=iteration + 1 == args.iterations)
        run.online_rollouts += rollouts
        retired = int(metrics.get("queue/retired_demonstrations", 0))
        if retired > int(run.demonstrations_retired):
            run.say(f"sample queue: {retired} demonstration(s) retired so far (age or reuse limit); "
                    f"{int(metrics.get('queue/size', 0))} entries left")
            run.demonstrations_retired = retired
        metrics["rollout/online_total"] = float(run.online_rollouts)
        metrics["update/lr"] = rl_learning_rate(args, iteration)
        metrics["time/elapsed_s"] = time.time() - run.started
        last = iteration + 1 == args.iterations
        if run.best is not None and ((iteration + 1) % args.select_every == 0 or last):
            metrics.update(selection_point(run, run.best, iteration + 1))
        end = "end"
        if run.best is not None and last:
            if run.dp.is_main:  # the last RL adapter stays playable (and mixable) beside the kept one
                keep_adapter(run.policy, run.run_dir / "checkpoints" / "rl-end", args)
            kept = run.best.take_back(run.policy)
            metrics["select/kept_iteration"] = float(kept.iteration)
            run.say(f"the run ends on the adapter after iteration {kept.iteration} (selection success "
                    f"{kept.score:.3f}, the best on {args.select_tasks}; kept in {run.best.folder})")
            if kept.iteration != args.iterations:
                end = f"end (iteration {kept.iteration}'s adapter)"
        if (args.eval_every and (iteration + 1) % args.eval_every == 0) or last:
            metrics.update(evaluation_point(run, end if last else f"iteration {iteration + 1}", str(iteration + 1)))
        run.log.log(iteration + 1, metrics)
        if hasattr(progress, "set_postfix"):
            shown = {"reward": f"{metrics.get('reward/mean', 0):.2f}"}
            if "eval/success" in metrics:
                shown["held-out"] = f"{metrics['eval/success']:.2f}"
            progress.set_postfix(shown)
        if (iteration + 1) % args.checkpoint_every == 0 or last:
            run.checkpoint(iteration, {})


def selection_point(run: Run, best: BestAdapter, iteration: int) -> dict[str, float]:
    """Score the policy on ``--select_tasks`` after ``iteration`` RL iterations and offer it to ``best`` (kept when
    it is the best so far, ``agents.learner.selection``); returns the ``select/*`` metrics."""
    metrics = evaluate(run.policy, run.select_sets, run.args, run.dp, run.log, str(iteration), "select", "select",
                       progress=progress_lines(run.say, f"selection split after {iteration} iterations",
                                                run.args.max_turns))
    if run.rl_envs is not run.envs:  # the training world's sandboxes idle again until the next selection
        release_sandboxes(run.envs)
    score = metrics["select/success"]
    kept = best.offer(run.policy, iteration, score, run.args)
    run.say(f"selection split after {iteration} iterations: success {score:.3f}"
            f"{' (best so far: kept)' if kept else ''}")
    return metrics


def evaluation_point(run: Run, name: str, tag: str, prefix: str = "eval") -> dict[str, float]:
    """A held-out evaluation with a progress line before and after; kept for the end-of-run table."""
    tasks = sum(len(s.tasks) for s in run.eval_sets)
    previous = [m[f"time/{p}_s"] for _, m in run.results for p in ("eval", "eval_base") if f"time/{p}_s" in m]
    guess = f", about {clock(previous[-1])}" if previous else ""
    run.say(f"held-out evaluation ({name}): {tasks} tasks, greedy{guess}")
    metrics = evaluate(run.policy, run.eval_sets, run.args, run.dp, run.log, tag, prefix,
                       progress=progress_lines(run.say, f"held-out evaluation ({name})", run.args.max_turns))
    run.say(f"held-out evaluation ({name}): success {metrics[f'{prefix}/success']:.3f}")
    at = {"time/elapsed_s": time.time() - run.started}  # for the table only: the logged elapsed time excludes it
    run.results.append((name, {**{k.replace(f"{prefix}/", "eval/", 1): v for k, v in metrics.items()}, **at}))
    return metrics


def finish(run: Run) -> dict[str, float]:
    """Phase 4: the summary (``summary.json``), the curves and the end-of-run table on the main process."""
    if not run.dp.is_main:
        return {}
    rows = run.log.rows()
    evals = [r for r in rows if "eval/success" in r]
    start_rows = [r for r in evals if r["step"] == 0]
    base_rows = [r for r in rows if "eval_base/success" in r]
    summary = {"eval_success_base": base_rows[0]["eval_base/success"] if base_rows else float("nan"),
               "eval_success_start": start_rows[0]["eval/success"] if start_rows else float("nan"),
               "eval_success_end": evals[-1]["eval/success"] if evals else float("nan"),
               "online_rollouts": float(run.online_rollouts), "iterations": float(run.args.iterations),
               "wall_seconds": time.time() - run.started}
    plot_curves(rows, run.run_dir / "curves.png")
    (run.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if run.args.results_file:
        Path(run.args.results_file).write_text(json.dumps(summary, indent=2))
    if run.results:
        table = result_table(run.results)
        (run.run_dir / "results.txt").write_text(table + "\n")
        print(f"\nHeld-out ({run.args.eval_tasks}, level {run.args.eval_level}); wall time "
              f"{summary['wall_seconds'] / 60:.1f} min; run folder {run.run_dir}\n{table}\n")
    print(json.dumps(summary, indent=2))
    return summary


def rl_optimizer(policy: Policy, args: Args) -> torch.optim.Optimizer:
    """A fresh AdamW for the RL phase: the warm-up's momentum does not carry into RL."""
    return torch.optim.AdamW(policy.trainable_parameters(), lr=rl_learning_rate(args, 0),
                             weight_decay=args.weight_decay)


def rl_learning_rate(args: Args, iteration: int) -> float:
    """The RL learning rate at ``iteration``: ``--rl_lr`` (or ``--lr``), constant or cosine (one iteration of
    linear warm-up at half the rate, then cosine decay to a tenth at the last iteration)."""
    peak = args.rl_lr or args.lr
    if args.lr_schedule == "constant" or args.iterations <= 1:
        return peak
    if iteration == 0:
        return peak / 2
    progress = (iteration - 1) / max(args.iterations - 2, 1)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def _resume(run: Run) -> None:
    """Restore adapter, optimiser (the warm-up's or RL's), queue, generators, chooser and clock."""
    checkpoint = latest_checkpoint(run.run_dir)
    if checkpoint is None:
        raise FileNotFoundError(f"--resume: no checkpoint in {run.run_dir}/checkpoints")
    check_compatible(checkpoint, run.args)
    in_rl = not checkpoint.name.endswith("--1")
    if in_rl:
        run.optimizer = rl_optimizer(run.policy, run.args)
        if run.args.kl_coef > 0 and run.args.kl_ref == "start":  # the reference is the adapter RL started from
            start = run.warmup_dir / "adapter" if run.warmup_dir.exists() else (
                init_adapter_dir(run.args) if run.args.init_adapter else None)
            if start is not None:
                run.policy.load_adapter_weights(str(start))
            run.reference = AdapterSnapshot(run.policy.trainable_parameters())
    state = load_checkpoint(checkpoint, run.policy, run.optimizer, run.queue, rank=run.dp.rank,
                            world_size=run.dp.world_size)
    extra = state["extra"]
    run.start_iteration = state["iteration"] + 1
    run.online_rollouts = extra.get("online_rollouts", 0)
    run.started -= extra.get("elapsed_s", 0.0)  # wall time keeps counting from where the run stopped
    run.warmup_done = extra.get("warmup_epochs_done", 0)
    if extra.get("trainer_rng") is not None:  # task choice and env seeds continue exactly as without the kill
        run.shared_rng.setstate(_as_rng_state(extra["trainer_rng"]))
    if extra.get("chooser"):
        run.chooser.load_state_dict(extra["chooser"])
    if isinstance(extra.get("held"), HeldUpdate):  # episodes a --min_signal_groups run was holding
        run.held = extra["held"]
    if run.best is not None and in_rl:  # the best adapter so far, as the killed run kept it
        run.best.resume()
    run.log.truncate(run.start_iteration if state["iteration"] >= 0 else -1)  # rows after the checkpoint are redone
    run.say(f"resumed from {checkpoint.name}")


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


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
