"""The one code-action grammar: what counts as code in an action, and where a generated turn must stop.

Both the environment's parser (:func:`extract_code`) and every generator's stop rule (the learner's
sampler, OpenAI-compatible agents, TRL's rollout function) come from the patterns below, so a block
the parser runs is always a block the generator stops after.

Code blocks (documented for the model in the prompt):

* a fence: a line opening with ```` ``` ```` and an optional tag ``py``, ``python`` or ``python3`` (any
  case: ```` ```Python ```` counts) and nothing else, up to the next line starting with ```` ``` ````.
  A fence tagged with another language (```` ```bash ````) is not code.
* ``<code> ... </code>`` tags (smolagents' format).

Parsing (:func:`extract_code`), in order:

1. every fenced block, in order, joined by a blank line; a missing closing fence is tolerated (the block
   runs to the end of the action);
2. else every ``<code>`` block (a missing ``</code>`` is tolerated too);
3. else, if the whole action parses as Python, it is the code (raw-code actions);
4. else there is no code: the environment answers with a format error observation.

Stopping (:func:`code_block_end`): a generated turn ends right after its first *complete* block, the
closing fence (``"\\n```"``) or ``</code>``, because the environment runs the code and answers with an
observation: anything the model writes after it would be a hallucinated observation. An unclosed block
never stops generation (EOS or the token budget ends the turn, and the parser still runs the block).
Servers can only stop on plain strings, and the opening fence holds the same backticks as the closing
one, so :data:`SERVER_STOP` holds only what is safe as a plain stop string; OpenAI-compatible agents cut
the completion client-side with :func:`cut_after_first_block`.

Separately, :func:`text_final_answer` finds a ``FINAL ANSWER: ...`` line in prose, for agents that answer
in words after their last code step.
"""

from __future__ import annotations

import ast
import re

#: Language tags of a Python fence (matched case-insensitively); an untagged fence is Python too.
FENCE_LANGUAGES: tuple[str, ...] = ("py", "python", "python3")
#: An opening fence: ``` + an info string (the language tag) + newline.
OPEN_FENCE = re.compile(r"```([^\n`]*)\n")
#: A closing fence: a line starting with ``` (searched from the opening line's newline).
CLOSE_FENCE = re.compile(r"\n[ \t]*```")
OPEN_TAG, CLOSE_TAG = "<code>", "</code>"
#: Plain stop strings a server may be given (they cannot cut a code block short): the closing tag, the
#: smolagents end marker, and the start of an invented observation.
SERVER_STOP: tuple[str, ...] = (CLOSE_TAG, "<end_code>", "\nObservation:")

FORMAT_HELP = (
    "Write your reasoning, then the Python code to run inside a fenced block:\n"
    "Thought: <what you will do and why>\n```py\n<python code>\n```\n"
    "Call final_answer(<answer>) in code when you know the answer."
)

_TAG_BLOCK = re.compile(r"<code>(.*?)(?:</code>|\Z)", re.DOTALL)
_FINAL_ANSWER = re.compile(r"FINAL ANSWER\s*:\s*(.+)", re.IGNORECASE)


def fenced_blocks(text: str) -> list[tuple[str, int | None]]:
    """Every Python fenced block of ``text`` in order: ``(body, index just after its close or None)``.

    Fences of other languages are skipped whole (their body is never code, their close never stops).
    """
    blocks: list[tuple[str, int | None]] = []
    pos = 0
    while (opening := OPEN_FENCE.search(text, pos)) is not None:
        body_start = opening.end() - 1  # the newline is shared, so an empty block closes too
        closing = CLOSE_FENCE.search(text, body_start)
        body = text[opening.end(): closing.start() + 1] if closing is not None else text[opening.end():]
        if opening.group(1).strip().lower() in ("", *FENCE_LANGUAGES):
            blocks.append((body, None if closing is None else closing.end()))
        if closing is None:
            break
        pos = closing.end()
    return blocks


def code_block_end(text: str) -> int | None:
    """Where a generated turn must stop: just after its first complete code block (None: keep going)."""
    ends = [end for _, end in fenced_blocks(text)[:1] if end is not None]
    tag = text.find(OPEN_TAG)
    if tag >= 0 and (close := text.find(CLOSE_TAG, tag)) >= 0:
        ends.append(close + len(CLOSE_TAG))
    return min(ends) if ends else None


def cut_after_first_block(text: str) -> str:
    """``text`` up to the end of its first complete code block (unchanged without one)."""
    end = code_block_end(text)
    return text if end is None else text[:end]


def extract_code(action: str) -> str | None:
    """The code an action asks to run, or ``None`` when the action holds no code."""
    blocks = [body for body, _ in fenced_blocks(action) if body.strip()]
    if blocks:
        return "\n\n".join(block.strip("\n") for block in blocks)
    tagged = [m.group(1) for m in _TAG_BLOCK.finditer(action) if m.group(1).strip()]
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
