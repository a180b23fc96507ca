"""Demonstrations for the sample queue: turn texts that solve a pool task, one code action per turn.

Two styles (``--demonstrations``):

* ``reference``: the task's bundled reference solution, one ``# --- step ---`` per turn. Faithful, but a
  web task's second step defines ~270 tokens of helper functions: far beyond what a small model writes in
  one turn (``--max_new_tokens``), so imitating it teaches code that is always cut off.
* ``compact``: what a small agent can actually write, Thought -> Code -> Observation in two short turns.
  Turn 1 *looks*: ``print(read_page("<entity>"))`` for a web task (the bundled ``read_page`` accepts a page
  title), or the reference's own first step for a file task (it prints the attached table). Turn 2
  *answers from the observation*: it copies the fact the question asks for out of the page it just read
  (``final_answer("32,461")``), or computes from copied values (a density; an age or an event's length
  from dates whose month names it writes as numbers; a date reformatted by ``strptime``). Nothing is
  copied that the observation did not show: turn 2 is built from the page text, and a task whose answer
  cannot be read off its page keeps its reference solution.

Both styles are played through the real environment before use (``seed_queue_with_demonstrations`` in
``agents.learner.playing``): only a script that reaches a correct answer without an execution error enters
the queue, so a wrong compaction can never teach anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from toolr1_env.scoring import question_scorer
from toolr1_env.tasks import Task

STYLES = ("reference", "compact")
STEP_SEPARATOR = "# --- step ---"
_LONG_DATE = re.compile(r"\b(\d{1,2}) (January|February|March|April|May|June|July|August|September|October|"
                        r"November|December) (\d{4})\b")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_ENTITY = re.compile(r"find_page\((['\"])(.+?)\1\)")
_FACT = re.compile(r"^([A-Z][A-Za-z ]+): (.+)$", re.M)
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def reference_turns(task: Task) -> list[str]:
    """The reference solution, one step per turn (empty when the task has none)."""
    if not task.reference_solution:
        return []
    return [step.strip("\n") for step in task.reference_solution.split(STEP_SEPARATOR)]


def compact_turns(task: Task, read_page: Callable[[str], str] | None) -> list[str] | None:
    """The two-turn look-then-answer script of a single-page web task (see the module docstring).

    Returns None when the task is not a single-page web task (no ``find_page('<entity>')`` in its
    reference solution, or more than one page), when ``read_page`` is missing, or when its answer cannot be
    read off the page.
    """
    if read_page is None or not task.reference_solution:
        return None
    entities = {m.group(2) for m in _ENTITY.finditer(task.reference_solution)}
    if len(entities) != 1:
        return None
    (entity,) = entities
    try:
        page = read_page(entity)
    except LookupError:
        return None
    answer = _answer_from_page(task, page)
    if answer is None:
        return None
    return [f"print(read_page({entity!r}))", answer]


def _answer_from_page(task: Task, page: str) -> str | None:
    """Turn 2: code that answers ``task`` from values printed on ``page`` (None if none found)."""
    facts = dict(_FACT.findall(page))
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


def demonstration_scripts(tasks: Sequence[Task], style: str,
                          read_page: Callable[[str], str] | None = None) -> list[list[str]]:
    """One list of turn texts per task (code only, without the response prefix or the closing fence).

    ``compact`` falls back to the reference turns for tasks it cannot compact (level 0, file tasks, or
    answers not on the page); ``reference`` always uses them.
    """
    if style not in STYLES:
        raise ValueError(f"demonstration style must be one of {STYLES}, got {style!r}")
    scripts = []
    for task in tasks:
        compact = compact_turns(task, read_page) if style == "compact" else None
        scripts.append(compact if compact is not None else reference_turns(task))
    return scripts


def host_read_page(tools: Sequence[Callable[..., object]]) -> Callable[[str], str] | None:
    """The task set's ``read_page`` tool when it is a plain host-side function (the bundled suite's)."""
    for tool in tools:
        if getattr(tool, "__name__", "") == "read_page":
            return tool  # type: ignore[return-value]
    return None
