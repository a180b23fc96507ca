"""The GAIA scorer, rule by rule and quirk by quirk, and the FINAL ANSWER extractor."""

from __future__ import annotations

import math

import pytest

from toolr1_env.scoring import (
    extract_final_answer,
    normalize_number_str,
    normalize_str,
    question_scorer,
    split_string,
)

CASES = [
    # --- numeric ground truth: strip $ % , then float(), exact equality
    ("42", "42", True),
    ("42.0", "42", True),
    ("$42", "42", True),
    ("42%", "42", True),
    ("1,000", "1000", True),
    ("$1,000.50", "1000.5", True),
    ("  17 \n", "17", True),  # float() accepts surrounding whitespace
    ("1e3", "1000", True),  # float() syntax
    ("1_000", "1000", True),  # float() accepts digit underscores
    ("0.1", "0.10", True),
    ("17 km", "17", False),  # units are not stripped
    ("USD 42", "42", False),
    ("seventeen", "17", False),
    ("3.14159", "3.14", False),  # no tolerance
    ("3.1400000001", "3.14", False),
    ("\u22125", "-5", False),  # a Unicode minus is not a minus
    ("", "0", False),
    ("anything at all", "inf", True),  # quirk: an unparseable answer becomes inf
    ("nan", "nan", False),  # nan != nan
    # --- list ground truth (holds , or ;): split on [,;], same length, in order
    ("a, b, c", "a,b,c", True),
    ("a; b; c", "a, b, c", True),  # , and ; are interchangeable
    ("A,B,C", "a, b, c", True),
    ("c, b, a", "a, b, c", False),  # order matters
    ("a, b", "a, b, c", False),  # length must match
    ("a, b,", "a, b", False),  # a trailing separator makes an empty third element
    ("New York, Los Angeles", "new york, losangeles", True),  # all whitespace removed
    ("St Louis, Paris", "St. Louis, Paris", False),  # punctuation kept inside lists
    ("St. Louis, Paris", "St. Louis, Paris", True),
    ("1.5, $2, 3%", "1.5, 2, 3", True),  # numeric elements by the number rule
    ("1.50; 2.0", "1.5, 2", True),
    ("two, 3", "2, 3", False),
    ("1000", "1,000", False),  # quirk: "1,000" is a two-element list
    ("1,000", "1,000", True),
    ("1, 0", "1,000", True),  # quirk: "000" is the number 0
    ("1;0.0", "1,000", True),
    # --- string ground truth: remove whitespace, lowercase, remove ASCII punctuation
    ("Paris", "paris", True),
    ("  PARIS. ", "Paris", True),
    ("St Louis", "St. Louis", True),
    ("Hello-World!", "helloworld", True),
    ("a\tb\nc", "abc", True),  # any whitespace
    ("ÉCOLE", "école", True),  # lowercasing is Unicode-aware
    ("the Paris", "Paris", False),  # articles are not removed
    ("The capital is Paris", "Paris", False),
    ("cafe", "café", False),  # accents are not folded
    ("Paris\u2014France", "ParisFrance", False),  # an em dash is not ASCII punctuation
    ("", "", True),
    ("?!", "", True),
    # --- None: read as the string "None", as the leaderboard's scorer does
    (None, "Paris", False),
    (None, "42", False),
    (None, "a, b", False),
    (None, "none", True),
    (None, "None.", True),  # punctuation removed for strings
    (None, "None, none", False),  # a list ground truth: one element against two
    (None, "inf", True),  # the number rule: "None" does not parse, so it becomes inf
]


@pytest.mark.parametrize(("answer", "truth", "expected"), CASES)
def test_question_scorer(answer: str | None, truth: str, expected: bool) -> None:
    assert question_scorer(answer, truth) is expected


def test_normalize_number_str() -> None:
    assert normalize_number_str("$1,234.5%") == 1234.5
    assert normalize_number_str(" -3 ") == -3.0
    assert normalize_number_str("12 km") == math.inf
    assert normalize_number_str("") == math.inf


def test_split_string() -> None:
    assert split_string("a,b;c") == ["a", "b", "c"]
    assert split_string("a, b ;c") == ["a", " b ", "c"]
    assert split_string("a|b,c", ["|"]) == ["a", "b,c"]
    assert split_string("abc") == ["abc"]
    assert split_string("a,") == ["a", ""]


def test_normalize_str() -> None:
    assert normalize_str(" Hello, World! ") == "helloworld"
    assert normalize_str(" Hello, World! ", remove_punct=False) == "hello,world!"
    assert normalize_str("Ab\u00a0C") == "abc"  # non-breaking space is whitespace too


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Thought: easy.\nFINAL ANSWER: 42", "42"),
        ("FINAL ANSWER: Paris, France\nmore text", "Paris, France"),
        ("final answer:   st. louis  ", "st. louis"),
        ("FINAL ANSWER: 1\nFINAL ANSWER: 2", "2"),  # the last one wins
        ("FINAL ANSWER:\n\n  7\n", "7"),  # answer on the next line
        ("**FINAL ANSWER:** 42", "42"),
        ("**FINAL ANSWER: 42**", "42"),
        ("FINAL ANSWER: **Paris**", "Paris"),
        ("Final Answer: 3 * 4", "3 * 4"),
        ("FINAL ANSWER:", ""),
        ("The answer is 42.", None),
        ("", None),
    ],
)
def test_extract_final_answer(text: str, expected: str | None) -> None:
    assert extract_final_answer(text) == expected
