"""Pieces of the sampling loop that do not need a model: picking the next token, and stop detection.

Stop rule (``StopMatcher``): a turn ends at

* the end-of-turn token (EOS), handled by the caller;
* any plain stop string (default ``"</code>"``) appearing in the generated text;
* the end of a fenced code block, i.e. a line holding only a closing fence followed by a newline
  (``"\\n```\\n"``), once an opening fence with a Python language tag (`````py``, `````python``) has
  appeared. A fence without a language tag does not arm the rule, so prose with inline fences is safe.

The action ends there because the environment executes the code and returns an observation: whatever the
model writes after the block would be a hallucinated observation. Matching runs on the concatenated
per-token text pieces, so a stop string is recognised whichever way the tokenizer splits it; the token
that completes a match is kept whole (token in, token out), so a few characters after the match (for
example a second newline inside a ``"\\n\\n"`` token) may remain.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

#: Default language tags that arm the code-fence stop rule.
PYTHON_FENCE_LANGUAGES: tuple[str, ...] = ("py", "python")


@dataclass
class _RowState:
    text: str = ""
    fence_body_start: int = -1  # index of the newline that ends the opening fence line, -1 if not open


@dataclass
class StopMatcher:
    """Incremental stop detection for a batch of generations (one state per row).

    Args:
        stop_strings: plain strings that end a turn wherever they appear.
        fence_languages: language tags whose opening fence arms the closing-fence rule; empty disables it.
        batch_size: number of rows.
    """

    stop_strings: Sequence[str]
    fence_languages: Sequence[str]
    batch_size: int
    _rows: list[_RowState] = field(init=False, repr=False)
    _open: re.Pattern[str] | None = field(init=False, repr=False)
    _close: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rows = [_RowState() for _ in range(self.batch_size)]
        langs = "|".join(re.escape(lang) for lang in self.fence_languages)
        # "```python\n", "```python3\n", "```py  # x\n"; "\b" keeps "```pytest" from arming with tag "py".
        self._open = re.compile(r"```(?:" + langs + r")3?\b[^\n]*\n") if langs else None
        self._close = re.compile(r"\n[^\S\n]*```[^\S\n]*\n")

    def text(self, row: int) -> str:
        """The text accumulated so far for ``row`` (per-token pieces concatenated)."""
        return self._rows[row].text

    def prime(self, row: int, text: str) -> None:
        """Seed ``row`` with text that precedes the generation (a forced prefix): it arms the fence rule."""
        state = self._rows[row]
        state.text = text
        match = self._open.search(text) if self._open is not None else None
        if match is not None:
            state.fence_body_start = match.end() - 1

    def feed(self, row: int, piece: str) -> bool:
        """Append the text of one new token to ``row``; return True if the row must stop now."""
        state = self._rows[row]
        tail_from = max(0, len(state.text) - max((len(s) for s in self.stop_strings), default=0))
        state.text += piece
        for stop in self.stop_strings:
            if stop and stop in state.text[tail_from:]:
                return True
        if self._open is None:
            return False
        if state.fence_body_start < 0:
            match = self._open.search(state.text)
            if match is None:
                return False
            state.fence_body_start = match.end() - 1  # share the newline, so an empty block closes too
        return self._close.search(state.text, state.fence_body_start) is not None


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
    """
    logits = logits.float()  # [B, V]
    scaled = logits / temperature if temperature > 0 else logits  # [B, V]
    logp = torch.log_softmax(scaled, dim=-1)  # [B, V]
    if temperature <= 0:
        tokens = logp.argmax(dim=-1)  # [B]
    else:
        probs = logp.exp()  # [B, V]
        if top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)  # [B, V], [B, V]
            before = sorted_probs.cumsum(dim=-1) - sorted_probs  # [B, V] mass strictly above each token
            sorted_probs = sorted_probs.masked_fill(before >= top_p, 0.0)  # the top token always survives
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)  # [B, V]
        if generator is not None and generator.device != probs.device:  # e.g. a CPU generator, GPU model
            tokens = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(-1).to(probs.device)  # [B]
        else:
            tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # [B]
    return tokens, logp.gather(-1, tokens[:, None]).squeeze(-1)  # [B], [B]
