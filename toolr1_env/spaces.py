"""Text spaces for code actions and execution-output observations.

Gymnasium's ``Text`` defaults to ``min_length=1`` and an alphanumeric charset; questions, code and program
output hold any Unicode, empty strings included, so :class:`UnicodeText` accepts every ``str`` up to a
length. Its ``sample()`` returns small, harmless Python (``check_env`` and random agents step with it).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.spaces import Text

_SAMPLE_TEMPLATES = (
    "print({a} + {b})",
    "x = {a} * {b}\nprint(x)",
    "values = list(range({a} % 10))\nsum(values)",
    "'{a}'.zfill(6)",
)


class UnicodeText(Text):
    """A ``Text`` space that contains any Python ``str`` of at most ``max_length`` characters."""

    def __init__(self, max_length: int, *, seed: int | np.random.Generator | None = None) -> None:
        super().__init__(max_length=max_length, min_length=0, seed=seed)

    def contains(self, x: Any) -> bool:
        """Any ``str`` (empty included) no longer than ``max_length``."""
        return isinstance(x, str) and len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        """A short, harmless Python snippet drawn from this space's random generator."""
        template = _SAMPLE_TEMPLATES[int(self.np_random.integers(len(_SAMPLE_TEMPLATES)))]
        a, b = (int(v) for v in self.np_random.integers(0, 1000, size=2))
        return template.format(a=a, b=b)[: self.max_length]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnicodeText) and self.max_length == other.max_length

    def __hash__(self) -> int:
        return hash(("UnicodeText", self.max_length))

    def __repr__(self) -> str:
        return f"UnicodeText(max_length={self.max_length})"
