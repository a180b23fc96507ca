"""The supervised warm-up on demonstrations (agents/learner/warmup.py) and its place in the trainer."""

from __future__ import annotations

import json
import random
import shutil

import pytest
import torch

from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.records import TrainBatch, Trajectory
from agents.learner.update import UpdateConfig, rescore
from agents.learner.warmup import anchor_batch, verified, warm_up
from tests.test_train_grpo import rows, run


@pytest.fixture()
def policy() -> Policy:
    model, tokenizer = make_tiny_model(seed=0)
    return Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8, max_new_tokens=8))


def demonstration(policy: Policy, task_id: str, answer: str, *, correct: bool = True) -> Trajectory:
    """A scripted two-turn episode (look, then answer), scored like a played demonstration."""
    traj = Trajectory.start(task_id, f"demo-{task_id}", policy.encode_prompt([{"role": "user", "content": task_id}]))
    for turn, observation in (("print(read_page('Acme'))", "Acme\n\nHeadquarters: Dorvik"),
                              (f"final_answer('{answer}')", None)):
        ids = policy.tokenize(turn + "\n```")
        traj.append_generated(ids, [0.0] * len(ids))
        if observation is not None:
            traj.append_forced(policy.encode_observation(observation))
    traj.metadata["demonstration"] = True
    traj.reward_components = {"answer_score": 1.0 if correct else 0.0}
    return traj


def test_only_correct_uncut_error_free_demonstrations_are_imitated(policy):
    good = demonstration(policy, "a", "Dorvik")
    wrong = demonstration(policy, "b", "Oslo", correct=False)
    cut = demonstration(policy, "c", "Dorvik")
    cut.truncated = True
    outage = demonstration(policy, "d", "Dorvik")
    outage.infra_error = "sandbox died"
    assert [verified(t) for t in (good, wrong, cut, outage)] == [True, False, False, False]
    with pytest.raises(ValueError, match="nothing to warm up on"):
        warm_up(policy, torch.optim.AdamW(policy.trainable_parameters()), [wrong, cut], range(1), UpdateConfig(),
                random.Random(0))


def rescored_nll(policy: Policy, demos: list[Trajectory]) -> float:
    """The current policy's token-mean NLL of the demonstrations' trained tokens, by hand (prompt and tool
    output, ``loss_mask`` 0, do not count)."""
    rescore(policy, demos)
    trained = [lp for d in demos for lp, m in zip(d.old_logprobs, d.loss_mask, strict=True) if m]
    return -sum(trained) / len(trained)


def test_the_reported_nll_is_the_token_mean_of_the_trained_tokens_only(policy):
    demos = [demonstration(policy, f"t{i}", answer) for i, answer in enumerate(["Dorvik", "Kelmar"])]
    expected = rescored_nll(policy, demos)
    params = policy.trainable_parameters()
    metrics = warm_up(policy, torch.optim.SGD(params, lr=0.0), demos, range(1), UpdateConfig(), random.Random(0))
    assert metrics["warmup/nll_first_epoch"] == pytest.approx(expected, rel=1e-5)


def test_one_warm_up_step_is_a_step_down_the_demonstrations_nll(policy):
    demo = demonstration(policy, "a", "Dorvik")
    params = policy.trainable_parameters()
    with torch.no_grad():  # LoRA B starts at zero: give every adapter weight a gradient
        for p in params:
            p.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(len(p.shape)))
    before = [p.detach().clone() for p in params]
    # The plain NLL gradient, computed here by hand.
    batch = TrainBatch.collate([demo], [0.0], policy.pad_token_id)
    logprobs = policy.sequence_logprobs(batch.token_ids, batch.attention_mask, first_position=batch.first_position,
                                        score_mask=batch.host_loss_mask).logprobs  # [1, T]
    nll = -(logprobs * batch.loss_mask).sum() / batch.loss_mask.sum()
    grads = torch.autograd.grad(nll, params)
    expected = torch.cat([g.reshape(-1) for g in grads])
    lr = 1e-3 / max(1.0, float(expected.norm()))  # the warm-up clips the gradient norm at 1
    epochs_seen: list[int] = []
    metrics = warm_up(policy, torch.optim.SGD(params, lr=lr), [demo], range(1), UpdateConfig(), random.Random(0),
                      after_epoch=epochs_seen.append)
    step = torch.cat([(b - p.detach()).reshape(-1) for b, p in zip(before, params, strict=True)]) / lr
    clipped = expected / max(1.0, float(expected.norm()))
    assert torch.allclose(step, clipped, atol=1e-5, rtol=1e-3)
    assert metrics["warmup/steps"] == 1 and epochs_seen == [0]
    assert metrics["warmup/nll_first_epoch"] == pytest.approx(float(nll.detach()), rel=1e-4)


