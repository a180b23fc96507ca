"""The RL phase's parts (agents/learner/task_choice.py, reference.py, update.py masking, train.py schedule and
checks): learnable task choice, the KL reference as RL started, token-budget-only masking, the RL learning rate."""

from __future__ import annotations

import json
import random

import pytest
import torch

from agents.learner.config import Args, check_args
from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.records import Trajectory, Turn
from agents.learner.reference import AdapterSnapshot
from agents.learner.task_choice import TaskChooser
from agents.learner.train import rl_learning_rate
from agents.learner.update import UpdateConfig, compute_advantages, cut_by_token_budget, trainable, update_policy
from toolr1_env.reward import RewardWeights, episode_reward

# ---- task choice ---------------------------------------------------------------------------------------------


def test_learnable_choice_skips_mastered_and_hopeless_tasks_and_prefers_uncertain_ones():
    chooser = TaskChooser(["solved", "hopeless", "half", "rare", "new"], "learnable")
    chooser.observe([("solved", True)] * 4 + [("hopeless", False)] * 8 + [("half", True), ("half", False)] * 2
                    + [("rare", True)] + [("rare", False)] * 5)
    assert [chooser.status(t) for t in chooser.task_ids] == ["mastered", "hopeless", "open", "open", "open"]
    assert chooser.success_rate("new") == 0.5 and chooser.success_rate("half") == 0.5
    assert chooser.success_rate("rare") == pytest.approx(2 / 8)
    counts = {t: 0 for t in chooser.task_ids}
    rng = random.Random(0)
    for _ in range(2000):
        counts[chooser.choose(1, rng)[0]] += 1
    assert counts["solved"] == counts["hopeless"] == 0  # skipped while open tasks remain
    # weights p(1-p): 1/4 for "half" and "new", 3/16 for "rare"
    assert counts["half"] / 2000 == pytest.approx(0.25 / (0.25 + 0.25 + 0.1875), abs=0.04)
    assert counts["rare"] / 2000 == pytest.approx(0.1875 / 0.6875, abs=0.04)
    # a batch never shrinks: with 3 open tasks, a batch of 5 takes the skipped ones too
    assert sorted(chooser.choose(5, rng)) == sorted(chooser.task_ids)
    assert chooser.stats() == {"tasks/mastered": 1.0, "tasks/hopeless": 1.0, "tasks/open": 3.0, "tasks/unseen": 1.0}


def test_choice_is_a_function_of_the_shared_stream_and_survives_a_checkpoint():
    a = TaskChooser([f"t{i}" for i in range(20)], "learnable")
    a.observe([("t1", True), ("t1", True), ("t2", False)])
    b = TaskChooser([f"t{i}" for i in range(20)], "learnable")
    b.load_state_dict(a.state_dict())
    assert a.choose(6, random.Random(7)) == b.choose(6, random.Random(7))
    uniform = TaskChooser(["x", "y", "z"])
    assert uniform.choose(3, random.Random(0), skip={"y"}) and "y" not in uniform.choose(2, random.Random(0),
                                                                                          skip={"y"})
    with pytest.raises(ValueError, match="task choice"):
        TaskChooser(["x"], "greedy")


