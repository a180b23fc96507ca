"""Sampling prefills the prompt prefix every row shares once (agents/learner/decoding.py): same tokens and
log-probs as prefilling every prompt whole."""

from __future__ import annotations

import pytest
import torch

from agents.learner.decoding import shared_header
from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig

INSTRUCTIONS = ("Solve the task by writing Python code in a ```py block. Functions you can call: read_page(name), "
                "web_search(query), inspect_file(path).")


def test_shared_header_leaves_every_prompt_a_token_and_skips_short_prefixes():
    assert shared_header([[1, 2, 3, 4], [1, 2, 3, 5]], minimum=2) == 3
    assert shared_header([[1, 2, 3], [1, 2, 3, 4]], minimum=2) == 2  # the shorter prompt keeps its last token
    assert shared_header([[1, 2, 3], [1, 2, 3, 4]], minimum=3) == 0  # too short to be worth a pass
    assert shared_header([[1, 2, 3, 4]], minimum=1) == 0  # one prompt: nothing to share
    assert shared_header([[9, 2, 3], [1, 2, 3]], minimum=1) == 0


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_header_shared_sampling_equals_whole_prompt_prefill(temperature):
    questions = ["What is 17 * 23?", "Name the capital of Oslavia.", "Sum the Price column of sales.csv please."]
    results = []
    for sharing in (True, False):
        model, tokenizer = make_tiny_model(seed=0)
        torch.manual_seed(0)
        policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8, max_new_tokens=12,
                                                       prefix_sharing=sharing))
        prompts = [policy.encode_prompt([{"role": "user", "content": f"{INSTRUCTIONS}\nTask: {q}"}]) for q in questions]
        prompts.append(prompts[0])  # a repeated prompt (a group) rides along
        assert shared_header(prompts) >= 16
        generator = torch.Generator().manual_seed(3)
        results.append(policy.sample(prompts, temperature=temperature, generator=generator))
    shared, whole = results
    for a, b in zip(shared, whole, strict=True):
        assert a.token_ids == b.token_ids
        assert a.finish_reason == b.finish_reason
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-4)
