"""The recording proxy over loopback with a tiny random policy: records, merges, the update, bad input."""

from __future__ import annotations

import copy

import httpx
import openai
import pytest
import torch

from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.rollout import Conversation, PolicyPlayer
from agents.learner.update import UpdateConfig, compute_advantages, trainable, update_policy
from agents.proxy.backend import PolicyBackend, ProxyConfig
from agents.proxy.harness import EnvScorer, HarnessResult, play_episodes
from agents.proxy.server import ProxyServer
from agents.proxy.transitions import build_transitions, training_pairs
from toolr1_env.judge import ExactMatchJudge
from toolr1_env.reward import RewardWeights
from toolr1_env.tasks import Task

MODEL = "tiny-policy"
TASK = "What is 17 * 23?"


def make_policy() -> Policy:
    model, tokenizer = make_tiny_model(seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8, max_new_tokens=8, stop_at_code_end=False))
    with torch.no_grad():  # LoRA B starts at zero; make the adapter matter
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(1))
    return policy


@pytest.fixture(scope="module")
def policy() -> Policy:
    return make_policy()


def start(policy: Policy, **config) -> ProxyServer:
    backend = PolicyBackend(policy, config=ProxyConfig(model_name=MODEL, **{"seed": 0, "batch_wait_s": 0.0, **config}))
    return ProxyServer(backend).start()


def client(server: ProxyServer, episode: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url(episode), api_key="x", max_retries=0)


def ask(chat: openai.OpenAI, messages: list[dict], max_tokens: int) -> str:
    reply = chat.chat.completions.create(model=MODEL, messages=messages, max_tokens=max_tokens)
    return reply.choices[0].message.content


def test_recorded_ids_and_logprobs_are_what_the_policy_sampled_and_rescores(policy):
    with start(policy) as server:
        server.backend.recorder.open("e1")
        reply = client(server, "e1").chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": TASK}], max_tokens=6)
        (call,) = server.backend.recorder.close("e1").calls
    prompt = policy.encode_prompt([{"role": "user", "content": TASK}])
    assert list(call.prompt_ids) == prompt
    # The same seed through Policy.sample directly gives the same tokens and log-probs, bit for bit.
    (direct,) = policy.sample([prompt], max_new_tokens=6, generator=torch.Generator().manual_seed(0))
    assert list(call.completion_ids) == direct.token_ids and list(call.logprobs) == direct.logprobs
    assert reply.choices[0].message.content == direct.text == call.text
    assert reply.usage.prompt_tokens == len(prompt) and reply.usage.completion_tokens == len(direct.token_ids)
    # A full forward pass re-scores them within fp32 tolerance.
    ids = torch.tensor([prompt + list(call.completion_ids)])
    with torch.no_grad():
        scores = policy.sequence_logprobs(ids, torch.ones_like(ids), first_position=len(prompt)).logprobs[0]
    assert scores[len(prompt):].tolist() == pytest.approx(list(call.logprobs), abs=1e-4)


def test_streamed_and_plain_replies_carry_the_same_text_and_usage(policy):
    with start(policy) as server:
        for episode in ("plain", "streamed"):
            server.backend.recorder.open(episode)
        messages = [{"role": "user", "content": TASK}]
        plain = client(server, "plain").chat.completions.create(model=MODEL, messages=messages, max_tokens=5)
        # A new proxy seed would differ; equal seeds: the streamed call samples what the plain one did.
        server.backend.batcher.generator.manual_seed(0)
        chunks = list(client(server, "streamed").chat.completions.create(
            model=MODEL, messages=messages, max_tokens=5, stream=True, stream_options={"include_usage": True}))
        streamed_calls = server.backend.recorder.close("streamed").calls
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content == streamed_calls[0].text
    assert chunks[-1].usage.completion_tokens == plain.usage.completion_tokens
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == plain.choices[0].finish_reason


