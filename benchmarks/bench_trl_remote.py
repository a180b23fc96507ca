"""A whole TRL training run on environment servers versus in process: ``agents/train_trl.py``, same seed and settings.

    pip install -e '.[train,trl,openenv]'
    python -m benchmarks.bench_trl_remote                                   # smollm2-135m, 4 steps
    python -m benchmarks.bench_trl_remote --max_steps 8 -- --max_turns 2    # flags after -- go to both runs
    python -m benchmarks.bench_trl_remote --model tiny-random --max_steps 1 --num_generations 2 \\
        --tasks_per_step 1 --runs_dir /tmp/btr --no_write -- --max_new_tokens 4 --dataset_size 2   # smoke run

What is compared: the same ``agents/train_trl.py`` run (TRL's ``GRPOTrainer`` with our rollout function and
sample queue), twice, each in a subprocess of its own and into its own folder under ``--runs_dir``:

* ``in-process/``: the rollout's ``ThreadVectorEnv`` sandboxes live in the training process tree (the default);
* ``servers/``: ``--env_servers ws://127.0.0.1:P1,ws://127.0.0.1:P2``, ``--servers`` (2) ``toolr1-serve``
  processes that this script starts on free loopback ports (``toolr1_env.serving.local_server.LocalServer``:
  sandboxes preloaded with numpy/pandas, as in process; ``--max-sessions`` = the run's envs), waits for, watches
  (their peak live sessions, polled every second: proof that the run played there) and stops at the end, also
  on an error. The servers start before the run, so the side's wall seconds do not include their start.

Only where the envs live differs: model, seed, tasks, dataset, LoRA, optimiser, sampling, queue and every other
flag are the same on both sides. One optimiser step is one generation batch: ``--tasks_per_step`` groups of
``--num_generations`` episodes (``per_device_train_batch_size = num_generations``,
``gradient_accumulation_steps = tasks_per_step``), with as many envs as episodes per step unless ``--num_envs``
says otherwise.

Reported per side, from TRL's per-step log (``log_history`` of the last checkpoint's ``trainer_state.json``;
``summary.json`` for TRL's ``train_runtime``): steps, wall seconds of the whole subprocess (model load and
sandbox starts included), TRL's train seconds, mean step and rollout seconds, the mean over steps of the
step's mean reward and the reward curve, infrastructure errors (``toolr1/infra_errors``, summed over steps);
then whether the per-step rewards are identical between the sides (``tests/test_serving_trainers.py`` finds the
rollouts equal task by task for the same seed), and which other non-timing metrics TRL logged differ. A
difference is reported as it is, never smoothed over.

A side whose run already finished in its folder with the same flags is reused (its recorded wall seconds
included); an unfinished one is removed and run again; a finished one with other flags is an error (use another
``--runs_dir``). Expected duration: unknown (not measured yet); it is two full training runs plus the servers'
start, so the two runs' own durations add up.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from agents.cli import arg, parse_with_extra  # noqa: E402
from benchmarks.results_file import code_commit, markdown_table, write_section  # noqa: E402
from toolr1_env.serving.local_server import LocalServer  # noqa: E402

TITLE = "TRL GRPOTrainer run on environment servers versus in process (bench_trl_remote.py)"
SIDE_FILE = "bench_side.json"  # written into a side's folder once its run finished: flags, wall seconds, commit
CODE_PATHS = ("agents", "toolr1_env", "benchmarks/bench_trl_remote.py")  # what the runs' commit line vouches for
RESERVED = ("--output_dir", "--env_servers", "--resume")  # the benchmark sets these itself


@dataclass
class BenchArgs:
    """The same agents/train_trl.py run with in-process envs and on two loopback toolr1-serve servers."""

    model: str = arg("smollm2-135m", "model of both runs (bundled alias, HF id, or tiny-random for a smoke run)")
    tasks: str = arg("warmup", "training tasks of both runs (a bundled split the servers offer)")
    max_steps: int = arg(4, "optimiser steps of each run")
    num_generations: int = arg(4, "episodes per task (the GRPO group)")
    tasks_per_step: int = arg(2, "groups per optimiser step (one generation batch per step)")
    num_envs: int = arg(0, "envs of each run (0: one per episode of a step, num_generations x tasks_per_step)")
    seed: int = arg(0, "seed of both runs")
    servers: int = arg(2, "toolr1-serve processes on loopback for the remote side")
    runs_dir: str = arg("runs/bench-trl-remote", "where the two runs live (one folder per side)")
    no_write: bool = arg(False, "print the table only; do not write benchmarks/RESULTS.md")


@dataclass
class SideRun:
    """One side's finished run: what the benchmark recorded and what TRL logged per step."""

    side: str
    output_dir: Path
    wall_s: float
    reused: bool
    commit: str
    steps: list[dict[str, Any]]
    summary: dict[str, Any]
    peak_sessions: list[int] | None = None

    @property
    def rewards(self) -> list[float]:
        """The mean reward of each logged step (TRL's ``reward``), in step order."""
        return [float(s["reward"]) for s in self.steps]


