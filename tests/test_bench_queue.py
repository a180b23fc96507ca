"""The queue benchmark's arms, run keys and report (benchmarks/bench_queue.py), without training."""

from __future__ import annotations

import json
from pathlib import Path

from agents.learner.train import parse_args
from benchmarks.bench_queue import ARMS, BenchArgs, RunResult, read_run, report, run_key, training_command


def test_each_arm_is_the_trainer_with_one_source_of_the_queue_switched():
    settings = {arm: parse_args(flags) for arm, flags in ARMS.items()}
    assert not settings["no-queue"].use_queue
    assert settings["own"].use_queue and not settings["own"].queue_demonstrations
    assert settings["own"].queue_admit_online
    assert settings["demos"].queue_demonstrations and not settings["demos"].queue_admit_online
    assert settings["both"].queue_demonstrations and settings["both"].queue_admit_online


def test_run_keys_follow_the_arguments_but_not_the_iteration_count():
    args = BenchArgs()
    own, both = training_command("own", 0, args), training_command("both", 0, args)
    assert "--iterations" not in own and run_key(own) != run_key(both)
    assert run_key(own) == run_key(training_command("own", 0, BenchArgs(iterations=12)))
    assert run_key(own) != run_key(training_command("own", 1, args))
    assert run_key(own) != run_key(training_command("own", 0, BenchArgs(train_args=["--lr", "1e-3"])))
    assert "--eval_tasks" in own and own[own.index("--eval_tasks") + 1] == "warmup-eval"


def test_read_run_finds_the_first_evaluation_at_the_threshold(tmp_path: Path):
    rows = [{"step": 0, "eval/success": 0.0, "rollout/online_total": 0.0},
            {"step": 1, "reward/mean": 0.1, "rollout/online_total": 32.0},
            {"step": 2, "eval/success": 0.15625, "rollout/online_total": 60.0, "time/elapsed_s": 99.0},
            {"step": 4, "eval/success": 0.09375, "rollout/online_total": 120.0, "time/elapsed_s": 200.0}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = read_run(tmp_path, "own", 0, 0.125)
    assert result.success == [0.0, 0.15625, 0.09375] and result.rollouts_to_threshold == 60.0
    assert result.seconds_to_threshold == 99.0


def test_report_gives_spreads_and_marks_lower_bounds_without_targets():
    results = [RunResult("both", 0, [0, 64, 128], [0, 1, 2], [0.0, 0.2, 0.3], 1),
               RunResult("both", 1, [0, 60, 120], [0, 1, 2], [0.0, 0.1, 0.2], 2),
               RunResult("no-queue", 0, [0, 64, 128], [0, 1, 2], [0.0, 0.0, 0.0], None),
               RunResult("no-queue", 1, [0, 64, 128], [0, 1, 2], [0.0, 0.0, 0.125], 2)]
    body = report(results, BenchArgs(seeds=[0, 1], arms=["no-queue", "both"]), {"both-0": 5.0, "no-queue-0": 0.0})
    assert "| both | 2/2 | 92 [64, 120] | 0.250 [0.200, 0.300] | 0.050 |" in body
    assert "| no-queue | 1/2 | 128 [128, 128] (lower bound) | 0.062 [0.000, 0.125] |" in body
    assert "target" not in body.lower()
    assert "**own**" in body and "**demos**" in body
