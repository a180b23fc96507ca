"""The real-GAIA command end to end: today's parquet layout, an attachment, the web on loopback, the report.

``agents/evaluate.py --agent openai --tasks <GAIA root> --split ... --web http`` runs in a subprocess
against a fake OpenAI-compatible model server and a loopback search API + web site (no internet). The
model's code reads the xlsx attachment with ``inspect_file``, searches and reads a page, or answers wrong;
the outputs are checked: GAIA's submission file, accuracy per level and per attachment type, tool calls
per turn, test rows unscored, and the report page rendered by headless Chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from openai_server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
PAGE = ("<html><body><h1>Ketterby Lighthouse</h1><p>The lighthouse was lit in 1871 by the Ketterby guild.</p>"
        "</body></html>")


class LoopbackWeb:
    """A JSON search API at /search and one HTML page, on 127.0.0.1."""

    def __init__(self) -> None:
        web = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path == "/search":
                    query = parse_qs(url.query).get("q", [""])[0]
                    results = [{"title": "Ketterby Lighthouse", "url": f"{web.base}/lighthouse",
                                "snippet": "history of the lighthouse"}] if "ketterby" in query.lower() else []
                    body, kind = json.dumps({"results": results}).encode(), "application/json"
                elif url.path == "/lighthouse":
                    body, kind = PAGE.encode(), "text/html; charset=utf-8"
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()


def hub_row(task_id: str, level: str, question: str, answer: str, attachment: str = "", split: str = "validation"):
    return {"task_id": task_id, "Question": question, "Level": level, "Final answer": answer,
            "file_name": attachment, "file_path": f"2023/{split}/{attachment}" if attachment else "",
            "Annotator Metadata": {"Steps": "1", "Number of steps": "1", "How long did this take?": "1 minute",
                                   "Tools": "none", "Number of tools": "0"}}


@pytest.fixture()
def gaia(tmp_path: Path) -> Path:
    """GAIA as the Hub publishes it today: 2023/{validation,test}/metadata.parquet, string Level, file_path."""
    pa = pytest.importorskip("pyarrow")
    import openpyxl
    import pyarrow.parquet as pq

    root = tmp_path / "GAIA"
    val, test = root / "2023" / "validation", root / "2023" / "test"
    val.mkdir(parents=True)
    test.mkdir(parents=True)
    book = openpyxl.Workbook()
    book.active.append(["item", "count"])
    book.active.append(["crates", 42])
    book.save(val / "sheet.xlsx")
    rows = [hub_row("xlsx-task", "1", "How many crates are in the attached sheet?", "42", "sheet.xlsx"),
            hub_row("web-task", "2", "In which year was the Ketterby lighthouse lit?", "1871"),
            hub_row("wrong-task", "3", "What is 3 + 4?", "7")]
    pq.write_table(pa.Table.from_pylist(rows), val / "metadata.parquet")
    pq.write_table(pa.Table.from_pylist([hub_row("test-task", "1", "What is 2 + 2?", "?", split="test")]),
                   test / "metadata.parquet")
    return root


CODE = {  # the fake model's code per question: read the attachment, use the web, or answer wrong
    "crates": "```py\ntext = inspect_file('sheet.xlsx')\nprint(text)\nimport re\n"
              "final_answer(re.search(r'crates\\D+(\\d+)', text).group(1))\n```",
    "Ketterby": "```py\nhits = web_search('Ketterby lighthouse')\npage = visit_page(hits[0]['url'])\nimport re\n"
                "final_answer(re.search(r'lit in (\\d{4})', page).group(1))\n```",
    "3 + 4": "```py\nfinal_answer(8)\n```",
    "2 + 2": "```py\nfinal_answer(4)\n```",
}


@pytest.fixture()
def model() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        def respond(body: dict[str, Any]) -> str:
            if body.get("max_tokens") == 1:  # the agent's start-up check
                return "OK"
            task = next(m["content"] for m in body["messages"] if m["role"] == "user")
            return next(code for key, code in CODE.items() if key in task)

        server.responder = respond
        yield server


def evaluate(gaia: Path, out: Path, model: FakeOpenAIServer, web: LoopbackWeb, *extra: str) -> dict[str, Any]:
    env = {**os.environ, "TOOLR1_CACHE": str(out.parent / "cache"), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    command = [sys.executable, str(ROOT / "agents" / "evaluate.py"), "--no_progress", "--agent", "openai",
               "--tasks", str(gaia), "--web", "http", "--web_base_url", f"{web.base}/search", "--web_allow_private",
               "--base_url", model.base_url, "--model", "fake", "--api_key", "k", "--concurrency", "2",
               "--output_dir", str(out), *extra]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "summary.json").read_text())


def test_real_gaia_command_writes_submission_per_level_and_attachment_and_a_report(gaia: Path, tmp_path: Path,
                                                                                   model: FakeOpenAIServer) -> None:
    web = LoopbackWeb()
    summary = evaluate(gaia, tmp_path / "val", model, web, "--split", "validation")
    submission = {json.loads(line)["task_id"]: json.loads(line) for line in
                  (tmp_path / "val" / "submission.jsonl").read_text().splitlines()}
    assert {k: v["model_answer"] for k, v in submission.items()} == {"xlsx-task": "42", "web-task": "1871",
                                                                    "wrong-task": "8"}
    assert "visit_page" in submission["web-task"]["reasoning_trace"]
    assert summary["accuracy"] == pytest.approx(2 / 3) and summary["infra_errors"]["total"] == 0
    assert {level: row["accuracy"] for level, row in summary["levels"].items()} == {"1": 1.0, "2": 1.0, "3": 0.0}
    assert summary["attachments"]["xlsx"] == {"tasks": 1, "scored": 1, "correct": 1.0, "accuracy": 1.0,
                                              "infra_errors": 0, "unscored": 0}
    assert summary["attachments"]["none"]["tasks"] == 2 and summary["attachments"]["none"]["accuracy"] == 0.5
    assert summary["tool_calls"] == {"final_answer": 3, "inspect_file": 1, "visit_page": 1, "web_search": 1}
    records = [json.loads(line) for line in (tmp_path / "val" / "trajectories.jsonl").read_text().splitlines()]
    web_turn = next(r for r in records if r["task_id"] == "web-task")["turns"][0]
    assert web_turn["tools"] == ["web_search", "visit_page", "final_answer"]

    test_summary = evaluate(gaia, tmp_path / "test", model, web, "--split", "test")
    assert test_summary["unscored"] == 1 and test_summary["scored"] == 0 and test_summary["accuracy"] is None
    (row,) = [json.loads(line) for line in (tmp_path / "test" / "submission.jsonl").read_text().splitlines()]
    assert row == {**row, "task_id": "test-task", "model_answer": "4"}  # submitted, never judged wrong

    page = (tmp_path / "val" / "report.html").read_text()
    for control in ("f-outcome", "f-level", "f-attachment", "f-tool", "f-search"):
        assert f"id='{control}'" in page
    assert "data-tools='final_answer visit_page web_search'" in page and "data-attachments='xlsx'" in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (scripts/setup.sh installs it)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    """A real browser runs the page's script (allowed by its CSP hash) and draws it."""
    from PIL import Image

    from agents.evaluation.html_report import write_html
    from agents.evaluation.metrics import summarize
    from agents.evaluation.records import EpisodeRecord, TurnRecord

    records = [EpisodeRecord("ok-1", 1, "What is 2 + 2?", "4", final_answer="4", correct=1.0, attachments=["xlsx"],
                             turns=[TurnRecord.from_step("```py\nfinal_answer(4)\n```", "", None, {"final_answer"})]),
               EpisodeRecord("bad-2", 2, "<script>alert(1)</script>", "x", final_answer="<b>y</b>"),
               EpisodeRecord("down-3", 3, "q", "a", infra_error="judge unavailable", infra_kind="judge")]
    page = tmp_path / "report.html"
    write_html(page, summarize(records), records, title="screenshot test")
    common = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1800"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "showing 3 of 3 episodes" in dom  # the filter script ran
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom  # hostile text shown as text
    shot = tmp_path / "shot.png"
    subprocess.run([*common, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    image = Image.open(shot).convert("L")
    assert image.size == (1400, 1800)
    dark = sum(image.histogram()[:128])  # pixels darker than mid-grey
    assert dark > 2000  # text was drawn (a blank or failed page is nearly all white)