def train_flags(args: BenchArgs, extra: Sequence[str]) -> list[str]:
    """The ``agents/train_trl.py`` flags both sides share (without ``--output_dir`` and ``--env_servers``)."""
    bad = [f for f in extra if f.split("=", 1)[0] in RESERVED]
    if bad:
        raise SystemExit(f"the benchmark sets {', '.join(RESERVED)} itself; remove {bad} after --")
    envs = args.num_envs or args.num_generations * args.tasks_per_step
    return ["--model", args.model, "--tasks", args.tasks, "--max_steps", str(args.max_steps),
            "--num_generations", str(args.num_generations),
            "--per_device_train_batch_size", str(args.num_generations),
            "--gradient_accumulation_steps", str(args.tasks_per_step), "--num_envs", str(envs),
            "--seed", str(args.seed), *extra]


def finished(output_dir: Path, flags: Sequence[str], servers: int) -> dict[str, Any] | None:
    """The recorded side of a run that finished in ``output_dir`` with these flags and number of servers; None
    when there is none.

    An unfinished run's folder is removed (so no stale checkpoint is read later); a finished run with other
    flags raises :class:`SystemExit` rather than being overwritten.
    """
    record_file = output_dir / SIDE_FILE
    if record_file.is_file() and (output_dir / "summary.json").is_file():
        record = json.loads(record_file.read_text())
        if record["flags"] != list(flags) or record.get("servers", 0) != servers:
            raise SystemExit(f"{output_dir} holds a finished run with other settings ({record['flags']}, "
                             f"{record.get('servers', 0)} servers); use another --runs_dir or remove it")
        return record
    if output_dir.exists():
        print(f"removing the unfinished run in {output_dir}", flush=True)
        shutil.rmtree(output_dir)
    return None


class SessionWatch:
    """Polls each server's ``/toolr1/status`` every ``period`` seconds and keeps its peak of live sessions."""

    def __init__(self, servers: Sequence[LocalServer], period: float = 1.0) -> None:
        self.servers = list(servers)
        self.period = period
        self.peak = [0] * len(self.servers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for i, server in enumerate(self.servers):
                try:
                    self.peak[i] = max(self.peak[i], int(server.status()["active_sessions"]))
                except (OSError, ValueError, KeyError):
                    pass
            self._stop.wait(self.period)

    def __enter__(self) -> SessionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def train(output_dir: Path, flags: Sequence[str], env_servers: str = "") -> float:
    """Run ``agents/train_trl.py`` with ``flags`` into ``output_dir`` (its output in ``train.log`` there); return
    its wall seconds. The subprocess is stopped if this process is interrupted; a failed run raises."""
    output_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(ROOT / "agents" / "train_trl.py"), *flags, "--output_dir", str(output_dir)]
    if env_servers:
        command += ["--env_servers", env_servers]
    env = {**os.environ, "TRL_EXPERIMENTAL_SILENCE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    print("$", " ".join(command), flush=True)
    log_path = output_dir / "train.log"
    with open(log_path, "w") as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            process.wait()
        finally:
            if process.poll() is None:  # interrupted: do not leave the training run behind
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        wall = time.perf_counter() - started
    if process.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"agents/train_trl.py failed with {process.returncode} in {output_dir}:\n{tail}")
    return wall


