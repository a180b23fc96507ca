"""Environment throughput with a scripted agent: ours (ThreadVectorEnv) versus gymnasium's vector envs.

    python -m benchmarks.bench_env [--episodes 48] [--envs 1 2 4 8]

The scripted agent plays each task's reference solution (the bundled ``validation`` split: web search,
page reads, file inspection, pandas), so a step is realistic agent code. For each number of parallel
environments it reports episodes/s and steps/s for ``ThreadVectorEnv`` (threads; every live episode's
code runs at once), ``gymnasium.vector.AsyncVectorEnv`` (one subprocess per env, shared_memory=False)
and ``SyncVectorEnv`` (one after the other), plus the p50 reset latency of one env. Writes the table to
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

import toolr1_env  # noqa: F401 - registers ToolR1-GAIA-v0
from agents.cli import arg, parse
from agents.engine import EngineStats, EpisodeRequest
from agents.evaluation.run import AgentPlayer
from agents.players.api import AgentBatch
from agents.players.scripted import ReferenceAgent
from benchmarks.results_file import markdown_table, write_section
from toolr1_env.env import ToolR1Env
from toolr1_env.suite import load_split
from toolr1_env.vector import ThreadVectorEnv

STEP = "# --- step ---"
SPLIT = "validation"


def make_env() -> gym.Env:
    """One env over the validation split, long enough for every reference solution."""
    return ToolR1Env(tasks=SPLIT, max_turns=20)


def scripts(episodes: int) -> list[tuple[str, list[str]]]:
    """(task_id, steps) of the first ``episodes`` validation tasks' reference solutions."""
    tasks = load_split(SPLIT).tasks[:episodes]
    return [(t.task_id, t.reference_solution.split(STEP)) for t in tasks]


def run_thread_vector(n_envs: int, plan: list[tuple[str, list[str]]]) -> tuple[float, int]:
    """Play the plan's reference solutions through the episode engine (``agents.engine``) on a
    ThreadVectorEnv, stepping only live episodes; returns (seconds, steps)."""
    from agents.engine import play_episodes

    tasks = [t for t in load_split(SPLIT).tasks if t.task_id in {task_id for task_id, _ in plan}]
    agent = AgentBatch([ReferenceAgent(tasks) for _ in range(n_envs)], threads=False)
    with ThreadVectorEnv([make_env] * n_envs) as envs:
        envs.reset_some(range(n_envs), options=[{"task_id": plan[0][0]}] * n_envs)  # warm the sandboxes
        stats = EngineStats()
        play_episodes(AgentPlayer(agent, tasks), envs, [EpisodeRequest.of(t) for t in tasks], stats=stats)
        return stats.wall_seconds, stats.env_steps


def run_gymnasium_vector(kind: str, n_envs: int, plan: list[tuple[str, list[str]]]) -> tuple[float, int]:
    """Play the plan in waves of ``n_envs`` with a gymnasium vector env (every env steps every call)."""
    mode = gym.vector.AutoresetMode.NEXT_STEP
    if kind == "async":
        vec = gym.vector.AsyncVectorEnv([make_env] * n_envs, shared_memory=False, autoreset_mode=mode)
    else:
        vec = gym.vector.SyncVectorEnv([make_env] * n_envs, autoreset_mode=mode)
    steps = 0
    try:
        vec.reset(options={"task_id": plan[0][0]})
        started = time.perf_counter()
        for start in range(0, len(plan), n_envs):
            wave = plan[start: start + n_envs]
            wave += [wave[-1]] * (n_envs - len(wave))  # pad the last wave (its extra work is counted)
            _reset_each(vec, [task_id for task_id, _ in wave])
            longest = max(len(s) for _, s in wave)
            for k in range(longest):
                actions = tuple(s[k] if k < len(s) else "pass" for _, s in wave)
                vec.step(actions)
                steps += n_envs
        return time.perf_counter() - started, steps
    finally:
        vec.close()


def _reset_each(vec: gym.vector.VectorEnv, task_ids: list[str]) -> None:
    """Reset sub-env i onto task_ids[i] (gymnasium vector envs take one options dict for all envs)."""
    for i, task_id in enumerate(task_ids):
        mask = np.array([j == i for j in range(len(task_ids))])
        vec.reset(options={"task_id": task_id, "reset_mask": mask})


def reset_latency(repeats: int = 30) -> float:
    """p50 milliseconds of ``env.reset`` on a warm env (new sandbox worker, files copied)."""
    env = make_env()
    tasks = load_split(SPLIT).tasks
    env.reset(options={"task_id": tasks[0].task_id})
    samples = []
    for k in range(repeats):
        started = time.perf_counter()
        env.reset(options={"task_id": tasks[k % len(tasks)].task_id})
        samples.append((time.perf_counter() - started) * 1000)
    env.close()
    return statistics.median(samples)


@dataclass
class BenchArgs:
    """Environment throughput: ThreadVectorEnv through the episode engine vs gymnasium's vector envs."""

    episodes: int = arg(48, "validation tasks played (their reference solutions) per configuration")
    envs: list[int] = arg([1, 2, 4, 8], "numbers of parallel envs to measure")
    no_write: bool = arg(False, "print the table only; do not touch RESULTS.md")


def main(argv: list[str] | None = None) -> None:
    """Measure and record the throughput table."""
    args = parse(BenchArgs, argv, description=__doc__)
    plan = scripts(args.episodes)
    rows = []
    for n in args.envs:
        thread_s, thread_steps = run_thread_vector(n, plan)
        async_s, async_steps = run_gymnasium_vector("async", n, plan)
        sync_s, sync_steps = run_gymnasium_vector("sync", n, plan)
        rows.append([n, f"{len(plan) / thread_s:.2f}", f"{thread_steps / thread_s:.1f}",
                     f"{len(plan) / async_s:.2f}", f"{async_steps / async_s:.1f}",
                     f"{len(plan) / sync_s:.2f}", f"{sync_steps / sync_s:.1f}"])
        print(rows[-1], flush=True)
    latency = reset_latency()
    table = markdown_table(["envs", "ThreadVectorEnv episodes/s", "steps/s", "AsyncVectorEnv episodes/s", "steps/s",
                            "SyncVectorEnv episodes/s", "steps/s"], rows)
    notes = (f"\n{len(plan)} episodes of the `{SPLIT}` split played with their reference solutions "
             f"(mean {sum(len(s) for _, s in plan) / len(plan):.1f} steps). **Read steps/s for the env itself**: "
             "every side runs the same sandboxed env, so a step costs the same on all of them, and steps/s "
             "differ only by how the harness schedules steps and by other load on the machine. The episodes/s gap "
             "comes mostly from the harness, not the env: gymnasium's vector envs "
             "step every env on every call (NEXT_STEP autoreset), so they play in waves padded to the longest "
             "episode (`pass` actions, counted as steps) and reset one env at a time (`reset_mask`), while ours "
             "(the episode engine) steps only live episodes and refills each slot as it frees. "
             f"Reset latency of one warm env (p50): {latency:.1f} ms. Load average at the end of the run (other "
             f"jobs on the machine): {os.getloadavg()[0]:.1f}.\n")
    print(table + notes)
    if not args.no_write:
        write_section("Environment throughput (bench_env.py)", table + "\n" + notes)


if __name__ == "__main__":
    main()
