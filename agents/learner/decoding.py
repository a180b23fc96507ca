"""The batched KV-cache decoding loop behind :meth:`agents.learner.policy.Policy.sample`, and the weights it runs on.

Where a plain decoding loop loses time, and what this one does instead (measured on 2 CPU cores with
SmolLM2-135M, 32 rows x 64 tokens; ``benchmarks/bench_sampler.py`` compares it with ``generate``):

* **The unmerged adapter.** PEFT's LoRA layers add two small matmuls and a Python-level dispatch to every
  targeted linear layer, on every token. :func:`merged_adapter` runs sampling on merged weights instead:
  each targeted base weight is swapped for ``W + scale * B @ A`` (a new tensor; the original is kept and
  put back afterwards, so nothing drifts across iterations), with PEFT's adapter switched off. Costs one
  copy of the targeted weights while sampling; adapters PEFT cannot express as a weight delta (DoRA,
  LoRA bias) stay unmerged. Nothing is merged when the matmuls run in bf16 (or fp16): with bf16 weights,
  or with fp32 weights under bf16 autocast (``--bf16``), which casts the merged ``W + delta`` to bf16 in
  every matmul. Either way a delta under ~0.4% of a weight rounds away, so the merged sampler would be
  another policy than the (unmerged) one the trainer scores; sampling then runs PEFT's own adapter path,
  as training does. Measured on the tiny test model under ``--bf16`` (fp32 weights, LoRA B ~ N(0, 0.005)):
  sampler-trainer log-prob gap mean 3.3e-4 / max 1.8e-3 merged, 1.1e-4 / 4.8e-4 unmerged.

One policy. The sampler's logits come from the same decoder and output head as the trainer's scoring
(:func:`agents.learner.scoring.inspect_model`), and that head computes fp32 logits whatever the weights'
dtype, so the log-probs the sampler records and the ones the trainer recomputes differ only by the rounding
of the two forward passes (KV cache vs. full sequence): measured ~1e-3 in bf16 on the tiny test model, 1e-6 in fp32
(``tests/test_bf16_policy.py``; :func:`agents.learner.scoring.logprob_gap` measures it).
* **Casting the weights.** Under bf16 autocast a frozen weight is cast on every matmul (autocast caches only
  the casts of weights that require grad); :func:`autocast_weights` casts them once per call instead.
* **Picking the token.** ``log_softmax`` + ``multinomial`` over the vocabulary costs as much as a large
  part of a small model's step: :func:`agents.learner.sampling.sample_next` samples by inverse CDF.
* **Cache copies.** Dropping a finished row from a ``DynamicCache`` copies every layer's keys and values;
  rows are dropped only once a quarter of the batch has finished (finished rows still ride along until
  then, their tokens ignored).
* **Prefill.** Identical prompts (a GRPO group) are prefilled once and their cache rows copied; then the
  prefix every distinct prompt shares (the task prompt's instructions and tool list, the same for every task
  of a world) is prefilled once and copied, and each prompt's own rest runs after it, left-padded behind
  the shared columns (the attention mask hides the padding; positions continue from the header).
* **Earlier turns.** Inside :meth:`agents.learner.policy.Policy.reusing_turns` (a rollout), each row's keys
  and values are kept when it stops and a later prompt that extends them starts from them
  (:mod:`agents.learner.turn_cache`): a turn prefills only the observation and its own opening.

Stop checks (:class:`agents.learner.sampling.StopMatcher`) measured at well under 1% of the time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from agents.learner.records import FinishReason
from agents.learner.sampling import StopMatcher, TokenPieces, sample_next
from agents.learner.scoring import ModelParts, make_cache, returned_cache
from agents.learner.turn_cache import TurnCache, cached_batch, stored_row

#: Compact the batch (drop finished rows from the cache) once this share of its rows has finished.
COMPACT_FRACTION = 0.25
#: Shortest common prompt prefix that :func:`decode` prefills once for every row.
MIN_SHARED_HEADER = 16


@contextmanager
def merged_adapter(model: Any, enabled: bool = True) -> Iterator[bool]:
    """Run the block on merged LoRA weights (exactly restored afterwards); yields whether it merged.

    Nothing happens (yields False) without a PEFT LoRA adapter, when ``enabled`` is False, when some
    adapter has no plain weight delta (DoRA, LoRA bias), when the base weights are not fp32, or inside a
    low-precision autocast on the weights' device (``Policy.sample`` enters its bf16 autocast first).
    """
    layers = _mergeable_lora_layers(model) if enabled else None
    if layers and any(layer.get_base_layer().weight.dtype != torch.float32 for layer in layers):
        layers = None  # low-precision weights: the merged delta would round away (see the module docstring)
    if layers and _low_precision_autocast(layers[0].get_base_layer().weight.device):
        layers = None  # fp32 weights cast to bf16 in every matmul: the same rounding
    if not layers:
        yield False
        return
    originals: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
    try:
        with torch.no_grad(), model.disable_adapter():
            for layer in layers:
                weight = layer.get_base_layer().weight
                delta = sum(layer.get_delta_weight(name) for name in layer.active_adapters if name in layer.lora_A)
                originals.append((weight, weight.data))
                weight.data = weight.data + delta.to(weight.dtype)  # a new tensor: the original stays intact
            yield True
    finally:
        for weight, original in originals:
            weight.data = original


@contextmanager
def autocast_weights(model: Any, device: torch.device) -> Iterator[int]:
    """Inside a low-precision autocast, hold the frozen linear weights in the autocast's dtype for the block
    (restored afterwards); yields how many it cast (0 outside such an autocast).

    Autocast keeps the casts of weights that require grad for the length of its block, but casts a frozen
    weight (every base weight under LoRA) again on every matmul: in a decoding step of a small batch that
    cast of all the weights costs about as much as the step's arithmetic. The cast done once is the same
    cast, so the numbers do not change. The input embedding (often tied to the output head, which scores in
    fp32) and trainable weights are left as they are.
    """
    if not _low_precision_autocast(device):
        yield 0
        return
    dtype = torch.get_autocast_dtype(device.type if device.type in ("cpu", "cuda", "xpu") else "cpu")
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    skip = {id(embedding.weight)} if embedding is not None else set()
    swapped: list[tuple[torch.nn.Parameter, torch.Tensor]] = []
    try:
        with torch.no_grad():
            for module in model.modules():
                weight = getattr(module, "weight", None)
                if (isinstance(module, torch.nn.Linear) and weight is not None and not weight.requires_grad
                        and weight.dtype == torch.float32 and id(weight) not in skip):
                    swapped.append((weight, weight.data))
                    weight.data = weight.data.to(dtype)
        yield len(swapped)
    finally:
        for weight, original in swapped:
            weight.data = original


def _low_precision_autocast(device: torch.device) -> bool:
    """Whether an autocast to a dtype narrower than fp32 is active on ``device``'s type."""
    kind = device.type if device.type in ("cpu", "cuda", "xpu") else None
    return kind is not None and torch.is_autocast_enabled(kind) and torch.get_autocast_dtype(kind) != torch.float32


