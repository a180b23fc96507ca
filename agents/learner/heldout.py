"""Held-out evaluation for the trainer: greedy episodes on fixed tasks of one or more worlds, and what to report.

``--eval_tasks`` names one or more task sets, comma-separated (``level1-eval,validation``: the level-1 tasks of
two worlds the training never sees, 85 tasks with ``--eval_level 1 --eval_size 0``). A generated split takes
``@<first seed>`` (``train-easy@100000``: a validation split in the training world at seeds no pool draws; being
the same world, a few of its questions recur in the pools, which ``benchmarks/bench_rl.py`` leaves out): the first
``--eval_size`` tasks (48 when 0) of ``--eval_level`` from that seed on. Every
set is played in envs holding its own world's tools (a task played with another world's ``read_page`` finds
none of its pages), every process playing a share.

Each evaluation writes its episodes to ``<run>/episodes/eval-<tag>.jsonl`` (task id, level, correct, every turn),
so arms can be compared per task (``benchmarks/bench_rl.py`` pairs them for McNemar's test).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from agents.engine import EpisodeRequest
from agents.learner.config import generated_tasks
from agents.learner.data_parallel import DataParallel
from agents.learner.episode_stats import episode_record, episode_stats
from agents.learner.playing import collect_everywhere
from agents.learner.policy import Policy
from agents.learner.records import Trajectory
from agents.learner.run_log import RunLog
from agents.learner.update import without_infra_errors
from toolr1_env.env import ToolR1Env, resolve_tasks
from toolr1_env.sandbox import SandboxConfig
from toolr1_env.tasks import Task, TaskSet
from toolr1_env.vector import ThreadVectorEnv


class EnvSettings(Protocol):
    """The run settings an environment and an evaluation read (``agents.learner.train.Args`` has them)."""

    num_envs: int
    step_timeout: float
    max_turns: int
    max_observation_chars: int
    answer_weight: float
    exec_weight: float
    exec_bonus: str
    prompt_style: str
    max_episode_tokens: int
    system_prompt: str
    response_prefix: str


def make_envs(task_set: TaskSet, args: EnvSettings, num_envs: int | None = None) -> ThreadVectorEnv:
    """``num_envs`` (default ``args.num_envs``) environments over one task set, with its tools (threads:
    the work happens in sandbox processes), each sandbox preloading ``args.sandbox_preload``.

    With ``args.env_servers`` (``ws://a:8000,ws://b:8000``; settings without the field play here), the envs
    are remote, spread round-robin over those servers, and play the set by the name the servers know it by
    (the bundled split of a pool or an evaluation subset: :func:`toolr1_env.serving.remote_env.task_set_name`).
    """
    settings: dict[str, Any] = {"step_timeout": args.step_timeout, "max_turns": args.max_turns,
                                "max_observation_chars": args.max_observation_chars,
                                "answer_weight": args.answer_weight, "exec_weight": args.exec_weight,
                                "exec_bonus": args.exec_bonus, "prompt_style": args.prompt_style}
    servers = getattr(args, "env_servers", "")
    if servers:
        from toolr1_env.serving.remote_env import remote_vector_env, task_set_name

        return remote_vector_env(servers, num_envs or args.num_envs, task_set_name(task_set) or task_set.name,
                                 **settings)

    asked = getattr(args, "sandbox_preload", None)  # settings without the field keep the sandbox's default
    preload = SandboxConfig().preload if asked is None else tuple(name for name in asked.split(",") if name)

    def factory() -> ToolR1Env:
        return ToolR1Env(tasks=task_set, sandbox=SandboxConfig(preload=preload), **settings)
    return ThreadVectorEnv([factory] * (num_envs or args.num_envs))


def release_sandboxes(envs: ThreadVectorEnv) -> int:
    """Stop the sandboxes of the local envs :func:`make_envs` made, while they sit idle between phases (each
    starts a fresh sandbox at its next reset); returns how many were stopped. Remote envs keep theirs.

    Raises:
        RuntimeError: an env is inside an episode (its sandbox holds the episode's variables).
    """
    if any(envs.live):
        raise RuntimeError("release_sandboxes: an episode is still running in these envs")
    local = [env for env in envs.envs if isinstance(env, ToolR1Env) and env.has_sandbox]
    for env in local:
        env.close()
    return len(local)


def same_tools(a: TaskSet, b: TaskSet) -> bool:
    """Whether two task sets call the very same tools (then one set's envs can play the other's tasks)."""
    return a.tools == b.tools and a.hidden_tools == b.hidden_tools


@dataclass
class EvalSet:
    """One world's evaluation tasks and the envs that play them."""

    name: str
    tasks: list[Task]
    envs: ThreadVectorEnv
    owns_envs: bool


def eval_tasks_of(spec: str, level: int, size: int, pool: TaskSet | None = None) -> tuple[TaskSet, list[Task]]:
    """The task set and tasks named by one entry of ``--eval_tasks`` (see the module docstring).

    ``pool`` is the training pool (for the entry ``pool``). ``size <= 0`` keeps every task of the level.
    """
    name, _, first = spec.partition("@")
    if name == "pool":
        if pool is None:
            raise ValueError("--eval_tasks pool: no training pool given")
        task_set = pool
    else:
        task_set = resolve_tasks(name)
    if first:
        if not task_set.is_generated:
            raise ValueError(f"--eval_tasks {spec!r}: '@seed' applies to a generated split, {name!r} is fixed")
        task_set = task_set.subset(f"{name}@{first}", generated_tasks(task_set, int(first), size if size > 0 else 48,
                                                                      level))
    tasks = [t for t in task_set.tasks if level < 0 or t.level == level]
    return task_set, tasks[:size] if size > 0 else tasks


def make_eval_sets(spec: str, level: int, size: int, args: EnvSettings, pool: TaskSet,
                   pool_envs: ThreadVectorEnv) -> list[EvalSet]:
    """Every set of ``--eval_tasks``, each with envs of its own world (the pool's envs where they share tools)."""
    sets = []
    for entry in [s.strip() for s in spec.split(",") if s.strip()]:
        task_set, tasks = eval_tasks_of(entry, level, size, pool)
        if not tasks:
            raise ValueError(f"--eval_tasks {entry!r} holds no task of level {level}")
        if same_tools(task_set, pool):
            sets.append(EvalSet(entry, tasks, pool_envs, owns_envs=False))
        else:
            sets.append(EvalSet(entry, tasks, make_envs(task_set, args, min(args.num_envs, len(tasks))), True))
    if not sets:
        raise ValueError("--eval_tasks names no task set")
    return sets


def episode_metrics(trajectories: Sequence[Trajectory], prefix: str) -> dict[str, float]:
    """Mean reward and components, success per level, lengths, recoveries ({} when empty)."""
    if not trajectories:
        return {}
    out: dict[str, float] = {f"{prefix}/mean": float(np.mean([t.reward for t in trajectories]))}
    for key in ("answer_score", "exec_success", "answered"):
        out[f"{prefix}/{key}"] = float(np.mean([t.reward_components.get(key, 0.0) for t in trajectories]))
    by_level: dict[int, list[float]] = defaultdict(list)
    for t in trajectories:
        by_level[t.level].append(t.reward_components.get("answer_score", 0.0))
    for level, scores in sorted(by_level.items()):
        out[f"{prefix}/success_level{level}"] = float(np.mean(scores))
    out[f"{prefix}/turns"] = float(np.mean([t.num_turns for t in trajectories]))
    out[f"{prefix}/response_tokens"] = float(np.mean([t.num_generated_tokens for t in trajectories]))
    out[f"{prefix}/episode_tokens"] = float(np.mean([len(t.token_ids) for t in trajectories]))
    out[f"{prefix}/truncated"] = float(np.mean([t.truncated for t in trajectories]))
    out.update(episode_stats(trajectories, prefix))
    return out


@dataclass(frozen=True)
class EvalProgress:
    """Where an evaluation stands after a round of turns (one action of every live episode)."""

    rounds: int  # rounds of the current set so far
    ended: int  # episodes ended, over all the sets
    total: int  # episodes to play, over all the sets
    seconds: float  # since the evaluation started

    def seconds_left(self, max_turns: int) -> float:
        """A rough estimate: the larger of the pace per episode ended and, while the side-by-side episodes have
        turns left, the pace per round times the rounds left (episodes that all run to the turn limit end
        together, so counting ended episodes alone would say nothing until the end)."""
        by_episodes = self.seconds / self.ended * (self.total - self.ended) if self.ended else 0.0
        by_rounds = self.seconds / self.rounds * max(0, max_turns - self.rounds) if self.rounds else 0.0
        return max(by_episodes, by_rounds)


def progress_lines(say: Callable[[str], None], what: str, max_turns: int, every_s: float = 20.0
                   ) -> Callable[[EvalProgress], None]:
    """A progress callback for :func:`evaluate`: after a round of turns, a line (through ``say``) with the episodes
    ended and a rough estimate of the time left (:meth:`EvalProgress.seconds_left`), at most one every ``every_s``
    seconds."""
    said_at = [-every_s]

    def report(progress: EvalProgress) -> None:
        if progress.ended < progress.total and progress.seconds - said_at[0] >= every_s:
            said_at[0] = progress.seconds
            say(f"{what}: turn {progress.rounds}, {progress.ended}/{progress.total} episodes ended, "
                f"about {clock(progress.seconds_left(max_turns))} left")

    return report


def clock(seconds: float) -> str:
    """``m:ss`` for a duration in seconds (negative counts as 0)."""
    seconds = max(int(seconds), 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


def evaluate(policy: Policy, sets: Sequence[EvalSet], args: EnvSettings, dp: DataParallel | None = None,
             log: RunLog | None = None, tag: str = "0", prefix: str = "eval", episodes: str = "eval",
             progress: Callable[[EvalProgress], None] | None = None) -> dict[str, float]:
    """Greedy success on every evaluation set (``<prefix>/success`` over all their tasks, and per set).

    With ``log``, the episodes go to ``<run>/episodes/<episodes>-<tag>.jsonl``. Infrastructure errors are left out
    of the scores and counted (``<prefix>/infra_errors``). ``progress`` gets an :class:`EvalProgress` after each
    round of turns (under data parallel, of this process's share).
    """
    start = time.perf_counter()
    played: list[Trajectory] = []
    metrics: dict[str, Any] = {}
    dp = dp or DataParallel()
    total = sum(-(-len(s.tasks) // dp.world_size) for s in sets)  # this process's share, rounded up
    for eval_set in sets:
        before = len(played) // dp.world_size
        requests = [EpisodeRequest(t.task_id, f"eval-{t.task_id}", seed=0, task=t) for t in eval_set.tasks]

        def on_round(rounds: int, ended: int, before: int = before) -> None:
            if progress is not None:
                progress(EvalProgress(rounds, before + ended, total, time.perf_counter() - start))

        trajectories, _ = collect_everywhere(dp, policy, eval_set.envs, requests,
                                             max_episode_tokens=args.max_episode_tokens,
                                             system_prompt=args.system_prompt or None, temperature=0.0,
                                             response_prefix=args.response_prefix, on_round=on_round)
        clean = without_infra_errors(trajectories)
        if len(sets) > 1:
            metrics[f"{prefix}/{eval_set.name}/success"] = (
                float(np.mean([t.reward_components.get("answer_score", 0.0) for t in clean])) if clean else 0.0)
        played += trajectories
    if log is not None:
        log.write_episodes(f"{episodes}-{tag}", [episode_record(t) for t in played])
    clean = without_infra_errors(played)
    metrics.update(episode_metrics(clean, prefix))
    metrics[f"{prefix}/success"] = metrics.pop(f"{prefix}/answer_score", 0.0)
    metrics[f"{prefix}/tasks"] = float(len(clean))
    metrics[f"{prefix}/infra_errors"] = float(len(played) - len(clean))
    metrics[f"time/{prefix}_s"] = time.perf_counter() - start
    return metrics


def close_eval_sets(sets: Sequence[EvalSet]) -> None:
    """Close the envs the evaluation sets own (not the pool's, which they borrow)."""
    for eval_set in sets:
        if eval_set.owns_envs:
            eval_set.envs.close()


def result_table(points: Sequence[tuple[str, dict[str, float]]], prefix: str = "eval") -> str:
    """A plain-text table of held-out results, one row per point ``(name, metrics)`` (the end of a run)."""
    levels = sorted({int(k.rsplit("level", 1)[1]) for _, m in points for k in m
                     if k.startswith(f"{prefix}/success_level")})
    header = ["", "held-out success", *(f"level {lv}" for lv in levels), "recovered", "tasks", "at (min)"]
    rows = [header]
    for name, m in points:
        tasks = m.get(f"{prefix}/tasks", 0.0)
        rows.append([name, _pct(m.get(f"{prefix}/success")), *(_pct(m.get(f"{prefix}/success_level{lv}"))
                                                               for lv in levels),
                     f"{round(m.get(f'{prefix}/recovered', 0.0) * tasks)}", f"{int(tasks)}",
                     f"{m['time/elapsed_s'] / 60:.1f}" if "time/elapsed_s" in m else ""])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
