"""GRPO on ToolR1-GAIA-v0 with TRL's ``GRPOTrainer``, our multi-turn code rollouts and the dynamic sample queue.

    python agents/train_trl.py --help                                   # every argument
    python agents/train_trl.py --model tiny-random --max_steps 2 ...    # a CPU smoke run
    accelerate launch --num_processes 8 agents/train_trl.py --model Qwen/Qwen2.5-7B-Instruct --use_vllm ...

``docs/integrations.md`` has the GPU recipes (vLLM colocate and server modes, DeepSpeed ZeRO-3). What runs:
``GRPOTrainer(rollout_func=agents.trl.make_rollout_func(...), reward_funcs=[toolr1_reward])`` over
``task_dataset(tasks)``; TRL owns the optimiser, the loss and the checkpoints (the rollout's queue is saved in
each one and restored by ``--resume``). Our own learner is ``agents/train_grpo.py``; the two play the same
episodes (same prompts, parsing, stop rule, token-in/token-out records).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.cli import arg, parse
from agents.learner.policy import LORA_TARGETS
from agents.learner.rollout import Conversation
from agents.learner.sample_queue import SampleQueueConfig

if TYPE_CHECKING:
    from toolr1_env.vector import ThreadVectorEnv


@dataclass
class Args:
    """GRPO with TRL's GRPOTrainer playing toolr1 code episodes (our rollout function and sample queue)."""

    model: str = arg("smollm2-135m", "bundled alias, local folder, HF id, or tiny-random (tests)")
    tasks: str = arg("warmup", "training tasks: split name, GAIA folder or task JSONL")
    dataset_size: int = arg(32, "tasks in the dataset (a generated split: seeds 0..N-1; 0: all of a fixed set)")
    output_dir: str = arg("runs/trl", "TRL output folder (checkpoints, with the rollout's queue in each)")
    max_steps: int = arg(12, "optimiser steps")
    num_generations: int = arg(8, "episodes per task (the GRPO group)")
    per_device_train_batch_size: int = arg(8, "completions per forward/backward on each device")
    gradient_accumulation_steps: int = arg(4, "micro-batches per optimiser step (one generation batch)")
    learning_rate: float = arg(5e-4, "learning rate")
    lora_r: int = arg(16, "LoRA rank (0: train the whole model)")
    lora_alpha: int = arg(32, "LoRA alpha")
    beta: float = arg(0.0, "KL coefficient to the reference model (TRL's beta)")
    loss_type: str = arg("dapo", "TRL loss_type (dapo: token-level, normalised over the generation batch)")
    temperature: float = arg(1.0, "sampling temperature")
    max_turns: int = arg(1, "code actions per episode")
    max_new_tokens: int = arg(64, "tokens per generated turn")
    max_episode_tokens: int = arg(1536, "token budget of a whole episode (prompt included)")
    max_observation_chars: int = arg(400, "observation text cap (head + tail)")
    step_timeout: float = arg(5.0, "seconds per code action")
    prompt_style: str = arg("compact", "task prompt style: compact or full", choices=("compact", "full"))
    system_prompt: str = arg("", "optional system message before the task prompt")
    response_prefix: str = arg("```py\n", "text forced at the start of every assistant turn (not trained)")
    num_envs: int = arg(32, "parallel environments per process, each with a sandbox (~130 MB)")
    env_servers: str = arg("", "play on these toolr1-serve servers, comma-separated (ws://a:8000,ws://b:8000): the "
                               "envs spread round-robin over them, sandboxes on their machines; '' = here")
    use_queue: bool = arg(True, "the dynamic sample queue")
    queue_demonstrations: bool = arg(True, "seed the queue with the tasks' verified reference solutions")
    queue_capacity_per_task: int = arg(4, "cached successes kept per task")
    queue_max_inject: int = arg(2, "cached members per group, at most")
    queue_max_age: int = arg(8, "retire cached samples older than N optimiser steps")
    queue_max_reuse: int = arg(3, "retire a cached sample after N injections")
    queue_inject_when: str = arg("no_success", "inject into groups that are: flat, or no_success",
                                 choices=("flat", "no_success"))
    use_vllm: bool = arg(False, "generate with vLLM (TRL syncs the weights each step)")
    vllm_mode: str = arg("colocate", "vLLM in the training processes, or a separate server",
                         choices=("colocate", "server"))
    vllm_server_base_url: str = arg("", "server mode: the vLLM server, e.g. http://10.0.0.2:8000")
    vllm_gpu_memory_utilization: float = arg(0.3, "colocate mode: GPU memory share of vLLM")
    vllm_tensor_parallel_size: int = arg(1, "colocate mode: tensor parallelism of vLLM")
    vllm_is_clip_max: float = arg(1.0, "cap of vLLM's token importance weight pi_train / pi_sampler (as our learner)")
    dtype: str = arg("float32", "model weight dtype (bfloat16 halves the weights' memory on GPUs); also the dtype "
                     "LocalAgent and agents/evaluate.py play this run's adapter in", choices=("float32", "bfloat16"))
    bf16: bool = arg(False, "bf16 autocast in TRL's forward passes (GPUs)")
    gradient_checkpointing: bool = arg(False, "trade compute for memory in the training forward")
    save_steps: int = arg(50, "checkpoint every N steps")
    logging_steps: int = arg(1, "log every N steps")
    report_to: str = arg("none", "TRL/transformers loggers: none, tensorboard, wandb, ...")
    resume: bool = arg(False, "resume from the latest checkpoint in output_dir (the sample queue included)")
    seed: int = arg(0, "random seed")


