"""Named training settings: ``--preset NAME`` sets many defaults at once; flags given explicitly still win.

    python agents/train_grpo.py                                      # the main recipe (multistep)
    python agents/train_grpo.py --preset multistep --iterations 4    # the same, shorter RL phase
    python agents/train_grpo.py --preset single-step                 # the one-turn run

A preset is only a dict of :class:`agents.learner.config.Args` field values applied as parser defaults
before the command line is read (a value that is a function is called then: a setting that depends on the
machine, such as ``bf16``), so ``args.json`` records the resolved values (and the preset's name) and
``--help`` shows every flag as usual. Without ``--preset`` the command line applies :data:`DEFAULT_PRESET`.
The presets:

* ``multistep`` (the main recipe, ``docs/training_result.md``): level-0 and level-1 tasks of ``train-easy`` with up to
  4 code actions per episode, each observation fed back. Phase 1, a supervised warm-up: six passes over compact
  two-turn demonstrations (look with ``read_page`` or ``inspect_file``, then answer) of a 48-task pool
  (``agents.learner.warmup``), kept as ``checkpoints/warmup``. Phase 2, GRPO on a separate pool of 192 tasks with no
  demonstrations, all of question kinds no warm-up task asks (``--rl_pool_size``, ``--rl_kinds new``: the warm-up pool
  is memorised, and RL's updates on the kinds imitation already covers gave nothing back; chosen on the training-world
  validation split), tasks chosen by learnability (``agents.learner.task_choice``), a fresh AdamW at a tenth of the
  warm-up's learning rate (chosen on the training-world validation split), advantages centred but not divided by the
  group's std (Dr. GRPO), the execution bonus only on correct answers (``--exec_bonus correct``), only token-budget
  cuts masked, a 64-token turn (the longest held-out answer turn needs 56), temperature 1.0, the sample queue holding
  the policy's own successes. Held-out evaluation before the warm-up, after it and at the end, on the 32 level-1 tasks
  of ``level1-eval`` (another world: no training entity, page or question appears in it), with a table at the end.
  The run ends on RL's last adapter: ``--select_tasks`` (end on the best adapter on a validation split) costs about
  a minute a scoring, more than the 20 minutes leave (docs/training_result.md).
  bfloat16 autocast (``--bf16``) where bfloat16 is native (a CUDA GPU, a CPU with AVX512-BF16 or AMX: faster than
  fp32 there), fp32 elsewhere (on an AVX2-only CPU autocast is emulated and sampling runs about 2.5x slower than
  fp32); ``--bf16`` or ``--no_bf16`` overrides that choice.
* ``single-step`` (``warmup`` is its historical name): the :class:`~agents.learner.config.Args` defaults: one
  code action per episode on level-0 warm-up tasks, GRPO with the pool's reference solutions in the sample
  queue, held-out ``warmup-eval``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from agents.cli import build_parser
from agents.learner.model_loading import native_bf16

T = TypeVar("T")

#: The preset the command line applies when ``--preset`` is not given: the main recipe.
DEFAULT_PRESET = "multistep"

PRESETS: dict[str, Mapping[str, Any]] = {
    # The Args defaults: one code action per episode on level-0 warm-up tasks, GRPO with demonstrations in the
    # sample queue. "warmup" is its historical name.
    "single-step": {},
    "warmup": {},
    "multistep": {
        "tasks": "train-easy",
        "task_pool_size": 48,  # the warm-up pool: seeds 0-47, one compact demonstration each
        "rl_pool_size": 192,  # RL's own tasks, no demonstrations
        "rl_kinds": "new",  # only question kinds no warm-up task asks (seeds 48-419): RL's gains sat on those kinds
        "task_choice": "learnable",
        "eval_tasks": "level1-eval",
        "eval_level": 1,
        "eval_size": 32,
        "eval_base": True,
        "eval_at_start": True,  # after the warm-up: what the supervised passes alone reached
        "eval_every": 0,
        "demo_warmup_epochs": 6,
        "iterations": 6,
        "tasks_per_iteration": 8,
        "group_size": 4,
        "num_envs": 32,
        "max_turns": 4,
        "max_new_tokens": 64,  # the longest held-out answer turn needs 56 tokens (one token per digit)
        "max_episode_tokens": 1024,
        "max_observation_chars": 800,
        "temperature": 1.0,
        "lr": 1e-3,  # the warm-up's
        "rl_lr": 1e-4,  # RL's, with a fresh AdamW: 5e-4 overwrote what the warm-up taught (docs/training_result.md)
        "advantage_scale": "none",  # Dr. GRPO: no division by a group's (often tiny) reward std
        "exec_bonus": "correct",  # clean execution counts only on a correct answer
        "mask_truncated": True,  # only token-budget cuts leave the loss; a turn-limit non-answer is trained
        "demonstrations": "compact",
        "queue_demonstrations": False,  # the queue holds the policy's own RL successes only (the paper's queue)
        "repair_demonstrations": False,
        "queue_max_age": 16,
        "queue_max_reuse": 4,
        "bf16": native_bf16,  # resolved on this machine when the preset is applied (args.json keeps the result)
    },
}


def preset_names() -> tuple[str, ...]:
    """Every preset name, for ``--preset``'s choices ("" = none)."""
    return ("", *PRESETS)


def parse_with_preset(cls: type[T], argv: Sequence[str] | None = None, *, description: str | None = None) -> T:
    """Parse ``argv`` into ``cls`` with the defaults of the preset named by ``--preset`` (if any).

    Raises:
        KeyError: a preset names a field ``cls`` does not have (a bug in :data:`PRESETS`).
    """
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--preset", default=DEFAULT_PRESET, choices=preset_names())
    known, _ = early.parse_known_args(argv)
    parser = build_parser(cls, description)
    preset = PRESETS[known.preset] if known.preset else {}
    values = {name: value() if callable(value) else value for name, value in preset.items()}
    if known.preset:
        values["preset"] = known.preset
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - fields)
    if unknown:
        raise KeyError(f"preset {known.preset!r} sets unknown fields {unknown}")
    parser.set_defaults(**values)
    return cls(**vars(parser.parse_args(argv)))
