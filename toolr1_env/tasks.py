"""Task records and task sets: what an episode asks, what counts as right, and the tools it comes with.

A :class:`Task` is one GAIA-style question. A :class:`TaskSet` is a named collection of tasks plus the
tools those tasks are meant to be solved with (for the bundled suite: an offline web search, a page
reader and a file inspector bound to one fictional world). A task set is either *finite* (a fixed list,
for example the bundled ``validation`` split or a user's GAIA folder) or *generated* (an unlimited stream,
one task per integer seed, for example the bundled ``train`` split).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Level 0 is our warm-up level (one line of code gets the answer); 1-3 follow GAIA's levels.
LEVELS = (0, 1, 2, 3)


@dataclass(frozen=True)
class Task:
    """One question with its ground-truth answer.

    Args:
        task_id: unique identifier (GAIA's ``task_id`` for real GAIA rows).
        question: the question shown to the agent.
        answer: the ground truth, scored with :func:`toolr1_env.scoring.question_scorer`.
        level: 0 (warm-up) or GAIA's 1-3.
        files: host paths of attached files; the environment copies them into the sandbox's working
            directory and tells the agent their names.
        reference_solution: optional agent-style Python (using only the tools of its task set and
            ``final_answer``) that solves the task; bundled tasks all carry one.
        metadata: free-form extra data (generator name, split, ...). Never shown to the agent.
        scored: False when the ground truth is withheld (GAIA's test split, whose answers are ``"?"``):
            such a task can be run to produce a submission, but its answer is never judged, and the
            environment reports the episode as unscored (``info["scored"]``), never as wrong.
    """

    task_id: str
    question: str
    answer: str
    level: int = 1
    files: tuple[str, ...] = ()
    reference_solution: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    scored: bool = True

    def __post_init__(self) -> None:
        for name in ("task_id", "question", "answer"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"Task.{name} must be a str, got {type(value).__name__}: {value!r}")
        if not self.task_id:
            raise ValueError("Task.task_id must not be empty")
        if not self.question.strip():
            raise ValueError(f"Task {self.task_id!r}: question must not be empty")
        if isinstance(self.level, bool) or self.level not in LEVELS:
            raise ValueError(f"Task {self.task_id!r}: level must be one of {LEVELS}, got {self.level!r}")
        if not isinstance(self.scored, bool):
            raise TypeError(f"Task {self.task_id!r}: scored must be a bool, got {self.scored!r}")
        if isinstance(self.files, (str, bytes, os.PathLike)):
            raise TypeError(f"Task {self.task_id!r}: files must be a sequence of paths, not one path")
        object.__setattr__(self, "files", tuple(os.fspath(f) for f in self.files))
        names = [os.path.basename(f) for f in self.files]
        if len(set(names)) != len(names):
            raise ValueError(f"Task {self.task_id!r}: attached files must have distinct names: {names}")

    def replace(self, **changes: Any) -> Task:
        """Return a copy with some fields changed."""
        return dataclasses.replace(self, **changes)


@dataclass
class TaskSet:
    """A named collection of tasks and the tools that go with them.

    Args:
        name: for logs and reports (``"validation"``, ``"train"``, a folder path, ...).
        tasks: the finite list of tasks; empty for a purely generated set.
        tools: plain Python callables offered to the agent in every episode of this set.
        generate: for generated sets, ``seed -> Task``; must be deterministic in the seed.
        lookup: for generated sets, ``task_id -> Task`` (regenerates a task from its id).
        hidden_tools: callables the agent's code may call like ``tools`` but that the prompt does not list
            (aliases, such as the bundled suite's ``visit_page`` for ``read_page``).
    """

    name: str
    tasks: Sequence[Task] = ()
    tools: tuple[Callable[..., Any], ...] = ()
    generate: Callable[[int], Task] | None = None
    lookup: Callable[[str], Task] | None = None
    hidden_tools: tuple[Callable[..., Any], ...] = ()
    _by_id: dict[str, Task] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.tasks = list(self.tasks)
        self.tools = tuple(self.tools)
        self.hidden_tools = tuple(self.hidden_tools)
        for task in self.tasks:
            if not isinstance(task, Task):
                raise TypeError(f"TaskSet {self.name!r}: expected Task, got {type(task).__name__}")
            if task.task_id in self._by_id:
                raise ValueError(f"TaskSet {self.name!r}: duplicate task_id {task.task_id!r}")
            self._by_id[task.task_id] = task
        if not self.tasks and self.generate is None:
            raise ValueError(f"TaskSet {self.name!r} is empty: give tasks or a generator")

    @property
    def is_generated(self) -> bool:
        """True when tasks come from ``generate`` rather than a fixed list."""
        return not self.tasks

    def __len__(self) -> int:
        """Number of fixed tasks (0 for a generated set)."""
        return len(self.tasks)

    def get(self, task_id: str) -> Task:
        """Return the task with this id, or raise ``KeyError`` with a readable message."""
        if task_id in self._by_id:
            return self._by_id[task_id]
        if self.lookup is not None:
            try:
                return self.lookup(task_id)
            except (KeyError, ValueError) as exc:
                raise KeyError(f"TaskSet {self.name!r} has no task {task_id!r} ({exc})") from None
        raise KeyError(f"TaskSet {self.name!r} has no task {task_id!r}")

    def subset(self, name: str, tasks: Sequence[Task]) -> TaskSet:
        """A fixed set of ``tasks`` with this set's tools (listed and hidden): a training pool, one step's tasks."""
        return TaskSet(name=name, tasks=tasks, tools=self.tools, hidden_tools=self.hidden_tools)

    def pick(self, seed: int) -> Task:
        """Deterministically pick (or generate) a task from a non-negative integer seed."""
        if self.tasks:
            return self.tasks[seed % len(self.tasks)]
        assert self.generate is not None
        return self.generate(seed)