def test_learnable_kind_choice_judges_unseen_tasks_by_their_kind():
    kinds = {"easy1": "easy", "easy2": "easy", "easy3": "easy", "hard1": "hard", "hard2": "hard", "mid1": "mid",
             "mid2": "mid", "other": "other", "hardish": "hard: asked otherwise"}
    chooser = TaskChooser(list(kinds), "learnable-kind", kinds=kinds)
    chooser.observe([("easy1", True)] * 4 + [("hard1", False)] * 4 + [("mid1", True), ("mid1", False)] * 2)
    # An unseen task's prior is its kind's posterior, whose prior is its template's (each worth 2 observations).
    template = 5 / 6  # the template "easy": 4 of 4 over Beta(1, 1)
    kind = (4 + 2 * template) / (4 + 2)
    assert chooser.success_rate("easy2") == pytest.approx((0 + 2 * kind) / 2)
    assert chooser.success_rate("hard2") == pytest.approx((0 + 2 * (0 + 2 / 6) / 6) / 2)
    assert chooser.success_rate("mid2") == pytest.approx(0.5) and chooser.success_rate("other") == 0.5
    # Another kind of the template "hard": no outcomes of its own kind, so the template's 1/6.
    assert chooser.success_rate("hardish") == pytest.approx(1 / 6)
    # A played task: its own outcomes over the prior from the *other* tasks (none of its template yet: 1/2).
    assert chooser.success_rate("easy1") == pytest.approx((4 + 2 * 0.5) / 6)
    counts = {t: 0 for t in kinds}
    rng = random.Random(0)
    for _ in range(3000):
        counts[chooser.choose(1, rng)[0]] += 1
    # weights p(1-p): about 0.12 for an unseen task of a solved or a hopeless kind, 1/4 for one of a half-solved
    # or unseen kind; the plain learnable choice weighs every unseen task 1/4.
    assert counts["mid2"] > 1.5 * counts["easy2"] and counts["other"] > 1.5 * counts["hard2"]
    assert counts["other"] > 1.5 * counts["hardish"]
    plain = TaskChooser(list(kinds), "learnable")
    plain.observe([("easy1", True)] * 4)
    assert plain.success_rate("easy2") == 0.5
    with pytest.raises(ValueError, match="question kind"):
        TaskChooser(["x", "y"], "learnable-kind", kinds={"x": "k"})


def test_question_kinds_come_from_the_task_templates_of_a_pool():
    from agents.learner.task_choice import make_chooser
    from toolr1_env.env import resolve_tasks

    pool = resolve_tasks("train-easy").subset("p", [resolve_tasks("train-easy").pick(s) for s in range(48, 88)])
    chooser = make_chooser(pool, "learnable-kind")
    assert set(chooser.kinds) == {t.task_id for t in pool.tasks}
    # Tasks share kinds (that is what pooling needs), and a kind names its template.
    assert len(set(chooser.kinds.values())) < len(pool.tasks)
    assert all(kind.split(":")[0] == t.metadata.get("template", "?") for t in pool.tasks
               for kind in [chooser.kinds[t.task_id]])


def test_without_negative_advantages_only_a_groups_better_episodes_are_trained():
    def traj(group: str, reward: float) -> Trajectory:
        return Trajectory(group, group, [1, 2, 3], [0, 1, 1], [0.0, -1.0, -1.0], 1, reward=reward)

    batch = [traj("a", 1.2), traj("a", 0.0), traj("a", 0.0), traj("a", 0.0), traj("b", 0.0), traj("b", 0.0)]
    both = UpdateConfig(advantage_scale="none")
    positive = UpdateConfig(advantage_scale="none", negative_advantages=False)
    assert compute_advantages(batch, both) == pytest.approx([0.9, -0.3, -0.3, -0.3, 0.0, 0.0])
    assert compute_advantages(batch, positive) == pytest.approx([0.9, 0.0, 0.0, 0.0, 0.0, 0.0])
    # Only the success carries gradient: the failures and the flat group leave the batch.
    pairs = trainable(batch, compute_advantages(batch, positive), positive)
    assert [(t.reward, a) for t, a in pairs] == [(1.2, pytest.approx(0.9))]
    assert Args(negative_advantages=False).negative_advantages is False


# ---- reward: the execution bonus only on correct answers ---------------------------------------------------------


def test_with_exec_bonus_correct_a_clean_wrong_answer_ties_with_no_answer():
    gated = RewardWeights(1.0, 0.2, "correct")
    assert episode_reward(0.0, 1.0, gated) == 0.0  # clean but wrong
    assert episode_reward(1.0, 1.0, gated) == pytest.approx(1.2)
    assert episode_reward(1.0, 2 / 3, gated) == pytest.approx(1.0 + 0.2 * 2 / 3)
    assert episode_reward(0.0, 1.0, RewardWeights(1.0, 0.2)) == pytest.approx(0.2)  # the env's default
    with pytest.raises(ValueError, match="exec_bonus"):
        RewardWeights(1.0, 0.2, "sometimes")


# ---- masking: token-budget cuts only -----------------------------------------------------------------------------