def test_warm_up_epochs_lower_the_nll_and_leave_the_policy_version_alone(policy):
    demos = [demonstration(policy, f"t{i}", answer) for i, answer in enumerate(["Dorvik", "Kelmar", "1,856"])]
    start = rescored_nll(policy, demos)
    epochs_seen: list[int] = []
    metrics = warm_up(policy, torch.optim.AdamW(policy.trainable_parameters(), lr=5e-3), demos, range(2, 6),
                      UpdateConfig(), random.Random(0), batch_size=2, after_epoch=epochs_seen.append)
    assert epochs_seen == [2, 3, 4, 5]  # a resumed warm-up runs only the epochs left
    assert metrics["warmup/steps"] == 8 and metrics["warmup/demonstrations"] == 3  # 2 steps per pass of 3
    assert metrics["warmup/nll_last_epoch"] < metrics["warmup/nll_first_epoch"]
    assert rescored_nll(policy, demos) < start - 0.2  # more likely (a tiny random model moves little)
    assert policy.version == 0  # versions count GRPO updates (they age the sample queue)


WARM = ["--demonstrations", "compact", "--max_new_tokens", "48", "--demo_warmup_epochs", "2",
        "--demo_warmup_batch", "2", "--eval_at_start", "--keep_checkpoints", "3"]


