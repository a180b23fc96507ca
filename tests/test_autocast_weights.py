"""Sampling under bf16 autocast with the frozen weights cast once (agents/learner/decoding.py
``autocast_weights``) samples exactly what autocast's per-matmul casts sample, and puts the fp32 weights back."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

import agents.learner.policy as policy_module
from agents.learner.decoding import autocast_weights
from agents.learner.policy import Policy


@pytest.fixture()
def bf16_policy(make_lora_policy) -> Policy:
    return make_lora_policy(max_new_tokens=12, bf16=True)


@contextmanager
def _no_cast(model, device):
    yield 0


def test_cast_once_samples_what_per_matmul_casts_sample(bf16_policy, monkeypatch):
    prompts = [bf16_policy.encode_prompt([{"role": "user", "content": q}])
               for q in ("What is 17 * 23?", "Name the capital of Oslavia.")]
    fast = bf16_policy.sample(prompts, temperature=1.0, generator=torch.Generator().manual_seed(2))
    monkeypatch.setattr(policy_module, "autocast_weights", _no_cast)
    slow = bf16_policy.sample(prompts, temperature=1.0, generator=torch.Generator().manual_seed(2))
    for a, b in zip(fast, slow, strict=True):
        assert a.token_ids == b.token_ids
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-6)


def test_only_frozen_linear_weights_are_cast_and_all_come_back(bf16_policy):
    model = bf16_policy.model
    before = {name: (p.dtype, p.data_ptr()) for name, p in model.named_parameters()}
    with torch.autocast("cpu", dtype=torch.bfloat16), autocast_weights(model, bf16_policy.device) as cast:
        dtypes = {name: p.dtype for name, p in model.named_parameters()}
    assert cast > 0
    assert all(dtypes[n] == torch.bfloat16 for n in dtypes if "base_layer" in n and n.endswith("weight"))
    assert all(dtypes[n] == torch.float32 for n in dtypes if "lora_" in n or "embed" in n or "norm" in n)
    assert {name: (p.dtype, p.data_ptr()) for name, p in model.named_parameters()} == before
    with autocast_weights(model, bf16_policy.device) as cast:  # no autocast: nothing to do
        assert cast == 0
