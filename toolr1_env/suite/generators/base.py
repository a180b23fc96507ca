"""What every task template shares: the draft record, answer formatting and reference-solution snippets.

A template is a function ``(world, rng) -> Draft``. The draft holds the question, the ground-truth
answer (computed from the world's data), the reference solution as a list of steps (agent-style code
that must reach the same answer through the tools only) and the attached documents. Templates raise
:class:`Skip` when the world offers no suitable entity; the caller then draws again.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from toolr1_env.suite.files import Document, Table
from toolr1_env.suite.world import World

#: Separator of reference-solution steps (the agent runs one step per turn; variables persist).
STEP_SEPARATOR = "\n# --- step ---\n"
#: The formats a table can be attached in, and those pandas reads directly.
TABLE_FORMATS = ("csv", "json", "xlsx", "pdf", "docx", "txt")


class Skip(Exception):
    """Raised by a template when this world (or this draw) cannot give a good task."""


@dataclass(frozen=True)
class Attachment:
    """A file to attach: its name (``"orders.xlsx"``) and what it says."""

    name: str
    document: Document


@dataclass(frozen=True)
class Draft:
    """A generated task before it gets an id and file paths."""

    question: str
    answer: str
    steps: tuple[str, ...]
    attachments: tuple[Attachment, ...] = ()

    @property
    def solution(self) -> str:
        """The reference solution as one string, steps joined by :data:`STEP_SEPARATOR`."""
        return STEP_SEPARATOR.join(step.strip("\n") for step in self.steps)


@dataclass(frozen=True)
class Template:
    """A named task template of one level."""

    name: str
    level: int
    make: Callable[[World, random.Random], Draft]


def template(level: int, registry: list[Template]) -> Callable[[Callable[..., Draft]], Callable[..., Draft]]:
    """Decorator registering ``make`` as a template of ``level`` (named after the function) in ``registry``."""

    def register(make: Callable[..., Draft]) -> Callable[..., Draft]:
        registry.append(Template(name=make.__name__, level=level, make=make))
        return make

    return register


def fmt_number(value: float, digits: int | None = None) -> str:
    """A numeric answer in GAIA form: no thousands separators, ``round(value, digits)`` when asked."""
    if digits is not None:
        value = round(value, digits)
    if isinstance(value, int):
        return str(value)
    text = repr(float(value))
    if "e" in text:
        raise Skip(f"number {text} would print in exponent form")
    return text[:-2] if text.endswith(".0") else text


def fmt_list(items: Sequence[str]) -> str:
    """A list answer: items joined by ``", "``."""
    return ", ".join(items)


def pick(rng: random.Random, options: Sequence[str]) -> str:
    """One phrasing out of several."""
    return rng.choice(list(options))


# ---------------------------------------------------------------------------------------------------
# Reference-solution snippets. Values are always inserted with repr() so the code is valid Python.

#: Helpers an agent writes once it has seen the page layout; defined in the first step of web tasks.
WEB_HELPERS = '''import re
from datetime import date, datetime


def find_page(name):
    """Search for `name` and return the text of the page with exactly that title."""
    for result in web_search(name, max_results=10):
        if result["title"] == name:
            return read_page(result["url"])
    raise LookupError(f"no page titled {name!r}")


def fact(page, key):
    """The value of a 'Key: value' line of a page's Facts section."""
    return re.search(rf"^{re.escape(key)}: (.+)$", page, re.M).group(1).strip()


def number(text):
    """The first number in a text such as '482,113' or '212.4 km2'."""
    return float(re.search(r"\\d[\\d,]*(?:\\.\\d+)?", text).group().replace(",", ""))


def day(text):
    """A date written like '5 April 2019'."""
    return datetime.strptime(text, "%d %B %Y").date()'''


def first_look(name: str) -> str:
    """A first step: search for ``name`` and show the results (what an agent does before anything else)."""
    return f"results = web_search({name!r})\nfor r in results:\n    print(r['title'], '|', r['url'])"


def load_rows(filename: str, var: str = "rows") -> str:
    """Code that reads the attached table ``filename`` into ``var``, a list of dicts keyed by the header.

    csv and xlsx go through pandas (typed cells), json through ``json``; docx, pdf and txt through
    ``inspect_file`` and the ``a | b | c`` row lines (string cells).
    """
    fmt = filename.rsplit(".", 1)[-1]
    if fmt == "csv":
        return f"import pandas as pd\n{var} = pd.read_csv({filename!r}).to_dict('records')\nprint({var}[:3])"
    if fmt == "xlsx":
        return f"import pandas as pd\n{var} = pd.read_excel({filename!r}).to_dict('records')\nprint({var}[:3])"
    if fmt == "json":
        return f"import json\nwith open({filename!r}) as f:\n    {var} = json.load(f)['records']\nprint({var}[:3])"
    return (
        f"text = inspect_file({filename!r})\n"
        "print(text)\n"
        "lines = [line for line in text.splitlines() if ' | ' in line]\n"
        "header = [cell.strip() for cell in lines[0].split('|')]\n"
        f"{var} = [dict(zip(header, [cell.strip() for cell in line.split('|')])) for line in lines[1:]]"
    )


def table_document(title: str, table: Table, notes: Sequence[str] = ()) -> Document:
    """A document holding one table and a few notes."""
    return Document(title=title, paragraphs=tuple(notes), tables=(table,))


def file_name(rng: random.Random, stems: Sequence[str], formats: Sequence[str] = TABLE_FORMATS) -> str:
    """A file name: one of ``stems`` plus one of ``formats``."""
    return f"{rng.choice(list(stems))}.{rng.choice(list(formats))}"


def sample(rng: random.Random, items: Sequence, k: int) -> list:
    """``k`` distinct items, or :class:`Skip` when there are fewer."""
    if len(items) < k:
        raise Skip(f"need {k} items, have {len(items)}")
    return rng.sample(list(items), k)
