"""The arm benchmarks (benchmarks/bench_queue.py, benchmarks/bench_truncation.py and their shared
benchmarks/arm_runs.py): arms, run keys, reading runs and the reports, without training."""

from __future__ import annotations

import json
from pathlib import Path

from agents.learner.train import parse_args
from benchmarks import bench_queue, bench_truncation
from benchmarks.arm_runs import ArmArgs, RunResult, read_run, run_arms, run_key, training_command


def test_each_queue_arm_is_the_trainer_with_one_source_of_the_queue_switched():
    settings = {arm: parse_args(["--preset", "single-step", *flags]) for arm, flags in bench_queue.ARMS.items()}
    assert not settings["no-queue"].use_queue
    assert settings["own"].use_queue and not settings["own"].queue_demonstrations
    assert settings["own"].queue_admit_online
    assert settings["demos"].queue_demonstrations and not settings["demos"].queue_admit_online
    assert settings["both"].queue_demonstrations and settings["both"].queue_admit_online


def test_truncation_arms_differ_only_in_masking():
    scored, masked = (parse_args(["--preset", "single-step", *flags]) for flags in bench_truncation.ARMS.values())
    assert not scored.mask_truncated and masked.mask_truncated
    assert {k: v for k, v in vars(scored).items() if k != "mask_truncated"} == \
        {k: v for k, v in vars(masked).items() if k != "mask_truncated"}


def test_run_keys_follow_the_resolved_settings_but_not_the_iteration_count():
    args = ArmArgs()
    own = training_command(bench_queue.ARMS["own"], 0, args)
    both = training_command(bench_queue.ARMS["both"], 0, args)
    assert "--iterations" not in own and run_key(own) != run_key(both)
    assert run_key(own) == run_key([*own, "--iterations", "12", "--output_dir", "elsewhere"])
    assert run_key(own) != run_key(training_command(bench_queue.ARMS["own"], 1, args))
    assert run_key(own) != run_key(training_command(bench_queue.ARMS["own"], 0, ArmArgs(train_args=["--lr", "1e-3"])))
    assert "--eval_tasks" in own and own[own.index("--eval_tasks") + 1] == "warmup-eval"
    # Arms that resolve to the same settings share one run: a flag equal to its default changes nothing.
    default = parse_args(["--preset", "single-step"]).mask_truncated
    same = bench_truncation.ARMS["masked" if default else "scored"]
    assert run_key(training_command(same, 0, args)) == run_key(both)
    assert run_key(training_command(bench_truncation.ARMS["scored"], 0, args)) != \
        run_key(training_command(bench_truncation.ARMS["masked"], 0, args))


def _write_run(folder: Path, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_read_run_finds_the_first_evaluation_at_the_threshold(tmp_path: Path):
    rows = [{"step": 0, "eval/success": 0.0, "rollout/online_total": 0.0},
            {"step": 1, "reward/mean": 0.1, "rollout/online_total": 32.0},
            {"step": 2, "eval/success": 0.15625, "rollout/online_total": 60.0, "time/elapsed_s": 99.0},
            {"step": 4, "eval/success": 0.09375, "rollout/online_total": 120.0, "time/elapsed_s": 200.0,
             "eval/repeat_ngram_rate": 0.25}]
    _write_run(tmp_path, rows)
    result = read_run(tmp_path, "own", 0, 0.125)
    assert result.success == [0.0, 0.15625, 0.09375] and result.rollouts_to_threshold == 60.0
    assert result.seconds_to_threshold == 99.0
    assert result.final["eval/repeat_ngram_rate"] == 0.25 and [r["step"] for r in result.training] == [1, 2, 4]


def test_run_arms_reuses_finished_runs_and_refuses_unknown_arms(tmp_path: Path):
    args = ArmArgs(seeds=[0], iterations=2, runs_dir=str(tmp_path))
    for flags in bench_truncation.ARMS.values():  # finished runs, as the trainer leaves them
        folder = tmp_path / f"seed0-{run_key(training_command(flags, 0, args))}"
        _write_run(folder, [{"step": 0, "eval/success": 0.0}, {"step": 2, "eval/success": 0.25}])
        (folder / "summary.json").write_text(json.dumps({"iterations": 2}))
    results, wall = run_arms(bench_truncation.ARMS, args)
    assert [(r.arm, r.success) for r in results] == [("scored", [0.0, 0.25]), ("masked", [0.0, 0.25])]
    assert wall == {"scored-0": 0.0, "masked-0": 0.0}
    try:
        run_arms(bench_truncation.ARMS, ArmArgs(arms=["nope"], runs_dir=str(tmp_path)))
    except ValueError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("an unknown arm must be refused")


def test_queue_report_gives_spreads_and_marks_lower_bounds_without_targets():
    results = [RunResult("both", 0, [0, 64, 128], [0, 1, 2], [0.0, 0.2, 0.3], 1),
               RunResult("both", 1, [0, 60, 120], [0, 1, 2], [0.0, 0.1, 0.2], 2),
               RunResult("no-queue", 0, [0, 64, 128], [0, 1, 2], [0.0, 0.0, 0.0], None),
               RunResult("no-queue", 1, [0, 64, 128], [0, 1, 2], [0.0, 0.0, 0.125], 2)]
    body = bench_queue.report(results, ArmArgs(seeds=[0, 1], arms=["no-queue", "both"]),
                              {"both-0": 5.0, "no-queue-0": 0.0})
    assert "| both | 2/2 | 92 [64, 120] | 0.250 [0.200, 0.300] | 0.050 |" in body
    assert "| no-queue | 1/2 | 128 [128, 128] (lower bound) | 0.062 [0.000, 0.125] |" in body
    assert "target" not in body.lower()
    assert "**own**" in body and "**demos**" in body


def test_truncation_report_gives_degeneration_per_arm_and_names_the_better_arm():
    def run(arm: str, seed: int, final: float, repeat: float) -> RunResult:
        training = [{"step": s, "reward/repeat_ngram_rate": repeat * s, "reward/truncated": 0.5,
                     "reward/turn_length_cut": 0.1} for s in (1, 2, 3, 4)]
        last = {"eval/success": final, "eval/repeat_ngram_rate": repeat, "eval/turn_length_cut": 0.2,
                "eval/truncated": 0.3, "eval/answered": 0.6}
        return RunResult(arm, seed, [0, 100], [0, 1], [0.0, final], 1 if final >= 0.125 else None, last, training)

    results = [run("scored", 0, 0.25, 0.1), run("scored", 1, 0.125, 0.3), run("masked", 0, 0.0, 0.5),
               run("masked", 1, 0.0625, 0.7)]
    body = bench_truncation.report(results, ArmArgs(seeds=[0, 1]), {})
    # training repeats: mean of the last half (steps 3, 4) -> scored 0.35 and 1.05, masked 1.75 and 2.45
    assert "| scored | 0.200 [0.100, 0.300] | 0.200 [0.200, 0.200] | 0.300 [0.300, 0.300] | 0.600 [0.600, 0.600] " \
           "| 0.700 [0.350, 1.050] | 0.100 [0.100, 0.100] | 0.500 [0.500, 0.500] |" in body
    assert "**scored 0.188** vs masked 0.031 (ranges disjoint)." in body
    assert "target" not in body.lower()
