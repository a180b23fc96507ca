"""Environment throughput with a scripted agent: ours (ThreadVectorEnv) versus gymnasium's vector envs.

    python benchmarks/bench_env.py [--episodes 48] [--envs 1 2 4 8]

The scripted agent plays each task's reference solution (the bundled ``validation`` split: web search,
page reads, file inspection, pandas), so a step is realistic agent code. For each number of parallel
environments it reports episodes/s and steps/s for ``ThreadVectorEnv`` (threads; every live episode's
code runs at once), ``gymnasium.vector.AsyncVectorEnv`` (one subprocess per env, shared_memory=False)
and ``SyncVectorEnv`` (one after the other), plus the p50 reset latency of one env. Writes the table to
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import toolr1_env  # noqa: E402, F401
from benchmarks.results_file import markdown_table, write_section  # noqa: E402
from toolr1_env.env import ToolR1Env  # noqa: E402
from toolr1_env.suite import load_split  # noqa: E402
from toolr1_env.vector import ThreadVectorEnv  # noqa: E402

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
    """Play the plan with ThreadVectorEnv, stepping only live episodes; returns (seconds, steps)."""
    with ThreadVectorEnv([make_env] * n_envs) as envs:
        envs.reset_some(range(n_envs), options=[{"task_id": plan[0][0]}] * n_envs)  # warm the sandboxes
        pending, slots, steps = list(plan), {}, 0
        started = time.perf_counter()
        while pending or slots:
            free = [i for i in range(n_envs) if i not in slots][: len(pending)]
            if free:
                chosen = [pending.pop(0) for _ in free]
                envs.reset_some(free, options=[{"task_id": task_id} for task_id, _ in chosen])
                slots.update({i: list(task_steps) for i, (_, task_steps) in zip(free, chosen, strict=True)})
            outcomes = envs.step_live({i: remaining.pop(0) for i, remaining in slots.items()})
            steps += len(outcomes)
            for i, outcome in outcomes.items():
                if outcome.done or not slots[i]:
                    slots.pop(i)
                    if not outcome.done:
                        envs.abandon(i)
        return time.perf_counter() - started, steps


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


def main() -> None:
    """Measure and record the throughput table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=48)
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 2, 4, 8])
    args = parser.parse_args()
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
             f"(mean {sum(len(s) for _, s in plan) / len(plan):.1f} steps). Gymnasium's vector envs step every "
             "env on every call (NEXT_STEP autoreset), so they play in waves padded to the longest episode "
             "(`pass` actions, counted as steps); ours steps only live episodes. "
             f"Reset latency of one warm env (p50): {latency:.1f} ms.\n")
    print(table + notes)
    write_section("Environment throughput (bench_env.py)", table + "\n" + notes)


if __name__ == "__main__":
    main()
