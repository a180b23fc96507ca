"""Arm benchmark runs are keyed by the code that trained them (benchmarks/arm_runs.py), not only by settings."""

from __future__ import annotations

import re

from benchmarks import arm_runs


def test_code_version_follows_the_content_of_the_code_not_the_docs(tmp_path, monkeypatch):
    for folder in arm_runs.CODE_DIRS:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "module.py").write_text("x = 1\n")
    (tmp_path / "README.md").write_text("docs\n")
    monkeypatch.setattr(arm_runs, "ROOT", tmp_path)

    def version() -> str:
        arm_runs.code_version.cache_clear()
        return arm_runs.code_version()

    try:
        first = version()
        assert re.fullmatch(r"[0-9a-f]{8}", first)
        (tmp_path / "README.md").write_text("other docs\n")
        assert version() == first  # a documentation change keeps the runs
        (tmp_path / "toolr1_env" / "module.py").write_text("x = 2\n")
        assert version() != first  # a code change drops them
    finally:
        arm_runs.code_version.cache_clear()


def test_a_run_trained_by_other_code_is_never_reused(monkeypatch):
    command = ["--seed", "0", "--eval_tasks", "warmup-eval"]
    monkeypatch.setattr(arm_runs, "code_version", lambda: "aaaaaaaa")
    before = arm_runs.run_key(command)
    assert arm_runs.run_key(command) == before  # same settings, same code: the same run
    monkeypatch.setattr(arm_runs, "code_version", lambda: "bbbbbbbb")
    assert arm_runs.run_key(command) != before


def test_the_report_names_the_commit():
    assert re.fullmatch(r"([0-9a-f]{7,}|unknown)(\+uncommitted)?", arm_runs.code_commit())
