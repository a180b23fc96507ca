"""Every knob of a training run (:class:`Args`), the checks that refuse a bad combination before any work,
and the task pools the arguments name.

The dataclass defaults are the one-turn run (the ``single-step`` preset); the command line applies the
``multistep`` preset unless ``--preset`` names another (``agents.learner.presets``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agents.cli import arg
from agents.learner.demonstrations import STYLES
from agents.learner.presets import preset_names
from agents.learner.sample_queue import SampleQueueConfig
from agents.learner.task_choice import CHOICES as TASK_CHOICES
from agents.learner.task_choice import task_kind
from toolr1_env.env import resolve_tasks
from toolr1_env.reward import EXEC_BONUS
from toolr1_env.tasks import Task, TaskSet

#: The queue's own defaults are the trainer's defaults (one source).
QUEUE = SampleQueueConfig()


@dataclass
class Args:
    """Every knob of a training run."""

    preset: str = arg("", "named defaults applied before the other flags (agents/learner/presets.py); the command "
                          "line's default is multistep (the main recipe), single-step is the one-turn run",
                      preset_names())
    model: str = arg("smollm2-135m", "bundled alias, local folder, HF id (offline), or tiny-random (tests)")
    tasks: str = arg("warmup", "training split name, GAIA folder or task JSONL")
    task_pool_size: int = arg(32, "fixed pool of training tasks drawn from a generated split at seeds 0..N-1 "
                                  "(0 = all): the warm-up's demonstrations, and RL's tasks without --rl_pool_size")
    rl_pool_size: int = arg(0, "tasks of a separate RL pool, drawn from the same split at the seeds after the "
                               "warm-up pool (disjoint from it); 0 = RL on the warm-up pool")
    rl_tasks: str = arg("", "the split the separate RL pool is drawn from ('' = --tasks); a generated split of "
                            "another world plays in envs of its own, e.g. rl-easy: train-easy's mix in a world "
                            "no demonstration, validation or evaluation task uses")
    rl_level: int = arg(-1, "only tasks of this level in the separate RL pool (drawn from the seeds after the warm-up "
                            "pool until --rl_pool_size of them are found); -1 = every level")
    rl_kinds: str = arg("all", "question kinds of the separate RL pool: all, or new (only kinds no warm-up pool task "
                               "asks: RL practises what no demonstration shows; kind = "
                               "agents.learner.task_choice.question_kind)", ("all", "new"))
    task_choice: str = arg("uniform", "how an RL iteration picks its tasks: uniform; learnable (skip mastered and "
                                      "hopeless tasks, weight the rest by p(1-p)); learnable-kind (the same, a "
                                      "task's prior pooled over its question kind): agents/learner/task_choice.py",
                           TASK_CHOICES)
    eval_tasks: str = arg("warmup-eval", "held-out task sets for evaluation, comma-separated (each in its own "
                                         "world's envs); 'pool' = the training pool; a generated split takes "
                                         "@<first seed> (agents/learner/heldout.py)")
    eval_size: int = arg(32, "tasks of each eval set used per evaluation (first N, fixed; 0 = all)")
    eval_level: int = arg(-1, "evaluate only the tasks of this level of eval_tasks (-1 = every level)")
    select_tasks: str = arg("", "a validation split RL keeps its best adapter on, e.g. train-easy@200000 (training-"
                                "world tasks no pool, validation or evaluation split draws): scored greedily as RL "
                                "starts and every --select_every iterations, and the run ends on the best-scoring "
                                "adapter (ties: the earlier), so a collapse during RL is rolled back "
                                "(agents/learner/selection.py; unused without RL iterations); '' = the last adapter")
    select_size: int = arg(48, "tasks of --select_tasks scored each time (of --eval_level)")
    select_every: int = arg(1, "score --select_tasks every N RL iterations (and after the last)")
    eval_at_start: bool = arg(True, "evaluate before the first GRPO update (after the warm-up, if any)")
    eval_base: bool = arg(False, "also evaluate the starting policy before the warm-up (the base model's score)")
    eval_every: int = arg(4, "evaluate every N iterations (0 = only at start and end)")
    iterations: int = arg(12, "training iterations (one optimiser step per epoch each)")
    tasks_per_iteration: int = arg(4, "distinct tasks per iteration (over all processes; a multiple of their number)")
    group_size: int = arg(8, "episodes per task (the GRPO group)")
    num_envs: int = arg(32, "parallel environments, each with a sandbox (~130 MB); 32 = one generation batch")
    env_servers: str = arg("", "play on these toolr1-serve servers, comma-separated (ws://a:8000,ws://b:8000): the "
                               "envs spread round-robin over them, sandboxes on their machines; '' = here")
    max_turns: int = arg(1, "code actions per episode")
    max_new_tokens: int = arg(64, "tokens per generated turn")
    max_episode_tokens: int = arg(1536, "token budget of a whole episode (prompt included)")
    max_observation_chars: int = arg(400, "observation text cap (head + tail)")
    step_timeout: float = arg(5.0, "seconds per code action")
    sandbox_preload: str = arg("numpy", "modules every sandbox's fork server imports once, comma-separated ('' = "
                                        "none): pandas there costs about 38 MiB more per sandbox (2.4 GiB over the "
                                        "recipe's 64), importing it in an episode about 0.2 s")
    temperature: float = arg(1.0, "sampling temperature for training rollouts")
    system_prompt: str = arg("", "optional system message before the task prompt")
    prompt_style: str = arg("compact", "task prompt style: compact (small models) or full (every tool documented)")
    response_prefix: str = arg("```py\n", "text forced at the start of every assistant turn (not trained)")
    lr: float = arg(5e-4, "AdamW learning rate of the LoRA adapter (the warm-up's, and RL's without --rl_lr)")
    rl_lr: float = arg(0.0, "learning rate of the RL phase, with a fresh AdamW after the warm-up; 0 = --lr")
    lr_schedule: str = arg("constant", "RL learning rate over the iterations: constant, or cosine (one iteration of "
                                       "linear warm-up, then cosine decay to a tenth)", ("constant", "cosine"))
    weight_decay: float = arg(0.0, "AdamW weight decay")
    lora_r: int = arg(16, "LoRA rank")
    lora_alpha: int = arg(32, "LoRA alpha")
    epochs: int = arg(1, "optimisation passes over each batch")
    micro_batch_size: int = arg(8, "trajectories per forward/backward (accumulated); a group's prompt runs once")
    micro_batch_tokens: int = arg(2048, "most tokens one forward/backward runs (bounds its activations, about 1 MiB "
                                        "a token for the bundled model); a group over it runs in parts; 0: no bound")
    clip_low: float = arg(0.2, "lower clip of the ratio: 1 - clip_low")
    clip_high: float = arg(0.28, "upper clip of the ratio: 1 + clip_high")
    kl_coef: float = arg(0.0, "k3 KL penalty to the reference policy (--kl_ref); 0 = none")
    kl_ref: str = arg("start", "KL reference: start (the policy as RL starts: after the warm-up or --init_adapter) "
                               "or base (the base model, adapter off)", ("start", "base"))
    init_adapter: str = arg("", "start from this trained adapter (an adapter, checkpoint or run folder, e.g. "
                                "runs/<run>/checkpoints/warmup) with a fresh optimiser; its model and LoRA shape "
                                "must match")
    advantage_scale: str = arg("std", "group advantage scaling: std or none")
    loss_aggregation: str = arg("token", "how the token losses are averaged: token (over every trained token of "
                                         "the batch, DAPO) or sequence (each episode's token mean, then the mean "
                                         "over episodes, GRPO: a long failure pushes no harder than a short "
                                         "success pulls)", ("token", "sequence"))
    negative_advantages: bool = arg(True, "train below-average episodes with their negative advantage (GRPO); "
                                          "--no_negative_advantages zeroes them: only a group's better episodes "
                                          "are trained (RAFT/ReST-style filtered imitation of own successes)")
    mask_truncated: bool = arg(True, "leave episodes cut by a token budget (the episode's, or the last turn's) out "
                                     "of the loss; episodes that used up their turns keep their reward")
    lr_by_signal: bool = arg(False, "scale each RL step's learning rate by the share of its groups that carry a "
                                    "non-zero advantage (AdamW moves every weight by about the learning rate "
                                    "whatever the gradient: with 2 of 8 groups carrying signal the step is "
                                    "mostly noise at full size); logged as update/lr_scale")
    min_signal_groups: int = arg(0, "step only when the iterations since the last step hold this many groups with "
                                    "a non-zero advantage (the weights do not change in between, so held episodes "
                                    "stay on-policy; the last iteration trains what is held); 0 = step every "
                                    "iteration")
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
    rl_demo_coef: float = arg(0.0, "mix the warm-up pool's verified demonstrations into every RL update, each "
                                   "token trained with this advantage at ratio 1 (its log-likelihood gradient: "
                                   "InstructGPT's PPO-ptx), so RL keeps what the warm-up taught; 0 = none")
    rl_demo_batch: int = arg(16, "demonstrations mixed into each RL update with --rl_demo_coef (cycling through "
                                 "the pool in a fixed shuffled order)")
    repair_demonstrations: bool = arg(False, "continue each group's first failed episode after its first execution "
                                             "error with the task's demonstration, the failure kept as context out "
                                             "of the loss (agents/learner/repairs.py)")
    queue_admit_online: bool = arg(True, "admit the policy's own successes to the queue (false: only demonstrations)")
    queue_inject_when: str = arg(QUEUE.inject_when, "inject cached successes into groups that are: flat, or "
                                                    "no_success", ("flat", "no_success"))
    queue_is_cap: float = arg(1.0, "cap c of token weight min(pi_now / pi_sampler, c) on replayed samples; 0 = off")
    answer_weight: float = arg(1.0, "reward weight of the judged answer")
    exec_weight: float = arg(0.2, "reward weight of execution success")
    exec_bonus: str = arg("always", "when clean execution earns exec_weight: always, or correct (only on a correct "
                                    "answer; toolr1_env/reward.py)", EXEC_BONUS)
    seed: int = arg(0, "random seed")
    output_dir: str = arg("", "run folder (default runs/<tasks>__grpo__<seed>__<time>; --resume needs it)")
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
    merge_for_sampling: bool = arg(True, "fp32 (--dtype float32, no --bf16): sample on W + LoRA delta merged into "
                                         "a copy of each adapted weight (faster; restored exactly after sampling). "
                                         "Under --bf16 or --dtype bfloat16 nothing is merged (the delta would round "
                                         "away in bf16): sampling runs the unmerged adapter, as training does")
    logprob_chunk_tokens: int = arg(512, "positions whose full-vocabulary logits are alive at once in the loss")


def queue_config(args: Args) -> SampleQueueConfig:
    """The sample queue's settings from the run's arguments; admission follows ``--answer_weight``."""
    return SampleQueueConfig.for_reward_weights(
        args.answer_weight, per_task_capacity=args.queue_capacity_per_task, max_inject=args.queue_max_inject,
        max_age=args.queue_max_age, max_reuse=args.queue_max_reuse, inject_when=args.queue_inject_when,
        admit_online=args.queue_admit_online)


def check_args(args: Args, world_size: int = 1) -> None:
    """Refuse a combination that would fail late or train nothing, before any model is loaded.

    Raises:
        ValueError: with the flag to change.
    """
    problems = []
    if args.advantage_scale not in ("std", "none"):
        problems.append(f"--advantage_scale must be 'std' or 'none', got {args.advantage_scale!r}")
    if args.resume and not args.output_dir:
        problems.append("--resume needs --output_dir: the run folder to continue (its checkpoints/latest)")
    if args.iterations > 0:
        if args.group_size < 2:
            problems.append(f"--group_size {args.group_size}: a GRPO group needs at least 2 episodes (a lone "
                            "episode's advantage is always 0, so RL would train nothing)")
        if args.temperature <= 0:
            problems.append(f"--temperature {args.temperature}: RL samples its episodes; at temperature 0 a "
                            "group's episodes are identical and carry no signal (use > 0, e.g. 1.0)")
        if args.tasks_per_iteration < 1:
            problems.append("--tasks_per_iteration must be >= 1")
    if args.tasks_per_iteration % world_size:
        problems.append(f"--num_processes {world_size} does not divide --tasks_per_iteration "
                        f"{args.tasks_per_iteration}: every process plays whole groups of the batch; use a multiple "
                        "of the process count")
    if args.rl_demo_coef < 0 or (args.rl_demo_coef > 0 and args.rl_demo_batch < 1):
        problems.append(f"--rl_demo_coef {args.rl_demo_coef} / --rl_demo_batch {args.rl_demo_batch}: the weight "
                        "must be >= 0 and, when > 0, at least one demonstration mixed into each update")
    if args.min_signal_groups < 0:
        problems.append(f"--min_signal_groups {args.min_signal_groups}: use 0 (step every iteration) or a count")
    if args.select_tasks and args.iterations > 0 and (args.select_every < 1 or args.select_size < 1):
        problems.append(f"--select_tasks {args.select_tasks!r} chooses among RL iterations: it needs "
                        f"--select_every >= 1 (got {args.select_every}) and --select_size >= 1 (got "
                        f"{args.select_size})")
    if args.init_adapter and args.resume:
        problems.append("--init_adapter starts a new run; --resume continues one: give only one")
    if problems:
        raise ValueError("; ".join(problems))


def make_task_pool(args: Args, first_seed: int = 0, size: int | None = None, tasks: str = "") -> TaskSet:
    """A fixed pool of training tasks: a generated split (``tasks``, default ``--tasks``) sampled once at seeds
    ``first_seed .. first_seed + size - 1`` (``size`` default ``--task_pool_size``; tasks recur, so the queue can
    help); a fixed split or folder is used as is."""
    size = args.task_pool_size if size is None else size
    task_set = resolve_tasks(tasks or args.tasks)
    if task_set.is_generated:
        if size <= 0:
            return task_set
        return task_set.subset(f"{task_set.name}-pool@{first_seed}",
                               [task_set.pick(s) for s in range(first_seed, first_seed + size)])
    return task_set


def make_rl_pool(args: Args, warmup_pool: TaskSet) -> TaskSet:
    """The tasks RL plays: ``--rl_pool_size`` generated tasks right after the warm-up pool's seeds (none of them in
    it; only level ``--rl_level`` ones, and only kinds no warm-up task asks with ``--rl_kinds new``), or the
    warm-up pool itself. With ``--rl_tasks`` (another generated split) the tasks come from that split from seed 0
    on, in its own world.

    Raises:
        ValueError: the pool holds fewer tasks than one iteration asks for.
    """
    pool = warmup_pool
    for flag, value in (("--rl_level", args.rl_level >= 0), ("--rl_kinds", args.rl_kinds != "all")):
        if value and args.rl_pool_size <= 0:
            raise ValueError(f"{flag} filters the separate RL pool: give --rl_pool_size too")
    if args.rl_tasks and args.rl_pool_size <= 0:
        raise ValueError(f"--rl_tasks {args.rl_tasks!r} names the separate RL pool's split: give --rl_pool_size too")
    if args.rl_pool_size > 0:
        source = args.rl_tasks or args.tasks
        task_set = resolve_tasks(source)
        if not task_set.is_generated:
            raise ValueError(f"--rl_pool_size needs a generated split; {source!r} is fixed")
        other_split = bool(args.rl_tasks) and args.rl_tasks != args.tasks
        first = 0 if other_split else max(args.task_pool_size, 0)
        if args.rl_level >= 0 or args.rl_kinds != "all":
            known = {task_kind(t) for t in warmup_pool.tasks}
            new_kind = (lambda t: task_kind(t) not in known) if args.rl_kinds == "new" else None
            name = f"{task_set.name}-pool@{first}" + (f"-level{args.rl_level}" if args.rl_level >= 0 else "") + \
                ("-new-kinds" if new_kind else "")
            pool = task_set.subset(name, generated_tasks(task_set, first, args.rl_pool_size, args.rl_level, new_kind))
        else:
            pool = make_task_pool(args, first, args.rl_pool_size, source)
    if args.iterations > 0 and len(pool.tasks) < args.tasks_per_iteration:
        raise ValueError(f"the RL pool holds {len(pool.tasks)} tasks, fewer than --tasks_per_iteration "
                         f"{args.tasks_per_iteration}: raise --rl_pool_size/--task_pool_size or lower the batch")
    return pool


def generated_tasks(task_set: TaskSet, first_seed: int, count: int, level: int = -1,
                    keep: Callable[[Task], bool] | None = None) -> list[Task]:
    """The first ``count`` tasks of ``level`` (-1: any), and that ``keep`` accepts when given, a generated split
    makes from ``first_seed`` on.

    Raises:
        ValueError: the split makes fewer such tasks within ``100 * count`` seeds.
    """
    tasks: list[Task] = []
    for seed in range(first_seed, first_seed + 100 * count):
        if len(tasks) == count:
            break
        task = task_set.pick(seed)
        if (level < 0 or task.level == level) and (keep is None or keep(task)):
            tasks.append(task)
    if len(tasks) < count:
        raise ValueError(f"{task_set.name} made only {len(tasks)} tasks of level {level}"
                         f"{' that the filter keeps' if keep else ''} in {100 * count} seeds")
    return tasks
