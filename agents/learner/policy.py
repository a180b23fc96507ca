"""The policy: a causal LM with a LoRA adapter, chat-template prompting, batched sampling and log-probs.

Token in, token out. :meth:`Policy.encode_prompt` renders the opening chat once; after each generated turn
:meth:`Policy.encode_observation` gives the ids that close the assistant turn, hold the environment's
observation as a user turn and open the next assistant turn, derived from the model's own chat template
and checked by a round trip when the policy is built (:mod:`agents.learner.chat_format`). Callers append
these ids; nothing is ever re-tokenised, so ids, ``loss_mask`` and log-probs stay aligned across turns.

Devices. Every tensor the policy makes or returns lives on :attr:`Policy.device` (the model's); inputs
given on another device are moved there. Scoring never holds the full-vocabulary fp32 logits of a batch
(:mod:`agents.learner.scoring`); sampling runs on merged adapter weights in fp32, on PEFT's adapter path under
bf16 (:mod:`agents.learner.decoding`).

Which log-probs. Everything here scores tokens under ``log softmax(logits / temperature)`` with the
policy's configured sampling temperature (the standard choice: the tempered distribution is the policy we
sample from and train). :meth:`Policy.sample` returns these for each sampled token (before top-p
truncation), and :meth:`Policy.sequence_logprobs` recomputes them with one full forward pass. The two agree
to ~1e-4 (KV-cache vs. full-sequence numerics, left vs. right padding). For an exact on-policy ratio of 1,
recompute old log-probs with ``sequence_logprobs`` under ``torch.no_grad()`` before the update. Llama-style
models have no dropout, and LoRA dropout defaults to 0, so train and eval mode give the same numbers;
with ``lora_dropout > 0`` recompute old log-probs in eval mode.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import torch

from agents.learner.chat_format import ChatFormat
from agents.learner.decoding import autocast_weights, decode, merged_adapter
from agents.learner.model_loading import check_chat_template
from agents.learner.records import Generation
from agents.learner.sampling import StopMatcher, TokenPieces
from agents.learner.scoring import check_prefix_sharing, inspect_model, make_cache, token_logprobs
from agents.learner.turn_cache import TurnCache

#: The linear layers of a Llama-style block that receive a LoRA adapter (every trainer of this project uses them).
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class PolicyConfig:
    """Adapter and sampling settings."""

    lora_r: int = 16
    """LoRA rank; 0 trains nothing (no adapter; the reference policy is then unavailable)."""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = 0.0
    """LoRA dropout; keep 0 so train-mode log-probs equal the sampling ones."""
    lora_target_modules: tuple[str, ...] = LORA_TARGETS
    """Module names that receive an adapter."""
    temperature: float = 1.0
    """Sampling temperature; log-probs for the loss are computed at this temperature too."""
    top_p: float = 1.0
    """Nucleus sampling mass (1.0 = off; see agents.learner.sampling.sample_next for the log-prob caveat)."""
    max_new_tokens: int = 384
    """Token budget per generated turn."""
    stop_strings: tuple[str, ...] = ()
    """Extra plain strings that end a turn."""
    stop_at_code_end: bool = True
    """End a turn after its first complete code block (the grammar of ``toolr1_env.parsing``)."""
    observation_role: str = "user"
    """Chat role that carries environment observations."""
    gradient_checkpointing: bool = False
    """Trade compute for memory in the training forward pass (turns prompt prefix sharing off in scoring)."""
    bf16: bool = False
    """Run forward passes under bfloat16 autocast (weights keep their dtype; log-probs are fp32)."""
    prefix_sharing: bool = True
    """Prefill a group's shared prompt once (sampling and scoring); needs a model that fills a DynamicCache."""
    merge_for_sampling: bool = True
    """Sample on merged LoRA weights (exactly restored afterwards; one copy of the adapted weights meanwhile).
    Only with fp32 weights and no ``bf16`` autocast: in bf16 the merged delta would round away, so sampling
    then runs the unmerged adapter, as training does (:func:`agents.learner.decoding.merged_adapter`)."""
    logprob_chunk_tokens: int = 512
    """Tokens whose full-vocabulary logits are alive at once when scoring (memory vs. kernel size)."""


