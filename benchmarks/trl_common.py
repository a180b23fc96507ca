"""What both sides of ``benchmarks/bench_trl.py`` share: the settings, the task schedule, the env reward.

``bench_trl.py`` (ours, the report) and ``trl_side.py`` (TRL's ``GRPOTrainer``) both import this module
and never each other.
"""

from __future__ import annotations

import random
import resource
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agents.cli import arg
from agents.engine import Ending, EpisodeRequest, play_episodes
from agents.learner.model_loading import load_model_and_tokenizer, make_tiny_model
from agents.learner.train import Args
from toolr1_env.tasks import TaskSet
from toolr1_env.vector import StepOutcome, ThreadVectorEnv

RESULT_MARK = "BENCH_TRL_RESULT "


@dataclass
class BenchArgs:
    """One GRPO training step, ours versus TRL's GRPOTrainer: the settings both sides share."""

    model: str = arg("smollm2-135m", "bundled model alias, or tiny-random for a smoke run")
    steps: int = arg(5, "measured optimiser steps per seed (one warm-up step more is run and excluded)")
    seeds: list[int] = arg([0, 1, 2], "seeds; each runs both sides once (the spread is over seeds)")
    seed: int = arg(0, "internal: the seed of a one-side child process")
    tasks: str = arg("warmup", "training split the task pool is drawn from")
    task_pool_size: int = arg(32, "fixed pool of training tasks")
    tasks_per_step: int = arg(4, "distinct tasks per step")
    group_size: int = arg(8, "episodes per task (the GRPO group)")
    micro_batch_size: int = arg(8, "trajectories per forward/backward")
    num_envs: int = arg(32, "sandboxed envs on each side")
    max_new_tokens: int = arg(64, "completion tokens per episode")
    temperature: float = arg(1.0, "sampling temperature")
    lr: float = arg(5e-4, "AdamW learning rate")
    lora_r: int = arg(16, "LoRA rank")
    lora_alpha: int = arg(32, "LoRA alpha")
    clip_low: float = arg(0.2, "lower ratio clip")
    clip_high: float = arg(0.28, "upper ratio clip")
    our_stop_rules: bool = arg(False, "let ours stop at the end of the code block (TRL stops at EOS only)")
    no_write: bool = arg(False, "print the table only; do not touch RESULTS.md")
    side: str = arg("both", "internal: run one side in this process and print its JSON result",
                    ("both", "ours", "trl"))

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


class _CompletionPlayer:
    """Plays completion ``i`` as the one action of episode ``i`` (through the one episode engine)."""

    def __init__(self, completions: Sequence[str]) -> None:
        self.completions = completions

    def begin(self, slot: int, index: int, request: EpisodeRequest, observation: str,
              info: Mapping[str, Any]) -> dict[str, Any]:
        return {"index": index, "reward": 0.0, "done": False}

    def failed(self, request: EpisodeRequest, error: Exception) -> dict[str, Any]:
        raise error

    def act(self, live: Mapping[int, dict[str, Any]]) -> dict[int, str]:
        return {slot: self.completions[episode["index"]] for slot, episode in live.items()}

    def observe(self, episode: dict[str, Any], action: str, outcome: StepOutcome) -> None:
        pass

    def finish(self, episode: dict[str, Any], ending: Ending) -> None:
        if ending.halt is not None or not (ending.terminated or ending.truncated):
            raise RuntimeError("an episode did not end after one action: the envs must have max_turns=1")
        episode["reward"] = ending.reward


def score_completions(envs: ThreadVectorEnv, task_ids: Sequence[str], completions: Sequence[str]) -> list[float]:
    """Play each completion as the single action of a fresh episode on its task; return the end rewards.

    Episodes run ``envs.num_envs`` at a time through :func:`agents.engine.play_episodes`. The envs must be
    single-turn (``max_turns=1``), so the one step ends the episode and pays its reward.
    """
    if len(task_ids) != len(completions):
        raise ValueError("one task id per completion")
    requests = [EpisodeRequest(task_id) for task_id in task_ids]
    return [e["reward"] for e in play_episodes(_CompletionPlayer(completions), envs, requests)]


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


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global RNGs (each side runs in its own process)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def sync() -> None:
    """Wait for queued CUDA work, so wall-clock timings are complete (a no-op on CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def rss_mib() -> float:
    """Current resident memory of this process in MiB."""
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def memory_summary(result: dict[str, Any]) -> dict[str, Any]:
    """Add this process's peak RSS (and peak CUDA memory) to ``result``; return it."""
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if torch.cuda.is_available():
        result["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    return result


