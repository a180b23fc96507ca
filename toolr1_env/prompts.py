"""The text an agent sees: the task prompt at reset and the observation after each code action."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from toolr1_env.parsing import FORMAT_HELP
from toolr1_env.sandbox.host_tools import signature_text

#: GAIA's answer-format rules, worded for a code agent that answers through ``final_answer``.
ANSWER_RULES = (
    "Your final answer should be a number OR as few words as possible OR a comma-separated list of "
    "numbers and/or strings. A number: no thousands separators and no units such as $ or % unless asked. "
    "A string: no articles and no abbreviations, digits written as digits unless asked otherwise. "
    "A list: apply the rules above to each element."
)

FINAL_ANSWER_DOC = 'def final_answer(answer):\n    """Submit your final answer; this ends the task."""'


def render_tool(name: str, fn: Callable[..., Any]) -> str:
    """A tool as the model should see it: a Python signature with its docstring."""
    try:
        signature = signature_text(inspect.signature(fn))
    except (TypeError, ValueError):
        signature = "(*args, **kwargs)"
    doc = inspect.getdoc(fn) or "(no description)"
    body = "\n".join("    " + line if line else "" for line in doc.splitlines())
    return f'def {name}{signature}:\n    """\n{body}\n    """'


def render_task_prompt(question: str, file_names: Iterable[str], tools: dict[str, Callable[..., Any]],
                       max_turns: int) -> str:
    """The reset observation: question, attached files, tools, answer rules and how to finish."""
    files = sorted(file_names)
    parts = [
        "You solve tasks by writing Python code that runs in a persistent interpreter: variables, imports "
        "and functions survive from one step to the next. After each step you see what the code printed "
        f"(use print to see values), or the error. You have at most {max_turns} steps.",
        FORMAT_HELP,
        "Besides the allowed standard library modules (and numpy/pandas), these functions are available:",
        "\n\n".join([*(render_tool(name, fn) for name, fn in tools.items()), FINAL_ANSWER_DOC]),
        ANSWER_RULES,
    ]
    if files:
        parts.append("Attached files, in the current working directory: " + ", ".join(files))
    parts.append(f"Task: {question}")
    return "\n\n".join(parts)


COMPACT_EXAMPLE = "Task: What is 3 + 4?\n```py\nresult = 3 + 4\nfinal_answer(result)\n```"


def render_compact_prompt(question: str, file_names: Iterable[str], tools: dict[str, Callable[..., Any]]) -> str:
    """A short prompt for small models: one instruction, one worked example, one-line tool summaries.

    Long tool documentation distracts a 135M-parameter model into copying it; this style keeps the
    task close to where generation starts.
    """
    lines = ["Solve the task by writing Python code in a ```py block. The code runs and you see what it "
             "prints. Call final_answer(answer) with the answer.", "", "Example:", COMPACT_EXAMPLE, ""]
    if tools:
        lines += ["Functions you can call:",
                  *(f"- {name}{_signature(fn)}" + _first_doc_line(fn) for name, fn in tools.items()), ""]
    files = sorted(file_names)
    if files:
        lines.append("Attached files (in the current folder): " + ", ".join(files))
    lines.append(f"Task: {question}")
    return "\n".join(lines)


def render_tool_call_prompt(question: str, file_names: Iterable[str], tools: dict[str, Callable[..., Any]]) -> str:
    """The task prompt for chat models that act through a ``python`` tool call (JSON tool calling, as in
    TRL's ``environment_factory``) instead of fenced code in their reply: same task, answer rules and
    in-sandbox functions, with the tool named as the way to run code."""
    lines = ["Solve the task by calling the `python` tool with Python code. The code runs in a persistent "
             "interpreter (variables survive between calls) and the tool returns what it printed, or the error. "
             "Call final_answer(answer) inside your code to submit the answer; this ends the task.", ""]
    if tools:
        lines += ["Functions you can call inside the code:",
                  *(f"- {name}{_signature(fn)}" + _first_doc_line(fn) for name, fn in tools.items()), ""]
    lines += [ANSWER_RULES, ""]
    files = sorted(file_names)
    if files:
        lines.append("Attached files (in the current folder): " + ", ".join(files))
    lines.append(f"Task: {question}")
    return "\n".join(lines)


def _signature(fn: Callable[..., Any]) -> str:
    try:
        return signature_text(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(...)"


def _first_doc_line(fn: Callable[..., Any]) -> str:
    first = (inspect.getdoc(fn) or "").strip().splitlines()
    return f": {first[0]}" if first else ""


def truncate_middle(text: str, limit: int) -> str:
    """Keep the head and tail of ``text`` within about ``limit`` characters, marking the cut."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    return f"{text[:head]}\n...[{len(text) - limit} characters truncated]...\n{text[-tail:]}"
