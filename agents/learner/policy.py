"""The policy: a causal LM with a LoRA adapter, chat-template prompting, batched sampling and log-probs.

Token in, token out. :meth:`Policy.encode_prompt` renders the opening chat once; after each generated turn
:meth:`Policy.encode_observation` gives the ids that close the assistant turn, hold the environment's
observation as a user turn and open the next assistant turn. Callers append these ids; nothing is ever
re-tokenised, so ids, ``loss_mask`` and log-probs stay aligned across turns.

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

import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import DynamicCache

from agents.learner.model_loading import check_chat_template
from agents.learner.records import FinishReason, Generation
from agents.learner.sampling import StopMatcher, TokenPieces, sample_next

_SENTINEL = "TOOLR1ASSISTANTSENTINEL"
_OBS_SENTINEL = "TOOLR1OBSERVATIONSENTINEL"


@dataclass
class PolicyConfig:
    """Adapter and sampling settings."""

    lora_r: int = 16
    """LoRA rank; 0 trains nothing (no adapter; the reference policy is then unavailable)."""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = 0.0
    """LoRA dropout; keep 0 so train-mode log-probs equal the sampling ones."""
    lora_target_modules: tuple[str, ...] = (
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
    )  # fmt: skip
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
    """Trade compute for memory in the training forward pass."""


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
        tokenizer: its tokenizer; must carry a chat template.
        config: adapter and sampling settings.

    Attributes:
        version: learner step count of the current weights; the trainer bumps it after each update and
            trajectories record it as ``policy_version``.
    """

    def __init__(self, model: Any, tokenizer: Any, config: PolicyConfig | None = None) -> None:
        check_chat_template(tokenizer)
        self.config = config or PolicyConfig()
        self.tokenizer = tokenizer
        self.version = 0
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
            self.model.gradient_checkpointing_enable()
            if hasattr(self.model, "enable_input_require_grads"):
                self.model.enable_input_require_grads()
        eos = {tokenizer.eos_token_id}
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
        self.eos_token_ids: frozenset[int] = frozenset(int(i) for i in eos if i is not None)
        self.pad_token_id: int = int(tokenizer.pad_token_id)
        self._pieces = TokenPieces(tokenizer)
        self._observation_template = self._split_observation_template()

    # ----------------------------------------------------------------------------------- prompting

    def tokenize(self, text: str) -> list[int]:
        """Token ids of plain ``text`` (no special tokens added)."""
        return self._tokenize(text)

    def _tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode_prompt(self, messages: Sequence[dict[str, str]]) -> list[int]:
        """Token ids of ``messages`` rendered by the chat template, ending with the assistant opening."""
        text = self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        return self._tokenize(text)

    def _split_observation_template(self) -> tuple[str, str]:
        """Render a dummy chat and return the text before and after an observation's content."""
        chat = [
            {"role": "system", "content": "S"},
            {"role": "user", "content": "U"},
            {"role": "assistant", "content": _SENTINEL},
            {"role": self.config.observation_role, "content": _OBS_SENTINEL},
        ]
        text = self.tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        if _SENTINEL not in text or _OBS_SENTINEL not in text:
            raise ValueError("the chat template drops message contents; cannot derive observation ids")
        after_action = text[text.index(_SENTINEL) + len(_SENTINEL) :]
        before, after = after_action.split(_OBS_SENTINEL, 1)
        return before, after

    def encode_observation(self, text: str, *, ended_with_eos: bool = False) -> list[int]:
        """Ids that close the current assistant turn, add ``text`` as an observation turn, reopen the assistant.

        With SmolLM2's template this is ``<|im_end|>\\n<|im_start|>user\\n{text}<|im_end|>\\n<|im_start|>
        assistant\\n``. Pass ``ended_with_eos=True`` when the generated turn already ended with the
        end-of-turn token, so it is not repeated.
        """
        before, after = self._observation_template
        ids = self._tokenize(before + text + after)
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

        Rows are left-padded into one batch and decoded with a KV cache; finished rows leave the batch.
        Identical prompts (a GRPO group) are prefilled once and their cache rows copied, which makes the
        prefill ``group_size`` times cheaper; rows still sample independently.
        Log-probs are under the sampling temperature (greedy ``temperature=0``: temperature 1), before top-p
        truncation; see :func:`agents.learner.sampling.sample_next`. Arguments left ``None`` come from the config.
        """
        if not prompts:
            return []
        budget = self.config.max_new_tokens if max_new_tokens is None else max_new_tokens
        temp = self.config.temperature if temperature is None else temperature
        nucleus = self.config.top_p if top_p is None else top_p
        was_training = self.model.training
        self.model.eval()
        try:
            return self._sample(prompts, budget, temp, nucleus, generator, prefix_text)
        finally:
            self.model.train(was_training)

    def _sample(
        self,
        prompts: Sequence[Sequence[int]],
        budget: int,
        temperature: float,
        top_p: float,
        generator: torch.Generator | None,
        prefix_text: str = "",
    ) -> list[Generation]:
        rows = len(prompts)
        # Prefill each distinct prompt once (a GRPO group shares its prompt), then copy its cache rows.
        distinct: dict[tuple[int, ...], int] = {}
        source_row = [distinct.setdefault(tuple(p), len(distinct)) for p in prompts]  # row -> distinct prompt
        unique = list(distinct)
        width = max(len(p) for p in unique)
        input_ids = torch.full((len(unique), width), self.pad_token_id, dtype=torch.long)  # [U, L]
        attention = torch.zeros((len(unique), width), dtype=torch.long)  # [U, L]
        for i, prompt in enumerate(unique):
            input_ids[i, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            attention[i, width - len(prompt) :] = 1
        input_ids, attention = input_ids.to(self.device), attention.to(self.device)
        positions = (attention.cumsum(-1) - 1).clamp(min=0)  # [U, L]
        cache = DynamicCache(config=getattr(self.model, "config", None))
        out = self.model(
            input_ids=input_ids, attention_mask=attention, position_ids=positions,
            past_key_values=cache, use_cache=True, logits_to_keep=1,
        )  # fmt: skip
        logits = out.logits[:, -1, :]  # [U, V]
        next_position = positions[:, -1] + 1  # [U]
        if len(unique) < rows:
            expand = torch.tensor(source_row, dtype=torch.long, device=attention.device)  # [B]
            cache.batch_select_indices(expand)
            logits, attention, next_position = logits[expand], attention[expand], next_position[expand]  # [B, ...]
        active = list(range(rows))  # original row index of each batch row
        new_ids: list[list[int]] = [[] for _ in range(rows)]
        new_logprobs: list[list[float]] = [[] for _ in range(rows)]
        reasons: list[FinishReason] = ["length"] * rows
        matcher = StopMatcher(self.config.stop_strings, rows, self.config.stop_at_code_end)
        if prefix_text:
            for row in range(rows):
                matcher.prime(row, prefix_text)
        for _step in range(budget):
            tokens, logprobs = sample_next(logits, temperature, top_p, generator)  # [b], [b]
            keep: list[int] = []
            token_list, logprob_list = tokens.tolist(), logprobs.tolist()  # one device sync per step
            for j, row in enumerate(active):
                token = token_list[j]
                new_ids[row].append(token)
                new_logprobs[row].append(logprob_list[j])
                if token in self.eos_token_ids:
                    reasons[row] = "eos"
                elif matcher.feed(row, self._pieces[token]):
                    reasons[row] = "stop"
                else:
                    keep.append(j)
            if not keep or _step == budget - 1:
                break
            if len(keep) < len(active):  # drop finished rows from every batched tensor and the cache
                index = torch.tensor(keep, dtype=torch.long, device=attention.device)
                cache.batch_select_indices(index)
                attention, next_position, tokens = attention[index], next_position[index], tokens[index]
                active = [active[j] for j in keep]
            attention = torch.cat([attention, attention.new_ones((len(active), 1))], dim=1)  # [b, L+t]
            out = self.model(
                input_ids=tokens[:, None], attention_mask=attention, position_ids=next_position[:, None],
                past_key_values=cache, use_cache=True,
            )  # fmt: skip
            logits = out.logits[:, -1, :]  # [b, V]
            next_position = next_position + 1  # [b]
        return [
            Generation(ids, lps, reason, self.tokenizer.decode(ids, skip_special_tokens=True))
            for ids, lps, reason in zip(new_ids, new_logprobs, reasons, strict=True)
        ]

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
    ) -> LogprobOutput:
        """Log-prob of every token given its prefix, in one forward pass (differentiable unless no_grad).

        Args:
            token_ids: ``[B, T]`` ids, padded on either side (moved to :attr:`device`; so is the output).
            attention_mask: ``[B, T]``, 1 on real tokens.
            first_position: score only columns ``>= first_position`` (logits are computed only from
                ``first_position - 1`` on, which saves memory when every row starts with a long prompt).
            use_adapter: False scores under the base model (the KL reference), adapter disabled.
            with_entropy: also return the per-token entropy of the tempered distribution (no gradient).
            shared_prefix: ``P > 1`` promises that the first ``P`` columns are identical, unpadded tokens in
                every row (a GRPO group's prompt) and ``first_position >= P``: the prefix then runs once
                and its KV cache is shared by all rows, so a group of ``G`` costs one prompt instead of
                ``G``. Gradients flow through the shared keys and values exactly as through ``G`` copies.
                Needs gradient checkpointing off (it disables the cache); otherwise ignored.
        """
        token_ids, attention_mask = token_ids.to(self.device), attention_mask.to(self.device)
        rows, width = token_ids.shape
        first_position = max(1, min(first_position, width))
        requested_first = first_position
        with self._adapter(use_adapter):
            if 1 < shared_prefix <= first_position and not self.config.gradient_checkpointing:
                logits = self._shared_prefix_logits(token_ids, attention_mask, shared_prefix)
                first_position = shared_prefix  # columns P..requested_first-1 are zeroed below
            else:
                positions = (attention_mask.cumsum(-1) - 1).clamp(min=0)  # [B, T]
                out = self.model(
                    input_ids=token_ids, attention_mask=attention_mask, position_ids=positions,
                    use_cache=False, logits_to_keep=width - first_position + 1,
                )  # fmt: skip
                logits = out.logits[:, :-1, :]  # [B, T-first, V]: position t-1 predicts token t
        logits = logits.float()
        if self.config.temperature > 0:
            logits = logits / self.config.temperature
        targets = token_ids[:, first_position:]  # [B, T-first]
        normaliser = logits.logsumexp(dim=-1)  # [B, T-first]
        scored = logits.gather(-1, targets[..., None]).squeeze(-1) - normaliser  # [B, T-first]
        valid = attention_mask[:, first_position:].to(scored.dtype)  # [B, T-first]
        if requested_first > first_position:
            valid[:, : requested_first - first_position] = 0
        head = scored.new_zeros((rows, first_position))  # [B, first]
        logprobs = torch.cat([head, scored * valid], dim=1)  # [B, T]
        entropy = None
        if with_entropy:
            with torch.no_grad():
                probs = torch.softmax(logits, dim=-1)  # [B, T-first, V]
                ent = normaliser - (probs * logits).sum(-1)  # [B, T-first]
                entropy = torch.cat([head.detach(), ent * valid], dim=1)  # [B, T]
        return LogprobOutput(logprobs=logprobs, entropy=entropy)

    def _shared_prefix_logits(self, token_ids: torch.Tensor, attention_mask: torch.Tensor, prefix: int) -> torch.Tensor:
        """Logits predicting columns ``prefix..T-1``: the prefix runs once (row 0), its cache is copied per row."""
        rows, width = token_ids.shape
        cache = DynamicCache(config=getattr(self.model, "config", None))
        head = self.model(
            input_ids=token_ids[:1, :prefix], attention_mask=attention_mask[:1, :prefix],
            past_key_values=cache, use_cache=True, logits_to_keep=1,
        ).logits  # [1, 1, V]: predicts column `prefix`
        if width == prefix:
            return head.expand(rows, -1, -1)  # [B, 1, V]
        cache.batch_select_indices(torch.zeros(rows, dtype=torch.long, device=token_ids.device))  # differentiable copy
        positions = torch.arange(prefix, width, device=token_ids.device).expand(rows, -1)  # [B, T-P] (right padding)
        tail = self.model(
            input_ids=token_ids[:, prefix:], attention_mask=attention_mask, position_ids=positions,
            past_key_values=cache, use_cache=True,
        ).logits  # [B, T-P, V]: column t predicts column t+1
        return torch.cat([head.expand(rows, -1, -1), tail[:, :-1]], dim=1)  # [B, T-P, V]

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

    def timed_sample(self, prompts: Sequence[Sequence[int]], **kwargs: Any) -> tuple[list[Generation], float]:
        """:meth:`sample` plus the generated tokens per second (for logs and benchmarks)."""
        start = time.perf_counter()
        generations = self.sample(prompts, **kwargs)
        seconds = time.perf_counter() - start
        return generations, sum(len(g.token_ids) for g in generations) / max(seconds, 1e-9)
