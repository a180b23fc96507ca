"""The RL phase's best-adapter guard (agents/learner/selection.py, ``--select_tasks``): which adapter is kept,
that taking it back restores it exactly (from memory and, after a kill, from disk), and a run that ends on it."""

from __future__ import annotations

import json

import pytest
import torch

from agents.learner.config import Args, check_args
from agents.learner.model_loading import make_tiny_model
from agents.learner.policy import Policy, PolicyConfig
from agents.learner.selection import BestAdapter, Selected


@pytest.fixture()
def policy() -> Policy:
    model, tokenizer = make_tiny_model(seed=0)
    return Policy(model, tokenizer, PolicyConfig(lora_r=4, lora_alpha=8, max_new_tokens=6))


def _weights(policy: Policy) -> list[torch.Tensor]:
    return [p.detach().clone() for p in policy.trainable_parameters()]


def _nudge(policy: Policy, amount: float) -> None:
    with torch.no_grad():
        for p in policy.trainable_parameters():
            p.add_(amount)


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_the_best_score_is_kept_a_tie_keeps_the_earlier_and_taking_it_back_restores_it_exactly(policy, tmp_path):
    best = BestAdapter(tmp_path / "best")
    assert best.offer(policy, 0, 0.30, Args())  # the first offer is always kept
    _nudge(policy, 0.01)
    after_two = _weights(policy)
    assert best.offer(policy, 2, 0.40, Args())
    _nudge(policy, 0.01)
    assert not best.offer(policy, 4, 0.40, Args())  # a tie: the same score with fewer RL steps wins
    _nudge(policy, 0.01)
    assert not best.offer(policy, 6, 0.20, Args())
    assert not _same(_weights(policy), after_two)

    assert best.take_back(policy) == Selected(2, 0.40)
    assert _same(_weights(policy), after_two)
    assert json.loads((tmp_path / "best" / "best.json").read_text()) == {"iteration": 2, "score": 0.40}
    assert (tmp_path / "best" / "adapter" / "adapter_config.json").is_file()


def test_a_resumed_guard_takes_the_best_adapter_back_from_disk(policy, tmp_path):
    BestAdapter(tmp_path / "best").offer(policy, 3, 0.5, Args())
    kept = _weights(policy)
    _nudge(policy, 0.05)

    resumed = BestAdapter(tmp_path / "best")  # a new process after a kill: nothing in memory
    assert resumed.resume() == Selected(3, 0.5)
    assert not resumed.offer(policy, 5, 0.45, Args())
    assert resumed.take_back(policy) == Selected(3, 0.5)
    assert all(torch.allclose(x, y) for x, y in zip(_weights(policy), kept, strict=True))
    assert BestAdapter(tmp_path / "nothing").resume() is None
    with pytest.raises(RuntimeError, match="no adapter was scored"):
        BestAdapter(tmp_path / "nothing").take_back(policy)


@pytest.mark.parametrize("changes", [{"select_every": 0}, {"select_size": 0}])
def test_a_selection_that_would_never_score_is_refused(changes):
    with pytest.raises(ValueError, match="chooses among RL iterations"):
        check_args(Args(select_tasks="train-easy@200000", **changes))
    check_args(Args(select_tasks="train-easy@200000", iterations=0, **changes))  # no RL: nothing to choose, unused


def test_a_run_scores_the_selection_split_each_iteration_and_ends_on_the_best_adapter(tmp_path):
    from agents.learner.checkpointing import latest_checkpoint
    from tests.test_train_grpo import rows, run

    out = tmp_path / "run"
    result = run(["--iterations", "2", "--select_tasks", "train-easy@200000", "--select_size", "2",
                  "--eval_level", "0", "--output_dir", str(out)])
    assert result.returncode == 0, result.stderr[-3000:]
    logged = rows(out)
    scored = [r["step"] for r in logged if "select/success" in r]
    assert scored == [0, 1, 2]  # as RL starts, then after every iteration
    assert {p.name for p in (out / "episodes").glob("select-*.jsonl")} == {f"select-{i}.jsonl" for i in range(3)}
    episodes = [json.loads(line) for line in (out / "episodes" / "select-0.jsonl").read_text().splitlines()]
    assert len(episodes) == 2 and all(e["task_id"].startswith("train-easy-") for e in episodes)
    kept = json.loads((out / "checkpoints" / "best" / "best.json").read_text())
    scores = {r["step"]: r["select/success"] for r in logged if "select/success" in r}
    assert kept["score"] == max(scores.values())
    assert kept["iteration"] == min(step for step, score in scores.items() if score == kept["score"])
    assert logged[-1]["select/kept_iteration"] == kept["iteration"]
    assert f"ends on the adapter after iteration {kept['iteration']}" in result.stderr
    table = (out / "results.txt").read_text()  # the end row says which adapter it scored
    assert ("end (iteration" in table) == (kept["iteration"] != 2), table
    assert kept["iteration"] == 2 or f"end (iteration {kept['iteration']}'s adapter)" in table

    from safetensors.torch import load_file

    final = load_file(str(latest_checkpoint(out) / "adapter" / "adapter_model.safetensors"))
    best = load_file(str(out / "checkpoints" / "best" / "adapter" / "adapter_model.safetensors"))
    assert final.keys() == best.keys() and all(torch.equal(final[k], best[k]) for k in final)
    # the last RL adapter stays beside it (checkpoints/rl-end): the kept one itself when the last scored best
    rl_end = load_file(str(out / "checkpoints" / "rl-end" / "adapter" / "adapter_model.safetensors"))
    assert rl_end.keys() == best.keys()
    if kept["iteration"] == 2:
        assert all(torch.equal(rl_end[k], best[k]) for k in best)
