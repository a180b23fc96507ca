"""Keys and values of episodes kept between their turns, so a multi-turn rollout prefills only what is new.

Turn ``k + 1`` of an episode starts with everything turn ``k`` saw and wrote (the prompt, the generated turn)
plus the observation. Without this store every turn prefills the whole episode again: on 2 CPU cores that
prefill, not the decoding, was most of a multi-turn rollout's time. :func:`agents.learner.decoding.decode`
puts each row's keys and values in a :class:`TurnCache` when the row stops, and takes them back for a prompt
that extends them (the longest stored prefix), so only the observation and the new turn's opening run.

Valid only while the weights stay the same: :meth:`agents.learner.policy.Policy.reusing_turns` opens a store
for the length of one collection (no optimiser step happens inside it) and drops it afterwards. Entries are
taken once; a stored row that no prompt of the next call extends (its episode ended) is dropped then, so the
store holds at most one entry per live episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


@dataclass
class StoredRow:
    """One row's tokens and, per layer, its keys and values ``[heads, n, head_dim]`` (n = len(tokens))."""

    tokens: tuple[int, ...]
    keys: list[torch.Tensor]
    values: list[torch.Tensor]


@dataclass
class TurnCache:
    """Rows of keys and values by their token sequence (see the module docstring)."""

    rows: dict[tuple[int, ...], StoredRow] = field(default_factory=dict)
    hits: int = 0
    reused_tokens: int = 0

    def put(self, row: StoredRow) -> None:
        """Keep ``row`` (replacing one with the same tokens)."""
        self.rows[row.tokens] = row

    def take(self, prompts: Sequence[Sequence[int]]) -> list[StoredRow | None]:
        """For each prompt, the longest stored row whose tokens are a proper prefix of it (removed from the
        store; a row serves one prompt), or None. Every row no prompt took is dropped."""
        lengths = sorted({len(t) for t in self.rows}, reverse=True)
        found: list[StoredRow | None] = []
        for prompt in prompts:
            hit = None
            for length in lengths:
                if length < len(prompt) and tuple(prompt[:length]) in self.rows:
                    hit = self.rows.pop(tuple(prompt[:length]))
                    self.hits += 1
                    self.reused_tokens += length
                    break
            found.append(hit)
        self.rows.clear()
        return found


def stored_row(cache: object, batch_row: int, valid_columns: torch.Tensor, tokens: Sequence[int]) -> StoredRow:
    """Row ``batch_row`` of a ``DynamicCache``: the keys and values of its first ``len(tokens)`` valid columns
    (``valid_columns``: the column indices the attention mask marks as real tokens, in order)."""
    columns = valid_columns[: len(tokens)]
    layers = cache.layers  # type: ignore[attr-defined]
    return StoredRow(tuple(tokens), [layer.keys[batch_row][:, columns].clone() for layer in layers],
                     [layer.values[batch_row][:, columns].clone() for layer in layers])


def cached_batch(cache: object, found: Sequence[StoredRow | None]) -> tuple[int, torch.Tensor]:
    """Fill the empty ``DynamicCache`` ``cache`` with the stored rows, right-aligned (left padding) in a batch of
    ``len(found)`` rows; a row with nothing stored is all padding. Returns the width ``C`` and the attention
    mask ``[B, C]`` of those columns (1 on stored tokens)."""
    template = next(row for row in found if row is not None)
    width = max(len(row.tokens) for row in found if row is not None)
    mask = torch.zeros((len(found), width), dtype=torch.long, device=template.keys[0].device)  # [B, C]
    for layer in range(len(template.keys)):
        heads, _, dim = template.keys[layer].shape
        keys = template.keys[layer].new_zeros((len(found), heads, width, dim))  # [B, h, C, d]
        values = template.values[layer].new_zeros((len(found), heads, width, dim))  # [B, h, C, d]
        for i, row in enumerate(found):
            if row is not None:
                keys[i, :, width - len(row.tokens):] = row.keys[layer]
                values[i, :, width - len(row.tokens):] = row.values[layer]
        cache.update(keys, values, layer)  # type: ignore[attr-defined]
    for i, row in enumerate(found):
        if row is not None:
            mask[i, width - len(row.tokens):] = 1
    return width, mask
