"""Where TRL's rollout function gets its tokens: ``trainer.model`` itself, or TRL's vLLM engine.

Both are a :class:`~agents.learner.policy.Policy` around the trainer's (already LoRA-wrapped) model, so the
one episode engine and :class:`~agents.learner.rollout.PolicyPlayer` play them unchanged: the same prompt,
observation ids, stop rule and log-probs as our learner.

* ``use_vllm=False``: :func:`trainer_policy` yields a plain ``Policy`` over the model unwrapped by TRL's
  ``unwrap_model_for_generation`` (DeepSpeed ZeRO-3 parameters gathered for the call, as TRL's own generation
  does). Sampling is our batched KV-cached sampler at the trainer's temperature and top-p.
* ``use_vllm=True``: :class:`VLLMPolicy` sends every turn's token ids to ``trainer.vllm_generation`` (colocate
  or server mode; TRL has already synced the weights before calling the rollout function) with the per-turn
  token budget and the grammar's plain server stops (:data:`~toolr1_env.parsing.SERVER_STOP`), then cuts each
  completion client-side after its first complete code block with the same :class:`StopMatcher` as our sampler.

Multi-process vLLM: TRL's server mode (and colocate with tensor parallelism) makes each ``generate`` call a
collective, but processes play different numbers of turns. :class:`VLLMPolicy` keeps them in lockstep: before
each call every process says whether it still has live episodes, and :meth:`VLLMPolicy.drain` keeps a finished
process joining (with no prompts) until all are done.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from agents.learner.policy import Policy, PolicyConfig
from agents.learner.records import FinishReason, Generation
from agents.learner.rollout import Conversation
from agents.learner.sampling import StopMatcher
from toolr1_env.parsing import SERVER_STOP


def check_sampling(trainer: Any) -> None:
    """Raise ``ValueError`` for TRL sampling options our sampler does not implement (on the ``trainer.model`` route)."""
    unsupported = {"top_k": (trainer.top_k or 0) > 0, "min_p": bool(trainer.min_p),
                   "repetition_penalty": trainer.repetition_penalty != 1.0}
    bad = [name for name, on in unsupported.items() if on]
    if bad and not trainer.use_vllm:
        raise ValueError(f"the toolr1 rollout samples with temperature and top_p only; unset {', '.join(bad)} "
                         "(or generate with use_vllm=True, which honours them)")


def policy_config(trainer: Any, conversation: Conversation) -> PolicyConfig:
    """The policy settings of a rollout: no adapter of ours (TRL wrapped the model), TRL's temperature and top-p."""
    return PolicyConfig(lora_r=0, temperature=float(trainer.temperature), top_p=float(trainer.top_p or 1.0),
                        max_new_tokens=conversation.max_new_tokens)


@contextmanager
def trainer_policy(trainer: Any, conversation: Conversation) -> Iterator[Policy]:
    """The policy one rollout call samples from (see the module docstring), with ``version`` = the global step."""
    from trl.models import unwrap_model_for_generation

    check_sampling(trainer)
    config = policy_config(trainer, conversation)
    tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)  # a processor's tokenizer
    if trainer.use_vllm:
        policy = VLLMPolicy(trainer.model, tokenizer, config, trainer.vllm_generation, trainer.accelerator)
        policy.version = int(trainer.state.global_step)
        try:
            yield policy
        finally:
            policy.drain()
        return
    with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                     gather_deepspeed3_params=trainer.args.ds3_gather_for_generation) as model:
        policy = Policy(model, tokenizer, config)
        policy.version = int(trainer.state.global_step)
        yield policy


class VLLMPolicy(Policy):
    """A :class:`Policy` whose :meth:`sample` runs on TRL's vLLM engine (``trainer.vllm_generation``).

    Everything else (prompt and observation ids, scoring with ``sequence_logprobs``) stays on the trainer's model.

    Args:
        model: the trainer's model (for tokenisation helpers, EOS ids and re-scoring demonstrations).
        tokenizer: its tokenizer.
        config: temperature and top-p are informational here: vLLM samples with TRL's own generation settings.
        engine: ``trainer.vllm_generation`` (``generate(prompts, images, num_generations)``).
        accelerator: ``trainer.accelerator`` (process count, for the lockstep).
    """

    def __init__(self, model: Any, tokenizer: Any, config: PolicyConfig, engine: Any, accelerator: Any) -> None:
        super().__init__(model, tokenizer, config)
        self.engine = engine
        self.accelerator = accelerator
        collective = getattr(engine, "mode", "colocate") == "server" or getattr(engine, "tensor_parallel_size", 1) > 1
        self._lockstep = int(getattr(accelerator, "num_processes", 1)) > 1 and collective

    @torch.no_grad()
    def sample(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int | None = None,
               temperature: float | None = None, top_p: float | None = None,
               generator: torch.Generator | None = None, prefix_text: str = "") -> list[Generation]:
        """One vLLM call for all ``prompts`` (token ids), cut after the first complete code block."""
        budget = self.config.max_new_tokens if max_new_tokens is None else max_new_tokens
        self._still_playing(True)
        completion_ids, logprobs = self._generate([list(p) for p in prompts], budget)
        return [self._cut(ids, lps, budget, prefix_text) for ids, lps in zip(completion_ids, logprobs, strict=True)]

    def drain(self) -> None:
        """Keep joining the other processes' generate calls (with no prompts) until every process is done."""
        while self._still_playing(False):
            self._generate([], 1)

    def _still_playing(self, playing: bool) -> bool:
        if not self._lockstep:
            return playing
        from accelerate.utils import gather_object

        return any(gather_object([playing]))

    def _generate(self, prompts: list[list[int]], budget: int) -> tuple[list[list[int]], list[list[float]]]:
        saved = self.engine.generation_kwargs
        # Per-call overrides: TRL merges generation_kwargs last into vLLM's sampling parameters (both modes).
        self.engine.generation_kwargs = {**(saved or {}), "max_tokens": int(budget), "stop": list(SERVER_STOP)}
        try:
            _, completion_ids, logprobs, _ = self.engine.generate(prompts=prompts, images=None, num_generations=1)
        finally:
            self.engine.generation_kwargs = saved
        flat = [[math.nan if lp is None or lp[0] is None else float(lp[0]) for lp in seq] for seq in (logprobs or [])]
        return [list(ids) for ids in completion_ids], flat

    def _cut(self, ids: list[int], logprobs: list[float], budget: int, prefix_text: str) -> Generation:
        matcher = StopMatcher(self.config.stop_strings, 1, self.config.stop_at_code_end)
        if prefix_text:
            matcher.prime(0, prefix_text)
        reason: FinishReason = "length" if len(ids) >= budget else "stop"  # vLLM stopped at a SERVER_STOP string
        end = len(ids)
        for i, token in enumerate(ids):
            if token in self.eos_token_ids:
                reason, end = "eos", i + 1
                break
            if matcher.feed(0, self._pieces[token]):
                reason, end = "stop", i + 1
                break
        kept = ids[:end]
        return Generation(kept, logprobs[:end], reason, self.tokenizer.decode(kept, skip_special_tokens=True))
