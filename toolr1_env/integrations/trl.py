"""TRL ``GRPOTrainer`` plugs: the dataset rows of a task set, and an ``environment_factory`` class.

Two ways to train on ToolR1-GAIA-v0 with TRL (``docs/integrations.md`` has both recipes):

* ``rollout_func=agents.trl.make_rollout_func(...)``: our multi-turn *code* episodes (the model writes fenced
  Python, exactly as with our learner), token in / token out, with the dynamic sample queue.
* ``environment_factory=ToolR1Environment.factory(tasks)`` (this module): TRL's own tool loop, where the model
  calls a ``python(code)`` tool in the chat template's JSON tool-call format. Needs a tool-calling chat template.

Both take their dataset from :func:`task_dataset`. A row is::

    {"prompt": [{"role": "user", "content": "", "task_id": "<id>"}], "task_id": "<id>", "level": <0-3>}

The prompt's content is empty because the environment writes it: ``ToolR1Environment.reset`` returns the task
prompt (TRL appends it to the user message), and the rollout function renders the env's own reset prompt.
The task id rides in the message as well as in its column because TRL hands a ``rollout_func`` only the
prompts (:func:`row_task_id` reads it back). Nothing here imports TRL; ``datasets`` only in :func:`task_dataset`.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from toolr1_env.env import TasksSpec, ToolR1Env, resolve_tasks
from toolr1_env.integrations.tasks import select_tasks
from toolr1_env.prompts import render_tool_call_prompt

TASK_ID_KEY = "task_id"


def task_rows(tasks: TasksSpec, size: int | None = None) -> list[dict[str, Any]]:
    """One dataset row per task of :func:`~toolr1_env.integrations.tasks.select_tasks` ``(tasks, size)``: every
    task of a fixed set (or its first ``size``), or the tasks of seeds ``0..size-1`` of a generated split."""
    return [{"prompt": [{"role": "user", "content": "", TASK_ID_KEY: t.task_id}], TASK_ID_KEY: t.task_id,
             "level": t.level} for t in select_tasks(tasks, size)]


def task_dataset(tasks: TasksSpec, size: int | None = None) -> Any:
    """:func:`task_rows` as a ``datasets.Dataset`` (the ``train_dataset`` of ``GRPOTrainer``)."""
    from datasets import Dataset

    return Dataset.from_list(task_rows(tasks, size))


def row_task_id(prompt: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> str:
    """The task id of a TRL prompt built from :func:`task_rows` (its last message's ``task_id``), or of a row."""
    if isinstance(prompt, Mapping):
        value = prompt.get(TASK_ID_KEY)
    else:
        value = prompt[-1].get(TASK_ID_KEY) if prompt and isinstance(prompt[-1], Mapping) else None
    if not isinstance(value, str) or not value:
        raise ValueError("this prompt carries no task id: build the dataset with "
                         "toolr1_env.integrations.trl.task_dataset(tasks)")
    return value


class ToolR1Environment:
    """A ToolR1-GAIA-v0 episode for TRL's ``environment_factory``: the model acts through one ``python`` tool.

    TRL creates one instance per concurrent rollout (with no arguments: pass :meth:`factory`'s result), calls
    ``reset(**row)`` to open the row's task, exposes every other public method as a tool (here only
    :meth:`python`), and scores the rollout with :meth:`get_reward`.

    * ``reset`` opens an episode of the row's task in a fresh sandbox and returns the task prompt worded for tool
      calls (:func:`toolr1_env.prompts.render_tool_call_prompt`).
    * ``python(code)`` is one env step: the code runs in the episode's persistent interpreter (the task's tools,
      ``web_search`` and friends, are functions inside it); the tool returns the observation. ``final_answer(x)``
      inside the code ends the episode, and so does the env's turn limit.
    * ``get_reward`` returns the env's episode reward. An episode the model left without an answer (it stopped
      calling the tool) is ended there with :meth:`ToolR1Env.end_episode`, paid like the turn limit. An
      infrastructure failure (the judge could not score) returns ``None``: TRL leaves the rollout out of its
      group's baseline and gives it no advantage, instead of scoring it as a wrong answer.

    Args:
        tasks: the task set (anything :func:`~toolr1_env.env.resolve_tasks` takes); resolve it once with
            :meth:`factory` when many instances share it.
        **env_kwargs: :class:`~toolr1_env.env.ToolR1Env` arguments (``max_turns``, ``step_timeout``, ``judge``...).
    """

    def __init__(self, tasks: TasksSpec = "warmup-eval", **env_kwargs: Any) -> None:
        self._env = ToolR1Env(tasks=resolve_tasks(tasks), **env_kwargs)
        weakref.finalize(self, self._env.close)  # TRL never closes its environments: stop the sandbox with us
        self._done = True
        self.reward: float | None = None
        self.info: dict[str, Any] = {}

    @classmethod
    def factory(cls, tasks: TasksSpec, **env_kwargs: Any) -> Callable[[], ToolR1Environment]:
        """A no-argument constructor for ``environment_factory`` (the task set is resolved once, here)."""
        return functools.partial(cls, resolve_tasks(tasks), **env_kwargs)

    def reset(self, task_id: str | None = None, **row: Any) -> str:
        """Open an episode of the row's task (a random one without ``task_id``); return its prompt."""
        _, info = self._env.reset(options={"task_id": task_id} if task_id else None)
        task = self._env.task
        assert task is not None
        self._done, self.reward, self.info = False, None, dict(info)
        return render_tool_call_prompt(task.question, [Path(f).name for f in task.files], self._env.tools)

    def python(self, code: str) -> str:
        """Run Python code in the task's persistent interpreter and return its output.

        Args:
            code: Python source. Variables, imports and functions persist between calls. Call
                final_answer(answer) in the code to submit the final answer.

        Returns:
            What the code printed, the value of its last expression, or the error traceback.
        """
        if self._done:
            return "The task has already ended: no more code runs."
        observation, reward, terminated, truncated, info = self._env.step(f"```py\n{code}\n```")
        if terminated or truncated:
            self._end(reward, info)
            why = "final answer submitted" if terminated else "step limit reached"
            observation = f"{observation}\n(The task has ended: {why}.)"
        return observation

    def get_reward(self) -> float | None:
        """The episode's reward (ending an unanswered episode first); None when the judge could not score it."""
        if not self._done:
            self._end(*self._env.end_episode())
        return None if self.info.get("infra_error") else self.reward

    def _end(self, reward: float, info: Mapping[str, Any]) -> None:
        self._done, self.reward, self.info = True, float(reward), dict(info)
