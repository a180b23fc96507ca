"""The run record (agents/learner/run_log.py): a resumed run cuts metrics.jsonl back to its checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from agents.learner.run_log import RunLog


def test_truncate_drops_rows_after_the_checkpoint_and_a_cut_line(tmp_path: Path):
    log = RunLog(tmp_path, tensorboard=False)
    for step in range(5):
        log.log(step, {"reward/mean": float(step)})
    with log.path.open("a") as f:
        f.write('{"step": 5, "rew')  # killed mid-write
    assert log.truncate(2) == 3
    assert [r["step"] for r in log.rows()] == [0, 1, 2]
    log.log(3, {"reward/mean": 30.0})  # the resumed run appends after the kept rows
    assert [(r["step"], r["reward/mean"]) for r in log.rows()][-2:] == [(2, 2.0), (3, 30.0)]
    assert not (tmp_path / "metrics.jsonl.tmp").exists()
    assert all(json.loads(line) for line in log.path.read_text().splitlines())
