"""Repair demonstrations: the policy's own failed episode, continued after its first execution error by the
task's verified fix, with the failed turns kept as context and out of the loss.

Tool-R1's agent reflects on errors: Thought -> Code -> Observation (a traceback) -> corrected Code. A small
policy seldom recovers on its own, so its groups never hold a recovery for GRPO to reinforce (the multi-step
run of ``docs/training_result.md`` shows 0 recoveries in 437 episodes). Our extension, off by default
(``--repair_demonstrations``; the ``multistep`` preset turns it on):

1. After an iteration's rollouts, each group offers its first online episode that failed (answer score below
   1) after its code raised at some turn ``k``, early enough that ``k + 1`` turns plus the fix fit in
   ``max_turns``.
2. Its script is the policy's own actions of turns ``0..k``, replayed verbatim (the tools are deterministic,
   so the same error comes back), then the task's demonstration turns (:mod:`agents.learner.demonstrations`:
   look, then answer), each of which fits in one generated turn.
3. The script is played through the real environment. Turns ``0..k`` leave the loss
   (:func:`mask_context`: mask 0, ``Trajectory.context_turns``): the error is what the policy reads, never
   what it is taught. Only an episode that ends correct with no error in the trained turns can enter the
   sample queue (:meth:`agents.learner.sample_queue.SampleQueue.admissible`), re-scored like any
   demonstration, and it is injected into a zero-signal group of its own task, this iteration's included.

The failure stays in its group with its own (low) reward, so the same update pushes down the failing
continuation and up the fix that follows the same error. The fix does not read the error, but the error can
say what the fix does: the bundled ``read_page`` given an attached file's name answers "that is a file name,
not a web page. Read an attached file with inspect_file('memo.txt')", and a file task's fix is exactly that
call, then the answer (``docs/training_result.md`` shows the trained policy making that move on held-out
tasks).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agents.learner.records import Trajectory


@dataclass(frozen=True)
class Repair:
    """One repair to play: the failed episode's task and group, the script, and how many turns are context."""

    task_id: str
    group_id: str
    script: list[str]
    context_turns: int


def first_error_turn(trajectory: Trajectory) -> int | None:
    """Index of the first turn whose code raised in the sandbox (None: no error)."""
    return next((i for i, turn in enumerate(trajectory.turns) if turn.execution_error), None)


def repair_script(trajectory: Trajectory, fix: Sequence[str], response_prefix: str, max_turns: int
                  ) -> tuple[list[str], int] | None:
    """The policy's turns up to its first error followed by ``fix``, and the number of context turns.

    None when the episode answered correctly, had no execution error, or the fix does not fit in
    ``max_turns`` after the failing turn.
    """
    if trajectory.reward_components.get("answer_score", 0.0) >= 1.0 or not fix:
        return None
    k = first_error_turn(trajectory)
    if k is None or k + 1 + len(fix) > max_turns:
        return None
    replayed = [turn.action.removeprefix(response_prefix) for turn in trajectory.turns[: k + 1]]
    return [*replayed, *fix], k + 1


def choose_repairs(online: Sequence[Trajectory], fixes: Mapping[str, Sequence[str]], response_prefix: str,
                   max_turns: int) -> list[Repair]:
    """At most one repair per group: its first repairable failure (see the module docstring)."""
    repairs: dict[str, Repair] = {}
    for trajectory in online:
        if trajectory.group_id in repairs or trajectory.infra_error is not None or trajectory.source != "online":
            continue
        made = repair_script(trajectory, fixes.get(trajectory.task_id, ()), response_prefix, max_turns)
        if made is not None:
            script, context = made
            repairs[trajectory.group_id] = Repair(trajectory.task_id, f"repair-{trajectory.group_id}", script,
                                                  context)
    return list(repairs.values())


def mask_context(trajectory: Trajectory, context_turns: int) -> None:
    """Take the first ``context_turns`` turns' generated tokens out of the loss (in place)."""
    for turn in trajectory.turns[:context_turns]:
        for position in range(turn.gen_start, turn.gen_end):
            trajectory.loss_mask[position] = 0
            trajectory.old_logprobs[position] = 0.0
    trajectory.context_turns = context_turns
    trajectory.check()