def _episode(truncated: bool, last_finish: str = "stop", token_limit: bool = False) -> Trajectory:
    traj = Trajectory.start("t", "g", [1, 2, 3])
    traj.append_generated([4, 5], [-0.1, -0.2])
    traj.turns.append(Turn(3, 5, 5, action="print(1)", finish_reason=last_finish))  # type: ignore[arg-type]
    traj.truncated = truncated
    if token_limit:
        traj.metadata["token_limit"] = True
    return traj


def test_only_episodes_cut_by_a_token_budget_leave_the_loss():
    out_of_turns = _episode(truncated=True)  # four finished actions, never an answer: trained with reward 0
    turn_cut = _episode(truncated=True, last_finish="length")
    episode_cut = _episode(truncated=True, token_limit=True)
    answered = _episode(truncated=False, last_finish="length")  # a cut turn mid-episode, then an answer
    assert [cut_by_token_budget(t) for t in (out_of_turns, turn_cut, episode_cut, answered)] == \
        [False, True, True, False]
    kept = trainable([out_of_turns, turn_cut, episode_cut, answered], [-0.5, -0.5, -0.5, 1.5],
                     UpdateConfig(mask_truncated=True))
    assert [t for t, _ in kept] == [out_of_turns, answered]


# ---- the KL reference: the adapter as RL started -----------------------------------------------------------------


@pytest.fixture()
def policy() -> Policy:
    model, tokenizer = make_tiny_model(seed=0)
    policy = Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8, max_new_tokens=6))
    with torch.no_grad():  # a trained adapter: B away from zero, so "adapter off" is another policy
        for name, param in policy.model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(1))
    return policy


def _group(policy: Policy) -> list[tuple[Trajectory, float]]:
    prompt = policy.encode_prompt([{"role": "user", "content": "What is 17 * 23?"}])
    pairs = []
    for k, gen in enumerate(policy.sample([prompt] * 4, generator=torch.Generator().manual_seed(0))):
        traj = Trajectory.start("task", "g", prompt)
        traj.append_generated(gen.token_ids, gen.logprobs)
        pairs.append((traj, [0.9, -0.3, -0.3, -0.3][k]))
    return pairs


def test_the_kl_to_the_starting_adapter_is_zero_at_the_start_and_the_swap_restores_every_weight(policy):
    pairs = _group(policy)
    params = policy.trainable_parameters()
    reference = AdapterSnapshot(params)
    optimizer = torch.optim.SGD(params, lr=0.0)  # no step: the policy is still the reference
    config = UpdateConfig(kl_coef=0.1)
    at_start = update_policy(policy, optimizer, pairs, config, reference=reference)
    to_base = update_policy(policy, optimizer, pairs, config)  # the old anchor: the adapter switched off
    assert at_start["update/kl_ref"] == pytest.approx(0.0, abs=1e-6)
    assert to_base["update/kl_ref"] > 1e-3
    with torch.no_grad():
        for p in params:
            p.add_(0.05)
    moved = [p.detach().clone() for p in params]
    after = update_policy(policy, optimizer, pairs, config, reference=reference)
    assert after["update/kl_ref"] > 1e-4
    assert all(torch.equal(p, m) for p, m in zip(params, moved, strict=True))  # swapped back exactly


def test_the_reference_changes_the_gradient_only_through_the_kl_term(policy):
    pairs = _group(policy)
    params = policy.trainable_parameters()
    reference = AdapterSnapshot(params)

    def gradient(config: UpdateConfig, ref: AdapterSnapshot | None) -> torch.Tensor:
        grads = []

        class Capture(torch.optim.SGD):
            def step(self, closure=None):  # read the gradient the update is about to apply
                grads.append(torch.cat([p.grad.reshape(-1) for p in params]).clone())

        update_policy(policy, Capture(params, lr=0.0), pairs, config, reference=ref)
        return grads[0]

    plain = gradient(UpdateConfig(max_grad_norm=1e9), None)
    anchored = gradient(UpdateConfig(kl_coef=0.5, max_grad_norm=1e9), reference)
    # At the reference the k3 KL has zero gradient: the anchored update is the plain one.
    assert torch.allclose(plain, anchored, atol=1e-6)


# ---- the RL learning rate and the checks before any work --------------------------------------------------------


