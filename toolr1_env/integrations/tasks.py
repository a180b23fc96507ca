"""Which tasks an integration's dataset holds: the one rule every adapter's row builder shares."""

from __future__ import annotations

from toolr1_env.env import TasksSpec, resolve_tasks
from toolr1_env.tasks import Task


def select_tasks(tasks: TasksSpec, size: int | None = None) -> list[Task]:
    """The tasks of a dataset.

    Args:
        tasks: anything the env accepts: a bundled split name, a GAIA folder, a task JSONL, a ``TaskSet`` or a
            list of ``Task``.
        size: tasks wanted. A fixed set gives its first ``size`` tasks (all when None); a generated split
            (``train``, ``warmup``, ...) needs ``size`` and gives the tasks of seeds ``0..size-1``, the fixed pool
            our learner draws from.
    """
    task_set = resolve_tasks(tasks)
    if task_set.is_generated:
        if size is None:
            raise ValueError(f"tasks {task_set.name!r} are generated without end: give size=")
        return [task_set.pick(seed) for seed in range(size)]
    return list(task_set.tasks)[:size]
