"""Pieces of the sampling loop that do not need a model: picking the next token, and stop detection.

Stop rule (:class:`StopMatcher`): a turn ends at

* the end-of-turn token (EOS), handled by the caller;
* the end of the first complete code block, by the one code-action grammar
  (:func:`toolr1_env.parsing.code_block_end`: a closing fence after a Python fence, or ``</code>``), so
  the turn stops exactly where the environment's parser ends the block it will run;
* any extra plain stop string the caller configures.

The action ends there because the environment executes the code and returns an observation: whatever the
model writes after the block would be a hallucinated observation. Matching runs on the concatenated
per-token text pieces, so a stop is recognised whichever way the tokenizer splits it; the token that
completes a match is kept whole (token in, token out), so a few characters after the match (for example
a newline inside a ``"```\\n"`` token) may remain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from toolr1_env.parsing import code_block_end


@dataclass
class StopMatcher:
    """Incremental stop detection for a batch of generations (one text per row).

    Args:
        stop_strings: extra plain strings that end a turn wherever they appear.
        batch_size: number of rows.
        stop_at_code_end: end a turn after its first complete code block (the grammar's rule).
    """

    stop_strings: Sequence[str]
    batch_size: int
    stop_at_code_end: bool = True
    _texts: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._texts = [""] * self.batch_size

    def text(self, row: int) -> str:
        """The text accumulated so far for ``row`` (per-token pieces concatenated)."""
        return self._texts[row]

    def prime(self, row: int, text: str) -> None:
        """Seed ``row`` with text that precedes the generation (a forced prefix, e.g. an opening fence)."""
        self._texts[row] = text

    def feed(self, row: int, piece: str) -> bool:
        """Append the text of one new token to ``row``; return True if the row must stop now."""
        before = self._texts[row]
        tail_from = max(0, len(before) - max((len(s) for s in self.stop_strings), default=0))
        text = self._texts[row] = before + piece
        if any(stop and stop in text[tail_from:] for stop in self.stop_strings):
            return True
        # A block can only close on a token holding its last character: "`" of a fence, ">" of </code>.
        return self.stop_at_code_end and ("`" in piece or ">" in piece) and code_block_end(text) is not None


class TokenPieces:
    """Text of single token ids, decoded on first use and memoised, for cheap incremental stop matching.

    Pieces of multi-byte characters decode to replacement characters; stop strings are ASCII, so matching
    is unaffected. The final text of a generation is always decoded from all its ids at once.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._pieces: dict[int, str] = {}

    def __getitem__(self, token: int) -> str:
        """The decoded text of ``token`` alone (special tokens included)."""
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self._tokenizer.decode([token], skip_special_tokens=False)
        return piece


def sample_next(
    logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick one token per row and return ``(token_ids [B], logprobs [B])``.

    ``logprobs`` is ``log softmax(logits / temperature)`` at the chosen token: the tempered policy *before*
    top-p truncation, which is exactly what :meth:`agents.learner.policy.Policy.sequence_logprobs` recomputes
    (it divides by the same temperature). With ``top_p < 1`` the truncated sampler differs slightly from that
    distribution; we accept the small bias rather than train against a truncated, non-differentiable policy.
    ``temperature == 0`` means greedy decoding, with log-probs at temperature 1.

    Sampling is by inverse CDF: one uniform number per row against the cumulative probabilities (one
    ``exp``, one ``cumsum``, one ``searchsorted``). On 2 CPU cores and a 49k vocabulary that is ~4x cheaper
    per step than ``log_softmax`` + ``multinomial`` (what ``generate`` does), and the uniforms come from
    ``generator`` wherever it lives (a CPU generator for a GPU model draws ``B`` numbers, not ``B x V``).
    """
    scaled = logits.float()  # [B, V]
    if temperature > 0:
        scaled = scaled / temperature  # [B, V]
    normaliser = scaled.logsumexp(dim=-1, keepdim=True)  # [B, 1]
    if temperature <= 0:
        tokens = scaled.argmax(dim=-1)  # [B]
    else:
        probs = (scaled - normaliser).exp()  # [B, V]
        order = None
        if top_p < 1.0:
            probs, order = probs.sort(dim=-1, descending=True)  # [B, V], [B, V]
            before = probs.cumsum(dim=-1) - probs  # [B, V] mass strictly above each token
            probs = probs.masked_fill(before >= top_p, 0.0)  # [B, V]; the top token always survives
        cdf = probs.cumsum(dim=-1)  # [B, V]
        total = cdf[:, -1:]  # [B, 1]
        device = generator.device if generator is not None else cdf.device
        uniform = torch.rand((cdf.shape[0], 1), generator=generator, device=device).to(cdf.device)  # [B, 1]
        # strictly below the total, so the search never runs past the last token of positive probability
        target = torch.minimum(uniform * total, torch.nextafter(total, torch.zeros_like(total)))  # [B, 1]
        index = torch.searchsorted(cdf, target, right=True).clamp(max=cdf.shape[1] - 1)  # [B, 1]
        tokens = (order.gather(-1, index) if order is not None else index).squeeze(-1)  # [B]
    return tokens, (scaled.gather(-1, tokens[:, None]) - normaliser).squeeze(-1)  # [B], [B]
