"""Demonstrations for the sample queue: turn texts that solve a pool task, one code action per turn.

Four styles (``--demonstrations``):

* ``reference``: the task's bundled reference solution, one ``# --- step ---`` per turn. Faithful, but a
  web task's second step defines ~270 tokens of helper functions: far beyond what a small model writes in
  one turn (``--max_new_tokens``), so imitating it teaches code that is always cut off.
* ``compact``: what a small agent can actually write, Thought -> Code -> Observation in two short turns.
  Turn 1 *looks*: ``print(read_page("<entity>"))`` for a web task (the bundled ``read_page`` accepts a page
  title), ``print(inspect_file("<name>"))`` for a task with one attached file. Turn 2 *answers from the
  observation*: it copies the fact the question asks for out of the page it just read
  (``final_answer("32,461")``), or computes from copied values (a density; an age or an event's length
  from dates whose month names it writes as numbers; a date reformatted by ``strptime``; the sum of a
  memo's amounts or of a category's stock; the days between a schedule's first and last dates). Nothing
  is copied that the observation did not show: turn 2 is built from the text the tool returns, and a
  task whose answer cannot be read off it (or whose copy would not fit in a short turn) keeps its
  reference solution.

* ``compact-web``: ``compact`` for web tasks only; a file task keeps its reference solution (the preset's
  demonstrations before file tasks got compact scripts, kept to measure what those scripts change).
* ``parse`` (:mod:`agents.learner.parsed_demonstrations`): look the same way, then answer a one-field web
  question with code that *parses* the page (``re.search(r'Headquarters: (.+)', read_page(...))[1]``)
  instead of copying the value; every other task keeps its ``compact`` script.

Every style is played through the real environment before use (``seed_queue_with_demonstrations`` in
``agents.learner.playing``): only a script that reaches a correct answer without an execution error enters
the queue, so a wrong compaction can never teach anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

from agents.learner.parsed_demonstrations import FACT_LINE, page_entity, parse_turns
from toolr1_env.scoring import question_scorer
from toolr1_env.tasks import Task

STYLES = ("reference", "compact", "compact-web", "parse")
STEP_SEPARATOR = "# --- step ---"
_LONG_DATE = re.compile(r"\b(\d{1,2}) (January|February|March|April|May|June|July|August|September|October|"
                        r"November|December) (\d{4})\b")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_CREDITS = re.compile(r"([\d,]+\.\d\d)\s+credits")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_QUOTED = re.compile(r"'([^']+)'")
#: Most numbers a compact answer copies (each costs about one token per digit: more does not fit a turn).
MAX_COPIED_NUMBERS = 5


def reference_turns(task: Task) -> list[str]:
    """The reference solution, one step per turn (empty when the task has none)."""
    if not task.reference_solution:
        return []
    return [step.strip("\n") for step in task.reference_solution.split(STEP_SEPARATOR)]


def compact_turns(task: Task, read_page: Callable[[str], str] | None,
                  inspect_file: Callable[[str], str] | None = None) -> list[str] | None:
    """The two-turn look-then-answer script of a single-page web task or a one-file task (module docstring).

    Returns None when the task is neither (no ``find_page('<entity>')`` in its reference solution, or more
    than one page; not exactly one attached file), when the tool it needs is missing (``read_page`` or
    ``inspect_file``, host-side), or when its answer cannot be read off what the tool returns.
    """
    if not task.reference_solution:
        return None
    if task.files:
        return _compact_file_turns(task, inspect_file)
    if read_page is None:
        return None
    entity = page_entity(task)
    if entity is None:
        return None
    try:
        page = read_page(entity)
    except LookupError:
        return None
    answer = _answer_from_page(task, page)
    if answer is None:
        return None
    return [f"print(read_page({entity!r}))", answer]


def _compact_file_turns(task: Task, inspect_file: Callable[[str], str] | None) -> list[str] | None:
    """Turn 1 prints the attached file through ``inspect_file``; turn 2 answers from the text it printed."""
    if inspect_file is None or len(task.files) != 1:
        return None
    path = task.files[0]
    try:
        text = inspect_file(path)
    except (OSError, ValueError, LookupError):
        return None
    answer = _answer_from_file(task, text)
    return None if answer is None else [f"print(inspect_file({Path(path).name!r}))", answer]


def _answer_from_file(task: Task, text: str) -> str | None:
    """Turn 2 of a file task: a sum of copied amounts or stocks, or the days between two copied dates."""
    template = str(task.metadata.get("template", ""))
    if template == "memo_expenses":
        amounts = [a.replace(",", "") for a in _CREDITS.findall(text)]
        if not 0 < len(amounts) <= MAX_COPIED_NUMBERS:
            return None
        return _checked(task, f"final_answer(round({'+'.join(amounts)}, 2))",
                        round(sum(float(a) for a in amounts), 2))
    if template == "inventory_file":
        category = _QUOTED.search(task.question)
        stocks = _column_where(text, "Stock", "Category", category.group(1)) if category else None
        if not stocks or len(stocks) > MAX_COPIED_NUMBERS:
            return None
        return _checked(task, f"final_answer({'+'.join(stocks)})", sum(int(v) for v in stocks))
    if template == "schedule_file":
        dates = sorted((int(y), int(m), int(d)) for y, m, d in _ISO_DATE.findall(text))
        if len(dates) < 2:
            return None
        (y0, m0, d0), (y1, m1, d1) = dates[0], dates[-1]
        return _checked(task, f"from datetime import date\nfinal_answer((date({y1}, {m1}, {d1}) - "
                              f"date({y0}, {m0}, {d0})).days)", (date(y1, m1, d1) - date(y0, m0, d0)).days)
    return None


def _column_where(text: str, column: str, key: str, value: str) -> list[str] | None:
    """Cells of ``column`` in the table rows of ``text`` (``" | "`` or comma separated) whose ``key`` cell is
    ``value``; None when no header names both columns."""
    rows = [re.split(r" \| |,", line.strip()) for line in text.splitlines() if " | " in line or "," in line]
    header = next((i for i, row in enumerate(rows) if column in row and key in row), None)
    if header is None:
        return None
    at, where = rows[header].index(column), rows[header].index(key)
    return [row[at] for row in rows[header + 1:] if len(row) == len(rows[header]) and row[where] == value]


def _answer_from_page(task: Task, page: str) -> str | None:
    """Turn 2: code that answers ``task`` from values printed on ``page`` (None if none found)."""
    facts = dict(FACT_LINE.findall(page))
    template = str(task.metadata.get("template", ""))
    if template == "population_density" and {"Population", "Area"} <= facts.keys():
        population, area = _first_number(facts["Population"]), _first_number(facts["Area"])
        return _checked(task, f"final_answer(round({population} / {area}))",
                        round(_to_float(population) / _to_float(area)))
    if template == "event_length" and {"Start date", "End date"} <= facts.keys():
        start, end = _LONG_DATE.fullmatch(facts["Start date"].strip()), _LONG_DATE.fullmatch(facts["End date"].strip())
        if start is None or end is None:
            return None
        return f"from datetime import date\nfinal_answer(({_date_literal(end)} - {_date_literal(start)}).days + 1)"
    if template == "age_on_date" and "Born" in facts:
        when = _LONG_DATE.search(task.question)
        born = _LONG_DATE.fullmatch(facts["Born"].strip())
        if when is None or born is None:
            return None
        # Years copied, month names read as numbers: (month, day) of the date asked vs. of the birthday.
        return (f"final_answer({when.group(3)} - {born.group(3)} - (({_month(when)}, {int(when.group(1))}) < "
                f"({_month(born)}, {int(born.group(1))})))")
    for value in facts.values():
        for candidate in _candidates(value):
            if question_scorer(candidate, task.answer):
                return f"final_answer({candidate!r})"
        iso = _iso_of(value)
        if iso is not None and question_scorer(iso, task.answer):
            return ("from datetime import datetime\n"
                    f"final_answer(datetime.strptime({value.strip()!r}, '%d %B %Y').date())")
    return None


def _candidates(value: str) -> list[str]:
    """Pieces of a fact value an answer may be: the whole value, the part before a bracket or unit, the
    bracketed code, each number as written, each year."""
    value = value.strip()
    out = [value, value.split(" (")[0]]
    out += re.findall(r"\((\w+)\)", value)
    out += _NUMBER.findall(value.split("=")[-1]) + _NUMBER.findall(value)
    return list(dict.fromkeys(out))


def _iso_of(value: str) -> str | None:
    match = _LONG_DATE.fullmatch(value.strip())
    if match is None:
        return None
    day, month, year = int(match.group(1)), _MONTHS.index(match.group(2)) + 1, int(match.group(3))
    return f"{year:04d}-{month:02d}-{day:02d}"


def _month(match: re.Match[str]) -> int:
    return _MONTHS.index(match.group(2)) + 1


def _date_literal(match: re.Match[str]) -> str:
    return f"date({int(match.group(3))}, {_month(match)}, {int(match.group(1))})"


def _first_number(text: str) -> str:
    match = _NUMBER.search(text)
    return match.group().replace(",", "") if match else "nan"


def _to_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _checked(task: Task, code: str, value: object) -> str | None:
    return code if question_scorer(str(value), task.answer) else None


def demonstration_scripts(tasks: Sequence[Task], style: str, read_page: Callable[[str], str] | None = None,
                          inspect_file: Callable[[str], str] | None = None) -> list[list[str]]:
    """One list of turn texts per task (code only, without the response prefix or the closing fence).

    ``parse`` falls back to ``compact`` for tasks it has no parser for; ``compact-web`` is ``compact`` for web
    tasks only (a file task keeps its reference steps); ``compact`` falls back to the reference
    turns for tasks it cannot compact (level 0, answers not in what the tool returns, copies too long for a
    turn); ``reference`` always uses them.
    """
    if style not in STYLES:
        raise ValueError(f"demonstration style must be one of {STYLES}, got {style!r}")
    scripts = []
    for task in tasks:
        script = parse_turns(task, read_page) if style == "parse" else None
        if script is None and style != "reference":
            script = compact_turns(task, read_page, None if style == "compact-web" else inspect_file)
        scripts.append(script if script is not None else reference_turns(task))
    return scripts


def host_tool(tools: Sequence[Callable[..., object]], name: str) -> Callable[[str], str] | None:
    """The task set's tool called ``name`` (``read_page``, ``inspect_file``) when it is a plain host-side
    function (the bundled suite's), else None."""
    for tool in tools:
        if getattr(tool, "__name__", "") == name:
            return tool  # type: ignore[return-value]
    return None
