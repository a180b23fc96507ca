"""Playing episodes for the learner across processes: online groups, demonstrations and repairs.

Every function here plays whole groups on the process that owns them (round robin over the group ids in
first-seen order: :func:`group_owner`) and hands every process all of the results, in request order, so
what follows (queue, groups, advantages) is computed identically everywhere.

* :func:`collect_everywhere`: the iteration's sampled episodes.
* :func:`seed_queue_with_demonstrations`: each pool task's demonstration (``--demonstrations``), played
  through the env and offered to the dynamic sample queue.
* :func:`offer_repairs`: failures continued after their first error by the task's fix
  (``--repair_demonstrations``, :mod:`agents.learner.repairs`).

The settings they read (``response_prefix``, ``max_episode_tokens``...) come from the trainer's
``agents.learner.train.Args``, seen here through the :class:`EpisodeSettings` protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from agents.engine import EpisodeRequest
from agents.learner.data_parallel import DataParallel
from agents.learner.demonstrations import demonstration_scripts, host_tool
from agents.learner.policy import Policy
from agents.learner.records import Trajectory
from agents.learner.repairs import choose_repairs, mask_context
from agents.learner.rollout import RolloutStats, collect
from agents.learner.sample_queue import SampleQueue
from agents.learner.update import rescore
from toolr1_env.tasks import TaskSet
from toolr1_env.vector import ThreadVectorEnv


class EpisodeSettings(Protocol):
    """The run settings episode playing reads (``agents.learner.train.Args`` has them all)."""

    response_prefix: str
    max_episode_tokens: int
    system_prompt: str
    demonstrations: str
    max_turns: int


def collect_everywhere(dp: DataParallel, policy: Policy, envs: ThreadVectorEnv, requests: list[EpisodeRequest],
                       scripts: list[list[str]] | None = None, **kwargs: Any
                       ) -> tuple[list[Trajectory], RolloutStats]:
    """Play this process's share of ``requests`` (whole groups, round robin) and return every process's
    trajectories in request order, on every process (the rollout statistics are this process's own)."""
    owner = group_owner([r.group_id for r in requests], dp.world_size)
    mine = [i for i, r in enumerate(requests) if owner[r.group_id] == dp.rank]
    trajectories, stats = collect(policy, envs, [requests[i] for i in mine],
                                  scripts=None if scripts is None else [scripts[i] for i in mine], **kwargs)
    gathered = dp.gather_objects(list(zip(mine, trajectories, strict=True)))
    return [traj for _, traj in sorted((pair for part in gathered for pair in part), key=lambda pair: pair[0])], stats


def group_owner(group_ids: list[str], world_size: int) -> dict[str, int]:
    """Group id -> the process that plays and trains it (round robin in first-seen order)."""
    owner: dict[str, int] = {}
    for group_id in group_ids:
        owner.setdefault(group_id, len(owner) % world_size)
    return owner


def demonstration_turns(pool: TaskSet, args: EpisodeSettings) -> dict[str, list[str]]:
    """Each pool task's demonstration (``--demonstrations``: the reference solution, or the compact
    look-then-answer script of :mod:`agents.learner.demonstrations`), as turn texts closed like a generated
    turn, by task id (tasks without a reference solution have none)."""
    tasks = [t for t in pool.tasks if t.reference_solution]
    fence_close = "\n```\n" if "```" in args.response_prefix else "\n"
    scripts = demonstration_scripts(tasks, args.demonstrations, host_tool(pool.tools, "read_page"),
                                    host_tool(pool.tools, "inspect_file"))
    return {task.task_id: [turn + fence_close for turn in script] for task, script in zip(tasks, scripts, strict=True)}


def play_demonstrations(policy: Policy, envs: ThreadVectorEnv, requests: list[EpisodeRequest],
                        scripts: list[list[str]], args: EpisodeSettings, dp: DataParallel | None = None,
                        context_turns: list[int] | None = None) -> list[Trajectory]:
    """Play scripted episodes through the env, as demonstrations re-scored by the current policy.

    Each is marked ``metadata["demonstration"]`` (no sampler: its importance weight is 1), its first
    ``context_turns[i]`` turns leave the loss (:func:`agents.learner.repairs.mask_context`), and each
    process re-scores its share; every process returns all of them, in request order.
    """
    dp = dp or DataParallel()
    owner = group_owner([r.group_id for r in requests], dp.world_size)
    played, _ = collect_everywhere(dp, policy, envs, requests, scripts, max_episode_tokens=args.max_episode_tokens,
                                   system_prompt=args.system_prompt or None, response_prefix=args.response_prefix)
    for i, demo in enumerate(played):
        demo.metadata["demonstration"] = True  # before rescore: a demonstration has no sampler to weight against
        if context_turns and context_turns[i]:
            mask_context(demo, context_turns[i])
            demo.metadata["repair"] = True
    mine = [d for d in played if owner[d.group_id] == dp.rank]
    rescore(policy, mine)
    by_group = {d.group_id: d for part in dp.gather_objects(mine) for d in part}
    return [by_group[d.group_id] for d in played]


def play_pool_demonstrations(policy: Policy, envs: ThreadVectorEnv, demonstrations: Mapping[str, list[str]],
                             args: EpisodeSettings, dp: DataParallel | None = None) -> list[Trajectory]:
    """Play each task's demonstration turns (task id -> turns, as :func:`demonstration_turns` gives them)
    through the env, one group ``demo-<task id>`` each; every process returns all of them."""
    requests = [EpisodeRequest(task_id, f"demo-{task_id}", seed=0) for task_id in demonstrations]
    return play_demonstrations(policy, envs, requests, list(demonstrations.values()), args, dp) if requests else []


def seed_queue_with_demonstrations(policy: Policy, envs: ThreadVectorEnv, pool: TaskSet, queue: SampleQueue,
                                   args: EpisodeSettings, dp: DataParallel | None = None,
                                   demonstrations: Mapping[str, list[str]] | None = None,
                                   played: Sequence[Trajectory] | None = None) -> dict[str, float]:
    """Play each pool task's demonstration (``demonstrations``, default :func:`demonstration_turns` of
    ``pool``) through the env and offer the successes to the queue (``played``: ones already played by
    :func:`play_pool_demonstrations`, offered as they are).

    Our extension of the dynamic sample queue (the paper fills it from the policy's own successes only):
    a small model may never succeed on its own, so every group would have zero signal and nothing would
    be learned. Demonstrations enter like any cached success: only into a zero-signal group of their own
    task, re-scored by the current policy, retired by age and reuse. ``--no_queue_demonstrations`` turns
    this off.
    """
    if played is None:
        if demonstrations is None:
            demonstrations = demonstration_turns(pool, args)
        played = play_pool_demonstrations(policy, envs, demonstrations, args, dp)
    admitted = sum(queue.add(demo, policy.version) for demo in played)
    return {"queue/demonstrations_offered": float(len(played)), "queue/demonstrations_admitted": float(admitted)}


def offer_repairs(policy: Policy, envs: ThreadVectorEnv, online: Sequence[Trajectory],
                  fixes: Mapping[str, list[str]], queue: SampleQueue, args: EpisodeSettings,
                  dp: DataParallel | None = None) -> dict[str, float]:
    """Continue this iteration's failures after their first error with the task's fix, and offer the
    correct ones to the queue (:mod:`agents.learner.repairs`; ``--repair_demonstrations``)."""
    repairs = choose_repairs(online, fixes, args.response_prefix, args.max_turns)
    played = play_demonstrations(policy, envs, [EpisodeRequest(r.task_id, r.group_id, seed=0) for r in repairs],
                                 [r.script for r in repairs], args, dp, [r.context_turns for r in repairs]
                                 ) if repairs else []
    admitted = sum(queue.add(t, policy.version) for t in played)
    return {"queue/repairs_offered": float(len(repairs)), "queue/repairs_admitted": float(admitted)}
