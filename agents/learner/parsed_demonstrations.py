"""The ``parse`` demonstration style: look at the page, then let Python pull the asked field out of it.

The ``compact`` style (:mod:`agents.learner.demonstrations`) answers a web question by copying the value out
of the printed page into the next turn's code (``final_answer('Jeicaton')``). On held-out pages the bundled
135M-parameter model reads the right page most of the time (15-22 of the 32 level-1 tasks of
``level1-eval`` in the three runs of ``docs/training_result.md``) and then submits the page's own title, a
misspelled name or a number from the wrong line: 1-4 of those reads end correct. What a held-out question
shares with a training question is not its value but its *template*, and a template always asks for the same
field of the page's ``Key: value`` facts. So turn 2 of this style names the field and lets ``re`` copy:

* Turn 1, as in ``compact``: ``print(read_page('<entity>'))``.
* Turn 2: ``import re`` and ``final_answer(re.search(r'Headquarters: (.+)', read_page('<entity>'))[1])``;
  the group is the whole value, its leading number (``Height: ([\\d,.]+)`` of "172 cm"), its bracketed code,
  the rate after "=", or the year at its end, whichever the task's answer is.

Tasks whose answer needs more than one field (a density, an age, an event's length), a reformatted date, or
an attached file have no parse script here (None) and keep their ``compact`` one. Each script is checked on
the host against the task's answer, and again through the real environment before it enters the queue.

The bundled 135M model does not reproduce a regular expression intact (measured in ``docs/training_result.md``);
the preset keeps ``compact``, and this style is left for larger models.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from toolr1_env.scoring import question_scorer
from toolr1_env.tasks import Task

_ENTITY = re.compile(r"find_page\((['\"])(.+?)\1\)")
#: A ``Key: value`` line of a page's facts (shared with the ``compact`` style).
FACT_LINE = re.compile(r"^([A-Z][A-Za-z ]+): (.+)$", re.M)
#: How a field's value may be cut down to the answer: whole, its leading number (before a unit), the code
#: in its brackets ("telcrown (TEL)"), the rate after "=" ("1 USD = 46.06 telcrown"), the year at its end.
VALUE_PATTERNS = (r"(.+)", r"([\d,.]+)", r".*\((\w+)\)", r".* = ([\d,.]+)", r".* (\d{4})")
#: Templates whose answer is computed from several fields (a coincidental one-field match must not count).
COMPUTED_TEMPLATES = frozenset({"population_density", "event_length", "age_on_date"})


def page_entity(task: Task) -> str | None:
    """The one page title a web task's reference solution looks up (``find_page('<title>')``), else None."""
    entities = {m.group(2) for m in _ENTITY.finditer(task.reference_solution or "")}
    return next(iter(entities)) if len(entities) == 1 else None


def parse_turns(task: Task, read_page: Callable[[str], str] | None) -> list[str] | None:
    """The look-then-parse script of a single-page web task whose answer is one field (module docstring),
    or None."""
    entity = page_entity(task)
    if task.files or read_page is None or entity is None or task.metadata.get("template") in COMPUTED_TEMPLATES:
        return None
    try:
        page = read_page(entity)
    except LookupError:
        return None
    for key, _ in FACT_LINE.findall(page):
        for pattern in VALUE_PATTERNS:
            regex = f"{key}: {pattern}"
            match = re.search(regex, page)
            if match and question_scorer(match[1], task.answer):
                return [f"print(read_page({entity!r}))",
                        f"import re\nfinal_answer(re.search(r'{regex}', read_page({entity!r}))[1])"]
    return None
