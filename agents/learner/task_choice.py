"""Which tasks an RL iteration plays: uniformly, or by learnability (skip mastered and hopeless tasks).

A GRPO group teaches something only when its episodes differ in correctness. A task solved with
probability ``p`` gives a group of ``G`` episodes with a correctness difference with probability
``1 - p**G - (1 - p)**G``: near 0 for a mastered task (``p ~ 1``) and for a hopeless one (``p ~ 0``),
largest at ``p = 1/2``. After the supervised warm-up most tasks of the warm-up's own pool are mastered,
which is why GRPO there learned nothing (``docs/training_result.md``).

``learnable`` (our choice, after Foster & Foerster's learnability sampling and DAPO's dynamic sampling):

* every task keeps its last ``window`` online outcomes (correct or not);
* a task is *mastered* when its last ``mastered_after`` outcomes were all correct, *hopeless* when its
  last ``hopeless_after`` were all wrong; both are skipped while other tasks remain;
* the rest are drawn without replacement with weight ``p (1 - p)``, ``p`` the posterior mean of a
  Beta(1, 1) prior updated with the remembered outcomes, so an unseen task weighs ``1/4``, the most any
  task can weigh: new tasks are tried first.

``learnable-kind`` (ours): ``learnable`` with the outcomes pooled by *question kind* (:func:`question_kind`:
the task's template and its wording with names, quoted strings, numbers and file names blanked). In a large
pool most tasks are unseen, all weigh ``1/4``, and ``learnable`` cannot tell a mastered kind from a hopeless
one until each task has been played: with 8 draws per iteration from 192 tasks, 65-70% of the groups carried
no signal in every recipe measured (``docs/training_result.md``). Here the prior is hierarchical: a template's
success (Beta(1, 1) posterior mean over its tasks' outcomes) is the prior of each of its kinds, a kind's
posterior the prior of each of its tasks, each prior worth ``kind_strength`` observations (the task's own
outcomes never count in its prior). So an unseen task of a kind, or of a template, already answered right every
time (or wrong every time) weighs little, and unseen and half-solved kinds come first. (The bundled RL pool of
192 tasks holds 26 templates and 84 kinds.)

Every process holds the same chooser and the same generator (the trainer's shared stream), so every
process chooses the same tasks. :meth:`TaskChooser.state_dict` goes into checkpoints.
"""

from __future__ import annotations

import random
import re
from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from toolr1_env.tasks import Task

CHOICES = ("uniform", "learnable", "learnable-kind")


def question_kind(template: str, question: str) -> str:
    """A question's kind: its template and its wording with names, quoted strings, numbers and file names blanked
    (``"person_fact: How tall is N, in centimetres?"``): a heuristic; tasks of one kind ask the same thing."""
    first, _, rest = question.partition(" ")
    rest = re.sub(r"'[^']*'", "Q", rest)
    rest = re.sub(r"\b\w+\.(?:pdf|xlsx|xls|csv|docx|pptx|txt|json|md)\b", "F", rest)
    rest = re.sub(r"\d+", "D", rest)
    rest = re.sub(r"\b[A-Z][\w-]*(?:\s+[A-Z][\w-]*)*", "N", rest)
    return f"{template}: {first} {rest}"


def task_kind(task: Task) -> str:
    """The :func:`question_kind` of a task (its template from the metadata, ``?`` when it has none)."""
    return question_kind(task.metadata.get("template", "?"), task.question)


