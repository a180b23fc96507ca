"""The TRL vLLM route with several processes: TRL's own server-mode generation in 2 gloo processes.

TRL gathers every process's prompts, samples with the main process's settings and hands process ``r`` the slice
``[r*n, (r+1)*n)``; our processes play different numbers of live episodes per turn with different budgets and
finish at different turns (``agents/trl/generation.py``). The worker (``tests/vllm_lockstep_worker.py``) runs
TRL's ``VLLMGeneration`` and ``VLLMClient`` for real, with a loopback stand-in where the vLLM server would be.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agents.trl.generation import CallPlan, plan_call
from toolr1_env.parsing import code_block_end

ROOT = Path(__file__).resolve().parents[1]
WORKER = ROOT / "tests" / "vllm_lockstep_worker.py"
sys.path.insert(0, str(ROOT / "tests"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_call_plan_takes_the_most_rows_and_the_largest_live_budget():
    assert plan_call([(3, 16), (1, 24)]) == CallPlan(3, 24)
    assert plan_call([(0, 0), (4, 12)]) == CallPlan(4, 12)  # a drained process neither pads nor caps the budget
    assert plan_call([(0, 0), (0, 5)]) == CallPlan(0, 0)  # nobody plays: the drain ends


@pytest.fixture(scope="module")
def records(tmp_path_factory, tokenizer) -> dict[int, dict]:
    del tokenizer  # the learner's tests need the bundled tokenizer; so does the worker (skips/fails as they do)
    out = tmp_path_factory.mktemp("lockstep")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(free_port()), str(WORKER), str(free_port()), str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT,
                            env={**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-4000:]
    return {r: json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)}


def test_every_call_is_planned_alike_on_both_processes_until_both_are_done(records):
    from vllm_lockstep_worker import SCHEDULES

    plans = [records[r]["plans"] for r in (0, 1)]
    assert plans[0] == plans[1]  # the same collective calls, in the same order
    expected = [[max(n for n, _ in live), max(b for _, b in live)] for live in
                ([s[t] for s in SCHEDULES.values() if t < len(s)] for t in range(4))]
    assert plans[0] == expected == [[3, 24], [4, 16], [2, 20], [1, 9]]
    # What reached the server: both processes' rows (fillers included) with the planned budget and our stops.
    requests = records[0]["requests"]
    assert [(q["prompts"], q["max_tokens"]) for q in requests] == [(2 * n, b) for n, b in expected]
    assert all(q["stop"] == ["</code>", "<end_code>", "\nObservation:"] and q["n"] == 1 for q in requests)


def test_each_process_gets_its_own_rows_within_its_own_budget_with_the_right_finish_reason(records, tokenizer):
    from vllm_lockstep_worker import SCHEDULES, fake_logprob

    seen = 0
    for rank, record in records.items():
        assert [(t["turn"], len(t["rows"]), t["budget"]) for t in record["turns"]] == \
            [(i, n, b) for i, (n, b) in enumerate(SCHEDULES[rank])]
        for turn in record["turns"]:
            budget = turn["budget"]
            for row in turn["rows"]:
                ids, script = row["token_ids"], row["script"]
                assert ids and ids == script[: len(ids)], (rank, turn["turn"], row)  # this prompt's completion
                assert len(ids) <= budget
                assert row["logprobs"] == pytest.approx([fake_logprob(k, t) for k, t in enumerate(ids)])
                kind = row["row"] % 3
                if kind == 0:  # closes a code block: cut right after it, unless the budget ends first
                    closes = next(k for k in range(1, len(script) + 1)
                                  if code_block_end("```py\n" + tokenizer.decode(script[:k])) is not None)
                    want = ("stop", closes) if closes <= budget else ("length", budget)
                elif kind == 1:  # never stops: exactly its own budget, whatever budget the call had
                    want = ("length", budget)
                else:  # ends with EOS
                    want = ("eos", len(script)) if len(script) <= budget else ("length", budget)
                assert (row["finish_reason"], len(ids)) == want, (rank, turn["turn"], row["row"], row["text"])
                seen += 1
    assert seen == 5 + 8  # every row of both schedules
