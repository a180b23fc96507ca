"""Keep the RL phase's best adapter on a validation split, so that a collapse during RL is rolled back.

RL from a warmed-up policy trains on a few groups with signal per iteration, and one unlucky run of steps can
cost a seed several held-out points (``docs/training_result.md``). With ``--select_tasks SPLIT`` the trainer
scores the policy greedily on that split as RL starts (iteration 0: the adapter RL starts from) and every
``--select_every`` iterations, logs ``select/success``, and keeps the best adapter so far in
``checkpoints/best`` (``adapter/``, ``args.json``, and ``best.json`` with its iteration and score). After the
last iteration the policy takes the best adapter back when the last one scored lower; the end-of-run
evaluation, the last checkpoint and ``agents/evaluate.py --adapter <run>`` then all use it. A tie keeps the
earlier adapter: the same score with fewer RL steps. This is early stopping on a validation split, chosen after
the fact; it never looks at the held-out tasks. The last RL adapter is kept too, in ``checkpoints/rl-end``
(for playing it, or mixing it with the start adapter: ``agents.learner.checkpointing.mix_adapters``).

Give it a split of its own (``train-easy@200000``: training-world tasks at seeds no pool, validation or
evaluation split draws): the kept adapter's score on it is the best of several, so it is biased upwards and must
not be the split recipes are compared on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from agents.learner.checkpointing import keep_adapter
from agents.learner.policy import Policy
from agents.learner.reference import AdapterSnapshot


@dataclass
class Selected:
    """The best adapter so far: the RL iteration after which it was scored (0 = as RL started) and its score."""

    iteration: int
    score: float


class BestAdapter:
    """The best-scoring adapter of the RL phase: in memory on every process, on disk for resuming and playing.

    Every data-parallel process holds the same adapter (one all-reduce per step), so each keeps its own copy and
    takes it back without a collective; the main process writes the folder.
    """

    def __init__(self, folder: Path, write: bool = True) -> None:
        self.folder = folder
        self.write = write
        self.best: Selected | None = None
        self._weights: AdapterSnapshot | None = None

    def offer(self, policy: Policy, iteration: int, score: float, args: Any) -> bool:
        """Keep the policy's adapter when it scores higher than the best so far (or is the first); returns
        whether it was kept."""
        if self.best is not None and score <= self.best.score:
            return False
        self.best = Selected(iteration, score)
        self._weights = AdapterSnapshot(policy.trainable_parameters())
        if self.write:
            keep_adapter(policy, self.folder, args)
            (self.folder / "best.json").write_text(json.dumps(asdict(self.best), indent=2))
        return True

    def take_back(self, policy: Policy) -> Selected:
        """Load the best adapter into the policy and return which it was.

        Raises:
            RuntimeError: nothing was offered yet.
        """
        if self.best is None:
            raise RuntimeError("no adapter was scored for selection yet")
        if self._weights is None:  # resumed: the copy in memory died with the killed process
            policy.load_adapter_weights(str(self.folder / "adapter"))
        else:
            self._weights.copy_into(policy.trainable_parameters())
        return self.best

    def resume(self) -> Selected | None:
        """The best adapter a killed run had kept (its ``best.json``), or None."""
        record = self.folder / "best.json"
        if (self.folder / "adapter").is_dir() and record.is_file():
            self.best = Selected(**json.loads(record.read_text()))
        return self.best
