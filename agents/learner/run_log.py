"""Metrics sinks of a training run: JSONL (the record), TensorBoard (for browsing), and a PNG of curves."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

#: Curves drawn in ``curves.png``: (metric key, title).
PLOTTED = (
    ("reward/mean", "training reward"),
    ("reward/answer_score", "training answer score"),
    ("reward/exec_success", "training execution success"),
    ("eval/success", "eval success (held-out)"),
    ("select/success", "selection split success (--select_tasks)"),
    ("queue/size", "sample queue size"),
    ("groups/zero_signal_after", "zero-signal groups (after queue)"),
    ("update/entropy", "entropy"),
    ("update/approx_kl", "approx KL (old -> new)"),
)


class RunLog:
    """Append-only metrics: one JSON object per line in ``metrics.jsonl``, mirrored to TensorBoard."""

    def __init__(self, run_dir: Path, tensorboard: bool = True, enabled: bool = True) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled  # False on non-main data-parallel processes: one process writes the record
        self._writer = None
        if tensorboard and enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(run_dir / "tensorboard"))
            except ImportError:  # tensorboard is optional
                self._writer = None

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        """Record ``metrics`` (numbers only go to TensorBoard) at ``step``."""
        if not self.enabled:
            return
        row = {"step": step, **metrics}
        with self.path.open("a") as f:
            f.write(json.dumps(row, default=float) + "\n")
        if self._writer is not None:
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self._writer.add_scalar(key, value, step)
            self._writer.flush()

    def truncate(self, last_step: int) -> int:
        """Drop every row logged after ``last_step`` (a resumed run redoes those iterations); return how many.

        ``metrics.jsonl`` is rewritten atomically (a temporary file renamed over it), and TensorBoard is
        reopened with ``purge_step`` so its later events are discarded too. A line cut short by a kill is
        dropped as well.
        """
        if not self.enabled or not self.path.is_file():
            return 0
        kept, dropped = [], 0
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                dropped += 1
                continue
            if int(row.get("step", 0)) <= last_step:
                kept.append(json.dumps(row, default=float))
            else:
                dropped += 1
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        os.replace(tmp, self.path)
        if self._writer is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer.close()
            self._writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=last_step + 1)
        return dropped

    def write_episodes(self, name: str, episodes: list[dict[str, Any]]) -> Path | None:
        """Write one JSON object per episode to ``episodes/<name>.jsonl`` (replacing it); returns the path."""
        if not self.enabled:
            return None
        folder = self.run_dir / "episodes"
        folder.mkdir(exist_ok=True)
        path = folder / f"{name}.jsonl"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(json.dumps(e, default=str) + "\n" for e in episodes))
        os.replace(tmp, path)
        return path

    def rows(self) -> list[dict[str, Any]]:
        """Every row logged so far (including those of a resumed run's earlier life)."""
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def close(self) -> None:
        """Flush and close TensorBoard."""
        if self._writer is not None:
            self._writer.close()


def plot_curves(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Draw the :data:`PLOTTED` curves present in ``rows`` into a PNG; returns its path (None if nothing)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [(k, t) for k, t in PLOTTED if any(k in r for r in rows)]
    if not present:
        return None
    cols = 2
    rows_n = math.ceil(len(present) / cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(10, 3 * rows_n), squeeze=False)
    for ax, (key, title) in zip(axes.flat, present, strict=False):
        points = [(r["step"], r[key]) for r in rows if key in r and isinstance(r[key], (int, float))]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o" if len(points) < 30 else None)
        ax.set_title(title)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(present):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
