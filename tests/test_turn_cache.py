"""Keys and values kept between an episode's turns (agents/learner/turn_cache.py, used by decode): a second
turn that starts from them samples the same tokens with the same log-probs as one that prefills everything."""

from __future__ import annotations

import pytest
import torch

from agents.learner.policy import Policy
from agents.learner.turn_cache import StoredRow, TurnCache

QUESTIONS = ["What is 17 * 23?", "Name the capital of Oslavia.", "Sum the Price column of sales.csv please."]


def three_turns(policy: Policy, temperature: float, reuse: bool
                ) -> tuple[list[list[list[int]]], list[list[float]], int]:
    """Three turns of 3 episodes plus a repeated one (a group), each turn's prompt extending the last; the
    third turn has one episode fewer (it ended). Also returns the distinct prompts of turns 2 and 3."""
    contexts = [policy.encode_prompt([{"role": "user", "content": q}]) for q in QUESTIONS]
    contexts.append(list(contexts[0]))
    generator = torch.Generator().manual_seed(5)
    tokens, logprobs, later = [], [], 0
    observation = policy.tokenize("\nObservation: 42\n")
    with policy.reusing_turns() if reuse else _nothing():
        for turn in range(3):
            if turn == 2:
                contexts = contexts[:3]
            if turn > 0:
                later += len({tuple(c) for c in contexts})
            generations = policy.sample(contexts, temperature=temperature, generator=generator)
            tokens.append([g.token_ids for g in generations])
            logprobs += [g.logprobs for g in generations]
            contexts = [c + g.token_ids + observation for c, g in zip(contexts, generations, strict=True)]
    return tokens, logprobs, later


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_later_turns_from_kept_keys_and_values_sample_what_a_full_prefill_samples(temperature, make_lora_policy):
    policy = make_lora_policy(max_new_tokens=10)
    with policy.reusing_turns() as turns:
        reused_tokens, reused_logprobs, later = three_turns(policy, temperature, reuse=True)
        assert turns.hits == later >= 6  # every distinct prompt of turns 2 and 3 starts from its last turn
        assert turns.reused_tokens > 0
    full_tokens, full_logprobs, _ = three_turns(policy, temperature, reuse=False)
    assert reused_tokens == full_tokens
    for a, b in zip(reused_logprobs, full_logprobs, strict=True):
        assert torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-4)
    assert policy._turns is None  # the store lives only inside the block


def test_a_stored_row_serves_one_prompt_and_rows_no_prompt_extends_are_dropped():
    store = TurnCache()
    empty = [torch.zeros(1, 0, 2)]
    store.put(StoredRow((1, 2), empty, empty))
    store.put(StoredRow((1, 2, 3), empty, empty))
    store.put(StoredRow((7, 8), empty, empty))
    found = store.take([[1, 2, 3, 4], [1, 2, 9], [1, 2, 3]])
    assert [f.tokens if f else None for f in found] == [(1, 2, 3), (1, 2), None]  # longest proper prefix, once
    assert store.rows == {}  # (7, 8) belonged to an episode that ended
    assert (store.hits, store.reused_tokens) == (2, 5)
