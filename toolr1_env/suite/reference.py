"""Run a task's reference solution in-process, the way a notebook-style agent would (for checks only).

The steps share one namespace holding the tools and ``final_answer``; the working directory is a
temporary folder holding copies of the task's attached files. This is *not* a sandbox: it runs only the
suite's own reference code, to prove every task is solvable with its tools.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from toolr1_env.suite.generators.base import STEP_SEPARATOR
from toolr1_env.tasks import Task


class _FinalAnswer(BaseException):
    """Raised by ``final_answer`` to end the run (a BaseException, so ``except Exception`` cannot eat it)."""

    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value


@contextlib.contextmanager
def task_workdir(task: Task) -> Iterator[str]:
    """A temporary working directory holding copies of the task's files; the old cwd is restored after."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="toolr1-ref-") as folder:
        for path in task.files:
            shutil.copy(path, os.path.join(folder, os.path.basename(path)))
        os.chdir(folder)
        try:
            yield folder
        finally:
            os.chdir(old)


def run_reference(task: Task, tools: Sequence[Callable[..., Any]], quiet: bool = True) -> Any:
    """Execute ``task.reference_solution`` step by step and return the value given to ``final_answer``.

    Raises ``RuntimeError`` if the solution ends without calling ``final_answer``.
    """
    if not task.reference_solution:
        raise ValueError(f"task {task.task_id} has no reference solution")

    def final_answer(value: Any) -> None:
        raise _FinalAnswer(value)

    namespace: dict[str, Any] = {tool.__name__: tool for tool in tools}
    namespace["final_answer"] = final_answer
    sink = io.StringIO()
    with task_workdir(task), contextlib.redirect_stdout(sink if quiet else None):  # type: ignore[type-var]
        for index, step in enumerate(task.reference_solution.split(STEP_SEPARATOR)):
            try:
                exec(compile(step, f"<{task.task_id} step {index}>", "exec"), namespace)
            except _FinalAnswer as done:
                return done.value
    raise RuntimeError(f"task {task.task_id}: reference solution never called final_answer")
