"""Scoring given token ids under a causal LM: what the model offers, and log-probs computed in chunks.

Memory. A micro-batch of ``B x T`` tokens under a vocabulary of ``V`` entries has ``B*T*V`` logits: 1.2 GB
in fp32 for 4 x 512 tokens at Qwen2.5's 152k, before the log-softmax and its backward copy them. So the
trainer never materialises them: the decoder returns hidden states ``[B, T, H]`` and
:func:`token_logprobs` runs the output head on ``chunk_tokens`` rows at a time, turning each chunk's
logits into fp32 log-probs (and entropy) at once; under autograd each chunk is checkpointed, so backward
recomputes one chunk's logits at a time instead of keeping all of them. Peak memory is one chunk's logits
(``chunk_tokens * V`` floats, a few copies), whatever ``B`` and ``T`` are.

What the model offers (:func:`inspect_model`, run once when the policy is built, on a 4-token probe):

* **A decoder and an output head** whose composition reproduces the model's own logits (the head includes
  the known post-processing: Gemma-2's final soft-capping, Cohere's ``logit_scale``, Granite's
  ``logits_scaling``). A model where it does not (an exotic head) falls back to its full logits, turned
  into log-probs chunk by chunk (the fp32 copy is still never whole), with a warning.
* **A shareable KV cache**: prompt prefilling once per group and cache rows copied per sample need a
  ``transformers.DynamicCache`` that the model fills in place and that can select batch rows. Models with
  another cache (state-space or hybrid models, old remote code) cannot share prefixes:
  :class:`CacheNotSupportedError` says so before any work starts, and ``prefix_sharing=False`` (the
  trainer's ``--no_prefix_sharing``) runs them without sharing.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint
from transformers import DynamicCache


class CacheNotSupportedError(ValueError):
    """The model's KV cache is not a ``DynamicCache`` that prefix sharing can copy rows of."""


@dataclass(frozen=True)
class ModelParts:
    """What :func:`inspect_model` found.

    Args:
        decoder: module returning ``last_hidden_state`` (None: use the model's logits).
        head: ``hidden [N, H] -> logits [N, V]`` including post-processing (None with ``decoder``).
        cache_argument: the forward keyword of the KV cache (transformers 5.24 renamed ``past_key_values``
            to ``cache``).
        dynamic_cache: the model fills a ``DynamicCache`` in place (prefix sharing works).
        cache_type: the cache class the model returned, for error messages.
    """

    decoder: Any
    head: Callable[[torch.Tensor], torch.Tensor] | None
    cache_argument: str
    dynamic_cache: bool
    cache_type: str


def _base_model(model: Any) -> Any:
    """The transformers model under a PEFT wrapper (the model itself without one)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def cache_argument(model: Any) -> str:
    """The keyword the model's forward takes its KV cache by: ``cache`` (transformers >= 5.24) or ``past_key_values``.

    The one place we look at a signature: it follows a rename in transformers, not our own dispatch.
    """
    try:
        parameters = inspect.signature(_base_model(model).forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in parameters else "past_key_values"


def returned_cache(output: Any, keyword: str) -> Any:
    """The KV cache a forward returned, read under the same name it was passed by (see :func:`cache_argument`)."""
    return getattr(output, keyword, None)


def make_cache(model: Any) -> DynamicCache:
    """An empty ``DynamicCache`` for ``model`` (layer types from its config)."""
    return DynamicCache(config=getattr(_base_model(model), "config", None))


def _output_head(base: Any) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``hidden -> logits`` from the output embeddings plus the known post-processing, or None."""
    if not hasattr(base, "get_output_embeddings"):
        return None
    linear = base.get_output_embeddings()
    if linear is None:
        return None
    config = getattr(base, "config", None)
    softcap = getattr(config, "final_logit_softcapping", None)
    scale = getattr(base, "logit_scale", None) or getattr(config, "logit_scale", None)
    divide = getattr(config, "logits_scaling", None)

    frozen_copy: dict[str, Any] = {}

    def head(hidden: torch.Tensor) -> torch.Tensor:
        # Always fp32 logits, even under bf16 autocast or with bf16 weights: bf16 logits are spaced 0.06-0.125
        # apart at magnitudes 10-30, so two forward passes whose hidden states differ by rounding (the sampler's
        # KV cache, the trainer's full sequence) would disagree by that much on a log-prob.
        kind = hidden.device.type
        autocasting = kind in ("cpu", "cuda", "xpu") and torch.is_autocast_enabled(kind)
        with torch.autocast(kind, enabled=False) if autocasting else nullcontext():
            weight, bias = _fp32_parameter(linear.weight, frozen_copy), linear.bias
            bias = None if bias is None else bias.float()
            logits = torch.nn.functional.linear(hidden.float(), weight, bias)  # [N, V]
        if scale is not None and not isinstance(scale, torch.nn.Module):
            logits = logits * scale
        if divide is not None:
            logits = logits / divide
        if softcap is not None:
            logits = torch.tanh(logits / softcap) * softcap
        return logits

    return head


