"""Helpers for the tests that run TRL's real ``GRPOTrainer`` on CPU with the tiny model (imported by test files)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func / environment_factory warn once otherwise


def trainer(model: Any, tokenizer: Any, dataset: Any, output_dir: str, *, steps: int = 2, batch: int = 4,
            group: int = 2, lr: float = 1e-3, rollout_func: Any = None, reward_funcs: Any = None,
            environment_factory: Any = None, **config: Any) -> Any:
    """A ``GRPOTrainer`` (CPU, LoRA r=4) for ``steps`` optimiser steps of ``batch`` completions in groups of
    ``group``; ``config`` adds ``GRPOConfig`` fields."""
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer

    config.setdefault("save_strategy", "no")
    args = GRPOConfig(output_dir=output_dir, max_steps=steps, per_device_train_batch_size=batch,
                      num_generations=group, gradient_accumulation_steps=1, learning_rate=lr,
                      report_to="none", use_cpu=True, logging_steps=1, disable_tqdm=True, seed=0, **config)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    return GRPOTrainer(model=model, reward_funcs=reward_funcs, args=args, train_dataset=dataset,
                       processing_class=tokenizer, peft_config=lora, rollout_func=rollout_func,
                       environment_factory=environment_factory)


def capture_batches(grpo_trainer: Any) -> list[dict[str, Any]]:
    """Record every generation batch TRL builds (its ``_generate_and_score_completions`` output, before shuffling)."""
    batches: list[dict[str, Any]] = []
    original = grpo_trainer._generate_and_score_completions

    def wrapper(inputs: list[dict[str, Any]]) -> dict[str, Any]:
        out = original(inputs)
        batches.append(out)
        return out

    grpo_trainer._generate_and_score_completions = wrapper
    return batches


def row(batch: dict[str, Any], i: int, key: str) -> list:
    """Row ``i`` of a right-padded completion tensor, cut to that completion's real length."""
    length = int(batch["completion_mask"][i].sum())
    return batch[key][i][:length].tolist()


def fresh_model(tokenizer: Any) -> Any:
    """A new tiny random model (TRL wraps a model in LoRA in place, so each trainer needs its own)."""
    return make_tiny_model(tokenizer=tokenizer, seed=0)[0]


def logged(grpo_trainer: Any, key: str) -> list[float]:
    """The values TRL logged under ``key``, one per logging step."""
    return [h[key] for h in grpo_trainer.state.log_history if key in h]


class FakeVLLMGeneration:
    """Stands in for ``trl.generation.vllm_generation.VLLMGeneration`` (vLLM does not install on CPU CI).

    Every prompt gets the same scripted completion (at most ``generation_kwargs["max_tokens"]`` tokens), with the
    log-probs the model itself gives those tokens, as vLLM would report them. Records each call.
    """

    mode = "colocate"
    tensor_parallel_size = 1

    def __init__(self, model: Any, tokenizer: Any, text: str) -> None:
        self.policy = Policy(model, tokenizer, PolicyConfig(lora_r=0))
        self.script = tokenizer(text, add_special_tokens=False)["input_ids"]
        self.generation_kwargs: dict[str, Any] = {}
        self.calls: list[dict[str, Any]] = []
        self.syncs = 0

    def sync_weights(self) -> None:
        """TRL calls this before each rollout of a new step."""
        self.syncs += 1

    @torch.no_grad()
    def generate(self, prompts: Sequence[Sequence[int]], images: Any, num_generations: int) -> tuple:
        """``(prompt_ids, completion_ids, logprobs [B, T, 1], None)``, like ``VLLMGeneration.generate``."""
        self.calls.append({"prompts": len(prompts), **self.generation_kwargs})
        ids = self.script[: int(self.generation_kwargs["max_tokens"])]
        logprobs = []
        for prompt in prompts:
            tokens = torch.tensor([[*prompt, *ids]])
            scores = self.policy.sequence_logprobs(tokens, torch.ones_like(tokens), first_position=len(prompt))
            logprobs.append([[float(x)] for x in scores.logprobs[0, len(prompt):]])
        return list(prompts), [list(ids) for _ in prompts], logprobs, None


def tool_calling_tokenizer(tokenizer: Any) -> Any:
    """A copy of ``tokenizer`` with TRL's bundled Qwen2.5 chat template (ChatML, JSON tool calls), which TRL knows
    how to parse; SmolLM2's own template cannot render tool calls."""
    import copy
    from importlib.resources import files

    tool_tokenizer = copy.deepcopy(tokenizer)
    tool_tokenizer.chat_template = (files("trl") / "chat_templates" / "qwen2_5.jinja").read_text()
    return tool_tokenizer


def scripted_model(tokenizer: Any, replies: Sequence[str]) -> Any:
    """The tiny model, forced during ``generate`` to write ``replies[k]`` as its ``k``-th assistant turn (then the
    end-of-turn token), through a logits processor; its forward pass (the one TRL trains) is the plain model's."""
    from transformers import LlamaForCausalLM, LogitsProcessor, LogitsProcessorList

    base = fresh_model(tokenizer)
    opening = tokenizer("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    end_of_turn = tokenizer.convert_tokens_to_ids("<|im_end|>")
    scripts = [tokenizer(r, add_special_tokens=False)["input_ids"] + [end_of_turn] for r in replies]

    class FollowScript(LogitsProcessor):
        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            forced = torch.full_like(scores, -1e4)  # [B, V]
            for b, ids in enumerate(input_ids.tolist()):
                starts = [i + len(opening) for i in range(len(ids)) if ids[i: i + len(opening)] == opening]
                script = scripts[min(len(starts), len(scripts)) - 1]
                forced[b, script[min(len(ids) - starts[-1], len(script) - 1)]] = 0.0
            return forced

    class ScriptedLlama(LlamaForCausalLM):
        def generate(self, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("logits_processor", LogitsProcessorList([FollowScript()]))
            return super().generate(*args, **kwargs)

    model = ScriptedLlama(base.config)
    model.load_state_dict(base.state_dict())
    return model.eval()