def _mergeable_lora_layers(model: Any) -> list[Any] | None:
    """PEFT LoRA linear layers with plain deltas, or None if there are none or some cannot be merged."""
    if not hasattr(model, "disable_adapter"):
        return None
    try:
        from peft.tuners.lora.layer import Linear as LoraLinear
    except ImportError:  # pragma: no cover - peft is a training dependency
        return None
    layers = [m for m in model.modules() if isinstance(m, LoraLinear)]
    for layer in layers:
        active = [name for name in layer.active_adapters if name in layer.lora_A]
        if layer.merged or any(name in getattr(layer, "lora_variant", {}) or layer.lora_bias.get(name, False)
                               for name in active):
            return None
    return layers or None


@dataclass
class Decoded:
    """Raw output of :func:`decode`, one list entry per prompt."""

    token_ids: list[list[int]]
    logprobs: list[list[float]]
    finish_reasons: list[FinishReason]


def _left_padded(prompts: Sequence[Sequence[int]], pad_token_id: int, device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)  # [U, L]
    attention = torch.zeros((len(prompts), width), dtype=torch.long)  # [U, L]
    for i, prompt in enumerate(prompts):
        input_ids[i, width - len(prompt):] = torch.tensor(list(prompt), dtype=torch.long)
        attention[i, width - len(prompt):] = 1
    return input_ids.to(device), attention.to(device)


