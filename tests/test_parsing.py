"""Action parsing: code blocks, tags, raw code, and prose final answers."""

from __future__ import annotations

import pytest

from toolr1_env.parsing import extract_code, text_final_answer


@pytest.mark.parametrize(("action", "code"), [
    ("print(1)", "print(1)"),
    ("Thought: add.\n```py\nx = 1 + 2\nprint(x)\n```", "x = 1 + 2\nprint(x)"),
    ("```python\na = 1\n```\ntext\n```python\nb = a\n```", "a = 1\n\nb = a"),
    ("Thought: unclosed\n```py\nprint('hi')", "print('hi')"),
    ("Code:\n```\nz = 3\n```", "z = 3"),
    ("Thought: tags\n<code>\nq = 5\n</code>", "q = 5"),
    ("<code>\nq = 5", "q = 5"),
    ("```Python\nw = 1\n```", "w = 1"),
])
def test_code_is_extracted(action, code):
    assert extract_code(action) == code


@pytest.mark.parametrize("action", ["", "   ", "The answer is probably 12.", "```bash\nls -la\n```", "```py\n```"])
def test_actions_without_code(action):
    assert extract_code(action) is None


def test_prose_final_answer_takes_the_last_marker():
    assert text_final_answer("draft FINAL ANSWER: 3\nactually\nFINAL ANSWER: **42**") == "42"
    assert text_final_answer("no marker here") is None