def test_continued_history_merges_and_rerendered_history_stays_separate(policy):
    with start(policy) as server:
        recorder = server.backend.recorder
        for episode in ("merged", "rerendered"):
            recorder.open(episode, task_id="t", group_id="g")
            chat = client(server, episode)
            messages = [{"role": "system", "content": "Write code."}, {"role": "user", "content": TASK}]
            for turn in range(3):
                text = ask(chat, messages, 4)
                if episode == "rerendered":  # a harness that re-formats its own history
                    text = "Thought: " + text
                messages += [{"role": "assistant", "content": text}, {"role": "user", "content": f"Out: {turn}"}]
        merged, rerendered = recorder.close("merged"), recorder.close("rerendered")
    (one,), stats = build_transitions(merged.calls, episode_id="merged", task_id="t", group_id="g")
    assert stats.rerender_rate == 0.0 and [c.continued for c in merged.calls] == [False, True, True]
    assert one.num_turns == 3 and one.token_ids[: len(merged.calls[2].prompt_ids)] == list(merged.calls[2].prompt_ids)
    assert sum(one.loss_mask) == sum(len(c.completion_ids) for c in merged.calls)  # observations are masked
    assert "Out: 1" in policy.tokenizer.decode([t for t, m in zip(one.token_ids, one.loss_mask, strict=True) if not m])
    separate, stats = build_transitions(rerendered.calls, episode_id="r", task_id="t", group_id="g")
    assert len(separate) == 3 and stats.rerendered == 2 and stats.rerender_rate == 1.0
    for traj, call in zip(separate, rerendered.calls, strict=True):
        assert traj.token_ids == list(call.prompt_ids + call.completion_ids)
        assert traj.loss_mask == [0] * len(call.prompt_ids) + [1] * len(call.completion_ids)


def test_one_update_through_the_proxy_equals_the_same_samples_through_our_rollout():
    proxied = make_policy()
    rolled = copy.deepcopy(proxied)
    observations = ["Out: 391", "NameError: name 'x' is not defined"]
    # Our own rollout: PolicyPlayer, the class collect() plays training episodes with.
    player = PolicyPlayer(rolled, Conversation(max_new_tokens=5, max_episode_tokens=4096),
                          generator=torch.Generator().manual_seed(0))
    reference = []
    for sample in range(2):
        traj = player.open(TASK, "t", "g")
        for obs in observations:
            player.generate({0: traj})
            player.append_observation(traj, obs)
        player.generate({0: traj})
        traj.reward = float(sample == 0)
        reference.append(traj)
    # The same conversation through the proxy, by an OpenAI-client harness.
    with start(proxied) as server:
        episodes = []
        for sample in range(2):
            server.backend.recorder.open(f"e{sample}")
            chat, messages = client(server, f"e{sample}"), [{"role": "user", "content": TASK}]
            for obs in [*observations, None]:
                text = ask(chat, messages, 5)
                messages += [{"role": "assistant", "content": text}, {"role": "user", "content": obs}]
            episodes.append(server.backend.recorder.close(f"e{sample}"))
    from agents.proxy.transitions import ProxyEpisode

    proxy_episodes = []
    for sample, log in enumerate(episodes):
        (traj,), _ = build_transitions(log.calls, episode_id=log.episode_id, task_id="t", group_id="g")
        traj.reward = float(sample == 0)
        proxy_episodes.append(ProxyEpisode(log.episode_id, "t", "g", [traj], reward=traj.reward))
    for ours, theirs in zip(reference, proxy_episodes, strict=True):
        assert theirs.transitions[0].token_ids == ours.token_ids
        assert theirs.transitions[0].loss_mask == ours.loss_mask
        assert theirs.transitions[0].old_logprobs == ours.old_logprobs
    config = UpdateConfig(micro_batch_size=4)
    pairs_rollout = trainable(reference, compute_advantages(reference, config), config)
    pairs_proxy = training_pairs(proxy_episodes, config)
    for policy, pairs in ((rolled, pairs_rollout), (proxied, pairs_proxy)):
        optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-2)
        update_policy(policy, optimizer, pairs, config)
    before = dict(make_policy().model.named_parameters())
    changed = 0
    for (name, a), (_, b) in zip(proxied.model.named_parameters(), rolled.model.named_parameters(), strict=True):
        assert torch.equal(a, b), name
        changed += "lora" in name and not torch.equal(a, before[name])
    assert changed > 0  # the update did move the adapter