def _logits_function(model: Any, parts: ModelParts | None) -> Callable[..., tuple[Any, torch.Tensor]]:
    """``forward(**inputs) -> (output, last-position logits [b, V])`` through the trainer's head when there is one."""
    if parts is not None and parts.decoder is not None and parts.head is not None:
        decoder, head = parts.decoder, parts.head

        def through_head(**inputs: Any) -> tuple[Any, torch.Tensor]:
            out = decoder(**inputs)
            return out, head(out.last_hidden_state[:, -1, :])  # [b, H] -> [b, V], fp32

        return through_head

    def through_model(**inputs: Any) -> tuple[Any, torch.Tensor]:
        out = model(logits_to_keep=1, **inputs)
        return out, out.logits[:, -1, :]  # [b, V]

    return through_model


def shared_header(prompts: Sequence[Sequence[int]], minimum: int = MIN_SHARED_HEADER) -> int:
    """Length of the token prefix all ``prompts`` share, leaving each at least one token of its own; 0 when
    there is one prompt or the prefix is shorter than ``minimum`` (not worth a forward pass of its own)."""
    if len(prompts) < 2:
        return 0
    first, length = prompts[0], min(len(p) for p in prompts) - 1
    for prompt in prompts[1:]:
        length = next((i for i in range(length) if prompt[i] != first[i]), length)
    return length if length >= minimum else 0


