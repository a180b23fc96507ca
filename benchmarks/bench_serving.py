"""The environment as a service under load and under a fault: episodes in process versus on 2 OpenEnv servers.

    python -m benchmarks.bench_serving [--episodes 64] [--servers 2] [--rounds 2] [--no_write]

The same scripted episodes (3 steps each on ``warmup-eval`` tasks: two computations, then ``final_answer`` with
the right answer) are played by ``--episodes`` concurrent episode loops (one thread each), first with
in-process envs (``ToolR1Env``: one sandbox per env in this process tree), then with remote envs
(``gym.make("ToolR1-GAIA-v0", remote=[...])``) spread over ``--servers`` ``toolr1-serve`` processes on loopback.
Each env plays ``--rounds`` episodes; the first round pays the sandbox start, later rounds run on warm sessions.

Reported per side: episodes/s of the cold round and of the warm rounds, step latency p50/p99 (warm rounds: one
``env.step`` call as the trainer sees it) and memory per live session (PSS of the process trees with every
session open and idle, less the same trees before any session, over the sessions). Then the fault: the same
episodes on the servers, one server SIGKILLed (with its sandboxes) while every episode is live; every episode
must end either correct or as an infrastructure error (``info["infra_kind"] == "env_server"``), never as a wrong
answer, and a next round must complete in full on the surviving server. Sandboxes run without preloaded
numpy/pandas on both sides (``SandboxConfig(preload=())``, ``toolr1-serve --no-preload``): 64 preloaded sandboxes
need ~8 GiB.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import gymnasium as gym

import toolr1_env  # noqa: F401 - registers ToolR1-GAIA-v0
from agents.cli import arg, parse
from benchmarks.memory import tree_pss_mib
from benchmarks.results_file import code_commit, markdown_table, write_section
from toolr1_env.sandbox import SandboxConfig
from toolr1_env.serving.local_server import LocalServer
from toolr1_env.suite import load_split

CODE_PATHS = ("toolr1_env", "benchmarks/bench_serving.py")  # what the commit line vouches for

TASKS = "warmup-eval"


@dataclass
class BenchArgs:
    """Episodes in process versus on OpenEnv servers: throughput, latency, memory, and a killed server."""

    episodes: int = arg(64, "concurrent episodes (one env and one thread each)")
    servers: int = arg(2, "toolr1-serve processes on loopback")
    rounds: int = arg(2, "episodes per env: the first is cold (sandbox start), the rest warm")
    kill_after: float = arg(1.0, "seconds after every episode of the fault round is live that one server is killed")
    pause: float = arg(5.0, "seconds the fault round's second step waits (the kill lands inside it)")
    no_write: bool = arg(False, "print the table only; do not write benchmarks/RESULTS.md")


@dataclass
class Outcome:
    """How one episode ended and how long each of its steps took."""

    correct: bool
    infra: bool
    latencies: list[float]


def actions(answer: str, pause: float = 0.0) -> list[str]:
    """The scripted episode: two computations (the second waits ``pause`` seconds), then the right answer."""
    return ["```py\nx = sum(i * i for i in range(2000))\nprint(x)\n```",
            f"```py\nimport math, time\ntime.sleep({pause})\ny = math.sqrt(x)\nprint(round(y, 3))\n```",
            f"```py\nfinal_answer({answer!r})\n```"]


def play(env: gym.Env, task_id: str, answer: str, pause: float = 0.0, started=None) -> Outcome:
    """One episode of the script; a step that ends the episode early (an infrastructure error) stops it.
    ``started`` is called once the first step is done (the episode is then live on its server)."""
    env.reset(options={"task_id": task_id})
    latencies: list[float] = []
    info: dict = {}
    for turn, action in enumerate(actions(answer, pause)):
        start = time.perf_counter()
        _, _, terminated, truncated, info = env.step(action)
        latencies.append(time.perf_counter() - start)
        if turn == 0 and started is not None:
            started()
        if terminated or truncated:
            break
    infra = bool(info.get("infra_error"))
    correct = (info.get("reward_components") or {}).get("answer_score") == 1.0
    return Outcome(correct=correct, infra=infra, latencies=latencies)


def play_round(pool: ThreadPoolExecutor, envs: list[gym.Env], tasks: list, pause: float = 0.0,
               started=None) -> tuple[float, list[Outcome]]:
    """Every env plays one episode at the same time; returns the wall time and the outcomes."""
    start = time.perf_counter()
    futures = [pool.submit(play, env, t.task_id, t.answer, pause, started) for env, t in zip(envs, tasks, strict=True)]
    outcomes = [f.result() for f in futures]
    return time.perf_counter() - start, outcomes


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def measure(envs: list[gym.Env], tasks: list, rounds: int, roots: list[int]) -> dict:
    """Cold and warm rounds on these envs; memory of the ``roots`` process trees before and with sessions open."""
    before = sum(tree_pss_mib(r) for r in roots)
    with ThreadPoolExecutor(len(envs)) as pool:
        cold_s, cold = play_round(pool, envs, tasks)
        live = sum(tree_pss_mib(r) for r in roots)
        warm = [play_round(pool, envs, tasks) for _ in range(rounds - 1)]
    latencies = [x for _, outcomes in warm for o in outcomes for x in o.latencies]
    warm_s = sum(s for s, _ in warm)
    every = cold + [o for _, outcomes in warm for o in outcomes]
    return {"cold_eps": len(envs) / cold_s, "warm_eps": len(envs) * len(warm) / warm_s if warm else float("nan"),
            "p50": 1000 * statistics.median(latencies) if latencies else float("nan"),
            "p99": 1000 * percentile(latencies, 99) if latencies else float("nan"),
            "mib_per_session": (live - before) / len(envs), "correct": sum(o.correct for o in every),
            "episodes": len(every)}


def fault_round(args: BenchArgs, tasks: list) -> dict:
    """Kill one server mid-round: count correct, infra-error and wrong episodes; then a full round on the rest."""
    servers = [LocalServer("--max-sessions", str(args.episodes), "--tasks", TASKS) for _ in range(args.servers)]
    envs = [gym.make("ToolR1-GAIA-v0", remote=[s.url for s in servers], tasks=TASKS, max_turns=4)
            for _ in range(args.episodes)]
    try:
        with ThreadPoolExecutor(len(envs)) as pool:
            play_round(pool, envs, tasks)  # warm every session first
            # Kill once every episode has finished its first step, while all of them wait in their second one
            # (it sleeps `pause` s): every episode of the killed server is then live on it.
            live, lock, all_live = [0], threading.Lock(), threading.Event()

            def started() -> None:
                with lock:
                    live[0] += 1
                    if live[0] == len(envs):
                        all_live.set()

            def killer() -> None:
                all_live.wait(timeout=600)
                time.sleep(args.kill_after)
                servers[0].kill()

            thread = threading.Thread(target=killer)
            thread.start()
            elapsed, outcomes = play_round(pool, envs, tasks, pause=args.pause, started=started)
            thread.join()
            after_s, after = play_round(pool, envs, tasks)
        return {"correct": sum(o.correct for o in outcomes), "infra": sum(o.infra for o in outcomes),
                "wrong": sum(not o.correct and not o.infra for o in outcomes), "round_s": elapsed,
                "after_correct": sum(o.correct for o in after), "after_wrong": sum(not o.correct for o in after),
                "after_s": after_s}
    finally:
        for env in envs:
            env.close()
        for server in servers:
            server.stop()


def main(argv: list[str] | None = None) -> None:
    """Run both sides and the fault round; print the table and write it to RESULTS.md."""
    args = parse(BenchArgs, argv, description=__doc__)
    pool = load_split(TASKS).tasks
    tasks = [pool[i % len(pool)] for i in range(args.episodes)]
    local_envs = [gym.make("ToolR1-GAIA-v0", tasks=TASKS, max_turns=4, sandbox=SandboxConfig(preload=()))
                  for _ in range(args.episodes)]
    local = measure(local_envs, tasks, args.rounds, [os.getpid()])
    for env in local_envs:
        env.close()
    print("in process:", local, flush=True)
    servers = [LocalServer("--max-sessions", str(args.episodes), "--tasks", TASKS) for _ in range(args.servers)]
    remote_envs = [gym.make("ToolR1-GAIA-v0", remote=[s.url for s in servers], tasks=TASKS, max_turns=4)
                   for _ in range(args.episodes)]
    try:
        remote = measure(remote_envs, tasks, args.rounds, [s.proc.pid for s in servers])
    finally:
        for env in remote_envs:
            env.close()
        for server in servers:
            server.stop()
    print("on servers:", remote, flush=True)
    fault = fault_round(args, tasks)
    print("fault:", fault, flush=True)

    def row(name: str, r: dict) -> list[object]:
        return [name, f"{r['cold_eps']:.2f}", f"{r['warm_eps']:.2f}", f"{r['p50']:.0f}", f"{r['p99']:.0f}",
                f"{r['mib_per_session']:.1f}", f"{r['correct']}/{r['episodes']}"]

    table = markdown_table(["side", "episodes/s (cold round)", "episodes/s (warm)", "step p50 ms", "step p99 ms",
                            "MiB per live session (PSS)", "correct"],
                           [row("in process (ToolR1Env)", local),
                            row(f"{args.servers} servers (toolr1-serve, loopback)", remote)])
    notes = (f"\n{args.episodes} concurrent episodes ({len(actions('x'))} steps each, `{TASKS}` tasks, thread per "
             f"episode), {args.rounds} rounds; sandboxes without preloaded numpy/pandas on both sides. Commit "
             f"{code_commit(CODE_PATHS)}. Load average at the end: {os.getloadavg()[0]:.1f} (the benchmark's own "
             "episodes and "
             "servers count in it; other jobs on the machine slow both sides, which run one after the other, and "
             "may not slow them alike).\n\n"
             f"Fault: one of {args.servers} servers SIGKILLed (with its sandboxes) {args.kill_after:.1f} s after all "
             f"{args.episodes} episodes of a round had finished their first step (their second step waits "
             f"{args.pause:.0f} s, so all are live at the kill): {fault['correct']} correct, {fault['infra']} "
             "infrastructure errors "
             f"(`infra_kind` \"env_server\"), **{fault['wrong']} wrong answers**; the round took "
             f"{fault['round_s']:.1f} s. The next round on the surviving server: {fault['after_correct']}/"
             f"{args.episodes} correct, {fault['after_wrong']} lost, {fault['after_s']:.1f} s.\n")
    print(table + notes)
    if not args.no_write:
        write_section("Environment server under load and faults (bench_serving.py)", table + "\n" + notes)


if __name__ == "__main__":
    main()
