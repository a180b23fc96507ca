"""Turn an action (raw Python or a whole LLM completion) into the code to run.

Rules, in order (documented for the model in the prompt):

1. Fenced blocks tagged ``py``/``python``/``python3`` (or untagged ```` ``` ```` fences): every block, in
   order, joined by a blank line. A missing closing fence is tolerated (the block runs to the end).
2. ``<code>...</code>`` tags (smolagents' format); a missing ``</code>`` is tolerated too.
3. Otherwise, if the whole action parses as Python, it is the code (raw-code actions).
4. Otherwise there is no code: the environment answers with a format error observation.

Separately, :func:`text_final_answer` finds a ``FINAL ANSWER: ...`` line in prose, for agents that answer
in words after their last code step.
"""

from __future__ import annotations

import ast
import re

_FENCE = re.compile(r"```[ \t]*(python3?|py)?[ \t]*\n(.*?)(?:(?<=\n)[ \t]*```|\Z)", re.DOTALL | re.IGNORECASE)
_OTHER_LANGUAGE = re.compile(r"```[ \t]*[A-Za-z]+")
_CODE_TAG = re.compile(r"<code>(.*?)(?:</code>|\Z)", re.DOTALL)
_FINAL_ANSWER = re.compile(r"FINAL ANSWER\s*:\s*(.+)", re.IGNORECASE)

FORMAT_HELP = (
    "Write your reasoning, then the Python code to run inside a fenced block:\n"
    "Thought: <what you will do and why>\n```py\n<python code>\n```\n"
    "Call final_answer(<answer>) in code when you know the answer."
)


def extract_code(action: str) -> str | None:
    """The code an action asks to run, or ``None`` when the action holds no code."""
    blocks = [m.group(2) for m in _FENCE.finditer(action)
              if m.group(1) or not _OTHER_LANGUAGE.match(action, m.start())]
    blocks = [b for b in blocks if b.strip()]
    if blocks:
        return "\n\n".join(block.strip("\n") for block in blocks)
    tagged = [m.group(1) for m in _CODE_TAG.finditer(action) if m.group(1).strip()]
    if tagged:
        return "\n\n".join(block.strip("\n") for block in tagged)
    if "```" in action or not action.strip():
        return None
    try:
        ast.parse(action)
    except (SyntaxError, ValueError):
        return None
    return action


def text_final_answer(action: str) -> str | None:
    """The answer after the last ``FINAL ANSWER:`` marker in prose, or ``None``."""
    matches = _FINAL_ANSWER.findall(action)
    return matches[-1].strip().strip("*").strip() if matches else None
