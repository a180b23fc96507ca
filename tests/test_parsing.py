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


# One grammar: for every fence variant, the generator stops exactly where the parser's block ends.
CODE = "x = 6 * 7\nprint(x)"
AFTER = "\nObservation: 42 (invented)\n```py\nfinal_answer(x)\n```\n"


@pytest.mark.parametrize(("opening", "closing"), [
    ("```py\n", "\n```"), ("```python\n", "\n```"), ("```Python\n", "\n```"), ("```PY\n", "\n```"),
    ("```python3\n", "\n```"), ("```\n", "\n```"), ("``` py \n", "\n  ```"), ("Thought: go.\n```py\n", "\n```"),
    ("<code>\n", "\n</code>"), ("Thought: tags.<code>", "</code>"),
])
def test_parse_and_stop_agree_on_every_fence_variant(opening, closing):
    from agents.learner.sampling import StopMatcher
    from toolr1_env.parsing import SERVER_STOP, code_block_end, cut_after_first_block

    completion = opening + CODE + closing + AFTER
    end = code_block_end(completion)
    assert end == len(opening + CODE + closing)  # the turn stops right after the first block
    assert extract_code(completion[:end]) == CODE  # and what it stopped on parses to exactly that block
    assert cut_after_first_block(completion) == completion[:end]
    matcher = StopMatcher([], batch_size=1)  # the sampler, fed one character at a time, stops at the same place
    stops = [matcher.feed(0, ch) for ch in completion]
    assert stops.index(True) + 1 == end
    # a server given SERVER_STOP strips the stop string it met: the client-side cut still parses the block
    served = min((completion.find(s) for s in SERVER_STOP if s in completion), default=len(completion))
    assert extract_code(cut_after_first_block(completion[:served])) == CODE


@pytest.mark.parametrize("completion", ["```py\n" + CODE, "```Python\n" + CODE + "\n", "<code>" + CODE])
def test_unclosed_blocks_run_but_never_stop(completion):
    from agents.learner.sampling import StopMatcher
    from toolr1_env.parsing import code_block_end

    matcher = StopMatcher([], batch_size=1)
    assert not any(matcher.feed(0, ch) for ch in completion) and code_block_end(completion) is None
    assert extract_code(completion) == CODE


@pytest.mark.parametrize("completion", ["```bash\nls -la\n```\nmore", "prose with ``` inline ``` fences", "no code"])
def test_other_languages_neither_parse_nor_stop(completion):
    from agents.learner.sampling import StopMatcher
    from toolr1_env.parsing import code_block_end

    matcher = StopMatcher([], batch_size=1)
    assert not any(matcher.feed(0, ch) for ch in completion) and code_block_end(completion) is None
    assert extract_code(completion) is None
