"""The KL reference of the RL phase: a frozen copy of the adapter as RL started, swapped in for one pass.

After a supervised warm-up (or from ``--init_adapter``) the policy worth staying near is the warmed-up
one, not the base model: the base model solves no held-out task, so a KL to it would pull RL away from
everything the warm-up taught (``--kl_ref base`` keeps that old behaviour). TRL and verl take the
reference of a PEFT policy as "the adapter switched off"; here the reference is an adapter too, so this
module keeps a copy of its weights (a few MB for LoRA r=16 on 135M parameters) and swaps it into the
live parameters for a no-grad forward pass.

The swap is an in-place copy, so it must not happen between a forward pass and its backward (autograd
saved the live weights): :func:`agents.learner.update.micro_batch_loss` scores the reference first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch


class AdapterSnapshot:
    """A frozen copy of trainable parameters, swappable into them (see the module docstring)."""

    def __init__(self, params: Sequence[torch.nn.Parameter]) -> None:
        self.weights = [p.detach().clone() for p in params]

    def copy_into(self, params: Sequence[torch.nn.Parameter]) -> None:
        """Write the snapshot's values into ``params`` for good."""
        if len(params) != len(self.weights):
            raise ValueError(f"the snapshot holds {len(self.weights)} tensors, the model {len(params)}")
        with torch.no_grad():
            for p, w in zip(params, self.weights, strict=True):
                p.copy_(w)

    @contextmanager
    def swapped_into(self, params: Sequence[torch.nn.Parameter]) -> Iterator[None]:
        """Within the block ``params`` hold the snapshot's values; afterwards their own again."""
        live = AdapterSnapshot(params)
        self.copy_into(params)
        try:
            yield
        finally:
            live.copy_into(params)
