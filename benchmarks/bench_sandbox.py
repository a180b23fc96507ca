"""Sandbox latency: our fork-server sandbox versus smolagents' LocalPythonExecutor, in one run.

    pip install smolagents        # the peer, for this benchmark only
    python -m benchmarks.bench_sandbox [--repeats 300]

Measures p50/p95 of a trivial call, of a realistic action (loops, string work, a small pandas frame) and of
an episode reset; prints a table and writes it to benchmarks/RESULTS.md. Targets on 2 cores: reset
<= 50 ms, trivial call <= 2 ms p50, realistic action faster than smolagents.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from agents.cli import arg, parse
from benchmarks.results_file import markdown_table, write_section
from toolr1_env.sandbox import Sandbox

TRIVIAL = "x = 1"
REALISTIC = """import pandas as pd
words = [f"item{i}" for i in range(2000)]
counts = {}
for w in words:
    key = w[-1]
    counts[key] = counts.get(key, 0) + len(w)
df = pd.DataFrame({"key": list(counts), "total": list(counts.values())})
top = df.sort_values("total", ascending=False).head(3)
print(top.to_string())
total = int(df["total"].sum())
"""


def timed(fn: Callable[[], object], repeats: int, warmup: int = 3) -> list[float]:
    """Wall-clock milliseconds of ``repeats`` calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def pct(samples: list[float], q: float) -> float:
    """The q-quantile of samples."""
    return statistics.quantiles(samples, n=100)[int(q * 100) - 1] if len(samples) > 1 else samples[0]


@dataclass
class BenchArgs:
    """Sandbox latency: our fork-server sandbox versus smolagents' LocalPythonExecutor."""

    repeats: int = arg(300, "timed trivial calls (realistic actions and resets: a sixth of that, at least 10)")
    no_write: bool = arg(False, "print the table only; do not touch RESULTS.md")


def main(argv: list[str] | None = None) -> None:
    """Run both executors and record the table."""
    args = parse(BenchArgs, argv, description=__doc__)
    n_slow = max(args.repeats // 6, 10)

    started = time.perf_counter()
    sandbox = Sandbox()
    sandbox.start()
    startup_ms = (time.perf_counter() - started) * 1000
    assert sandbox.run(REALISTIC).ok, sandbox.run(REALISTIC).error
    ours = {
        "trivial call": timed(lambda: sandbox.run(TRIVIAL), args.repeats),
        "realistic action": timed(lambda: sandbox.run(REALISTIC), n_slow),
        "reset (new episode)": timed(sandbox.reset, n_slow),
    }
    layers = ", ".join(k for k, v in sandbox.layers.items() if v is True or (k == "landlock" and v))
    sandbox.close()

    try:
        from smolagents.local_python_executor import LocalPythonExecutor
    except ImportError:
        sys.exit("smolagents is not installed: pip install smolagents")

    def fresh_executor() -> LocalPythonExecutor:
        executor = LocalPythonExecutor(additional_authorized_imports=["pandas", "numpy"])
        executor.send_tools({})
        return executor

    peer_executor = fresh_executor()
    peer_executor(REALISTIC)
    peer = {
        "trivial call": timed(lambda: peer_executor(TRIVIAL), args.repeats),
        "realistic action": timed(lambda: peer_executor(REALISTIC), n_slow),
        "reset (new episode)": timed(fresh_executor, n_slow),
    }

    rows = []
    for name in ours:
        o50, o95, p50, p95 = pct(ours[name], .5), pct(ours[name], .95), pct(peer[name], .5), pct(peer[name], .95)
        rows.append([name, f"{o50:.2f}", f"{o95:.2f}", f"{p50:.2f}", f"{p95:.2f}", f"{p50 / o50:.2f}x"])
    table = markdown_table(["operation", "toolr1 p50 ms", "toolr1 p95 ms", "smolagents p50 ms",
                            "smolagents p95 ms", "speed-up (p50)"], rows)
    notes = (f"\nFork-server start (once per sandbox, numpy and pandas preloaded): {startup_ms:.0f} ms. "
             f"Active isolation layers: {layers}.\n\nsmolagents' executor interprets the AST in-process: it is "
             "not a security boundary, so its reset is only a new Python object. Ours runs real CPython in a "
             "confined, killable worker process; a reset kills the old worker and its children and forks a "
             "fresh one from the preloaded fork server.\n")
    print(table + notes)
    if not args.no_write:
        print(f"written to {write_section('Sandbox latency (bench_sandbox.py)', table + chr(10) + notes)}")


if __name__ == "__main__":
    main()