def _fp32_parameter(weight: torch.Tensor, cache: dict[str, Any]) -> torch.Tensor:
    """``weight`` in fp32: itself when fp32; a differentiable copy when it is being trained; else a copy kept in
    ``cache`` until the weight changes (a frozen bf16 head under LoRA: one extra ``V x H`` fp32 tensor, 0.1 GB
    for SmolLM2-135M, 2.2 GB for Qwen2.5-7B)."""
    if weight.dtype == torch.float32:
        return weight
    if weight.requires_grad and torch.is_grad_enabled():
        return weight.float()
    key = (weight.data_ptr(), weight._version, weight.device)
    if cache.get("key") != key:
        cache["key"], cache["value"] = key, weight.detach().float()
    return cache["value"]


@torch.no_grad()
def inspect_model(model: Any, probe_ids: list[int]) -> ModelParts:
    """Probe ``model`` once with ``probe_ids`` (a few token ids): cache keyword, cache type, chunkable head."""
    base = _base_model(model)
    device = next(model.parameters()).device
    ids = torch.tensor([probe_ids], dtype=torch.long, device=device)  # [1, n]
    keyword = cache_argument(model)
    was_training = model.training
    model.eval()
    try:
        cache = make_cache(model)
        try:
            out = model(input_ids=ids, use_cache=True, **{keyword: cache})
        except (TypeError, ValueError, AttributeError) as exc:  # the model refuses a DynamicCache
            out, returned = model(input_ids=ids), f"none accepted ({type(exc).__name__}: {exc})"
        else:
            returned = type(returned_cache(out, keyword)).__name__
        dynamic = returned == type(cache).__name__ and cache.get_seq_length() == ids.shape[1]
        decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
        head = _output_head(base) if decoder is not None and decoder is not base else None
        if head is not None:
            try:
                hidden = decoder(input_ids=ids).last_hidden_state  # [1, n, H]
                mine = head(hidden).float()  # [1, n, V]
                theirs = out.logits.float()  # [1, n, V]
                # The model's own logits may be bf16 (ours are fp32): allow their rounding.
                relative = max(1e-3, 2 * torch.finfo(out.logits.dtype).eps)
                tolerance = relative * max(1.0, float(theirs.abs().max()))
                if mine.shape != theirs.shape or not torch.allclose(mine, theirs, atol=tolerance):
                    raise ValueError("decoder + head logits differ from the model's")
            except Exception as exc:  # noqa: BLE001 - any mismatch means: use the model's own logits
                warnings.warn(f"{type(base).__name__}: scoring from the model's full logits (no chunked head: {exc})",
                              stacklevel=2)
                decoder = head = None
        else:
            decoder = None
    finally:
        model.train(was_training)
    return ModelParts(decoder, head, keyword, dynamic, returned)


def check_prefix_sharing(parts: ModelParts, model: Any) -> None:
    """Raise :class:`CacheNotSupportedError` when the model's cache cannot be shared (see the module docstring)."""
    if not parts.dynamic_cache:
        raise CacheNotSupportedError(
            f"{type(_base_model(model)).__name__} does not fill a transformers DynamicCache in place (its forward "
            f"returned {parts.cache_type}); prompt prefix sharing needs one. Run with prefix sharing off "
            "(PolicyConfig.prefix_sharing=False, the trainer's --no_prefix_sharing): slower, same results."
        )


