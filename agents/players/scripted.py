"""Agents that need no model, for tests and baselines: replayed actions and the bundled reference solutions.

:class:`ScriptedAgent` replays given actions (a list, or a function of the task prompt, the observation
and the turn); :class:`ReferenceAgent` plays each bundled task's ``reference_solution`` one step per turn
(steps are split on ``# --- step ---`` lines), which solves every bundled task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from agents.players.api import AgentError, Usage
from toolr1_env.suite import split_steps
from toolr1_env.tasks import Task

#: ``(task_prompt, observation, turn) -> action``; ``turn`` counts from 0 within the episode.
ActionFunction = Callable[[str, str, int], str]


class ScriptedAgent:
    """Replay fixed actions: a list (turn ``t`` plays ``actions[t]``; an empty action once it runs out),
    or a function ``(task_prompt, observation, turn) -> action``.

    ``ScriptedAgent(['final_answer("")'])`` is the "answer nothing" baseline.
    """

    def __init__(self, actions: Sequence[str] | ActionFunction) -> None:
        if isinstance(actions, str):
            raise TypeError("ScriptedAgent takes a list of actions or a function, not one string")
        self._actions = actions
        self.usage = Usage()
        self._prompt = ""
        self._turn = 0

    def reset(self, task_prompt: str) -> None:
        """Start an episode (the script restarts at its first action)."""
        self._prompt, self._turn, self.usage = task_prompt, 0, Usage()

    def act(self, observation: str) -> str:
        """The scripted action for this turn."""
        turn, self._turn = self._turn, self._turn + 1
        if callable(self._actions):
            return self._actions(self._prompt, observation, turn)
        return self._actions[turn] if turn < len(self._actions) else ""


def task_for_prompt(prompt: str, tasks: Iterable[Task]) -> Task:
    """The task whose question ends ``prompt`` (both prompt styles end with ``Task: <question>``).

    The longest matching question wins, so a question that is the tail of another cannot be mistaken
    for it. Raises :class:`AgentError` when no task matches.
    """
    tail = prompt.rstrip()
    matches = [t for t in tasks if tail.endswith("Task: " + t.question.rstrip())]
    if not matches:
        raise AgentError(f"no known task matches the prompt ending {tail[-120:]!r}")
    return max(matches, key=lambda t: len(t.question))


class ReferenceAgent:
    """Play a task's ``reference_solution``, one ``# --- step ---`` step per turn, in a ```` ```py ```` block.

    Args:
        tasks: the tasks it may be asked to solve; the episode's task is found from the prompt's question
            (:func:`task_for_prompt`). A task without a reference solution raises :class:`AgentError`.
    """

    def __init__(self, tasks: Iterable[Task]) -> None:
        self.tasks = list(tasks)
        self.usage = Usage()
        self._steps: list[str] = []
        self._turn = 0

    def reset(self, task_prompt: str) -> None:
        """Find the task and split its solution into steps."""
        self.usage, self._turn, self._steps = Usage(), 0, []
        task = task_for_prompt(task_prompt, self.tasks)
        if not task.reference_solution:
            raise AgentError(f"task {task.task_id!r} has no reference_solution")
        self._steps = split_steps(task.reference_solution)

    def act(self, observation: str) -> str:
        """The next step as a fenced code block (an empty action after the last step)."""
        if not self._steps:
            raise AgentError("ReferenceAgent.act called before a successful reset")
        turn, self._turn = self._turn, self._turn + 1
        if turn >= len(self._steps):
            return ""
        return f"```py\n{self._steps[turn].strip(chr(10))}\n```"
