"""GAIA reported as the papers do: --subset text-only, --task_ids, --repeats (avg@k, pass@k, intervals), --judge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openai_server import FakeOpenAIServer

from agents.evaluation.protocol import apply_subset, judge_mode
from agents.evaluation.records import EpisodeRecord, append_record, load_records
from agents.evaluation.repeats import bootstrap_interval, repeat_summary
from toolr1_env import Task

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "agents" / "evaluate.py"


def evaluate(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    return subprocess.run([sys.executable, str(SCRIPT), "--no_progress", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env={**env, "TOKENIZERS_PARALLELISM": "false"})


@pytest.fixture
def tasks(tmp_path: Path) -> list[Task]:
    sheet = tmp_path / "sheet.csv"
    sheet.write_text("a\n1\n")
    return [Task("t1", "What is 17 * 23?", "391"), Task("t2", "Sum of the sheet?", "1", files=(str(sheet),)),
            Task("t3", "What is 2 ** 10?", "1024", level=2)]


def test_text_only_keeps_the_tasks_without_attachments_and_task_ids_pick_a_published_list(tasks, tmp_path):
    assert [t.task_id for t in apply_subset(tasks, "text-only")] == ["t1", "t3"]
    ids = tmp_path / "ids.txt"
    ids.write_text("# a published list\nt3\n\n")
    assert [t.task_id for t in apply_subset(tasks, "all", str(ids))] == ["t3"]
    ids.write_text("t2\n")
    with pytest.raises(ValueError, match="attach files"):
        apply_subset(tasks, "text-only", str(ids))
    ids.write_text("t9\n")
    with pytest.raises(ValueError, match="not in these tasks"):
        apply_subset(tasks, "all", str(ids))
    with pytest.raises(ValueError, match="--subset must be"):
        apply_subset(tasks, "images", "")


def test_judge_mode_says_what_is_missing():
    assert judge_mode("", "", "") == "exact" and judge_mode("", "http://x/v1", "m") == "llm"
    with pytest.raises(ValueError, match="needs --judge_base_url and --judge_model"):
        judge_mode("llm", "http://x/v1", "")
    with pytest.raises(ValueError, match="did you mean --judge llm"):
        judge_mode("exact", "http://x/v1", "m")


def record(task: str, repeat: int, correct: float, **kw) -> EpisodeRecord:
    return EpisodeRecord(task, 1, "q", "a", correct=correct, repeat=repeat, **kw)


def test_avg_at_k_pass_at_k_and_intervals_over_tasks():
    records = [record("a", 0, 1), record("a", 1, 0), record("a", 2, 1),
               record("b", 0, 0), record("b", 1, 0), record("b", 2, 0),
               record("c", 0, 1), record("c", 1, 1), record("c", 2, 1),
               record("d", 0, 0, infra_error="judge down"), record("d", 1, 1), record("d", 2, 0)]
    rep = repeat_summary(records, 3)
    assert rep["tasks"] == 4 and rep["episodes_scored"] == 11
    assert rep["avg_at_k"] == pytest.approx(6 / 11)
    assert rep["pass_at_k"] == pytest.approx(3 / 4)  # a, c, d solved at least once; b never
    assert rep["run_accuracy"] == {"0": pytest.approx(2 / 3), "1": pytest.approx(2 / 4), "2": pytest.approx(2 / 4)}
    assert rep["best_run_accuracy"] == pytest.approx(2 / 3) and rep["incomplete_tasks"] == 1
    low, high = rep["pass_at_k_ci95"]
    assert 0.0 <= low < 0.75 < high <= 1.0 and rep["pass_at_k_ci95"] == repeat_summary(records, 3)["pass_at_k_ci95"]
    # 165 tasks at 30%: the interval is about +/- 7 points wide, as the docs say.
    low, high = bootstrap_interval([1.0] * 50 + [0.0] * 115)
    assert 0.23 < low < 0.26 and 0.35 < high < 0.38


def test_records_of_repeats_are_kept_apart_on_load(tmp_path):
    path = tmp_path / "trajectories.jsonl"
    for rec in (record("a", 0, 0, infra_error="x"), record("a", 1, 1), record("a", 0, 1)):
        append_record(path, rec)
    assert [(r.task_id, r.repeat, r.correct) for r in load_records(path)] == [("a", 0, 1.0), ("a", 1, 1.0)]


def test_repeats_text_only_and_an_llm_judge_through_the_command(tmp_path, tasks):
    rows = [{"task_id": t.task_id, "question": t.question, "answer": t.answer, "level": t.level,
             "files": [Path(f).name for f in t.files]} for t in tasks]
    task_file = tmp_path / "tasks.jsonl"
    task_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    prompt = tmp_path / "judge.txt"
    prompt.write_text("Grade.\n<question>{question}</question>\n<ground_truth>{ground_truth}</ground_truth>\n"
                      "<prediction>{prediction}</prediction>\nEnd with SCORE: 1 or SCORE: 0.")
    calls = {"t1": 0}

    def respond(body: dict) -> str:
        text = json.dumps(body["messages"])
        if "<ground_truth>" in text:  # the judge: words for the number are right; exact match says no
            return "SCORE: 1" if "one thousand twenty-four" in text else "SCORE: 0"
        if "Say OK" in text:  # the agent's start-up check
            return "OK"
        if "2 ** 10" in text:
            return "```py\nfinal_answer('one thousand twenty-four')\n```"
        calls["t1"] += 1  # t1: right on the first run, wrong on the second
        return "```py\nfinal_answer(391)\n```" if calls["t1"] == 1 else "```py\nfinal_answer(390)\n```"

    with FakeOpenAIServer() as server:
        server.responder = respond
        out = tmp_path / "eval"
        result = evaluate("--agent", "openai", "--base_url", server.base_url, "--model", "m", "--tasks",
                          str(task_file), "--subset", "text-only", "--repeats", "2", "--concurrency", "1",
                          "--judge", "llm", "--judge_base_url", server.base_url, "--judge_model", "grader",
                          "--judge_prompt", str(prompt), "--judge_reasoning_effort", "low",
                          "--output_dir", str(out))
        judge_bodies = [r.body for r in server.chat_requests if r.body and r.body.get("model") == "grader"]
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["subset"] == {"name": "text-only", "task_ids": None, "tasks": 2}
    assert summary["episodes"] == 4 and summary["accuracy"] == 0.75  # t1: 1 then 0; t3: judged right twice
    rep = summary["repeats"]
    assert rep["k"] == 2 and rep["avg_at_k"] == 0.75 and rep["pass_at_k"] == 1.0
    assert rep["run_accuracy"] == {"0": 1.0, "1": 0.5} and len(rep["avg_at_k_ci95"]) == 2
    judge = summary["judge"]
    assert judge["mode"] == "llm" and judge["model"] == "grader" and judge["prompt"] == prompt.read_text()
    assert judge["request_options"] == {"temperature": None, "reasoning_effort": "low"}
    # What reasoning models accept: reasoning_effort, and no temperature (they refuse temperature=0).
    assert judge_bodies and all(b["reasoning_effort"] == "low" and "temperature" not in b for b in judge_bodies)
    submission = [json.loads(line) for line in (out / "submission.jsonl").read_text().splitlines()]
    assert [s["task_id"] for s in submission] == ["t1", "t3"]  # one answer per task: the first run's
    assert "avg@2 75.0%" in result.stdout and "pass@2 100.0%" in result.stdout
    assert "avg@2" in (out / "report.html").read_text()


def test_bad_protocol_arguments_fail_before_any_episode(tmp_path, tasks):
    task_file = tmp_path / "tasks.jsonl"
    task_file.write_text(json.dumps({"task_id": "t1", "question": "q", "answer": "1"}) + "\n")
    for args, message in ((["--judge", "llm"], "needs --judge_base_url"), (["--repeats", "0"], "--repeats must be"),
                          (["--task_ids", str(tmp_path / "none.txt")], "no file")):
        result = evaluate("--agent", "reference", "--tasks", str(task_file), "--output_dir", str(tmp_path / "o"), *args)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
