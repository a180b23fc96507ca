"""TRL's real GRPOTrainer (CPU, tiny model, 2 steps) with our rollout function: episodes are played in the env,
observation tokens are masked, rewards reach the trainer, cached successes are injected and trained on, and the
queue survives a checkpoint round trip. Also the vLLM route, through a stand-in for TRL's vLLM engine."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("trl", reason="TRL is not installed: pip install -e '.[trl]'")

import torch  # noqa: E402
from trl_harness import FakeVLLMGeneration, capture_batches, fresh_model, logged, row, trainer  # noqa: E402

from agents.learner.model_loading import make_tiny_model  # noqa: E402
from agents.learner.records import Trajectory  # noqa: E402
from agents.learner.rollout import Conversation  # noqa: E402
from agents.learner.sample_queue import SampleQueueConfig  # noqa: E402
from agents.trl import make_rollout_func, to_trl_batch, toolr1_reward  # noqa: E402
from agents.trl.checkpoint import state_file  # noqa: E402
from agents.trl.rollout import trl_groups  # noqa: E402
from toolr1_env.env import resolve_tasks  # noqa: E402
from toolr1_env.integrations.trl import task_dataset  # noqa: E402
from toolr1_env.judge import LLMJudge  # noqa: E402
from toolr1_env.parsing import SERVER_STOP  # noqa: E402

TASKS = list(resolve_tasks("warmup-eval").tasks)[:2]  # one-line tasks with verified reference solutions
ENV = {"max_turns": 2, "prompt_style": "compact", "step_timeout": 5, "max_observation_chars": 200}


@pytest.fixture(scope="module")
def tokenizer():
    return make_tiny_model(seed=0)[1]


def rollout_for(conversation: Conversation, **kwargs):
    return make_rollout_func(TASKS, num_envs=4, env_kwargs={**ENV, **kwargs.pop("env", {})},
                             conversation=conversation, **kwargs)


def test_trainer_model_route_plays_env_episodes_masks_observations_and_rewards_reach_trl(tokenizer, tmp_path):
    # The forced prefix opens a block that prints, then comments out whatever the random model writes.
    rollout = rollout_for(Conversation(response_prefix="```py\nprint('observed')\n# ", max_new_tokens=6,
                                       max_episode_tokens=1024))
    grpo = trainer(fresh_model(tokenizer), tokenizer, task_dataset(TASKS), str(tmp_path), rollout_func=rollout,
                   reward_funcs=[toolr1_reward])
    batches = capture_batches(grpo)
    try:
        grpo.train()
    finally:
        rollout.close()
    assert rollout.calls == 2 and len(batches) == 2
    assert rollout.policies.builds == 1  # one Policy (template round trip, probe forward) for both calls
    trajectories = rollout.last_trajectories
    assert len(trajectories) == 4 and {t.task_id for t in trajectories} == {t.task_id for t in TASKS}
    # Played in the env: two code actions per episode, the sandbox's output came back as the observation.
    assert rollout.last_metrics["env_steps"] == 8 and all(t.num_turns == 2 for t in trajectories)
    assert any(t.turns[0].observation.strip() == "observed" for t in trajectories)
    batch = batches[-1]
    for i, traj in enumerate(trajectories):
        p = traj.prompt_len
        # Token in / token out: TRL trains on exactly our ids (plus the closing end-of-turn token).
        assert row(batch, i, "completion_ids") == [*traj.token_ids[p:], tokenizer.eos_token_id]
        mask = row(batch, i, "tool_mask")
        assert mask == [*traj.loss_mask[p:], 0] and sum(mask) == traj.num_generated_tokens > 0
        first = traj.turns[0]
        observation = range(first.gen_end - p, first.obs_end - p)
        assert len(observation) > 0 and all(mask[j] == 0 for j in observation)  # observation tokens: never trained
        assert all(mask[j] == 1 for j in range(first.gen_start - p, first.gen_end - p))
    # Our rewards reached the trainer, with their parts.
    rewards = [t.reward for t in trajectories]
    assert max(rewards) > 0  # clean prints earn the execution part of the reward
    assert logged(grpo, "rewards/toolr1_reward/mean")[-1] == pytest.approx(sum(rewards) / len(rewards))
    assert logged(grpo, "toolr1/exec_success")[-1] == pytest.approx(
        sum(t.reward_components["exec_success"] for t in trajectories) / 4)


def test_queue_injects_a_cached_success_into_a_flat_group_and_trl_trains_on_it(tokenizer, tmp_path):
    rollout = rollout_for(Conversation(response_prefix="```py\n", max_new_tokens=6, max_episode_tokens=1024),
                          env={"max_turns": 1}, queue=SampleQueueConfig(max_inject=1), demonstrations=True)
    model = fresh_model(tokenizer)
    grpo = trainer(model, tokenizer, task_dataset(TASKS), str(tmp_path), rollout_func=rollout,
                   reward_funcs=[toolr1_reward], lr=5e-2, save_strategy="steps", save_steps=1)
    batches = capture_batches(grpo)
    try:
        grpo.train()
        cached = [(i, t) for i, t in enumerate(rollout.last_trajectories) if t.source == "cache"]
        assert cached, "no cached success was injected"
        i, demo = cached[0]
        assert demo.metadata.get("demonstration") and demo.reward == pytest.approx(1.2)
        online = [t for t in rollout.last_trajectories if t.group_id == demo.group_id and t.source == "online"]
        assert online and all(t.reward < demo.reward for t in online)  # the group had no success of its own
        batch = batches[-1]
        p = demo.prompt_len
        assert row(batch, i, "completion_ids")[: len(demo.token_ids) - p] == demo.token_ids[p:]
        assert row(batch, i, "tool_mask")[: len(demo.token_ids) - p] == demo.loss_mask[p:]  # its masks came along
        assert float(batch["advantages"][i]) > 0  # TRL's own group baseline ranks it above its group
        assert all(math.isnan(x) for x, m in zip(row(batch, i, "sampling_per_token_logps"), row(batch, i, "tool_mask"),
                                                 strict=True) if m)  # a demonstration: no sampler to correct for
        # ... and trained on: the update made the cached answer more likely.
        assert _sequence_logprob(grpo.model, demo) > _sequence_logprob(_base(tokenizer), demo)
        assert logged(grpo, "toolr1/from_queue")[-1] > 0 and logged(grpo, "reward")[-1] > 0
    finally:
        rollout.close()
    # The queue was saved with each checkpoint ...
    saved = state_file(tmp_path / "checkpoint-1")
    assert saved.exists() and state_file(tmp_path / "checkpoint-2").exists()
    # ... and a resumed run restores it before its first rollout.
    resumed = rollout_for(Conversation(response_prefix="```py\n", max_new_tokens=6, max_episode_tokens=1024),
                          env={"max_turns": 1}, queue=SampleQueueConfig(max_inject=1), demonstrations=True)
    grpo2 = trainer(fresh_model(tokenizer), tokenizer, task_dataset(TASKS), str(tmp_path), rollout_func=resumed,
                    reward_funcs=[toolr1_reward], lr=5e-2)
    try:
        grpo2.train(resume_from_checkpoint=str(tmp_path / "checkpoint-1"))
    finally:
        resumed.close()
    assert resumed.restored_step == 1 and resumed.calls == 2  # one call before the checkpoint, one after
    before = json.loads(saved.read_text())["queue"]["counters"]
    assert resumed.queue is not None and resumed.queue.counters["groups"] == before["groups"] + 2  # carried over
    assert resumed._demonstrated == {t.task_id for t in TASKS}  # demonstrations are not replayed after a resume


def test_vllm_route_sends_token_ids_cuts_after_the_code_block_and_logprobs_match_trl(tokenizer, tmp_path):
    rollout = rollout_for(Conversation(response_prefix="```py\n", max_new_tokens=16, max_episode_tokens=1024))
    model = fresh_model(tokenizer)
    # bf16=False: GRPOConfig defaults to bf16 autocast (on CPU too), and the stand-in engine scores in fp32.
    grpo = trainer(model, tokenizer, task_dataset(TASKS), str(tmp_path), rollout_func=rollout,
                   reward_funcs=[toolr1_reward], bf16=False)
    engine = FakeVLLMGeneration(grpo.model, tokenizer, "print(7)\n```\nObservation: 7, so the answer")
    grpo.use_vllm, grpo.vllm_generation, grpo._last_loaded_step = True, engine, -1  # as GRPOConfig(use_vllm=True)
    batches = capture_batches(grpo)
    try:
        grpo.train()
    finally:
        rollout.close()
    assert engine.syncs == 2  # TRL pushed the weights before each step's rollout
    assert rollout.policies.builds == 1 and len(rollout.policies.policy.plans) == len(engine.calls)
    assert engine.calls and all(c["max_tokens"] <= 16 and c["stop"] == list(SERVER_STOP) for c in engine.calls)
    for traj in rollout.last_trajectories:
        assert traj.num_turns == 2 and traj.turns[0].observation.strip() == "7"  # the sandbox ran the block
        assert all("Observation" not in turn.action for turn in traj.turns)  # cut after the closing fence
        assert traj.turns[0].finish_reason == "stop"
    # vLLM's log-probs are what TRL's importance-sampling correction compares with its own forward pass.
    # (A wrong temperature, an off-by-one or unmasked observation tokens show as differences of 0.1 and more;
    # both sides in fp32 agree to float rounding. Under TRL's default bf16 autocast they differed by ~1.2e-3.)
    assert logged(grpo, "sampling/sampling_logp_difference/max")[-1] < 1e-4
    assert all(torch.isfinite(b["importance_sampling_ratio"]).all() for b in batches)


def test_infrastructure_errors_reach_trl_as_unscored_not_as_wrong(tokenizer, tmp_path):
    judge = LLMJudge(base_url="http://127.0.0.1:9/v1", model="x", max_retries=0, timeout=1, exact_match_shortcut=False)
    rollout = rollout_for(Conversation(response_prefix="```py\nfinal_answer(1)\n```\n", max_new_tokens=2,
                                       max_episode_tokens=1024), env={"judge": judge})
    grpo = trainer(fresh_model(tokenizer), tokenizer, task_dataset(TASKS), str(tmp_path), rollout_func=rollout,
                   reward_funcs=[toolr1_reward], steps=1)
    batches = capture_batches(grpo)
    try:
        grpo.train()
    finally:
        rollout.close()
    assert all(t.infra_error for t in rollout.last_trajectories)
    assert rollout.last_metrics["infra_errors"] == 4
    assert torch.equal(batches[-1]["advantages"], torch.zeros(4))  # no gradient from an unscored episode
    mean = logged(grpo, "rewards/toolr1_reward/mean")[-1]
    assert mean is None or math.isnan(mean)  # NaN (logged as null): not averaged in as a 0 reward


# ----------------------------------------------------------------------------------- pure pieces (no trainer)


def test_groups_follow_trls_global_row_layout():
    groups = trl_groups(["a", "a", "b", "b"], 2)
    assert [(g.index, g.task_id, g.rows, g.full) for g in groups] == [(0, "a", [0, 1], True), (1, "b", [2, 3], True)]
    split = trl_groups(["a", "b", "b"], 2, first_row=3)  # this process holds the tail of group 1 and group 2
    assert [(g.index, g.rows, g.full) for g in split] == [(1, [0], False), (2, [1, 2], True)]
    with pytest.raises(ValueError, match="mixes tasks"):
        trl_groups(["a", "b"], 2)


def test_batch_closes_the_last_turn_and_reward_function_passes_none_for_infra_errors():
    ok = Trajectory.start("t", "g", [1, 2, 3])
    ok.append_forced([4])
    ok.append_generated([5, 6], [-0.5, -0.25])
    ok.reward, ok.num_turns = 1.2, 1
    cut = ok.replace(metadata={"token_limit": True})
    broken = ok.replace(infra_error="judge down")
    out = to_trl_batch([ok, cut, broken], eos_token_ids={2}, close_token_id=2)
    assert out["prompt_ids"][0] == [1, 2, 3]
    assert out["completion_ids"][0] == [4, 5, 6, 2] and out["env_mask"][0] == [0, 1, 1, 0]
    assert out["logprobs"][0] == [0.0, -0.5, -0.25, 0.0]
    assert out["completion_ids"][1] == [4, 5, 6]  # a token-limit cut stays open: TRL sees it as truncated
    assert out["episode_reward"] == [1.2, 1.2, None] and out["infra_error"] == [None, None, "judge down"]
    metrics: dict[str, float] = {}
    rewards = toolr1_reward([[]] * 3, out["episode_reward"], sample_source=out["sample_source"],
                            log_metric=metrics.__setitem__)
    assert rewards == [1.2, 1.2, None] and metrics["toolr1/from_queue"] == 0.0


def _base(tokenizer):
    return make_tiny_model(tokenizer=tokenizer, seed=0)[0]


@torch.no_grad()
def _sequence_logprob(model, traj: Trajectory) -> float:
    ids = torch.tensor([traj.token_ids])
    logits = model(input_ids=ids).logits[0, :-1].float()  # [T-1, V]
    scores = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None]).squeeze(-1)  # [T-1]
    mask = torch.tensor(traj.loss_mask[1:], dtype=torch.bool)
    return float(scores[mask].sum())
