"""One policy under bf16: the sampler and the trainer's scoring run the same model, so their log-probs agree.

Before: sampling merged the LoRA delta into bf16 weights (a delta under ~0.4% of a weight rounds away) and read
bf16 logits from the model's own head, so the sampler's log-probs (the loss's old log-probs) came from another
policy than the one trained. Now nothing is merged when the matmuls run in bf16 (bf16 weights, or fp32 weights
under ``--bf16`` autocast), and both sides take fp32 logits from one head.
"""

from __future__ import annotations

import pytest
import torch

from agents.learner.decoding import merged_adapter
from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.scoring import logprob_gap


def tiny_policy(tokenizer, dtype: torch.dtype, lora_std: float) -> Policy:
    model, _ = make_tiny_model(tokenizer, seed=0)
    policy = Policy(model.to(dtype), tokenizer, PolicyConfig(lora_r=4, lora_alpha=8, max_new_tokens=24,
                                                             stop_at_code_end=False))
    with torch.no_grad():  # LoRA B starts at zero; make the adapter matter
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, lora_std, generator=torch.Generator().manual_seed(1))
    return policy


def sampled_and_scored(policy: Policy) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[B, T]`` sampler log-probs, trainer log-probs and the generated-token mask of 4 samples of one prompt."""
    prompt = policy.encode_prompt([{"role": "user", "content": "What is 17 * 23? Write code."}])
    generations = policy.sample([prompt] * 4, generator=torch.Generator().manual_seed(3))
    width = len(prompt) + max(len(g.token_ids) for g in generations)
    ids = torch.full((4, width), policy.pad_token_id)
    attention, mask, sampler = torch.zeros(4, width, dtype=torch.long), torch.zeros(4, width), torch.zeros(4, width)
    for row, g in enumerate(generations):
        end = len(prompt) + len(g.token_ids)
        ids[row, :end] = torch.tensor(prompt + g.token_ids)
        attention[row, :end], mask[row, len(prompt):end] = 1, 1
        sampler[row, len(prompt):end] = torch.tensor(g.logprobs)
    trainer = policy.sequence_logprobs(ids, attention, first_position=len(prompt)).logprobs
    return sampler, trainer, mask


def test_a_small_lora_delta_rounds_away_when_merged_into_bf16_weights_so_bf16_is_never_merged(tokenizer):
    weight = torch.randn(64, 64, generator=torch.Generator().manual_seed(0)) * 0.05
    delta = weight * 1e-3  # a LoRA update at 0.1% of the weight
    merged = (weight.bfloat16() + delta.bfloat16()) - weight.bfloat16()
    assert float((merged == 0).float().mean()) > 0.9  # in bf16 the delta is (almost) all gone
    with merged_adapter(tiny_policy(tokenizer, torch.float32, 0.05).model) as merged_fp32:
        assert merged_fp32
    with merged_adapter(tiny_policy(tokenizer, torch.bfloat16, 0.05).model) as merged_bf16:
        assert not merged_bf16  # sampling runs PEFT's adapter path, as the trainer's forward does


def test_fp32_weights_are_not_merged_under_bf16_autocast(tokenizer):
    # --bf16 keeps fp32 weights but casts them to bf16 in every matmul: a merged W + delta would round the same way.
    policy = tiny_policy(tokenizer, torch.float32, 0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16), merged_adapter(policy.model) as merged_under_autocast:
        assert not merged_under_autocast
    with merged_adapter(policy.model) as merged_fp32:
        assert merged_fp32


def test_the_head_gives_fp32_logits_from_bf16_weights(tokenizer):
    policy = tiny_policy(tokenizer, torch.bfloat16, 0.05)
    hidden = torch.randn(3, 64, generator=torch.Generator().manual_seed(0)).bfloat16()
    logits = policy.parts.head(hidden)
    weight = policy.model.get_output_embeddings().weight
    assert logits.dtype == torch.float32 and weight.dtype == torch.bfloat16
    assert torch.allclose(logits, hidden.float() @ weight.float().T, atol=1e-5)


@pytest.mark.parametrize(("dtype", "mean_bound", "max_bound"), [(torch.float32, 1e-5, 1e-4),
                                                                   (torch.bfloat16, 2e-3, 1e-2)])
def test_sampler_and_trainer_log_probs_agree_in_fp32_and_bf16(tokenizer, dtype, mean_bound, max_bound):
    # Measured 2026-12-06 on 2 CPU cores: fp32 mean 1.4e-7 / max 9.5e-7; bf16 mean 4.4e-4 / max 1.3e-3
    # (before this change, bf16 with the merged adapter and a bf16 head: mean 8.6e-4 / max 3.4e-3).
    policy = tiny_policy(tokenizer, dtype, 0.05)
    sampler, trainer, mask = sampled_and_scored(policy)
    gap = logprob_gap(sampler, trainer, mask)
    assert mask.sum() > 40  # the samples were scored
    assert 0 <= gap["mean"] < mean_bound and gap["mean"] <= gap["max"] < max_bound, gap


def test_logprob_gap_counts_only_masked_scored_tokens():
    sampler = torch.tensor([[0.0, -1.0, -2.0], [0.0, float("nan"), -0.5]])
    trainer = torch.tensor([[5.0, -1.1, -2.3], [9.0, -4.0, -0.5]])
    mask = torch.tensor([[0, 1, 1], [0, 1, 1]])
    gap = logprob_gap(sampler, trainer, mask)
    assert gap == pytest.approx({"mean": (0.1 + 0.3 + 0.0) / 3, "max": 0.3})  # NaN (a demonstration) left out
    assert logprob_gap(sampler, trainer, torch.zeros_like(mask)) == {"mean": 0.0, "max": 0.0}