def test_the_trainer_warms_up_checkpoints_each_epoch_and_a_resume_finishes_only_what_is_left(tmp_path):
    out = tmp_path / "run"
    result = run([*WARM, "--iterations", "1", "--output_dir", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    first = rows(out)[0]
    assert first["warmup/demonstrations"] >= 1 and first["warmup/steps"] >= 2
    assert first["warmup/nll_last_epoch"] < first["warmup/nll_first_epoch"]
    assert "eval/success" in first  # the step-0 evaluation is the warmed-up policy's
    assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == ["step--1", "step-0"]

    # A run killed after its first warm-up epoch: the warm-up checkpoint says one epoch is done.
    killed = tmp_path / "killed"
    result = run([*WARM, "--demo_warmup_epochs", "1", "--iterations", "1", "--output_dir", str(killed)])
    assert result.returncode == 0, result.stderr[-3000:]
    (killed / "checkpoints" / "latest").write_text("step--1")  # as if killed before iteration 0's checkpoint
    shutil.rmtree(killed / "checkpoints" / "step-0")
    result = run([*WARM, "--iterations", "1", "--output_dir", str(killed), "--resume"])
    assert result.returncode == 0, result.stderr[-3000:]
    logged = rows(killed)
    assert [r["step"] for r in logged] == [0, 1]  # the killed run's rows were redone, each once
    assert logged[0]["warmup/steps"] == first["warmup/steps"] / 2  # only the second epoch was left
    assert "queue/demonstrations_offered" not in logged[0]  # the queue came back whole, not seeded twice
    assert json.loads((killed / "summary.json").read_text())["iterations"] == 1


def test_two_data_parallel_processes_warm_up_like_one(tmp_path):
    """Each process steps on its share with one token denominator: the same warm-up as one process, to float
    tolerance, and adapters that stay identical across the processes."""
    from tests.test_train_grpo import accelerate

    single, double = tmp_path / "single", tmp_path / "double"
    assert run([*WARM, "--iterations", "1", "--output_dir", str(single)]).returncode == 0
    result = accelerate([*WARM, "--iterations", "1", "--output_dir", str(double)])
    assert result.returncode == 0, result.stderr[-3000:]
    one, two = rows(single)[0], rows(double)[0]
    assert two["warmup/demonstrations"] == one["warmup/demonstrations"] and two["warmup/steps"] == one["warmup/steps"]
    for key in ("warmup/nll_first_epoch", "warmup/nll_last_epoch"):
        assert two[key] == pytest.approx(one[key], rel=1e-4), key
    after = rows(double)[1]
    assert after["dp/adapter_checksum/rank0"] == after["dp/adapter_checksum/rank1"]


def test_the_warmed_up_adapter_is_kept_playable_and_a_new_run_can_start_from_it(tmp_path):
    out = tmp_path / "warm"
    result = run([*WARM, "--iterations", "0", "--output_dir", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    kept = out / "checkpoints" / "warmup"
    assert (kept / "adapter" / "adapter_config.json").is_file() and (kept / "args.json").is_file()
    assert "warm-up pass 2/2 done" in result.stderr and "about" in result.stderr  # progress with time left
    assert "after warm-up" in result.stdout  # the end-of-run table

    # A run branched from it plays exactly what the warmed-up policy played (greedy, same tasks).
    branch = tmp_path / "branch"
    result = run([*WARM, "--demo_warmup_epochs", "0", "--iterations", "0", "--init_adapter", str(kept),
                  "--output_dir", str(branch)])
    assert result.returncode == 0, result.stderr[-3000:]
    played = [[json.loads(line)["turns"] for line in (folder / "episodes" / "eval-0.jsonl").read_text().splitlines()]
              for folder in (out, branch)]
    assert played[0] == played[1]

    # Another LoRA shape is refused before any model is loaded.
    result = run([*WARM, "--iterations", "0", "--init_adapter", str(kept), "--lora_r", "4",
                  "--output_dir", str(tmp_path / "bad")])
    assert result.returncode != 0 and "LoRA r 16 (this run: 4)" in result.stderr
    assert not (tmp_path / "bad" / "metrics.jsonl").exists()


def test_an_rl_pool_smaller_than_a_batch_is_refused_before_any_work(tmp_path):
    result = run(["--rl_pool_size", "1", "--tasks_per_iteration", "2", "--iterations", "1",
                  "--output_dir", str(tmp_path / "r")])
    assert result.returncode != 0 and "the RL pool holds 1 tasks, fewer than --tasks_per_iteration 2" in result.stderr


def test_the_demonstrations_mixed_into_rl_updates_cycle_through_the_verified_ones_alike_everywhere(policy):
    demos = [demonstration(policy, f"t{i}", "Dorvik") for i in range(5)]
    wrong = demonstration(policy, "w", "Oslo", correct=False)
    pool = [*demos[:2], wrong, *demos[2:]]
    random.seed(123)  # the global stream does not matter: the slices come from the run's seed alone
    picked = [anchor_batch(pool, iteration, 2, seed=7) for iteration in range(5)]
    random.seed(456)
    assert picked == [anchor_batch(pool, iteration, 2, seed=7) for iteration in range(5)]
    assert all(len(batch) == 2 and wrong not in batch for batch in picked)
    used = [d.task_id for batch in picked for d in batch]  # 10 picks over 5 verified demonstrations: 2 each
    assert sorted(used) == sorted([d.task_id for d in demos] * 2)
    assert picked != [anchor_batch(pool, iteration, 2, seed=8) for iteration in range(5)]  # the seed shuffles
    assert len(anchor_batch(pool, 0, 9, seed=7)) == 5 and anchor_batch([wrong], 0, 2, seed=7) == []


def test_rl_updates_with_mixed_demonstrations_make_them_more_likely(tmp_path):
    """A tiny random model never answers, so its groups are flat and GRPO alone trains nothing; with
    ``--rl_demo_coef`` every update still steps down the mixed demonstrations' NLL (logged before each step)."""
    mixed = [*WARM, "--demo_warmup_epochs", "0", "--iterations", "4", "--lr", "5e-3", "--rl_demo_batch", "2"]
    out = tmp_path / "mixed"
    result = run([*mixed, "--rl_demo_coef", "1.0", "--output_dir", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    logged = rows(out)[1:]
    assert all(r["rl_demo/demonstrations"] == 2 for r in logged)
    nll = [r["rl_demo/nll_before"] for r in logged]
    assert nll[-1] < nll[0] - 0.1, nll  # the same 4 demonstrations come round twice in 4 updates
    plain = tmp_path / "plain"
    result = run([*mixed, "--output_dir", str(plain)])
    assert result.returncode == 0, result.stderr[-3000:]
    assert not any("rl_demo/nll_before" in r for r in rows(plain))
    assert [r["rollout/task_ids"] for r in rows(plain)[1:]] == [r["rollout/task_ids"] for r in logged]  # same tasks


def test_a_negative_demonstration_weight_is_refused_before_any_work(tmp_path):
    result = run(["--rl_demo_coef", "-1", "--output_dir", str(tmp_path / "r")])
    assert result.returncode != 0 and "--rl_demo_coef -1.0" in result.stderr
