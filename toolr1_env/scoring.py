"""The GAIA leaderboard's answer scorer, reproduced rule for rule, and a ``FINAL ANSWER:`` extractor.

:func:`question_scorer` gives the same decision as the ``question_scorer`` of the official GAIA
leaderboard (``gaia-benchmark/leaderboard``, ``scorer.py``) for every string answer. The rules, chosen by
the *ground truth*:

1. **Number** (``float(ground_truth)`` succeeds): remove every ``$``, ``%`` and ``,`` from the answer,
   ``float()`` it and compare with ``==``; no tolerance. An answer that still does not parse becomes
   ``inf`` (so it is wrong, except against a ground truth of ``"inf"``, a quirk we keep).
2. **List** (the ground truth holds a ``,`` or ``;``): split both on ``[,;]``; the lengths must match;
   compare element by element in order, numeric ground-truth elements by rule 1, the others after
   removing all whitespace and lowercasing, *punctuation kept*.
3. **String**: remove all whitespace, lowercase, remove ASCII punctuation, then compare.

Quirks kept on purpose, because a leaderboard number is only comparable when scored the same way:
``"1,000"`` is not a float, so as a ground truth it is a two-element list (``"1000"`` is then wrong and
``"1, 0"`` right); ``float`` accepts ``"1e3"``, ``" 7 "``, ``"1_000"``, ``"nan"`` and ``"infinity"``;
whitespace removal and lowercasing are Unicode-aware while punctuation removal is ASCII only.

A ``None`` answer is scored as the official scorer scores it: turned into the string ``"None"`` first
(so it is wrong everywhere except against a ground truth such as ``"none"``). The environment never
passes ``None`` for an episode that ended without an answer: it scores those 0 itself. The official
scorer also prints and warns on failures; this one is silent.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

#: Characters removed from an answer before it is read as a number.
NUMBER_NOISE_CHARS = ("$", "%", ",")
#: Separators of list answers.
LIST_SEPARATORS = (",", ";")

_PUNCTUATION_TABLE = str.maketrans("", "", string.punctuation)
_WHITESPACE = re.compile(r"\s")
_FINAL_ANSWER = re.compile(r"FINAL\s+ANSWER\s*:", re.IGNORECASE)


def normalize_number_str(number_str: str) -> float:
    """Read an answer as a number as GAIA does: drop ``$ % ,``, then ``float()``; ``inf`` if that fails."""
    for char in NUMBER_NOISE_CHARS:
        number_str = number_str.replace(char, "")
    try:
        return float(number_str)
    except ValueError:
        return float("inf")


def split_string(s: str, char_list: Sequence[str] = LIST_SEPARATORS) -> list[str]:
    """Split ``s`` on any of the single characters in ``char_list`` (GAIA's list splitting)."""
    pattern = "[" + "".join(re.escape(c) for c in char_list) + "]"
    return re.split(pattern, s)


def normalize_str(input_str: str, remove_punct: bool = True) -> str:
    """Remove all whitespace, lowercase and (by default) remove ASCII punctuation, as GAIA does."""
    no_spaces = _WHITESPACE.sub("", input_str).lower()
    if remove_punct:
        return no_spaces.translate(_PUNCTUATION_TABLE)
    return no_spaces


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def question_scorer(model_answer: str | None, ground_truth: str) -> bool:
    """Return True when ``model_answer`` is right for ``ground_truth`` under the GAIA leaderboard's rules.

    See the module docstring for the rules and the quirks kept. ``None`` is read as the string
    ``"None"``, as the leaderboard does.
    """
    if model_answer is None:
        model_answer = "None"
    if _is_float(ground_truth):
        return normalize_number_str(model_answer) == float(ground_truth)
    if any(sep in ground_truth for sep in LIST_SEPARATORS):
        gt_elems = split_string(ground_truth)
        answer_elems = split_string(model_answer)
        if len(gt_elems) != len(answer_elems):
            return False
        for answer_elem, gt_elem in zip(answer_elems, gt_elems, strict=True):
            if _is_float(gt_elem):
                if normalize_number_str(answer_elem) != float(gt_elem):
                    return False
            elif normalize_str(answer_elem, remove_punct=False) != normalize_str(gt_elem, remove_punct=False):
                return False
        return True
    return normalize_str(model_answer) == normalize_str(ground_truth)


def extract_final_answer(text: str) -> str | None:
    """Return the answer after the last ``FINAL ANSWER:`` in ``text``, or None when there is none.

    The marker is matched case-insensitively. The answer is the rest of the marker's line, or, when that
    is empty, the next non-empty line; it is stripped of surrounding whitespace. Markdown bold around the
    marker (``**FINAL ANSWER:** 42``) and around the answer is removed. A marker with nothing after it
    gives ``""``.
    """
    matches = list(_FINAL_ANSWER.finditer(text))
    if not matches:
        return None
    marker = matches[-1]
    bold = text[: marker.start()].endswith("**")
    rest = text[marker.end() :].lstrip(" \t")
    if rest.startswith("**"):
        bold, rest = True, rest[2:]
    for line in rest.splitlines():
        line = line.strip()
        if line.startswith("**") and line.endswith("**") and len(line) >= 4:
            line = line[2:-2].strip()
        elif bold and line.endswith("**"):
            line = line[:-2].strip()
        if line:
            return line
    return ""
