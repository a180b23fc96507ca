"""One process of the 2-process test of the TRL vLLM route in server mode (tests/test_trl_vllm_lockstep.py).

    python -m torch.distributed.run --nproc_per_node 2 tests/vllm_lockstep_worker.py PORT OUT_DIR

What is real: TRL 1.16's ``VLLMGeneration.generate`` in server mode (its ``gather_object`` of every process's
prompts, the main process's sampling parameters, ``broadcast_object_list`` and the per-process slice) and TRL's
``VLLMClient.generate`` (the HTTP request it builds, ``parse_logprobs``), driven by our
:class:`agents.trl.generation.VLLMPolicy`. What stands in for vLLM: a loopback HTTP server on the main process
speaking the endpoints the client uses (``/health``, ``/v1/models``, ``/v1/completions``), whose "model"
writes a fixed script per prompt, chosen by the (process, turn, row) written in the prompt, and honours
``max_tokens``, ``stop`` and EOS as vLLM does. The NCCL weight channel (``init_communicator``) is skipped: no
weights move here. Each process plays its own schedule of (live rows, token budget) per turn, then drains,
and writes ``rank{r}.json`` with every generation it got; rank 0 also writes the server's requests.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import torch.distributed  # noqa: E402
import trl.generation.vllm_client as client_module  # noqa: E402
import trl.generation.vllm_generation as generation_module  # noqa: E402
from accelerate import Accelerator  # noqa: E402

from agents.learner.model_loading import make_tiny_model  # noqa: E402
from agents.learner.policy import PolicyConfig  # noqa: E402
from agents.trl.generation import VLLMPolicy  # noqa: E402

#: (live rows, token budget) per turn; rank 0 (the main process) finishes first and drains while rank 1 plays on.
SCHEDULES = {0: [(3, 16), (2, 16)], 1: [(1, 24), (4, 12), (2, 20), (1, 9)]}
PROMPT = re.compile(r"process (\d+) turn (\d+) row (\d+)")


def prompt_text(rank: int, turn: int, row: int) -> str:
    """The prompt of one row: it names its process, turn and row, so the stand-in's script names them too."""
    return f"Task for process {rank} turn {turn} row {row}."


def script_text(rank: int, turn: int, row: int) -> tuple[str, bool]:
    """The stand-in model's completion of that prompt, and whether it ends with EOS. Kind by ``row % 3``:
    0 closes a code block (then rambles on into an observation, which the server's stop cuts), 1 never stops
    (runs into the budget), 2 answers and ends with EOS."""
    tag = f"{rank}{turn}{row}"
    kind = row % 3
    if kind == 0:
        return f"print({tag})\n```\nThen I see\nObservation: {tag} and more", False
    if kind == 1:
        return "".join(f"x{tag}_{k} = {k}\n" for k in range(40)), False
    return f"final_answer({tag})", True


def script_ids(tokenizer: Any, rank: int, turn: int, row: int) -> list[int]:
    """The script as token ids (EOS appended for kind 2)."""
    text, eos = script_text(rank, turn, row)
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids + [int(tokenizer.eos_token_id)] if eos else ids


def fake_logprob(position: int, token: int) -> float:
    """The log-prob the stand-in reports for a token: a function of both, so misaligned rows show."""
    return -0.001 * (position + 1) - 1e-6 * token


class StandInServer(ThreadingHTTPServer):
    """vLLM's OpenAI-compatible server as TRL's client sees it, writing scripted completions."""

    def __init__(self, port: int, tokenizer: Any) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.tokenizer = tokenizer
        self.requests: list[dict[str, Any]] = []

    def complete(self, prompt: list[int], max_tokens: int, stop: list[str]) -> list[int]:
        """Generate as vLLM would: the script, until ``max_tokens``, EOS, or a stop string (its tokens kept)."""
        found = PROMPT.search(self.tokenizer.decode(prompt))
        script = script_ids(self.tokenizer, *map(int, found.groups())) if found else [7] * 1000  # filler rows
        out: list[int] = []
        for token in script[:max_tokens]:
            out.append(token)
            if token == self.tokenizer.eos_token_id or any(s in self.tokenizer.decode(out) for s in stop):
                break
        return out


class _Handler(BaseHTTPRequestHandler):
    server: StandInServer

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _reply(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self._reply({"data": [{"id": "stand-in"}]} if self.path.startswith("/v1/models") else {})

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v1/completions", self.path
        self.server.requests.append({k: v for k, v in body.items() if k != "prompt"} | {"prompts": len(body["prompt"])})
        choices = []
        for prompt in body["prompt"]:
            for _ in range(body["n"]):
                ids = self.server.complete(prompt, body["max_tokens"], body.get("stop") or [])
                lps = [fake_logprob(k, t) for k, t in enumerate(ids)]
                logprobs = None if body.get("logprobs") is None else {
                    "tokens": [f"token_id:{t}" for t in ids], "token_logprobs": lps, "top_logprobs": [None] * len(ids)}
                choices.append({"prompt_token_ids": prompt, "token_ids": ids, "logprobs": logprobs})
        self._reply({"choices": choices})


class LoopbackClient(client_module.VLLMClient):
    """TRL's own client, less the NCCL weight channel (no weights move in this test)."""

    def init_communicator(self, device: Any = 0) -> None:
        """Nothing: the weight-sync communicator needs vLLM and a GPU."""


def main(port: int, out: Path) -> None:
    """Play this process's schedule through TRL's server-mode generation; write what came back."""
    accelerator = Accelerator(cpu=True)
    rank = accelerator.process_index
    model, tokenizer = make_tiny_model(seed=0)
    server = None
    if accelerator.is_main_process:
        server = StandInServer(port, tokenizer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
    # vLLM is not installed: let TRL's code run with the loopback client in vLLM's place.
    client_module.is_vllm_available = generation_module.is_vllm_available = lambda *a, **k: True
    generation_module.VLLMClient = LoopbackClient
    engine = generation_module.VLLMGeneration(model, accelerator, tokenizer, mode="server",
                                              server_base_url=f"http://127.0.0.1:{port}", server_timeout=30,
                                              temperature=1.0, max_completion_length=64, logprobs=0)
    policy = VLLMPolicy(model, tokenizer, PolicyConfig(lora_r=0, max_new_tokens=64), engine, accelerator)
    turns = []
    for turn, (rows, budget) in enumerate(SCHEDULES[rank]):
        prompts = [tokenizer(prompt_text(rank, turn, i), add_special_tokens=False)["input_ids"] for i in range(rows)]
        generations = policy.sample(prompts, max_new_tokens=budget, prefix_text="```py\n")
        turns.append({"turn": turn, "budget": budget, "rows": [
            {"row": i, "token_ids": g.token_ids, "logprobs": g.logprobs, "finish_reason": g.finish_reason,
             "text": g.text, "script": script_ids(tokenizer, rank, turn, i)} for i, g in enumerate(generations)]})
    policy.drain()
    record = {"turns": turns, "plans": [[p.rows, p.max_tokens] for p in getattr(policy, "plans", [])],
              "eos": int(tokenizer.eos_token_id)}
    if server is not None:
        record["requests"] = server.requests
    (out / f"rank{rank}.json").write_text(json.dumps(record))
    accelerator.wait_for_everyone()
    if server is not None:
        server.shutdown()
    # Every process takes its gloo group down before exit: left to interpreter teardown, a process could abort
    # ("terminate called without an active exception") after both had written their records (seen once in CI).
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
