"""The rollout function's state (sample queue, seed RNG) saved into, and restored from, TRL checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR


def state_file(checkpoint_dir: str | Path, process_index: int = 0) -> Path:
    """Where process ``process_index`` keeps its rollout state inside a checkpoint folder (one file per process:
    each process has its own queue, of the tasks it played)."""
    suffix = "" if process_index == 0 else f"-rank{process_index}"
    return Path(checkpoint_dir) / f"toolr1_rollout{suffix}.json"


def checkpoint_dir(output_dir: str | Path, global_step: int) -> Path:
    """The folder ``Trainer`` saves step ``global_step`` into (``<output_dir>/checkpoint-<step>``)."""
    return Path(output_dir) / f"{PREFIX_CHECKPOINT_DIR}-{global_step}"


class SampleQueueCheckpoint(TrainerCallback):
    """Writes the rollout's state next to every checkpoint TRL saves.

    :class:`~agents.trl.rollout.ToolR1Rollout` registers one on its trainer at its first call, and restores its
    state there when the trainer resumed (``trainer.train(resume_from_checkpoint=...)`` sets the global step
    to the checkpoint's). A checkpoint outside ``output_dir``: call ``rollout.load(checkpoint)`` before ``train``.
    """

    def __init__(self, rollout: Any) -> None:  # an agents.trl.rollout.ToolR1Rollout (not imported: no circle)
        self.rollout = rollout

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        """Save the rollout state into the checkpoint folder just written."""
        self.rollout.save(checkpoint_dir(args.output_dir, state.global_step), args.process_index)