def test_bad_requests_get_clear_errors_record_nothing_and_the_proxy_serves_on(policy):
    with start(policy, max_context=64) as server:
        recorder = server.backend.recorder
        recorder.open("ok")
        recorder.open("done")
        recorder.close("done")
        good = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
        cases = {
            "unknown": (server.base_url("nope"), good, 404, "unknown_episode"),
            "finished": (server.base_url("done"), good, 409, "episode_finished"),
            "model": (server.base_url("ok"), {**good, "model": "gpt-4o"}, 404, "model_not_found"),
            "n": (server.base_url("ok"), {**good, "n": 2}, 400, "invalid_request_error"),
            "long": (server.base_url("ok"), {**good, "messages": [{"role": "user", "content": "word " * 200}]}, 400,
                     "context_length_exceeded"),
            "image": (server.base_url("ok"), {**good, "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:"}}]}]}, 400, "invalid_request_error"),
        }
        for name, (base, body, status, code) in cases.items():
            response = httpx.post(f"{base}/chat/completions", json=body, timeout=30)
            assert response.status_code == status, name
            error = response.json()["error"]
            assert error["code"] == code and error["message"], name
        with pytest.raises(openai.BadRequestError, match="one completion per request"):
            client(server, "ok").chat.completions.create(n=2, **good)
        assert recorder.get("ok").calls == []
        reply = client(server, "ok").chat.completions.create(**good)  # still serving
        assert len(recorder.close("ok").calls) == 1 and reply.choices[0].finish_reason in ("stop", "length")


def test_a_crashed_harness_is_an_infra_error_left_out_of_training(policy):
    tasks = [Task("t1", TASK, "391")]
    calls = []

    def harness(call):
        chat = openai.OpenAI(base_url=call.base_url, api_key="x", max_retries=0)
        chat.chat.completions.create(model=call.model, messages=[{"role": "user", "content": TASK}], max_tokens=3)
        calls.append(call.episode_id)
        if len(calls) == 2:
            raise RuntimeError("the harness fell over")
        return HarnessResult("391" if len(calls) == 1 else "390", steps=1)

    scorer = EnvScorer(ExactMatchJudge(), RewardWeights())
    with start(policy) as server:
        episodes = play_episodes(server, harness, tasks, group_size=3, scorer=scorer, concurrency=1)
        recorder = server.backend.recorder
        assert recorder.open_episodes == []  # every episode was closed, the crashed one too
    crashed = [e for e in episodes if e.infra_error]
    assert len(crashed) == 1 and crashed[0].infra_kind == "agent" and "fell over" in crashed[0].infra_error
    assert [e.reward for e in episodes if not e.infra_error] == [1.2, 0.2]  # the env's reward: answer + clean steps
    pairs = training_pairs(episodes, UpdateConfig(advantage_scale="none"))
    assert sorted(a for _, a in pairs) == [-0.5, 0.5]
    assert all(t.metadata["episode_id"] != crashed[0].episode_id for t, _ in pairs)


def test_concurrent_episodes_share_sampling_batches(policy):
    def harness(call):
        chat = openai.OpenAI(base_url=call.base_url, api_key="x", max_retries=0)
        chat.chat.completions.create(model=call.model, messages=[{"role": "user", "content": TASK}], max_tokens=3)
        return HarnessResult(None)

    with start(policy, batch_wait_s=0.5) as server:
        episodes = play_episodes(server, harness, [Task("t1", TASK, "391")], group_size=4,
                                 scorer=EnvScorer(ExactMatchJudge(), RewardWeights()), concurrency=4)
        batcher = server.backend.batcher
    assert batcher.rows == 4 and batcher.batches < 4
    assert all(len(e.transitions) == 1 and e.reward == 0.0 for e in episodes)
