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
collective that gathers every process's prompts, builds the sampling parameters from the main process's
settings only, and hands process ``r`` the slice ``[r*n, (r+1)*n)`` of the results, ``n`` its own prompt count
(``trl/generation/vllm_generation.py``). So every process must send the same number of prompts with the same
settings, while our processes play different numbers of live episodes per turn, with different token budgets,
and finish at different turns. :class:`VLLMPolicy` therefore agrees on a :class:`CallPlan` before each call
(every process's live-prompt count and budget, gathered): all pad their prompts to the largest count with a
one-token filler prompt, all ask for the largest budget, and each cuts its own rows back to its own budget
(and drops the filler rows). :meth:`VLLMPolicy.drain` keeps a finished process joining (filler rows only) until
every process is done. Tested with TRL's own server-mode code in 2 gloo processes (``tests/test_trl_vllm_lockstep.py``).

The rollout builds its policy once (:class:`PolicyCache`): a ``Policy`` checks the chat template and probes the
model when built, which is a collective forward under DeepSpeed ZeRO-3.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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


class PolicyCache:
    """The rollout's :class:`Policy`, built on first use and kept while the trainer's model stays the same object."""

    def __init__(self) -> None:
        self.policy: Policy | None = None
        self.builds = 0

    def get(self, model: Any, build: Callable[[], Policy]) -> Policy:
        """The cached policy over ``model``, or a new one from ``build()`` (the first time, or for another model)."""
        if self.policy is None or self.policy.model is not model:
            self.policy = build()
            self.builds += 1
        return self.policy


@contextmanager
def trainer_policy(trainer: Any, conversation: Conversation, cache: PolicyCache | None = None) -> Iterator[Policy]:
    """The policy one rollout call samples from (see the module docstring), with ``version`` = the global step.

    With ``cache`` the policy is built once and reused by later calls (the same model object).
    """
    from trl.models import unwrap_model_for_generation

    check_sampling(trainer)
    cache = cache or PolicyCache()
    config = policy_config(trainer, conversation)
    tokenizer = getattr(trainer.processing_class, "tokenizer", trainer.processing_class)  # a processor's tokenizer
    if trainer.use_vllm:
        policy = cache.get(trainer.model, lambda: VLLMPolicy(trainer.model, tokenizer, config,
                                                             trainer.vllm_generation, trainer.accelerator))
        policy.version = int(trainer.state.global_step)
        try:
            yield policy
        finally:
            policy.drain()  # type: ignore[attr-defined]
        return
    with unwrap_model_for_generation(trainer.model_wrapped, trainer.accelerator,
                                     gather_deepspeed3_params=trainer.args.ds3_gather_for_generation) as model:
        policy = cache.get(model, lambda: Policy(model, tokenizer, config))
        policy.version = int(trainer.state.global_step)
        yield policy


@dataclass(frozen=True)
class CallPlan:
    """What every process sends to one collective vLLM call (identical on all of them).

    Args:
        rows: prompts per process: the most live prompts any process has (the others pad with filler prompts).
        max_tokens: the call's token budget: the largest budget any process with live prompts asked for (each
            process then cuts its own rows back to its own budget).
    """

    rows: int
    max_tokens: int


def plan_call(requests: Sequence[tuple[int, int]]) -> CallPlan:
    """The :class:`CallPlan` for every process's ``(live prompts, token budget)``; ``rows == 0``: nobody plays."""
    live = [(rows, budget) for rows, budget in requests if rows > 0]
    if not live:
        return CallPlan(0, 0)
    return CallPlan(max(rows for rows, _ in live), max(budget for _, budget in live))


class VLLMPolicy(Policy):
    """A :class:`Policy` whose :meth:`sample` runs on TRL's vLLM engine (``trainer.vllm_generation``).

    Everything else (prompt and observation ids, scoring with ``sequence_logprobs``) stays on the trainer's model.
    With several processes and a collective engine (server mode, or colocate with tensor parallelism), every call
    follows a :class:`CallPlan` agreed by all processes (see the module docstring).

    Args:
        model: the trainer's model (for tokenisation helpers, EOS ids and re-scoring demonstrations).
        tokenizer: its tokenizer.
        config: temperature and top-p are informational here: vLLM samples with TRL's own generation settings.
        engine: ``trainer.vllm_generation`` (``generate(prompts, images, num_generations)``).
        accelerator: ``trainer.accelerator`` (process count, for the lockstep).

    Attributes:
        plans: the plan of every engine call so far (for inspection and tests).
    """

    def __init__(self, model: Any, tokenizer: Any, config: PolicyConfig, engine: Any, accelerator: Any) -> None:
        super().__init__(model, tokenizer, config)
        self.engine = engine
        self.accelerator = accelerator
        collective = getattr(engine, "mode", "colocate") == "server" or getattr(engine, "tensor_parallel_size", 1) > 1
        self._lockstep = int(getattr(accelerator, "num_processes", 1)) > 1 and collective
        self.plans: list[CallPlan] = []

    @torch.no_grad()
    def sample(self, prompts: Sequence[Sequence[int]], *, max_new_tokens: int | None = None,
               temperature: float | None = None, top_p: float | None = None,
               generator: torch.Generator | None = None, prefix_text: str = "") -> list[Generation]:
        """One vLLM call for all ``prompts`` (token ids), each cut to ``max_new_tokens`` and after its first
        complete code block."""
        budget = self.config.max_new_tokens if max_new_tokens is None else max_new_tokens
        rows = [list(p) for p in prompts]
        plan = self._plan(len(rows), budget)
        if plan.rows == 0:
            return []
        completion_ids, logprobs = self._generate(rows, plan)
        return [self._cut(ids, lps, budget, prefix_text) for ids, lps in zip(completion_ids, logprobs, strict=True)]

    def drain(self) -> None:
        """Keep joining the other processes' generate calls (filler prompts only) until every process is done."""
        if not self._lockstep:
            return
        while (plan := self._plan(0, 0)).rows:
            self._generate([], plan)

    def _plan(self, rows: int, budget: int) -> CallPlan:
        """Agree on the call with the other processes (a collective when in lockstep)."""
        if not self._lockstep:
            return CallPlan(rows, budget)
        from accelerate.utils import gather_object

        return plan_call(gather_object([(rows, int(budget))]))

    def _generate(self, prompts: list[list[int]], plan: CallPlan) -> tuple[list[list[int]], list[list[float]]]:
        """Run ``plan`` with ``prompts`` padded by filler rows; return this process's own rows only."""
        # One token is the cheapest prompt vLLM accepts; its completion is thrown away.
        padded = prompts + [[self.pad_token_id]] * (plan.rows - len(prompts))
        saved = self.engine.generation_kwargs
        # Per-call overrides: TRL merges generation_kwargs last into vLLM's sampling parameters (both modes), and in
        # server mode only the main process's reach the server: the plan makes them the same everywhere.
        self.engine.generation_kwargs = {**(saved or {}), "max_tokens": int(plan.max_tokens),
                                         "stop": list(SERVER_STOP)}
        try:
            _, completion_ids, logprobs, _ = self.engine.generate(prompts=padded, images=None, num_generations=1)
        finally:
            self.engine.generation_kwargs = saved
        self.plans.append(plan)
        if len(completion_ids) != len(padded):
            raise RuntimeError(f"the vLLM engine returned {len(completion_ids)} completions for {len(padded)} prompts")
        flat = [[math.nan if lp is None or lp[0] is None else float(lp[0]) for lp in seq] for seq in (logprobs or [])]
        if not flat:
            flat = [[math.nan] * len(ids) for ids in completion_ids]
        return [list(ids) for ids in completion_ids[: len(prompts)]], flat[: len(prompts)]

    def _cut(self, ids: list[int], logprobs: list[float], budget: int, prefix_text: str) -> Generation:
        """This row's :class:`Generation`: at most ``budget`` tokens, ended at EOS or the first complete code block."""
        matcher = StopMatcher(self.config.stop_strings, 1, self.config.stop_at_code_end)
        if prefix_text:
            matcher.prime(0, prefix_text)
        # Shorter than the budget: vLLM stopped at a SERVER_STOP string (or EOS, found below).
        reason: FinishReason = "length" if len(ids) >= budget else "stop"
        ids, logprobs = ids[:budget], logprobs[:budget]  # a longer call budget served another process
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