def read_steps(output_dir: Path) -> list[dict[str, Any]]:
    """TRL's per-step log of a finished run: the ``log_history`` entries with a ``reward`` of its last checkpoint's
    ``trainer_state.json`` (TRL saves one at the last step), in step order."""
    checkpoints = sorted(output_dir.glob("checkpoint-*/trainer_state.json"),
                         key=lambda p: int(p.parent.name.rsplit("-", 1)[1]))
    if not checkpoints:
        raise FileNotFoundError(f"no checkpoint-*/trainer_state.json in {output_dir}: TRL saved no checkpoint")
    history = json.loads(checkpoints[-1].read_text())["log_history"]
    return sorted((e for e in history if "reward" in e), key=lambda e: e["step"])


def env_count(flags: Sequence[str]) -> int:
    """The ``--num_envs`` the training run gets from ``flags`` (the last one wins, as in its parser)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--num_envs", type=int, default=32)  # agents.trl.train.Args' default
    return parser.parse_known_args(list(flags))[0].num_envs


def start_servers(count: int, max_sessions: int) -> list[LocalServer]:
    """``count`` ``toolr1-serve`` processes on free loopback ports, each serving (``/health``) when returned;
    sandboxes preloaded with numpy/pandas, as the in-process envs'. If one fails, the others are stopped."""
    started: list[LocalServer] = []
    errors: list[BaseException] = []
    with ThreadPoolExecutor(count) as pool:  # each start waits for its /health: start them together
        futures = [pool.submit(LocalServer, "--max-sessions", str(max_sessions), preload=True) for _ in range(count)]
        for future in futures:
            try:
                started.append(future.result())
            except Exception as error:  # noqa: BLE001 - stop the others first, then raise
                errors.append(error)
    if errors:
        for server in started:
            server.stop()
        raise RuntimeError(f"{len(errors)} of {count} toolr1-serve processes did not start: {errors[0]}")
    return started


def run_side(side: str, output_dir: Path, flags: Sequence[str], servers: int = 0) -> SideRun:
    """One side: reuse its finished run, or run it (with ``servers`` > 0: on that many fresh loopback servers,
    stopped whatever happens); then read its per-step log."""
    record = finished(output_dir, flags, servers)
    reused = record is not None
    if record is None:
        peak: list[int] | None = None
        if not servers:
            wall = train(output_dir, flags)
        else:
            started = start_servers(servers, env_count(flags))
            try:
                with SessionWatch(started) as watch:
                    wall = train(output_dir, flags, env_servers=",".join(s.url for s in started))
                peak = list(watch.peak)
            finally:
                for server in started:
                    server.stop()
        record = {"side": side, "flags": list(flags), "servers": servers, "wall_s": wall,
                  "commit": code_commit(CODE_PATHS), "peak_sessions": peak}
        (output_dir / SIDE_FILE).write_text(json.dumps(record, indent=2))
    else:
        print(f"reusing the finished {side} run in {output_dir}", flush=True)
    summary = json.loads((output_dir / "summary.json").read_text())
    return SideRun(side=side, output_dir=output_dir, wall_s=float(record["wall_s"]), reused=reused,
                   commit=record.get("commit", "unknown"), steps=read_steps(output_dir), summary=summary,
                   peak_sessions=record.get("peak_sessions"))


def _timing(key: str) -> bool:
    """Whether a logged metric is a timing or a rate (differs between any two runs)."""
    return key.endswith(("_s", "per_second")) or "time" in key or "runtime" in key


def compare(local: SideRun, remote: SideRun) -> dict[str, Any]:
    """Are the per-step rewards identical? Which steps differ and by how much; which other non-timing metrics
    logged on both sides differ at any step."""
    a, b = local.rewards, remote.rewards
    differing = [i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y]
    identical = len(a) == len(b) and not differing
    max_diff = max((abs(a[i] - b[i]) for i in differing), default=0.0)
    keys = sorted({k for s in local.steps for k in s} & {k for s in remote.steps for k in s})
    others = [k for k in keys if k not in ("reward", "step") and not _timing(k)]
    other_diffs = [k for k in others
                   if any(x.get(k) != y.get(k) for x, y in zip(local.steps, remote.steps, strict=False))]
    return {"identical": identical, "lengths": (len(a), len(b)), "differing_steps": [i + 1 for i in differing],
            "max_abs_diff": max_diff, "other_metrics": len(others), "other_metrics_differing": other_diffs}


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else math.nan