def grpo_config(args: Args) -> object:
    """TRL's ``GRPOConfig`` for these arguments."""
    import torch
    from trl import GRPOConfig

    vllm = {}
    if args.use_vllm:
        vllm = {"use_vllm": True, "vllm_mode": args.vllm_mode, "vllm_importance_sampling_mode": "token_truncate",
                "vllm_importance_sampling_clip_max": args.vllm_is_clip_max}
        if args.vllm_mode == "server" and args.vllm_server_base_url:
            vllm["vllm_server_base_url"] = args.vllm_server_base_url
        if args.vllm_mode == "colocate":
            vllm.update(vllm_gpu_memory_utilization=args.vllm_gpu_memory_utilization,
                        vllm_tensor_parallel_size=args.vllm_tensor_parallel_size,
                        vllm_max_model_length=args.max_episode_tokens)
    return GRPOConfig(
        output_dir=args.output_dir, seed=args.seed, max_steps=args.max_steps, learning_rate=args.learning_rate,
        per_device_train_batch_size=args.per_device_train_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps, num_generations=args.num_generations,
        temperature=args.temperature, top_p=1.0, top_k=0, beta=args.beta, loss_type=args.loss_type,
        lr_scheduler_type="constant", warmup_steps=0, bf16=args.bf16,
        gradient_checkpointing=args.gradient_checkpointing, use_cpu=not torch.cuda.is_available(),
        save_strategy="steps", save_steps=args.save_steps, logging_steps=args.logging_steps,
        report_to=args.report_to, remove_unused_columns=False, **vllm)


def load_model(args: Args) -> tuple[object, object]:
    """The model (in ``--dtype``) and its tokenizer."""
    import torch

    from agents.learner.model_loading import load_model_and_tokenizer, make_tiny_model

    dtype = getattr(torch, args.dtype)
    if args.model == "tiny-random":
        model, tokenizer = make_tiny_model(seed=args.seed)
        return model.to(dtype), tokenizer
    return load_model_and_tokenizer(args.model, dtype=dtype)


def remote_envs(args: Args, env_kwargs: dict[str, Any]) -> ThreadVectorEnv | None:
    """With ``--env_servers``: ``--num_envs`` remote envs spread round-robin over them, playing ``--tasks`` by the
    name the servers know it by; else None (the rollout builds its envs here)."""
    if not args.env_servers:
        return None
    from toolr1_env.env import resolve_tasks
    from toolr1_env.serving.remote_env import remote_vector_env, task_set_name

    task_set = resolve_tasks(args.tasks)
    return remote_vector_env(args.env_servers, args.num_envs, task_set_name(task_set) or task_set.name,
                             **env_kwargs)


def main(args: Args) -> dict[str, float]:
    """Train; return the last logged metrics (also written to ``<output_dir>/summary.json``)."""
    from peft import LoraConfig
    from trl import GRPOTrainer

    from agents.trl import make_rollout_func, toolr1_reward
    from toolr1_env.integrations.trl import task_dataset

    model, tokenizer = load_model(args)
    conversation = Conversation(system_prompt=args.system_prompt or None, response_prefix=args.response_prefix,
                                max_new_tokens=args.max_new_tokens, max_episode_tokens=args.max_episode_tokens)
    queue = SampleQueueConfig(per_task_capacity=args.queue_capacity_per_task, max_inject=args.queue_max_inject,
                              max_age=args.queue_max_age, max_reuse=args.queue_max_reuse,
                              inject_when=args.queue_inject_when) if args.use_queue else None
    env_kwargs = {"max_turns": args.max_turns, "step_timeout": args.step_timeout, "prompt_style": args.prompt_style,
                  "max_observation_chars": args.max_observation_chars}
    rollout = make_rollout_func(args.tasks, envs=remote_envs(args, env_kwargs), num_envs=args.num_envs,
                                env_kwargs=env_kwargs, conversation=conversation, queue=queue,
                                demonstrations=args.use_queue and args.queue_demonstrations, seed=args.seed)
    lora = LoraConfig(r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=0.0, target_modules=list(LORA_TARGETS),
                      task_type="CAUSAL_LM") if args.lora_r > 0 else None
    trainer = GRPOTrainer(model=model, reward_funcs=[toolr1_reward], args=grpo_config(args),
                          train_dataset=task_dataset(args.tasks, args.dataset_size or None),
                          processing_class=tokenizer, peft_config=lora, rollout_func=rollout)
    Path(args.output_dir).mkdir(parents=True, exist_ok=True)
    (Path(args.output_dir) / "toolr1_args.json").write_text(json.dumps(asdict(args), indent=2))
    try:
        trainer.train(resume_from_checkpoint=True if args.resume else None)
        trainer.save_model()
    finally:
        rollout.close()
    summary = {k: float(v) for k, v in (trainer.state.log_history[-1] if trainer.state.log_history else {}).items()
               if isinstance(v, (int, float))}
    if trainer.is_world_process_zero():
        (Path(args.output_dir) / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def cli(argv: list[str] | None = None) -> int:
    """The TRL training command (``python agents/train_trl.py``): exit status 0 when done."""
    main(parse(Args, argv, description=__doc__))
    return 0