def test_the_cosine_schedule_warms_up_then_decays_to_a_tenth():
    args = Args(rl_lr=4e-4, lr=1e-3, iterations=6, lr_schedule="cosine")
    rates = [rl_learning_rate(args, i) for i in range(6)]
    assert rates[0] == pytest.approx(2e-4) and rates[1] == pytest.approx(4e-4)
    assert rates[-1] == pytest.approx(4e-5) and rates[1:] == sorted(rates[1:], reverse=True)
    assert rl_learning_rate(Args(lr=1e-3, iterations=6), 3) == 1e-3  # no --rl_lr: the warm-up's, constant


@pytest.mark.parametrize(("changes", "message"), [
    ({"resume": True}, "--resume needs --output_dir"),
    ({"group_size": 1}, "a GRPO group needs at least 2 episodes"),
    ({"temperature": 0.0}, "at temperature 0"),
    ({"advantage_scale": "rank"}, "--advantage_scale must be"),
    ({"init_adapter": "x", "resume": True, "output_dir": "y"}, "give only one"),
])
def test_arguments_that_would_train_nothing_are_refused(changes, message):
    with pytest.raises(ValueError, match=message):
        check_args(Args(**changes))
    check_args(Args(group_size=1, temperature=0.0, iterations=0))  # no RL iteration: nothing to refuse


def test_an_rl_pool_of_one_level_holds_only_that_level_apart_from_the_warm_up_pool():
    from agents.learner.config import Args, make_rl_pool, make_task_pool
    from agents.learner.heldout import eval_tasks_of

    args = Args(tasks="train-easy", task_pool_size=48, rl_pool_size=40, rl_level=1)
    warmup = make_task_pool(args)
    pool = make_rl_pool(args, warmup)
    assert len(pool.tasks) == 40 and {t.level for t in pool.tasks} == {1}
    assert {t.level for t in warmup.tasks} == {0, 1}  # the warm-up keeps both levels
    assert not {t.task_id for t in pool.tasks} & {t.task_id for t in warmup.tasks}
    assert min(int(t.task_id.rsplit("-", 1)[1]) for t in pool.tasks) >= 48  # seeds after the warm-up pool's
    with pytest.raises(ValueError, match="--rl_pool_size"):
        make_rl_pool(Args(tasks="train-easy", rl_level=1), warmup)
    _, validation = eval_tasks_of("train-easy@100000", 1, 12)
    assert len(validation) == 12 and {t.level for t in validation} == {1}
    assert validation[0].task_id == "train-easy-100000" or int(validation[0].task_id.rsplit("-", 1)[1]) > 100000


def test_an_rl_pool_of_new_kinds_asks_nothing_a_demonstration_shows():
    from agents.learner.config import Args, make_rl_pool, make_task_pool
    from agents.learner.task_choice import question_kind

    def kinds(tasks):
        return {question_kind(t.metadata["template"], t.question) for t in tasks}

    args = Args(tasks="train-easy", task_pool_size=48, rl_pool_size=64, rl_kinds="new")
    warmup = make_task_pool(args)
    pool = make_rl_pool(args, warmup)
    everything = make_rl_pool(Args(tasks="train-easy", task_pool_size=48, rl_pool_size=64), warmup)
    assert len(pool.tasks) == 64 and not kinds(pool.tasks) & kinds(warmup.tasks)
    assert kinds(everything.tasks) & kinds(warmup.tasks)  # unfiltered, the RL pool repeats the warm-up's kinds
    assert pool.name.endswith("-new-kinds") and {t.level for t in pool.tasks} == {0, 1}
    level1 = make_rl_pool(Args(tasks="train-easy", task_pool_size=48, rl_pool_size=16, rl_kinds="new", rl_level=1),
                          warmup)
    assert {t.level for t in level1.tasks} == {1} and not kinds(level1.tasks) & kinds(warmup.tasks)
    with pytest.raises(ValueError, match="--rl_kinds filters the separate RL pool"):
        make_rl_pool(Args(tasks="train-easy", rl_kinds="new"), warmup)


