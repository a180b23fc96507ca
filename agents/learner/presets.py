"""Named training settings: ``--preset NAME`` sets many defaults at once; flags given explicitly still win.

    python agents/train_grpo.py --preset multistep                 # the multi-step run of docs/training_result.md
    python agents/train_grpo.py --preset multistep --iterations 4  # the same, shorter

A preset is only a dict of :class:`agents.learner.train.Args` field values applied as parser defaults
before the command line is read, so ``args.json`` records the resolved values (and the preset's name) and
``--help`` shows every flag as usual. The presets:

* ``warmup``: the historical default run (one code action per episode on level-0 warm-up tasks; held-out
  ``warmup-eval``). Every field keeps the Args default; the preset exists so the name can be given.
* ``multistep``: level-0 and level-1 tasks of ``train-easy`` with up to 4 code actions per episode, each
  observation fed back (a page of the simulated web or an attached file fits whole in
  ``max_observation_chars``), compact two-turn demonstrations (look with ``read_page`` or ``inspect_file``,
  then answer from what was seen: ``agents.learner.demonstrations``), six supervised passes over those
  demonstrations before GRPO (``--demo_warmup_epochs``, ``agents.learner.warmup``: without them five runs
  ended at 0-6 of 32 held-out level-1 tasks), repair demonstrations (a failed episode continued after its first
  error by the task's fix, the failure kept as context: ``agents.learner.repairs``), held-out evaluation after
  the warm-up and at the end on the 32 level-1 tasks of ``level1-eval`` (another world: no training entity,
  page or question appears in it). Demonstrations live for the whole run (``queue_max_age``) and may be
  replayed a few more times, because a pool task recurs only every few iterations. 6 tasks x 4 episodes for
  6 GRPO iterations (what fits in 30 minutes after the warm-up); bfloat16 autocast (``--bf16``; 1.5x faster
  than fp32 on this machine's AVX512-BF16 cores: iteration 4 ended at 618 s instead of 918 s; on a CPU without
  native bfloat16 pass ``--no_bf16``); truncated episodes (no answer within 4 turns) stay in the loss with
  their reward. Measured results: ``docs/training_result.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from agents.cli import build_parser

T = TypeVar("T")

PRESETS: dict[str, Mapping[str, Any]] = {
    "warmup": {},
    "multistep": {
        "tasks": "train-easy",
        "task_pool_size": 48,
        "eval_tasks": "level1-eval",
        "eval_level": 1,
        "eval_size": 32,
        "eval_at_start": True,  # after the warm-up: what the supervised passes alone reached
        "eval_every": 0,
        "demo_warmup_epochs": 6,
        "iterations": 6,
        "tasks_per_iteration": 6,
        "group_size": 4,
        "num_envs": 32,
        "max_turns": 4,
        "max_new_tokens": 48,
        "max_episode_tokens": 1024,
        "max_observation_chars": 800,
        "temperature": 0.8,
        "lr": 1e-3,
        "demonstrations": "compact",
        "repair_demonstrations": True,
        "queue_max_age": 16,
        "queue_max_reuse": 4,
        "bf16": True,
        # An episode that reaches max_turns without answering counts as truncated: masking would drop most of
        # the early negatives (the warm-up default, chosen by bench_truncation, is one-turn episodes).
        "mask_truncated": False,
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
    early.add_argument("--preset", default="", choices=preset_names())
    known, _ = early.parse_known_args(argv)
    parser = build_parser(cls, description)
    values = PRESETS[known.preset] if known.preset else {}
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - fields)
    if unknown:
        raise KeyError(f"preset {known.preset!r} sets unknown fields {unknown}")
    parser.set_defaults(**values)
    return cls(**vars(parser.parse_args(argv)))