def _score_chunk(features: torch.Tensor, targets: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor] | None,
                 temperature: float, with_entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs ``[c]`` (and entropy ``[c]``, no gradient) of ``targets [c]`` from hidden states/logits ``[c, *]``."""
    logits = (head(features) if head is not None else features).float()  # [c, V]
    if temperature > 0:
        logits = logits / temperature  # [c, V]
    normaliser = logits.logsumexp(dim=-1)  # [c]
    logprobs = logits.gather(-1, targets[:, None]).squeeze(-1) - normaliser  # [c]
    entropy = None
    if with_entropy:
        with torch.no_grad():
            entropy = normaliser - (torch.softmax(logits, dim=-1) * logits).sum(-1)  # [c]
    return logprobs, entropy


def token_logprobs(features: torch.Tensor, targets: torch.Tensor, head: Callable[[torch.Tensor], torch.Tensor] | None,
                   temperature: float, chunk_tokens: int, with_entropy: bool = False,
                   score_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-prob of each target under ``log softmax(head(features) / temperature)``, ``chunk_tokens`` rows at a time.

    Args:
        features: ``[B, N, H]`` hidden states (with ``head``) or ``[B, N, V]`` logits (``head`` None), position
            ``n`` predicting ``targets[:, n]``.
        targets: ``[B, N]`` token ids.
        head: hidden -> logits, or None.
        temperature: divides the logits (``<= 0``: not at all).
        chunk_tokens: rows of logits alive at once.
        with_entropy: also return the tempered distribution's entropy (no gradient).
        score_mask: ``[B, N]``; when given, only positions where it is non-zero go through the head (the
            others get log-prob and entropy 0). A multi-turn episode's observations are most of its tokens
            but none of its loss: this skips their full-vocabulary logits. The positions are found on the mask's
            own device (the host, for a batch's ``host_loss_mask``) and moved to the features' device.

    Returns:
        ``(logprobs [B, N], entropy [B, N] or None)``.
    """
    rows, width = targets.shape
    flat = features.reshape(rows * width, features.shape[-1])  # [B*N, H]
    flat_targets = targets.reshape(rows * width)  # [B*N]
    kept = None
    if score_mask is not None:
        kept = score_mask.reshape(rows * width).nonzero().squeeze(1).to(flat.device)  # [K]
        flat, flat_targets = flat.index_select(0, kept), flat_targets.index_select(0, kept)  # [K, H], [K]
    count = flat.shape[0]
    step = max(1, int(chunk_tokens))
    pieces: list[torch.Tensor] = []
    entropies: list[torch.Tensor] = []
    for start in range(0, count, step):
        args = (flat[start:start + step], flat_targets[start:start + step], head, temperature, with_entropy)
        if torch.is_grad_enabled() and flat.requires_grad:  # keep no chunk's logits for backward: recompute them
            logprobs, entropy = checkpoint(_score_chunk, *args, use_reentrant=False, preserve_rng_state=False)
        else:
            logprobs, entropy = _score_chunk(*args)
        pieces.append(logprobs)  # [c]
        if entropy is not None:
            entropies.append(entropy)  # [c]
    logprobs = torch.cat(pieces) if pieces else flat.new_zeros((count,), dtype=torch.float32)  # [K]
    entropy = torch.cat(entropies) if with_entropy and entropies else None  # [K]
    if with_entropy and entropy is None:
        entropy = torch.zeros_like(logprobs)  # [K]
    if kept is not None:
        logprobs = logprobs.new_zeros(rows * width).index_copy(0, kept, logprobs)  # [B*N], 0 where not scored
        if entropy is not None:
            entropy = entropy.new_zeros(rows * width).index_copy(0, kept, entropy)  # [B*N]
    return logprobs.view(rows, width), None if entropy is None else entropy.view(rows, width)


def logprob_gap(sampler: torch.Tensor, trainer: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """How far the sampler's recorded log-probs are from the trainer's for the same tokens: ``mean`` and ``max``
    of ``|trainer - sampler|`` over positions where ``mask`` is non-zero (0 and 0 when there are none).

    Both are ``[B, T]`` (or any equal shapes); NaN sampler entries (a demonstration: no sampler) are left out.
    The trainer logs the same quantity every iteration (``rollout/logprob_gap/mean`` and ``/max``), computed on
    the device inside the update's first pass (:func:`agents.learner.update.micro_batch_loss`, no extra
    forward and no extra host sync); this host-side form is for tests and tools. A gap far above the numerics
    of the two forward passes (~1e-3 in bf16, ~1e-6 in fp32 on the tiny test model) means the model that
    samples is not the model that trains, and the loss's old log-probs should be recomputed with the training
    forward (the truncated importance weight ``min(pi_train / pi_sampler, c)`` then corrects for the sampler).
    """
    keep = (mask != 0) & ~torch.isnan(sampler)
    if not bool(keep.any()):
        return {"mean": 0.0, "max": 0.0}
    gap = (trainer.detach().float() - sampler.float()).abs()[keep]  # [K]
    return {"mean": float(gap.mean()), "max": float(gap.max())}
