"""Checkpoints that a killed run can resume from: adapter, optimiser, sample queue, RNG states, step.

A checkpoint is a folder ``<run>/checkpoints/step-<N>`` written to a temporary sibling and renamed into
place only when complete, then ``<run>/checkpoints/latest`` (a small text file) is rewritten to name it.
A run killed mid-write leaves the previous checkpoint untouched. ``keep`` old checkpoints are retained.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.learner.policy import Policy
from agents.learner.sample_queue import SampleQueue

#: Arguments that must match for a resume to make sense (others, like the iteration count, may change).
RESUME_KEYS = ("model", "tasks", "task_pool_size", "lora_r", "lora_alpha", "group_size", "max_turns",
               "seed", "use_queue")


class ResumeMismatchError(ValueError):
    """The checkpoint was written by a run with a different configuration."""


def rng_state() -> dict[str, Any]:
    """Snapshot of the Python, numpy and torch global generators."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])


def save_checkpoint(run_dir: Path, iteration: int, policy: Policy, optimizer: torch.optim.Optimizer,
                    queue: SampleQueue | None, args: Any, extra: dict[str, Any], keep: int = 2) -> Path:
    """Write a complete checkpoint for ``iteration`` and point ``latest`` at it."""
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{iteration}"
    tmp = root / f".tmp-step-{iteration}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    policy.save_adapter(str(tmp / "adapter"))
    torch.save({"optimizer": optimizer.state_dict(), "rng": rng_state(), "iteration": iteration,
                "policy_version": policy.version, "extra": extra}, tmp / "trainer.pt")
    if queue is not None:
        torch.save(queue.state_dict(), tmp / "queue.pt")
    (tmp / "args.json").write_text(json.dumps(asdict(args), indent=2, default=str))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    latest_tmp = root / ".latest.tmp"
    latest_tmp.write_text(final.name)
    os.replace(latest_tmp, root / "latest")
    for old in sorted((p for p in root.glob("step-*") if p != final),
                      key=lambda p: int(p.name.split("-")[1]))[:-max(keep - 1, 0) or None]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run folder, or None."""
    pointer = run_dir / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    path = run_dir / "checkpoints" / pointer.read_text().strip()
    return path if (path / "trainer.pt").is_file() else None


def check_compatible(checkpoint: Path, args: Any) -> None:
    """Raise :class:`ResumeMismatchError` naming every differing key in :data:`RESUME_KEYS`."""
    saved = json.loads((checkpoint / "args.json").read_text())
    current = asdict(args)
    diffs = [f"{k}: checkpoint {saved.get(k)!r} vs now {current.get(k)!r}" for k in RESUME_KEYS
             if k in current and saved.get(k) != current.get(k)]
    if diffs:
        raise ResumeMismatchError(f"cannot resume from {checkpoint}: it was written by another configuration "
                                  f"({'; '.join(diffs)}). Use a new --output_dir or matching arguments.")


def load_checkpoint(checkpoint: Path, policy: Policy, optimizer: torch.optim.Optimizer,
                    queue: SampleQueue | None) -> dict[str, Any]:
    """Restore adapter, optimiser, queue and RNG; return the trainer state (iteration, extra)."""
    policy.load_adapter_weights(str(checkpoint / "adapter"))
    state = torch.load(checkpoint / "trainer.pt", weights_only=False)
    optimizer.load_state_dict(state["optimizer"])
    if queue is not None and (checkpoint / "queue.pt").is_file():
        queue.load_state_dict(torch.load(checkpoint / "queue.pt", weights_only=False))
    set_rng_state(state["rng"])
    policy.version = int(state["policy_version"])
    return state
