"""benchmarks/bench_main.py: the report over seeds of the main command, from run folders on disk, and the memory
watch it uses (benchmarks/memory.py) on a real process tree."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_main import TITLE, MainArgs, report, section_title
from benchmarks.memory import MemoryWatch, tree_pss_mib


def fake_run(root: Path, seed: int, after: list[bool], end: list[bool], wall_s: float, peak_gib: float) -> None:
    run = root / f"seed{seed}"
    (run / "episodes").mkdir(parents=True)
    for name, correct in (("eval-0", after), ("eval-6", end)):
        (run / "episodes" / f"{name}.jsonl").write_text(
            "\n".join(json.dumps({"task_id": f"t{i}", "correct": c}) for i, c in enumerate(correct)))
    (run / "summary.json").write_text(json.dumps({"eval_success_base": 0.0, "eval_success_start": sum(after) / 4,
                                                  "eval_success_end": sum(end) / 4}))
    (run / "metrics.jsonl").write_text(json.dumps({"time/eval_base_s": 120.0, "time/warmup_s": 300.0}) + "\n"
                                       + json.dumps({"reward/mean": 0.1}) + "\n")
    (run / "bench.json").write_text(json.dumps({"wall_s": wall_s, "peak_gib": peak_gib, "peak_at_s": 600.0,
                                                "peak_trainer_mib": 3072.0, "peak_sandboxes_mib": 2048.0,
                                                "commit": "abc1234", "date": "2026-12-06 05:00 UTC"}))


def test_report_gives_each_seed_the_spread_and_the_paired_test(tmp_path):
    fake_run(tmp_path, 0, [True, False, False, False], [True, True, True, False], wall_s=900.0, peak_gib=5.0)
    fake_run(tmp_path, 1, [True, True, False, False], [True, False, True, True], wall_s=1020.0, peak_gib=6.0)
    text = report(MainArgs(seeds=[0, 1, 2], runs_dir=str(tmp_path)))
    seed0 = next(line for line in text.splitlines() if line.startswith("| seed 0"))
    cells = [c.strip() for c in seed0.strip("|").split("|")]
    # start, after warm-up, end, wall, base eval, warm-up, the rest (15 - 2 - 5 = 8 min)
    assert cells[1:8] == ["0.0", "25.0", "75.0", "15.0", "2.0", "5.0", "8.0"]
    assert cells[8] == "5.0 (3.0 + 2.0) at 10 min"
    assert "| mean [min, max] | 0.0 [0.0, 0.0] | 37.5 [25.0, 50.0] | 75.0 [75.0, 75.0] | 16.0 [15.0, 17.0]" in text
    # seed 0: tasks 1, 2 won; seed 1: task 1 lost, tasks 2, 3 won -> 4 won, 1 lost
    assert "4 won, 1 lost, McNemar p = 0.375" in text
    assert "seeds finished: [0, 1]" in text  # seed 2 has no run: said, not hidden


def test_memory_watch_sees_a_child_that_holds_memory():
    child = subprocess.Popen([sys.executable, "-c", "import time; x = bytearray(200 * 2**20); time.sleep(3)"])
    watch = MemoryWatch(child.pid, interval=0.2).start()
    time.sleep(1.5)
    live = tree_pss_mib(child.pid)
    child.wait()
    watch.stop()
    assert live > 150  # the 200 MiB buffer, touched by bytearray's zero fill
    assert watch.peak.root_mib > 150 and watch.peak_gib > 150 / 1024
    assert watch.timeline()[0]["seconds"] >= 0.0


def test_report_says_which_arithmetic_each_seed_ran_and_a_label_gives_a_section_of_its_own(tmp_path):
    fake_run(tmp_path, 0, [True, False, False, False], [True, True, True, False], wall_s=900.0, peak_gib=5.0)
    fake_run(tmp_path, 1, [True, True, False, False], [True, False, True, True], wall_s=1020.0, peak_gib=6.0)
    (tmp_path / "seed0" / "args.json").write_text(json.dumps({"bf16": False}))
    text = report(MainArgs(seeds=[0, 1], runs_dir=str(tmp_path)))
    assert "- arithmetic (`bf16` in each run's args.json): seed 0 fp32, seed 1 ?" in text
    assert section_title(MainArgs()) == TITLE
    assert section_title(MainArgs(label="AVX2-only CPU")) == f"{TITLE}, AVX2-only CPU"
