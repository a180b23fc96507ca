"""benchmarks/bench_rl.py without training: the paired test, question kinds, the SFT budget and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.learner.task_choice import question_kind
from benchmarks import bench_rl


def test_mcnemar_exact_p_values():
    assert bench_rl.mcnemar(0, 0) == 1.0
    assert bench_rl.mcnemar(6, 0) == pytest.approx(2 / 64)  # all 6 discordant pairs one way
    assert bench_rl.mcnemar(5, 5) == 1.0
    assert bench_rl.mcnemar(15, 5) == pytest.approx(0.0414, abs=1e-4)


def test_question_kinds_blank_names_numbers_and_files_but_keep_the_asked_fact():
    a = question_kind("person_fact", "How tall is Dy Vigretryk, in centimetres?")
    b = question_kind("person_fact", "How tall is Ama Lo, in centimetres?")
    c = question_kind("person_fact", "Who employs Ama Lo?")
    assert a == b != c
    assert question_kind("inventory_file", "What is the stock of 'lamp' in the attached file a.pdf?") == \
        question_kind("inventory_file", "What is the stock of 'desk' in the attached file inv.pdf?")


def _run(folder: Path, rows: list[dict], outcomes: dict[str, bool], summary: dict, args: dict | None = None) -> None:
    (folder / "episodes").mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    step = max(r["step"] for r in rows)
    (folder / "episodes" / f"eval-{step}.jsonl").write_text(
        "".join(json.dumps({"task_id": t, "correct": c}) + "\n" for t, c in outcomes.items()))
    (folder / "summary.json").write_text(json.dumps(summary))
    if args:
        (folder / "args.json").write_text(json.dumps(args))


def test_sft_budget_and_report_from_runs_on_disk(tmp_path, monkeypatch):
    seed = tmp_path / "seed0"
    tasks = [f"level1-eval-{i:04d}" for i in range(4)]
    _run(seed / "warmup", [{"step": 0, "time/warmup_s": 600.0}], {}, {"wall_seconds": 700.0, "peak_gib": 7.0},
         {"demo_warmup_epochs": 6})
    _run(seed / "warmup-eval", [{"step": 0}], dict(zip(tasks, [1, 0, 0, 0], strict=True)), {"wall_seconds": 90.0})
    _run(seed / "grpo", [{"step": 0}, {"step": 1, "rollout/wall_s": 300.0, "time/update_s": 50.0},
                         {"step": 2, "rollout/wall_s": 30.0, "time/update_s": 10.0, "time/eval_s": 200.0}],
         dict(zip(tasks, [1, 1, 1, 0],
                                                                                     strict=True)),
         {"wall_seconds": 500.0})
    _run(seed / "sft", [{"step": 0}], dict(zip(tasks, [1, 1, 0, 0], strict=True)), {"wall_seconds": 450.0},
         {"demo_warmup_epochs": 4})
    assert bench_rl.sft_passes(seed) == 4  # 390 s of rollouts and updates (evaluation excluded) / 100 s per pass
    assert bench_rl.sft_passes(seed, override=5) == 5
    assert bench_rl.sft_passes(seed, seconds_per_pass=78.0) == 5  # 390 s at a pass measured elsewhere
    asked: list[str] = []
    monkeypatch.setattr(bench_rl, "kinds", lambda split: asked.append(split) or (
        {t: "k" for t in tasks}, {"k"}, {"k", "other"}))
    body = bench_rl.report(bench_rl.BenchArgs(seeds=[0], runs_dir=str(tmp_path)))
    assert "| warm-up + GRPO | 75.0 | 75.0 | 75.0 (4) | - | - |" in body
    assert "| warm-up + GRPO vs warm-up only | +50.0 | 2 | 0 | 0.500 |" in body
    assert "| warm-up + GRPO vs warm-up + SFT (same wall time) | +25.0 | 1 | 0 | 1.000 |" in body
    assert "seeds finished: [0] (a claim needs all 3)" in body
    assert asked == ["train-easy"]  # the pools' kinds come from the split the warm-up trained on
    assert "GRPO arm: the recipe's RL phase, no demonstrations in the RL updates" in body
    (seed / "grpo" / "args.json").write_text(json.dumps({"rl_demo_coef": 1.0, "rl_demo_batch": 16}))
    body = bench_rl.report(bench_rl.BenchArgs(seeds=[0], runs_dir=str(tmp_path)))
    assert "GRPO arm: the recipe's RL phase, demonstrations mixed into each RL update: 16 at weight 1.0" in body
    assert "| seed 0 | 11.7 | 8.3 | 7.5 | 4 | 7.0 |" in body


def test_every_arm_is_scored_on_the_validation_split_and_the_long_files(tmp_path, monkeypatch):
    seed = tmp_path / "seed0"
    started: list[list[str]] = []
    monkeypatch.setattr(bench_rl, "train", lambda run_dir, flags: started.append([str(run_dir), *flags]) or {})
    args = bench_rl.BenchArgs(files_eval="files-eval", validation="train-easy-files@100000")
    assert bench_rl.final_scorings(args) == {"validation": ("train-easy-files@100000", 48), "files": ("files-eval", 0)}
    assert bench_rl.final_scorings(bench_rl.BenchArgs(validation="")) == {}
    for folder, (tasks, size) in bench_rl.final_scorings(args).items():
        bench_rl.score_final_adapters(seed, str(seed / "warmup" / "checkpoints" / "warmup"), folder, tasks, size)
    assert [run[0] for run in started] == [str(seed / a / f) for f in ("validation", "files")
                                           for a in ("warmup-eval", "grpo", "sft")]
    adapters = [run[run.index("--init_adapter") + 1] for run in started[:3]]
    assert adapters == [str(seed / "warmup" / "checkpoints" / "warmup"), str(seed / "grpo"),
                        str(seed / "sft" / "checkpoints" / "warmup")]
    assert [(run[run.index("--eval_tasks") + 1], run[run.index("--eval_size") + 1]) for run in started] == \
        [("train-easy-files@100000", "48")] * 3 + [("files-eval", "0")] * 3
    assert all(run[run.index("--iterations") + 1] == "0" and run[run.index("--eval_level") + 1] == "1"
               for run in started)
    val = [f"train-easy@100000-{i}" for i in range(4)]
    for arm, hits in (("warmup-eval", [1, 0, 0, 0]), ("grpo", [1, 1, 1, 0]), ("sft", [0, 1, 0, 0])):
        _run(seed / arm / "validation", [{"step": 0}], dict(zip(val, hits, strict=True)), {"wall_seconds": 60.0})
        _run(seed / arm / "files", [{"step": 0}], dict(zip(val[:2], hits[:2], strict=True)), {"wall_seconds": 9.0})
    body = bench_rl.final_report(bench_rl.BenchArgs(runs_dir=str(tmp_path)), [0])
    assert body.startswith("Training-world validation (4 level-1 tasks of `train-easy@100000`")
    assert "| warm-up + GRPO | 75.0 | 75.0 |" in body and "| warm-up + SFT (same wall time) | 25.0 | 25.0 |" in body
    assert "| warm-up + GRPO vs warm-up + SFT (same wall time): won / lost, McNemar p | 2 / 0 | 0.500 |" in body
    files = bench_rl.final_report(bench_rl.BenchArgs(runs_dir=str(tmp_path)), [0], "files", "files-eval")
    assert files.startswith("Long files (2 level-1 tasks of `files-eval`")
    assert "| warm-up only | 50.0 | 50.0 |" in files and "| warm-up + GRPO | 100.0 | 100.0 |" in files
    assert bench_rl.final_report(bench_rl.BenchArgs(runs_dir=str(tmp_path)), [1]) == ""


def test_validation_leaves_out_the_questions_a_training_pool_also_asks(tmp_path):
    preset = {"tasks": "train-easy", "task_pool_size": 48, "rl_pool_size": 192, "rl_level": -1}
    # The training world has 10 countries: three validation questions about them recur in the pools (seeds 10,
    # 53 and 236 ask the very same thing), though no validation seed is a pool seed.
    assert bench_rl.asked_by_pools("train-easy@100000", 48, preset) == {
        "train-easy-100005", "train-easy-100055", "train-easy-100076"}
    assert bench_rl.asked_by_pools("train-easy@100000", 48, {**preset, "rl_pool_size": 0}) == {"train-easy-100055"}
    # an RL pool of new kinds skips the currency-code kind the warm-up pool asks: only seed 10's question is left
    assert bench_rl.asked_by_pools("train-easy@100000", 48, {**preset, "rl_kinds": "new"}) == {"train-easy-100055"}
    seed = tmp_path / "seed0"
    (seed / "warmup").mkdir(parents=True)
    (seed / "warmup" / "args.json").write_text(json.dumps(preset))
    val = ["train-easy-100005", "train-easy-100001", "train-easy-100002"]
    for arm, hits in (("warmup-eval", [0, 1, 0]), ("grpo", [1, 1, 1]), ("sft", [1, 0, 0])):
        _run(seed / arm / "validation", [{"step": 0}], dict(zip(val, hits, strict=True)), {"wall_seconds": 60.0})
    body = bench_rl.final_report(bench_rl.BenchArgs(runs_dir=str(tmp_path)), [0])
    assert body.startswith("Training-world validation (2 level-1 tasks of `train-easy@100000`")
    assert "left out: 1 whose question a training pool also asks (train-easy-100005)" in body
    assert "| warm-up only | 50.0 | 50.0 |" in body and "| warm-up + SFT (same wall time) | 0.0 | 0.0 |" in body
    assert "| warm-up + GRPO vs warm-up + SFT (same wall time): won / lost, McNemar p | 2 / 0 | 0.500 |" in body


def test_the_mixed_arm_ends_on_the_best_mix_on_the_selection_split_and_a_tie_keeps_the_grpo_arm(tmp_path,
                                                                                               monkeypatch):
    seed = tmp_path / "seed1"
    (seed / "grpo" / "checkpoints" / "best").mkdir(parents=True)
    (seed / "grpo" / "args.json").write_text(json.dumps({"select_tasks": "train-easy@200000", "select_size": 48}))
    (seed / "grpo" / "checkpoints" / "best" / "best.json").write_text(json.dumps({"iteration": 2, "score": 0.5}))
    mixed: list[tuple[str, str, float]] = []

    def fake_mix(start, end, weight, output):
        mixed.append((str(start), str(end), weight))
        (output / "adapter").mkdir(parents=True)
        return output

    monkeypatch.setattr("agents.learner.checkpointing.mix_adapters", fake_mix)
    scores = {"w0.25": 0.4375, "w0.5": 0.5208, "w0.75": 0.5}
    started: list[list[str]] = []
    monkeypatch.setattr(bench_rl, "train", lambda run_dir, flags: started.append([str(run_dir), *flags]) or {
        "eval_success_end": scores[run_dir.parent.name]})
    chosen = bench_rl.choose_mix(seed, "START", [0.25, 0.5, 0.75], "checkpoints/rl-end")
    assert chosen == seed / "mix" / "w0.5"
    assert mixed == [("START", str(seed / "grpo" / "checkpoints" / "rl-end"), w) for w in (0.25, 0.5, 0.75)]
    assert [run[0] for run in started] == [str(seed / "mix" / f"w{w}" / "select") for w in ("0.25", "0.5", "0.75")]
    first = started[0]
    assert [first[first.index(flag) + 1] for flag in ("--seed", "--eval_tasks", "--eval_size", "--iterations",
                                                      "--init_adapter")] == \
        ["1", "train-easy@200000", "48", "0", str(seed / "mix" / "w0.25")]
    choice = json.loads((seed / "mix" / "choice.json").read_text())
    assert choice["chosen"] == "w0.5" and choice["scores"]["grpo"] == 0.5
    assert bench_rl.final_adapter(seed, "grpo-mix") == "mix/w0.5"
    assert bench_rl.arms_of(seed) == ["warmup-eval", "grpo", "sft", "grpo-mix"]

    scores.update({"w0.5": 0.5})  # a mix that only equals the GRPO arm's adapter does not replace it
    assert bench_rl.choose_mix(seed, "START", [0.25, 0.5, 0.75], "checkpoints/rl-end") == seed / "grpo"
    assert bench_rl.final_adapter(seed, "grpo-mix") == "grpo"
    (seed / "grpo" / "args.json").write_text(json.dumps({"select_tasks": ""}))
    with pytest.raises(ValueError, match="without --select_tasks"):
        bench_rl.choose_mix(seed, "START", [0.5], "checkpoints/rl-end")


def test_the_report_compares_the_mixed_arm_with_every_other(tmp_path, monkeypatch):
    seed = tmp_path / "seed0"
    tasks = [f"level1-eval-{i:04d}" for i in range(4)]
    _run(seed / "warmup", [{"step": 0, "time/warmup_s": 600.0}], {}, {"wall_seconds": 700.0},
         {"demo_warmup_epochs": 6})
    for arm, hits in (("warmup-eval", [1, 0, 0, 0]), ("grpo", [1, 1, 0, 0]), ("sft", [0, 0, 0, 0]),
                      ("grpo-mix", [1, 1, 1, 1])):
        _run(seed / arm, [{"step": 0}], dict(zip(tasks, hits, strict=True)), {"wall_seconds": 60.0},
             {"demo_warmup_epochs": 4})
    (seed / "mix").mkdir()
    (seed / "mix" / "choice.json").write_text(json.dumps({"scores": {"grpo": 0.5, "w0.5": 0.5625},
                                                          "chosen": "w0.5", "end": "checkpoints/rl-end"}))
    monkeypatch.setattr(bench_rl, "kinds", lambda split: ({t: "k" for t in tasks}, {"k"}, {"k"}))
    body = bench_rl.report(bench_rl.BenchArgs(seeds=[0], runs_dir=str(tmp_path)))
    assert "| warm-up + GRPO, mixed back towards the warm-up | 100.0 | 100.0 | 100.0 (4) | - | - |" in body
    assert "| warm-up + GRPO, mixed back towards the warm-up vs warm-up only | +75.0 | 3 | 0 | 0.250 |" in body
    assert "| warm-up + GRPO, mixed back towards the warm-up vs warm-up + GRPO | +50.0 | 2 | 0 | 0.500 |" in body
    assert "seed 0: grpo 50.0, w0.5 56.2 (chose w0.5)" in body
    for arm, hits in (("warmup-eval", [1, 0]), ("grpo", [1, 0]), ("sft", [0, 0]), ("grpo-mix", [0, 1])):
        _run(seed / arm / "files", [{"step": 0}], dict(zip(tasks[:2], hits, strict=True)), {"wall_seconds": 9.0})
    files = bench_rl.final_report(bench_rl.BenchArgs(runs_dir=str(tmp_path)), [0], "files", "files-eval")
    assert "| warm-up + GRPO, mixed back towards the warm-up | 50.0 | 50.0 |" in files
    assert "| warm-up + GRPO, mixed back towards the warm-up vs warm-up + GRPO: won / lost, McNemar p | 1 / 1 |" \
        in files
    (seed / "grpo-mix" / "files" / "summary.json").unlink()  # a seed without it: the other arms are still reported
    assert "mixed back" not in bench_rl.final_report(bench_rl.BenchArgs(runs_dir=str(tmp_path)), [0], "files")
    assert "| warm-up + GRPO | 50.0 | 50.0 |" in bench_rl.final_report(bench_rl.BenchArgs(runs_dir=str(tmp_path)),
                                                                      [0], "files")
    (seed / "grpo-mix" / "summary.json").unlink()  # until every seed has it, the arm stays out of the table
    assert "mixed back" not in bench_rl.report(bench_rl.BenchArgs(seeds=[0], runs_dir=str(tmp_path)))


def test_the_last_arm_scores_the_last_rl_adapter_and_joins_the_report(tmp_path, monkeypatch):
    seed = tmp_path / "seed0"
    tasks = [f"level1-eval-{i:04d}" for i in range(4)]
    _run(seed / "warmup", [{"step": 0, "time/warmup_s": 600.0}], {}, {"wall_seconds": 700.0},
         {"demo_warmup_epochs": 6})
    for arm, hits in (("warmup-eval", [1, 0, 0, 0]), ("grpo", [1, 1, 1, 0]), ("sft", [0, 0, 0, 0])):
        _run(seed / arm, [{"step": 0}], dict(zip(tasks, hits, strict=True)), {"wall_seconds": 60.0},
             {"demo_warmup_epochs": 4, "select_tasks": "train-easy@200000"})
    with pytest.raises(FileNotFoundError, match="holds no last adapter"):  # guarded, but no last adapter kept
        bench_rl.last_adapter(seed, "checkpoints/rl-end")
    (seed / "grpo" / "checkpoints" / "rl-end").mkdir(parents=True)
    assert bench_rl.last_adapter(seed, "checkpoints/rl-end") == seed / "grpo" / "checkpoints" / "rl-end"

    started: list[list[str]] = []

    def fake_train(run_dir, flags):  # only the last arm is missing; it records its adapter as a run would
        started.append([str(run_dir), *flags])
        _run(run_dir, [{"step": 0}], dict(zip(tasks, [1, 1, 0, 0], strict=True)), {"wall_seconds": 30.0},
             {"init_adapter": flags[flags.index("--init_adapter") + 1]})
        return {}

    monkeypatch.setattr(bench_rl, "train", lambda run_dir, flags: {} if (run_dir / "summary.json").is_file()
                        else fake_train(run_dir, flags))
    monkeypatch.setattr(bench_rl, "sft_passes", lambda *a: 4)
    bench_rl.run_seed(0, bench_rl.BenchArgs(runs_dir=str(tmp_path), last=True, validation=""))
    assert [run[0] for run in started] == [str(seed / "grpo-last")]
    flags = started[0]
    assert flags[flags.index("--init_adapter") + 1] == str((seed / "grpo" / "checkpoints" / "rl-end").resolve())
    assert flags[flags.index("--iterations") + 1] == "0"
    assert bench_rl.arms_of(seed) == ["warmup-eval", "grpo", "sft", "grpo-last"]
    assert bench_rl.final_adapter(seed, "grpo-last") == str((seed / "grpo" / "checkpoints" / "rl-end").resolve())

    monkeypatch.setattr(bench_rl, "kinds", lambda split: ({t: "k" for t in tasks}, {"k"}, {"k"}))
    body = bench_rl.report(bench_rl.BenchArgs(seeds=[0], runs_dir=str(tmp_path)))
    assert "| warm-up + GRPO, last RL adapter (no guard) | 50.0 | 50.0 | 50.0 (4) | - | - |" in body
    assert "| warm-up + GRPO, last RL adapter (no guard) vs warm-up only | +25.0 | 1 | 0 | 1.000 |" in body
    assert "| warm-up + GRPO vs warm-up + GRPO, last RL adapter (no guard) | +25.0 | 1 | 0 | 1.000 |" in body
    assert "inside each seed's folder: seed 0: grpo/checkpoints/rl-end" in body

    (seed / "grpo" / "args.json").write_text(json.dumps({"select_tasks": ""}))  # no guard: the run ends on it
    assert bench_rl.last_adapter(seed, "checkpoints/rl-end") == seed / "grpo"