def row(run: SideRun, comparison: dict[str, Any] | None) -> list[object]:
    """The table row of one side (``comparison`` on the remote row only)."""
    rewards = run.rewards
    infra = [s["toolr1/infra_errors"] for s in run.steps if "toolr1/infra_errors" in s]
    step_s = [s["step_time"] for s in run.steps if "step_time" in s]
    rollout_s = [s["toolr1/rollout_s"] for s in run.steps if "toolr1/rollout_s" in s]
    if comparison is None:
        same = "(reference)"
    elif comparison["identical"]:
        same = f"yes ({len(rewards)}/{len(rewards)} steps)"
    else:
        n_local, n_remote = comparison["lengths"]
        same = (f"**no**: steps {comparison['differing_steps']} differ, max abs diff "
                f"{comparison['max_abs_diff']:.4g}" if n_local == n_remote else
                f"**no**: {n_local} vs {n_remote} logged steps")
    name = run.side if run.peak_sessions is None else \
        f"{run.side} (peak live sessions per server: {', '.join(map(str, run.peak_sessions))})"
    return [name + (" (reused)" if run.reused else ""), len(run.steps), f"{run.wall_s:.1f}",
            f"{float(run.summary.get('train_runtime', math.nan)):.1f}", f"{_mean(step_s):.2f}",
            f"{_mean(rollout_s):.2f}", f"{_mean(rewards):.4f}", " ".join(f"{r:.3f}" for r in rewards),
            f"{sum(infra):.0f}" if infra else "not logged", same]


def report(args: BenchArgs, flags: Sequence[str], local: SideRun, remote: SideRun) -> tuple[str, dict[str, Any]]:
    """The markdown table and its notes; and the comparison."""
    comparison = compare(local, remote)
    table = markdown_table(["side", "steps", "wall s (process)", "TRL train s", "s/step", "rollout s/step",
                            "mean reward per step", "reward per step", "infra errors",
                            "rewards identical to in-process"],
                           [row(local, None), row(remote, comparison)])
    others = comparison["other_metrics_differing"]
    other_line = (f"none of the {comparison['other_metrics']} other non-timing metrics TRL logged on both sides "
                  "(loss, grad norm, completion lengths, toolr1/* counters...) differ at any step" if not others else
                  f"{len(others)} of the {comparison['other_metrics']} other non-timing metrics differ at some "
                  f"step: {', '.join(others)}")
    commits = sorted({local.commit, remote.commit})
    notes = (f"\n`agents/train_trl.py {' '.join(flags)}`, in process versus `--env_servers` on {args.servers} "
             f"`toolr1-serve` processes on loopback (sandboxes preloaded with numpy/pandas on both sides). "
             f"Rewards: per-step rewards {'identical' if comparison['identical'] else '**not identical**'}; "
             f"{other_line}. Wall s = the whole subprocess (model load, sandbox starts); s/step = TRL's "
             f"`step_time`; rollout s/step = `toolr1/rollout_s` (where the envs' location shows). Runs trained at "
             f"commit {', '.join(commits)}; report at commit {code_commit(CODE_PATHS)}. Load average at the end: "
             f"{os.getloadavg()[0]:.1f} (other jobs on the machine slow both sides, which run one after the "
             "other, and may not slow them alike).\n")
    return table + "\n" + notes, comparison


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run (or reuse) both sides, print the table and write it to RESULTS.md; return the runs and comparison."""
    args, extra = parse_with_extra(BenchArgs, argv, description=__doc__)
    flags = train_flags(args, extra)
    runs_dir = Path(args.runs_dir).resolve()  # from here: the runs themselves start in the checkout
    if threading.current_thread() is threading.main_thread():  # SIGTERM unwinds too: servers and runs are stopped
        previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        local = run_side("in-process", runs_dir / "in-process", flags)
        remote = run_side(f"{args.servers} servers", runs_dir / "servers", flags, args.servers)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, previous)
    body, comparison = report(args, flags, local, remote)
    print(body, flush=True)
    if not args.no_write:
        write_section(TITLE, body)
    return {"runs": {"in-process": local, "servers": remote}, "comparison": comparison, "table": body}


if __name__ == "__main__":
    main()