class TaskChooser:
    """Chooses an iteration's tasks from a pool (see the module docstring)."""

    def __init__(self, task_ids: Sequence[str], mode: str = "uniform", *, window: int = 8,
                 mastered_after: int = 4, hopeless_after: int = 8, kinds: Mapping[str, str] | None = None,
                 kind_strength: float = 2.0) -> None:
        if mode not in CHOICES:
            raise ValueError(f"task choice must be one of {CHOICES}, got {mode!r}")
        if not task_ids:
            raise ValueError("the task pool is empty")
        if mode == "learnable-kind" and (kinds is None or set(task_ids) - set(kinds)):
            raise ValueError("task choice 'learnable-kind' needs the question kind of every pool task")
        self.kinds = dict(kinds or {})
        self.kind_strength = kind_strength
        self.task_ids = list(task_ids)
        self.mode = mode
        self.window = max(window, mastered_after, hopeless_after)
        self.mastered_after = mastered_after
        self.hopeless_after = hopeless_after
        self._outcomes: dict[str, deque[bool]] = {t: deque(maxlen=self.window) for t in self.task_ids}

    def observe(self, outcomes: Iterable[tuple[str, bool]]) -> None:
        """Remember online outcomes ``(task id, correct)`` (tasks outside the pool are ignored)."""
        for task_id, correct in outcomes:
            if task_id in self._outcomes:
                self._outcomes[task_id].append(bool(correct))

    def success_rate(self, task_id: str) -> float:
        """Posterior mean success of ``task_id``: Beta(1, 1) prior (0.5 for an unseen task); with
        ``learnable-kind`` the prior mean is the task's kind's posterior mean over its other tasks' outcomes,
        worth ``kind_strength`` observations."""
        seen = self._outcomes[task_id]
        if self.mode != "learnable-kind":
            return (sum(seen) + 1) / (len(seen) + 2)
        kind = self.kinds[task_id]
        template = kind.split(":")[0]
        same_template = [(t, o) for t, o in self._outcomes.items() if t != task_id and
                         self.kinds[t].split(":")[0] == template]
        template_outcomes = [x for _, o in same_template for x in o]
        kind_outcomes = [x for t, o in same_template if self.kinds[t] == kind for x in o]
        prior = (sum(template_outcomes) + 1) / (len(template_outcomes) + 2)  # the template's, over Beta(1, 1)
        prior = (sum(kind_outcomes) + self.kind_strength * prior) / (len(kind_outcomes) + self.kind_strength)
        return (sum(seen) + self.kind_strength * prior) / (len(seen) + self.kind_strength)

    def status(self, task_id: str) -> str:
        """``mastered``, ``hopeless`` or ``open``."""
        seen = list(self._outcomes[task_id])
        if len(seen) >= self.mastered_after and all(seen[-self.mastered_after:]):
            return "mastered"
        if len(seen) >= self.hopeless_after and not any(seen[-self.hopeless_after:]):
            return "hopeless"
        return "open"

    def choose(self, k: int, rng: random.Random, skip: Collection[str] = ()) -> list[str]:
        """``k`` distinct task ids (all of them if the pool is smaller), drawn with ``rng``.

        Uniform: a plain sample of the tasks not in ``skip`` (of all tasks when that leaves none; the trainer
        skips the tasks the sample queue calls mastered). Learnable: open tasks first, weighted by
        ``p (1 - p)``; if fewer than ``k`` are open, the rest come from the skipped tasks, uniformly (a batch
        never shrinks).
        """
        if self.mode == "uniform":
            candidates = [t for t in self.task_ids if t not in skip] or self.task_ids
            return rng.sample(candidates, min(k, len(candidates)))
        k = min(k, len(self.task_ids))
        open_ids = [t for t in self.task_ids if self.status(t) == "open"]
        chosen = _weighted_sample(open_ids, [self._weight(t) for t in open_ids], min(k, len(open_ids)), rng)
        skipped = [t for t in self.task_ids if t not in set(chosen)]
        return chosen + rng.sample(skipped, k - len(chosen))

    def _weight(self, task_id: str) -> float:
        p = self.success_rate(task_id)
        return p * (1.0 - p)

    def stats(self) -> dict[str, float]:
        """How many pool tasks are mastered, hopeless, open and never played (for the run log)."""
        statuses = [self.status(t) for t in self.task_ids]
        return {f"tasks/{name}": float(statuses.count(name)) for name in ("mastered", "hopeless", "open")} | {
                "tasks/unseen": float(sum(not self._outcomes[t] for t in self.task_ids))}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue choosing exactly as before (checkpoints)."""
        return {"mode": self.mode, "outcomes": {t: list(o) for t, o in self._outcomes.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (outcomes of tasks no longer in the pool are dropped)."""
        for task_id, seen in state["outcomes"].items():
            if task_id in self._outcomes:
                self._outcomes[task_id] = deque(seen, maxlen=self.window)


def make_chooser(pool: Any, mode: str) -> TaskChooser:
    """The chooser of a task pool (a :class:`~toolr1_env.tasks.TaskSet`), with its tasks' question kinds."""
    kinds = {t.task_id: task_kind(t) for t in pool.tasks}
    return TaskChooser([t.task_id for t in pool.tasks], mode, kinds=kinds)


def _weighted_sample(items: Sequence[str], weights: Sequence[float], k: int, rng: random.Random) -> list[str]:
    """``k`` distinct items drawn one at a time in proportion to ``weights`` (all positive here)."""
    items, weights = list(items), list(weights)
    chosen: list[str] = []
    for _ in range(k):
        (index,) = rng.choices(range(len(items)), weights=weights)
        chosen.append(items.pop(index))
        weights.pop(index)
    return chosen