@torch.no_grad()
def decode(model: Any, prompts: Sequence[Sequence[int]], *, budget: int, temperature: float, top_p: float,
           generator: torch.Generator | None, matcher: StopMatcher, pieces: TokenPieces,
           eos_token_ids: frozenset[int], pad_token_id: int, cache_argument: str, share: bool,
           device: torch.device, parts: ModelParts | None = None, turns: TurnCache | None = None) -> Decoded:
    """Continue every prompt until EOS, a stop (``matcher``) or ``budget`` tokens; see the module docstring.

    ``share`` (the model fills a ``DynamicCache`` in place): prefill identical prompts once and drop finished
    rows from the cache; without it every row is prefilled and decoded to the end with the model's own cache.
    ``parts`` (the policy's :class:`~agents.learner.scoring.ModelParts`): take logits from its decoder and
    head, the trainer's own (fp32 logits); without them, or without a chunkable head, from the model.
    ``turns`` (with ``share``): take the keys and values of prompts' earlier turns from it and put every row's
    back when it stops (:mod:`agents.learner.turn_cache`); then the shared header is not used.
    """
    step_logits = _logits_function(model, parts)
    rows = len(prompts)
    if share:  # row -> distinct prompt
        distinct: dict[tuple[int, ...], int] = {}
        source_row = [distinct.setdefault(tuple(p), len(distinct)) for p in prompts]
        unique: Sequence[Sequence[int]] = list(distinct)
    else:
        source_row, unique = list(range(rows)), prompts
    cache = make_cache(model) if share else None
    found = turns.take(unique) if share and turns is not None else [None] * len(unique)
    done = [len(row.tokens) if row is not None else 0 for row in found]  # tokens of each prompt already cached
    if any(done):  # earlier turns' keys and values, right-aligned; each prompt's new tokens run after them
        _, before = cached_batch(cache, found)  # [U, C]
    else:
        header = shared_header(unique) if share else 0
        done = [header] * len(unique)
        before = torch.ones((len(unique), header), dtype=torch.long)  # [U, P]
        if header:  # the header runs once; its cache rows are copied to every prompt, then the rest runs
            step_logits(input_ids=torch.tensor([list(unique[0][:header])], dtype=torch.long, device=device),
                        use_cache=True, **{cache_argument: cache})  # fills the cache: [1, P]
            cache.batch_select_indices(torch.zeros(len(unique), dtype=torch.long, device=device))  # [U, P]
    input_ids, attention = _left_padded([p[n:] for p, n in zip(unique, done, strict=True)], pad_token_id,
                                        device)  # [U, R] each
    offsets = torch.tensor(done, dtype=torch.long, device=device)[:, None]  # [U, 1]
    positions = offsets + (attention.cumsum(-1) - 1).clamp(min=0)  # [U, R]
    attention = torch.cat([before.to(device), attention], dim=1)  # [U, C + R]
    cache_kw = {cache_argument: cache} if share else {}
    out, logits = step_logits(input_ids=input_ids, attention_mask=attention, position_ids=positions, use_cache=True,
                              **cache_kw)  # logits: [U, V]
    if not share:
        cache = returned_cache(out, cache_argument)
    next_position = positions[:, -1] + 1  # [U]
    if len(unique) < rows:
        expand = torch.tensor(source_row, dtype=torch.long, device=device)  # [B]
        cache.batch_select_indices(expand)
        logits, attention, next_position = logits[expand], attention[expand], next_position[expand]  # [B, ...]
    active = list(range(rows))  # original row of each batch row
    live = [True] * rows  # per batch row: still generating
    new_ids: list[list[int]] = [[] for _ in range(rows)]
    new_logprobs: list[list[float]] = [[] for _ in range(rows)]
    reasons: list[FinishReason] = ["length"] * rows
    for step in range(budget):
        tokens, logprobs = sample_next(logits, temperature, top_p, generator)  # [b], [b]
        token_list, logprob_list = tokens.tolist(), logprobs.tolist()  # the one device sync of a step
        for j, row in enumerate(active):
            if not live[j]:
                continue
            token = token_list[j]
            new_ids[row].append(token)
            new_logprobs[row].append(logprob_list[j])
            if token in eos_token_ids:
                reasons[row], live[j] = "eos", False
            elif matcher.feed(row, pieces[token]):
                reasons[row], live[j] = "stop", False
        finished = live.count(False)
        if finished == len(active) or step == budget - 1:
            break
        if share and finished >= max(1, int(len(active) * COMPACT_FRACTION)):  # drop finished rows everywhere
            keep = [j for j, alive in enumerate(live) if alive]
            if turns is not None:
                _store(turns, cache, attention, [j for j, alive in enumerate(live) if not alive], active, prompts,
                       new_ids)
            index = torch.tensor(keep, dtype=torch.long, device=device)  # [b']
            cache.batch_select_indices(index)
            attention, next_position, tokens = attention[index], next_position[index], tokens[index]  # [b', ...]
            active, live = [active[j] for j in keep], [True] * len(keep)
        attention = torch.cat([attention, attention.new_ones((len(active), 1))], dim=1)  # [b, L+t]
        out, logits = step_logits(input_ids=tokens[:, None], attention_mask=attention,
                                  position_ids=next_position[:, None], use_cache=True,
                                  **{cache_argument: cache})  # logits: [b, V]
        if not share:
            cache = returned_cache(out, cache_argument)
        next_position = next_position + 1  # [b]
    if share and turns is not None:
        _store(turns, cache, attention, range(len(active)), active, prompts, new_ids)
    return Decoded(new_ids, new_logprobs, reasons)


def _store(turns: TurnCache, cache: Any, attention: torch.Tensor, batch_rows: Iterable[int], active: Sequence[int],
           prompts: Sequence[Sequence[int]], new_ids: Sequence[Sequence[int]]) -> None:
    """Put batch rows' keys and values in ``turns``: the prompt and every generated token but the last (the
    tokens certainly fed to the model; a finished row rides along with later tokens, which are cut off)."""
    for j in batch_rows:
        row = active[j]
        tokens = [*prompts[row], *new_ids[row][:-1]]
        turns.put(stored_row(cache, j, attention[j].nonzero().squeeze(-1), tokens))
