"""Mixing two adapters (agents.learner.checkpointing.mix_adapters): the weighted mean of their parameters, written
as an adapter that plays and starts runs, refused across LoRA shapes."""

from __future__ import annotations

import json

import pytest
import torch

from agents.learner.checkpointing import init_adapter_dir, keep_adapter, mix_adapters, resolve_adapter
from agents.learner.config import Args
from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig


def _policy(lora_r: int = 4) -> Policy:
    model, tokenizer = make_tiny_model(seed=0)
    return Policy(model, tokenizer, PolicyConfig(lora_r=lora_r, lora_alpha=8, max_new_tokens=6))


def _weights(policy: Policy) -> list[torch.Tensor]:
    return [p.detach().clone() for p in policy.trainable_parameters()]


def test_a_mix_is_the_weighted_mean_of_the_parameters_and_starts_a_run(tmp_path):
    policy = _policy()
    args = Args(model="tiny-random", lora_r=4, lora_alpha=8)
    keep_adapter(policy, tmp_path / "start", args)
    start = _weights(policy)
    with torch.no_grad():
        for i, p in enumerate(policy.trainable_parameters()):
            p.add_(torch.full_like(p, 0.01 * (i + 1)))
    keep_adapter(policy, tmp_path / "end" / "checkpoints" / "rl-end", args)
    end = _weights(policy)
    assert not all(torch.equal(a, b) for a, b in zip(start, end, strict=True))

    out = mix_adapters(tmp_path / "start", tmp_path / "end" / "checkpoints" / "rl-end", 0.25, tmp_path / "mix")
    policy.load_adapter_weights(str(out / "adapter"))
    for a, b, m in zip(start, end, _weights(policy), strict=True):
        assert torch.allclose(m, 0.75 * a + 0.25 * b, atol=1e-7)
        assert not torch.equal(m, a) or torch.equal(a, b)
    assert json.loads((out / "mix.json").read_text())["weight"] == 0.25
    folder, saved = resolve_adapter(out)  # playable: agents/evaluate.py --adapter and --init_adapter take it
    assert folder == out / "adapter" and saved["model"] == "tiny-random"
    assert init_adapter_dir(Args(model="tiny-random", lora_r=4, lora_alpha=8, init_adapter=str(out))) == folder

    for weight, expected in ((0.0, start), (1.0, end)):  # the ends are the adapters themselves, bit for bit
        mix_adapters(tmp_path / "start", tmp_path / "end" / "checkpoints" / "rl-end", weight, tmp_path / f"w{weight}")
        policy.load_adapter_weights(str(tmp_path / f"w{weight}" / "adapter"))
        assert all(torch.equal(m, e) for m, e in zip(_weights(policy), expected, strict=True))


def test_adapters_of_another_shape_and_a_weight_that_is_not_a_number_are_refused(tmp_path):
    args = Args(model="tiny-random", lora_r=4, lora_alpha=8)
    keep_adapter(_policy(4), tmp_path / "r4", args)
    keep_adapter(_policy(8), tmp_path / "r8", Args(model="tiny-random", lora_r=8, lora_alpha=8))
    with pytest.raises(ValueError, match="their r differ"):
        mix_adapters(tmp_path / "r4", tmp_path / "r8", 0.5, tmp_path / "out")
    with pytest.raises(ValueError, match="finite"):
        mix_adapters(tmp_path / "r4", tmp_path / "r4", float("nan"), tmp_path / "out")
    with pytest.raises(FileNotFoundError):
        mix_adapters(tmp_path / "r4", tmp_path / "missing", 0.5, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half-written
