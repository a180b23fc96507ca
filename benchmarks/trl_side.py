"""The TRL side of ``benchmarks/bench_trl.py``: ``GRPOTrainer`` on our env, timed step by step.

Runs in its own process (``python -m benchmarks.bench_trl --side trl``); see ``bench_trl.py`` for the
choices made where the two libraries differ and ``trl_common.py`` for the settings both sides share.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from agents.learner.train import make_envs, make_task_pool
from benchmarks.trl_common import (
    LORA_TARGETS,
    BenchArgs,
    EnvReward,
    load_model,
    memory_summary,
    rss_mib,
    seed_everything,
    sync,
    task_schedule,
)


def run_trl(bench: BenchArgs) -> dict[str, Any]:
    """TRL's ``GRPOTrainer`` for ``steps + 1`` optimiser steps; per-step seconds, tokens and time split."""
    import trl
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    args = bench.train_args()
    seed_everything(bench.seed)
    per_step = bench.tasks_per_step * bench.group_size
    if per_step % bench.micro_batch_size:
        raise ValueError("tasks_per_step * group_size must be a multiple of micro_batch_size")
    pool = make_task_pool(args, 0)
    schedule = task_schedule(pool, bench.steps + 1, bench.tasks_per_step, bench.seed)
    model, tokenizer = load_model(bench.model, bench.seed)
    envs = make_envs(pool, args)
    try:
        prompts: dict[str, str] = {}
        for task_id in dict.fromkeys(t for step in schedule for t in step):  # the env's own reset prompt
            prompts[task_id] = envs.reset_some([0], options=[{"task_id": task_id}])[0][0]
        envs.abandon(0)
        envs.reset_some(range(envs.num_envs), options=[{"task_id": schedule[0][0]}] * envs.num_envs)  # start sandboxes
        rows = [{"prompt": [{"role": "user", "content": prompts[t]}], "task_id": t} for step in schedule for t in step]
        dataset = Dataset.from_list(rows)
        reward = EnvReward(envs)
        counters = {"generation_s": 0.0, "score_s": 0.0}
        timer = _StepTimer(counters, reward)

        class StepTimerCallback(TrainerCallback):
            def on_step_begin(self, *args: Any, **kwargs: Any) -> None:
                timer.begin()

            def on_step_end(self, *args: Any, **kwargs: Any) -> None:
                timer.end()

        with tempfile.TemporaryDirectory(prefix="bench_trl_") as output_dir:
            config = GRPOConfig(
                output_dir=output_dir, seed=bench.seed, max_steps=len(schedule), shuffle_dataset=False,
                per_device_train_batch_size=bench.micro_batch_size,
                gradient_accumulation_steps=per_step // bench.micro_batch_size,
                num_generations=bench.group_size, max_completion_length=bench.max_new_tokens,
                temperature=bench.temperature, top_p=1.0, top_k=0,
                learning_rate=bench.lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
                optim="adamw_torch", max_grad_norm=1.0,
                beta=0.0, num_iterations=1, epsilon=bench.clip_low, epsilon_high=bench.clip_high,
                loss_type="dapo", scale_rewards="group", mask_truncated_completions=False,
                bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=not torch.cuda.is_available(),
                report_to="none", logging_strategy="no", save_strategy="no", disable_tqdm=True,
                log_completions=False, remove_unused_columns=False, dataloader_num_workers=0,
            )
            peft_config = LoraConfig(r=bench.lora_r, lora_alpha=bench.lora_alpha, lora_dropout=0.0,
                                     target_modules=list(LORA_TARGETS), task_type="CAUSAL_LM")
            trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=config, train_dataset=dataset,
                                  processing_class=tokenizer, peft_config=peft_config,
                                  callbacks=[StepTimerCallback()])
            trainer._generate_single_turn = _timed(trainer._generate_single_turn, counters, "generation_s")
            trainer._generate_and_score_completions = _timed(trainer._generate_and_score_completions, counters,
                                                             "score_s")
            same_prompt = _same_prompt_ids(trainer, tokenizer, rows[0]["prompt"])
            rss_before = rss_mib()
            trainer.train()
    finally:
        envs.close()
    steps = timer.steps
    for step, rewards in zip(steps, _chunks(reward.rewards, per_step), strict=False):
        step["reward"] = float(np.mean(rewards)) if rewards else 0.0
    return memory_summary({"side": "trl", "steps": steps, "rss_before_steps_mib": rss_before,
                    "device": str(trainer.accelerator.device), "prompt_ids_match": same_prompt,
                    "trl_version": trl.__version__})


class _StepTimer:
    """Per optimiser step: wall seconds, completion tokens and the generation / env / update split."""

    def __init__(self, counters: dict[str, float], reward: EnvReward) -> None:
        self.counters, self.reward = counters, reward
        self.steps: list[dict[str, float]] = []
        self._start = 0.0
        self._snapshot: dict[str, float] = {}

    def _state(self) -> dict[str, float]:
        return {**self.counters, "env_s": self.reward.seconds, "tokens": float(self.reward.tokens)}

    def begin(self) -> None:
        sync()
        self._snapshot = self._state()
        self._start = time.perf_counter()

    def end(self) -> None:
        sync()
        seconds = time.perf_counter() - self._start
        delta = {k: v - self._snapshot[k] for k, v in self._state().items()}
        self.steps.append({"seconds": seconds, "tokens": delta["tokens"], "generation_s": delta["generation_s"],
                           "env_s": delta["env_s"], "update_s": seconds - delta["score_s"]})
        print(f"[trl] step {len(self.steps) - 1}: {seconds:.1f} s, {delta['tokens']:.0f} tokens", file=sys.stderr,
              flush=True)


def _timed(fn: Callable[..., Any], counters: dict[str, float], key: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            sync()
            counters[key] += time.perf_counter() - started
    return wrapper


def _same_prompt_ids(trainer: Any, tokenizer: Any, messages: list[dict[str, str]]) -> bool:
    """Does TRL tokenize the prompt to the same ids as our policy (chat template, then plain tokenisation)?"""
    theirs = trainer._tokenize_prompts([messages])[0][0]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ours = tokenizer(text, add_special_tokens=False)["input_ids"]
    return list(theirs) == list(ours)


def _chunks(items: list[float], size: int) -> list[list[float]]:
    return [items[i: i + size] for i in range(0, len(items), size)]


# ---------------------------------------------------------------------------------------------- the report