def test_an_rl_pool_from_a_world_of_its_own_shares_no_name_and_plays_with_its_own_tools():
    from agents.learner.config import make_rl_pool, make_task_pool
    from agents.learner.heldout import same_tools
    from agents.learner.task_choice import task_kind
    from toolr1_env.suite.worlds import WORLD_NAMES, get_world

    args = Args(tasks="train-easy", task_pool_size=48, rl_pool_size=32, rl_tasks="rl-easy", rl_kinds="new")
    warmup = make_task_pool(args)
    pool = make_rl_pool(args, warmup)
    assert pool.name == "rl-easy-pool@0-new-kinds" and len(pool.tasks) == 32
    assert {t.metadata["world"] for t in pool.tasks} == {"rl"} and pool.tasks[0].task_id == "rl-easy-0"
    assert not {task_kind(t) for t in pool.tasks} & {task_kind(t) for t in warmup.tasks}
    rl_names = {name.lower() for name in get_world("rl").all_names()}
    for other in set(WORLD_NAMES) - {"rl"}:  # no entity, page or answer of another world is named there
        assert not rl_names & {name.lower() for name in get_world(other).all_names()}, other
    assert not same_tools(pool, warmup)  # so the trainer gives the RL pool envs of its own
    entity = sorted(rl_names)[0]
    search = {tool.__name__: tool for tool in pool.tools}["web_search"]
    elsewhere = {tool.__name__: tool for tool in warmup.tools}["web_search"]
    assert search(entity)[0]["title"].lower() == entity and elsewhere(entity) == []
    with pytest.raises(ValueError, match="--rl_tasks 'rl-easy' names the separate RL pool's split"):
        make_rl_pool(Args(tasks="train-easy", rl_tasks="rl-easy"), warmup)
    with pytest.raises(ValueError, match="--rl_pool_size needs a generated split; 'level1-eval' is fixed"):
        make_rl_pool(Args(tasks="train-easy", rl_pool_size=8, rl_tasks="level1-eval"), warmup)


def test_idle_envs_release_their_sandboxes_and_start_fresh_ones_at_the_next_reset():
    from agents.learner.heldout import make_envs, release_sandboxes
    from toolr1_env.env import resolve_tasks

    envs = make_envs(resolve_tasks("level1-eval"), Args(max_turns=4), num_envs=2)
    try:
        envs.reset_some([0, 1], seeds=[0, 1])
        envs.step_live({0: "x = 41", 1: "x = 1"})
        with pytest.raises(RuntimeError, match="an episode is still running"):
            release_sandboxes(envs)
        envs.step_live({0: "final_answer(str(x + 1))"})
        envs.abandon(1)
        assert release_sandboxes(envs) == 2 and not any(env.has_sandbox for env in envs.envs)
        assert release_sandboxes(envs) == 0
        envs.reset_some([0], seeds=[0])
        outcome = envs.step_live({0: "print('x' in globals(), 6 * 7)"})[0]
        assert outcome.observation.strip().endswith("False 42") and envs.envs[0].has_sandbox  # a fresh sandbox
    finally:
        envs.close()


def test_the_trainer_plays_an_rl_pool_of_another_world_in_that_world(tmp_path):
    from tests.test_train_grpo import rows, run

    out = tmp_path / "run"
    result = run(["--rl_tasks", "rl-easy", "--rl_pool_size", "4", "--iterations", "1", "--no_use_queue",
                  "--output_dir", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    played = rows(out)[1]["rollout/task_ids"].split(",")
    assert len(played) == 2 and all(task_id.startswith("rl-easy-") for task_id in played), played
    assert json.loads((out / "args.json").read_text())["rl_tasks"] == "rl-easy"


def test_learner_sandboxes_preload_only_what_the_run_asks_for():
    # pandas in every fork server costs ~38 MiB a sandbox (2.4 GiB over the recipe's 64); agent code still imports it
    from agents.learner.heldout import make_envs
    from toolr1_env.env import resolve_tasks

    tasks = resolve_tasks("level1-eval")
    for preload, expected in (("numpy", ("numpy",)), ("numpy,pandas", ("numpy", "pandas")), ("", ())):
        with make_envs(tasks, Args(num_envs=2, sandbox_preload=preload)) as envs:
            assert [env.sandbox_config.preload for env in envs.envs] == [expected, expected]
            assert envs.envs[0].sandbox_config.step_timeout == Args().step_timeout  # the run's other settings kept
    assert Args().sandbox_preload == "numpy"
