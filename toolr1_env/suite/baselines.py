"""Tool-free baselines: they show how far an agent gets without doing the work (it should be nowhere).

* ``most_common``: answer every task of a level with that level's most common ground truth (an upper
  bound for any constant guess, since it peeks at the answers).
* ``empty``: answer the empty string.
* ``question_only``: a no-tools guess read off the question (its last number, else its first name-like
  phrase), standing in for a model answering from the question alone.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

from toolr1_env.tasks import Task

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_NAME = re.compile(r"(?<![.?!]\s)(?<!^)\b[A-Z][a-z]+(?: [A-Z][a-z]+)*")


def _scorer() -> Callable[[str, str], bool]:
    from toolr1_env.scoring import question_scorer  # imported late: written by another module's owner

    return question_scorer


def most_common_answers(tasks: Sequence[Task]) -> dict[int, str]:
    """Level -> its most common ground-truth answer (ties broken by the answer text)."""
    by_level: dict[int, Counter[str]] = {}
    for task in tasks:
        by_level.setdefault(task.level, Counter())[task.answer] += 1
    return {level: min(c.items(), key=lambda item: (-item[1], item[0]))[0] for level, c in by_level.items()}


def question_only_answer(question: str) -> str:
    """A guess from the question alone: its last number, else its first capitalised phrase, else ``""``."""
    numbers = _NUMBER.findall(question)
    if numbers:
        return numbers[-1].replace(",", "")
    names = _NAME.findall(question)
    return names[0] if names else ""


def accuracy(tasks: Sequence[Task], answer: Callable[[Task], str]) -> float:
    """Fraction of ``tasks`` the answering function gets right under the GAIA scorer (0.0 for no tasks)."""
    if not tasks:
        return 0.0
    scorer = _scorer()
    return sum(scorer(answer(task), task.answer) for task in tasks) / len(tasks)


def baseline_scores(tasks: Sequence[Task]) -> dict[str, float]:
    """Accuracy of each baseline (``most_common``, ``empty``, ``question_only``) on ``tasks``."""
    common = most_common_answers(tasks)
    return {
        "most_common": accuracy(tasks, lambda t: common[t.level]),
        "empty": accuracy(tasks, lambda t: ""),
        "question_only": accuracy(tasks, lambda t: question_only_answer(t.question)),
    }