@dataclass
class LogprobOutput:
    """Per-token scores aligned with the input ids: column ``t`` scores token ``t`` given tokens ``< t``.

    Columns before ``first_position`` and padded positions hold 0.
    """

    logprobs: torch.Tensor  # [B, T]
    entropy: torch.Tensor | None = None  # [B, T], no gradient
    stats: dict[str, float] = field(default_factory=dict)


class Policy:
    """A causal LM plus (optionally) a LoRA adapter, with the prompting and scoring the learner needs.

    Args:
        model: a Hugging Face causal LM (e.g. from :func:`agents.learner.model_loading.load_model_and_tokenizer`).
        tokenizer: its tokenizer; must carry a chat template that passes the round trip of
            :meth:`agents.learner.chat_format.ChatFormat.check_round_trip`.
        config: adapter and sampling settings.

    Raises (at construction, before any work): :class:`~agents.learner.model_loading.MissingChatTemplateError`,
    :class:`~agents.learner.chat_format.ChatTemplateError` (a template that cannot be used token in, token
    out), :class:`~agents.learner.scoring.CacheNotSupportedError` (``prefix_sharing`` with a model whose cache
    cannot be shared).

    Attributes:
        version: learner step count of the current weights; the trainer bumps it after each update and
            trajectories record it as ``policy_version``.
    """

    def __init__(self, model: Any, tokenizer: Any, config: PolicyConfig | None = None) -> None:
        check_chat_template(tokenizer)
        self.config = config or PolicyConfig()
        self.tokenizer = tokenizer
        # Fast (Rust) tokenizers are not safe to call from several threads at once ("Already borrowed"): the
        # recording proxy encodes requests on server threads while its batcher decodes; every encode and
        # decode of the policy goes through this lock (tokenize, decode_text).
        self._tokenizer_lock = threading.RLock()
        self.version = 0
        self._turns: TurnCache | None = None  # set inside reusing_turns()
        self.chat = ChatFormat.from_tokenizer(tokenizer, self.config.observation_role)
        self._checked_system_prompts: set[str | None] = set()
        self.check_conversation(None)
        if self.config.lora_r > 0:
            from peft import LoraConfig, get_peft_model

            lora = LoraConfig(
                r=self.config.lora_r,
                lora_alpha=self.config.lora_alpha,
                lora_dropout=self.config.lora_dropout,
                target_modules=list(self.config.lora_target_modules),
                task_type="CAUSAL_LM",
            )
            with warnings.catch_warnings():  # peft 0.21 calls a transformers API deprecated in 5.x
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
                model = get_peft_model(model, lora)
        self.model = model
        if self.config.gradient_checkpointing:
            base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
            if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5.24's name
                base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            if hasattr(self.model, "enable_input_require_grads"):
                self.model.enable_input_require_grads()
        eos = {tokenizer.eos_token_id}
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        closing = self.tokenize(self.chat.observation_prefix)[:1]  # the template's end-of-turn token ends a turn
        if closing and closing[0] in set(getattr(tokenizer, "all_special_ids", ())):
            eos.add(closing[0])
        self.eos_token_ids: frozenset[int] = frozenset(int(i) for i in eos if i is not None)
        self.pad_token_id: int = int(tokenizer.pad_token_id)
        self._pieces = TokenPieces(tokenizer)
        self.parts = inspect_model(self.model, self.encode_prompt([{"role": "user", "content": "1 + 1"}])[-4:])
        if self.config.prefix_sharing:
            check_prefix_sharing(self.parts, self.model)

    # ----------------------------------------------------------------------------------- prompting

    def tokenize(self, text: str) -> list[int]:
        """Token ids of plain ``text`` (no special tokens added); safe to call from several threads."""
        with self._tokenizer_lock:
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def __getstate__(self) -> dict[str, Any]:
        """Copies and pickles leave the tokenizer lock out (a lock cannot be copied); each gets its own."""
        state = self.__dict__.copy()
        state.pop("_tokenizer_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._tokenizer_lock = threading.RLock()

    def decode_text(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` with special tokens skipped; safe to call from several threads."""
        with self._tokenizer_lock:
            return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def encode_prompt(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """Token ids of ``messages`` rendered by the chat template, ending with the assistant opening."""
        text = self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        return self.tokenize(text)

    def check_conversation(self, system_prompt: str | None) -> None:
        """Run the chat template's round trip for conversations opening with ``system_prompt`` (once per prompt).

        Raises :class:`~agents.learner.chat_format.ChatTemplateError` naming the template when appended
        turns would not tokenise as the whole conversation renders (e.g. a template that moves the system
        message into the last user turn, or rejects a system role).
        """
        with self._tokenizer_lock:  # the round trip also decodes with the tokenizer itself
            if system_prompt not in self._checked_system_prompts:
                self.chat.check_round_trip(self.tokenizer, self.tokenize, system_prompt)
                self._checked_system_prompts.add(system_prompt)

    def encode_observation(self, text: str, *, ended_with_eos: bool = False) -> list[int]:
        """Ids that close the current assistant turn, add ``text`` as an observation turn, reopen the assistant.

        With SmolLM2's template this is ``<|im_end|>\\n<|im_start|>user\\n{text}<|im_end|>\\n<|im_start|>
        assistant\\n``. Pass ``ended_with_eos=True`` when the generated turn already ended with the
        end-of-turn token, so it is not repeated.
        """
        ids = self.tokenize(self.chat.observation_text(text))
        if ended_with_eos and ids and ids[0] in self.eos_token_ids:
            ids = ids[1:]
        return ids

    # ------------------------------------------------------------------------------------ sampling

    @torch.no_grad()
    def sample(
        self,
        prompts: Sequence[Sequence[int]],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        prefix_text: str = "",
    ) -> list[Generation]:
        """Continue each prompt (token ids, any lengths) until a stop rule, EOS or the token budget.

        ``prefix_text`` is text the caller already placed at the end of every prompt as the start of the
        assistant turn (e.g. an opening code fence): stop rules see it as if it had been generated.

        Rows are left-padded into one batch and decoded with a KV cache (:func:`agents.learner.decoding.decode`):
        identical prompts (a GRPO group) are prefilled once, finished rows leave the batch, and the
        adapter is merged while sampling (fp32 only). Rows still sample independently.
        Log-probs are under the sampling temperature (greedy ``temperature=0``: temperature 1), before top-p
        truncation; see :func:`agents.learner.sampling.sample_next`. Arguments left ``None`` come from the config.
        """
        if not prompts:
            return []
        budget = self.config.max_new_tokens if max_new_tokens is None else max_new_tokens
        matcher = StopMatcher(self.config.stop_strings, len(prompts), self.config.stop_at_code_end)
        if prefix_text:
            for row in range(len(prompts)):
                matcher.prime(row, prefix_text)
        was_training = self.model.training
        self.model.eval()
        try:
            with self.autocast(), merged_adapter(self.model, self.config.merge_for_sampling), \
                    autocast_weights(self.model, self.device):
                out = decode(self.model, prompts, budget=budget,
                             temperature=self.config.temperature if temperature is None else temperature,
                             top_p=self.config.top_p if top_p is None else top_p, generator=generator,
                             matcher=matcher, pieces=self._pieces, eos_token_ids=self.eos_token_ids,
                             pad_token_id=self.pad_token_id, cache_argument=self.parts.cache_argument,
                             share=self.config.prefix_sharing, device=self.device, parts=self.parts,
                             turns=self._turns)
        finally:
            self.model.train(was_training)
        return [
            Generation(ids, lps, reason, self.decode_text(ids))
            for ids, lps, reason in zip(out.token_ids, out.logprobs, out.finish_reasons, strict=True)
        ]

    @contextmanager
    def reusing_turns(self) -> Iterator[TurnCache]:
        """Within this block, :meth:`sample` keeps each row's keys and values and a later prompt that extends
        them (an episode's next turn) prefills only its new tokens (:mod:`agents.learner.turn_cache`).

        Only for a stretch in which the weights do not change (a rollout or an evaluation): leave the block
        before any optimiser step. Nested blocks share the outer store.
        """
        if self._turns is not None:
            yield self._turns
            return
        self._turns = TurnCache()
        try:
            yield self._turns
        finally:
            self._turns = None

    def autocast(self) -> AbstractContextManager[Any]:
        """bfloat16 autocast on the model's device when ``config.bf16``, else nothing."""
        if not self.config.bf16:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    # ------------------------------------------------------------------------------------- scoring

    def sequence_logprobs(
        self,
        token_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        *,
        first_position: int = 1,
        use_adapter: bool = True,
        with_entropy: bool = False,
        shared_prefix: int = 0,
        score_mask: torch.Tensor | None = None,
    ) -> LogprobOutput:
        """Log-prob of every token given its prefix, in one forward pass (differentiable unless no_grad).

        Args:
            token_ids: ``[B, T]`` ids, padded on either side (moved to :attr:`device`; so is the output).
            attention_mask: ``[B, T]``, 1 on real tokens.
            first_position: score only columns ``>= first_position`` (hidden states and logits are used only
                from ``first_position - 1`` on, which saves memory when every row starts with a long prompt).
            use_adapter: False scores under the base model (the KL reference), adapter disabled.
            with_entropy: also return the per-token entropy of the tempered distribution (no gradient).
            shared_prefix: ``P > 1`` promises that the first ``P`` columns are identical, unpadded tokens in
                every row (a GRPO group's prompt) and ``first_position >= P``: the prefix then runs once
                and its KV cache is shared by all rows, so a group of ``G`` costs one prompt instead of
                ``G``. Gradients flow through the shared keys and values exactly as through ``G`` copies.
                Ignored with gradient checkpointing (it disables the cache) or ``prefix_sharing`` off.
            score_mask: ``[B, T]``, non-zero where a log-prob is wanted (the loss mask): only those positions
                go through the output head; every other position gets 0. Default: every position. Give it on
                the host (``TrainBatch.host_loss_mask``): the positions are found there, with no device sync.

        The full-vocabulary logits are turned into log-probs ``config.logprob_chunk_tokens`` positions at a
        time and never kept for backward (:func:`agents.learner.scoring.token_logprobs`).
        """
        token_ids, attention_mask = token_ids.to(self.device), attention_mask.to(self.device)
        rows, width = token_ids.shape
        first_position = max(1, min(first_position, width))
        requested_first = first_position
        share = (1 < shared_prefix <= first_position and self.config.prefix_sharing
                 and not self.config.gradient_checkpointing)
        with self._adapter(use_adapter), self.autocast():
            if share:
                features = self._shared_prefix_features(token_ids, attention_mask, shared_prefix)  # [B, T-P, *]
                first_position = shared_prefix  # columns P..requested_first-1 are zeroed below
            else:
                features = self._features(token_ids, attention_mask, first_position)  # [B, T-first, *]
            targets = token_ids[:, first_position:]  # [B, T-first]
            wanted = None if score_mask is None else score_mask[:, first_position:]  # [B, T-first], on its own device
            scored, entropy = token_logprobs(features, targets, self.parts.head, self.config.temperature,
                                             self.config.logprob_chunk_tokens, with_entropy, wanted)  # [B, T-first]
        valid = attention_mask[:, first_position:].to(scored.dtype)  # [B, T-first]
        if requested_first > first_position:
            valid[:, : requested_first - first_position] = 0
        head = scored.new_zeros((rows, first_position))  # [B, first]
        logprobs = torch.cat([head, scored * valid], dim=1)  # [B, T]
        if entropy is not None:
            entropy = torch.cat([head.detach(), entropy * valid], dim=1)  # [B, T]
        return LogprobOutput(logprobs=logprobs, entropy=entropy)

    def _features(self, token_ids: torch.Tensor, attention_mask: torch.Tensor, first: int) -> torch.Tensor:
        """Hidden states (or, without a chunkable head, logits) at columns ``first-1..T-2``: ``[B, T-first, *]``."""
        width = token_ids.shape[1]
        positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # [B, T]
        if self.parts.decoder is not None:
            hidden = self.parts.decoder(input_ids=token_ids, attention_mask=attention_mask, position_ids=positions,
                                        use_cache=False).last_hidden_state  # [B, T, H]
            return hidden[:, first - 1 : -1]  # [B, T-first, H]: position t-1 predicts token t
        out = self.model(input_ids=token_ids, attention_mask=attention_mask, position_ids=positions,
                         use_cache=False, logits_to_keep=width - first + 1)
        return out.logits[:, :-1, :]  # [B, T-first, V]

    def _shared_prefix_features(self, token_ids: torch.Tensor, attention_mask: torch.Tensor, prefix: int
                                ) -> torch.Tensor:
        """Features predicting columns ``prefix..T-1``: the prefix runs once (row 0), its cache is copied per row."""
        rows, width = token_ids.shape
        cache = make_cache(self.model)
        kw = {self.parts.cache_argument: cache, "use_cache": True}
        decoder = self.parts.decoder
        if decoder is not None:
            head = decoder(input_ids=token_ids[:1, :prefix], attention_mask=attention_mask[:1, :prefix],
                           **kw).last_hidden_state[:, -1:]  # [1, 1, H]: predicts column `prefix`
        else:
            head = self.model(input_ids=token_ids[:1, :prefix], attention_mask=attention_mask[:1, :prefix],
                              logits_to_keep=1, **kw).logits  # [1, 1, V]
        if width == prefix:
            return head.expand(rows, -1, -1)  # [B, 1, *]
        cache.batch_select_indices(torch.zeros(rows, dtype=torch.long, device=token_ids.device))  # differentiable copy
        positions = torch.arange(prefix, width, device=token_ids.device).expand(rows, -1)  # [B, T-P] (right padding)
        model = decoder if decoder is not None else self.model
        out = model(input_ids=token_ids[:, prefix:], attention_mask=attention_mask, position_ids=positions, **kw)
        tail = out.last_hidden_state if decoder is not None else out.logits  # [B, T-P, *]: column t predicts t+1
        return torch.cat([head.expand(rows, -1, -1), tail[:, :-1]], dim=1)  # [B, T-P, *]

    @contextmanager
    def _adapter(self, enabled: bool) -> Iterator[None]:
        if enabled:
            yield
            return
        if not hasattr(self.model, "disable_adapter"):
            raise ValueError("use_adapter=False needs a LoRA adapter (PolicyConfig.lora_r > 0)")
        with self.model.disable_adapter():
            yield

    # ---------------------------------------------------------------------------------- parameters

    @property
    def device(self) -> torch.device:
        """The device of the model's parameters (inputs are moved there; outputs live there)."""
        return next(self.model.parameters()).device

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters the optimiser should update (the adapter's, or all when there is no adapter)."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def save_adapter(self, path: str) -> None:
        """Write the adapter (or the whole model without one) with ``save_pretrained``."""
        self.model.save_pretrained(path)

    def load_adapter_weights(self, path: str) -> None:
        """Load adapter weights written by :meth:`save_adapter` into the current adapter."""
        from peft import set_peft_model_state_dict
        from peft.utils import load_peft_weights

        set_peft_model_state_dict(self.model, load_peft_weights(path))
