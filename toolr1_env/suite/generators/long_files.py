"""Level 1, long files: one attached table of 150-400 rows, and a question only code can answer.

The level-1 file templates (:mod:`~toolr1_env.suite.generators.level1`) attach a dozen rows, so an agent can
print the file and copy or add up what it sees. Real spreadsheets are longer than an observation (the env
keeps about 800 characters of a printout, its head and its tail): here the answer is an aggregate over a
filtered part of a long table (a sum, a mean, a count, a share, the largest per-group total or mean), and a
draft is redrawn whenever its answer could be read off any printout of the file (its first 45 rows or its
last 25, in any cell spelling, pandas' index and shape line included; see :func:`_visible_text`).

One template per attachment format (``long_table_csv``, ``..._xlsx``, ``..._json``, ``..._docx``,
``..._pdf``, ``..._txt``), so a fixed split cycling through the templates covers every format. The
reference solution is a few short steps in the style the learner imitates (each under 64 tokens): load
the table into a pandas ``DataFrame`` and print its head (``read_csv``/``read_excel``, ``json.load`` for
json; for docx, pdf and txt the ``a | b`` lines of ``inspect_file`` first, then the frame), then compute
the answer with pandas in one ``final_answer``.

These templates are not in :data:`~toolr1_env.suite.generators.TEMPLATES_BY_LEVEL`: the existing splits keep
their tasks; the ``train-files`` and ``files-eval`` splits (and ``train-easy-files``) draw from
:data:`TEMPLATES`.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from fractions import Fraction

from toolr1_env.suite.files import Document, Table
from toolr1_env.suite.generators.base import Attachment, Draft, Skip, Template, fmt_number, pick
from toolr1_env.suite.names import word
from toolr1_env.suite.world import World

#: Formats with typed cells read by pandas (or json) directly; the rest are parsed from ``inspect_file`` text.
TYPED_FORMATS = ("csv", "xlsx", "json")
TEXT_FORMATS = ("docx", "pdf", "txt")
LONG_FORMATS = TYPED_FORMATS + TEXT_FORMATS
#: Rows of a table: typed formats up to 400; text formats fewer, so ``inspect_file`` (20,000 characters) shows all.
MIN_ROWS, MAX_ROWS, MAX_TEXT_ROWS = 150, 400, 260
MAX_TEXT_CHARS = 17_000
#: Rows an agent can see of a printout: at most 45 from its head (800 characters at >= 18 per row) and
#: 25 from its tail (the env keeps a long observation's head and tail).
HEAD_ROWS, TAIL_ROWS = 45, 25
#: Words pandas or ``float()`` would not read as text.
_NOT_TEXT = frozenset({"nan", "na", "none", "null", "true", "false", "inf"})


@dataclass(frozen=True)
class Measure:
    """A numeric column: its name, the range of its values and their decimals (0: integers)."""

    column: str
    low: float
    high: float
    decimals: int


@dataclass(frozen=True)
class Theme:
    """What a long table is about: its rows, its key column, a group column, a label column and measures."""

    title: str
    stems: tuple[str, ...]
    rows: str
    key: str
    group: str
    group_noun: str
    label: str
    labels: tuple[str, ...]
    measures: tuple[Measure, ...]
    note: str


THEMES = (
    Theme("Order log of the {place} shop", ("orders", "sales", "order_log"), "orders", "Customer", "Region",
          "region", "Channel", ("Online", "Store", "Phone"),
          (Measure("Units", 1, 80, 0), Measure("Amount", 5, 2500, 2)), "Amounts in credits, taxes included."),
    Theme("Weather log of the {place} network", ("weather", "readings", "station_log"), "readings", "Observer",
          "Station", "station", "Sky", ("Clear", "Cloudy", "Rain"),
          (Measure("Temperature", -8, 34, 1), Measure("Rainfall", 0, 45, 1), Measure("Wind", 0, 90, 0)),
          "Temperature in degrees Celsius, rainfall in millimetres, wind in km/h."),
    Theme("Staff list of the {place} company", ("staff", "employees", "payroll"), "employees", "Employee",
          "Department", "department", "Contract", ("Permanent", "Temporary"),
          (Measure("Salary", 24_000, 150_000, 0), Measure("Years", 0, 38, 0), Measure("Rating", 1, 5, 1)),
          "Yearly salaries in credits."),
    Theme("Shipments of the {place} depot", ("shipments", "freight", "deliveries"), "shipments", "Destination",
          "Carrier", "carrier", "Status", ("On time", "Late"),
          (Measure("Weight kg", 0.5, 950, 2), Measure("Distance km", 12, 3800, 0)), "One row per shipment."),
    Theme("Loans of the {place} library", ("loans", "library", "catalogue"), "titles", "Title", "Branch",
          "branch", "Format", ("Print", "Ebook", "Audio"),
          (Measure("Loans", 0, 400, 0), Measure("Pages", 40, 1200, 0), Measure("Fee", 0.5, 40, 2)),
          "Loans counted over the last year."),
)  # fmt: skip


def _name(rng: random.Random, syllables: tuple[int, int] = (2, 3)) -> str:
    """An invented word pandas reads as text (never ``None``, ``Nan``, ...)."""
    while True:
        text = word(rng, *syllables)
        if text.lower() not in _NOT_TEXT:
            return text


def _column(rng: random.Random, measure: Measure, n: int) -> list[int | float]:
    span = measure.high - measure.low
    if measure.decimals == 0:
        return [int(measure.low + rng.random() * (span + 1)) for _ in range(n)]
    return [round(measure.low + rng.random() * span, measure.decimals) for _ in range(n)]


@dataclass(frozen=True)
class _Data:
    """A generated table by column: group and label per row, and each measure's cells as exact integers
    (``cell * 10**decimals``), so aggregates are computed exactly."""

    groups: list[str]
    group_of: list[str]
    label_of: list[str]
    scaled: dict[str, list[int]]


def _table(rng: random.Random, theme: Theme, fmt: str) -> tuple[Table, _Data]:
    """A long table of ``theme`` (3-6 groups of uneven sizes), and the same data by column."""
    groups = sorted({_name(rng, (2, 2)) for _ in range(rng.randint(3, 6))})
    n = rng.randint(MIN_ROWS, MAX_TEXT_ROWS if fmt in TEXT_FORMATS else MAX_ROWS)
    keys = [_name(rng) for _ in range(40)]
    if theme.key in ("Employee", "Title"):  # two words: first and last names, or title words
        keys = [f"{first} {rng.choice(keys)}" for first in rng.choices(keys, k=n)]
    else:
        keys = rng.choices(keys, k=n)
    group_of = rng.choices(groups, [rng.uniform(0.5, 2.0) for _ in groups], k=n)
    label_of = rng.choices(theme.labels, [rng.uniform(0.5, 2.0) for _ in theme.labels], k=n)
    cells = [_column(rng, m, n) for m in theme.measures]
    rows = tuple(zip(keys, group_of, label_of, *cells, strict=True))
    header = (theme.key, theme.group, theme.label, *(m.column for m in theme.measures))
    table = Table(header, rows, title=theme.rows.capitalize())
    if fmt in TEXT_FORMATS and sum(len(" | ".join(map(str, row))) + 1 for row in rows) > MAX_TEXT_CHARS:
        raise Skip("table too long for inspect_file")
    scaled = {m.column: [round(c * 10**m.decimals) for c in col] for m, col in zip(theme.measures, cells, strict=True)}
    return table, _Data([g for g in groups if g in group_of], group_of, label_of, scaled)


def _visible_text(document: Document, table: Table) -> str:
    """Everything an agent could read in an 800-character printout of the file, in any format: the title,
    notes and header, and every spelling (``str``, 1 and 2 decimals) of the cells of the first
    :data:`HEAD_ROWS` and last :data:`TAIL_ROWS` rows, plus pandas' row numbers and shape line."""
    n = len(table.rows)
    parts = [document.title, *document.paragraphs, table.title, *table.header, f"[{n} rows x {len(table.header)}"]
    parts += [str(i) for i in (*range(HEAD_ROWS), *range(n - TAIL_ROWS, n + 1))]
    for row in table.rows[:HEAD_ROWS] + table.rows[-TAIL_ROWS:]:
        for cell in row:
            parts.append(str(cell))
            if isinstance(cell, float):
                parts += [f"{cell:.1f}", f"{cell:.2f}"]
    return "\n".join(parts)


def _rounded(value: Fraction, digits: int) -> str:
    """``value`` rounded to ``digits`` decimals as an answer; :class:`Skip` on a tie (float code could go
    either way)."""
    scaled = value * 10**digits
    if scaled - (scaled.numerator // scaled.denominator) == Fraction(1, 2):
        raise Skip("rounding tie")
    return fmt_number(float(round(value, digits)), digits)


def _total(values: list[int], measure: Measure) -> str:
    """The sum of scaled cells as an answer: an integer, or rounded to 2 decimals."""
    if measure.decimals == 0:
        return str(sum(values))
    return _rounded(Fraction(sum(values), 10**measure.decimals), 2)


def _sum_code(column: str, measure: Measure) -> str:
    """``final_answer`` of the sum of the pandas Series ``column``: an int, or rounded to 2 decimals."""
    return f"final_answer(int({column}.sum()))" if measure.decimals == 0 else f"final_answer(round({column}.sum(), 2))"


def _ask(rng: random.Random, theme: Theme, data: _Data) -> tuple[str, str, str, str]:
    """One question about the table: (question after the file's introduction, answer, answer code, the numeric
    column the code reads or ``""``)."""
    measure = rng.choice(theme.measures)
    m, g_col, l_col = measure.column, theme.group, theme.label
    unit = 10**measure.decimals
    cells = data.scaled[m]
    group = rng.choice(data.groups)
    values = [c for c, g in zip(cells, data.group_of, strict=True) if g == group]
    subset = f"the {theme.rows} whose '{g_col}' is '{group}'"
    ending = "" if measure.decimals == 0 else " Round to 2 decimal places."
    kind = rng.randrange(7)
    if kind == 0:
        question = f"what is the total '{m}' of {subset}?{ending}"
        return question, _total(values, measure), _sum_code(f"df[df[{g_col!r}] == {group!r}][{m!r}]", measure), m
    if kind == 1:
        question = f"what is the average '{m}' of {subset}? Round to 2 decimal places."
        code = f"final_answer(round(df[df[{g_col!r}] == {group!r}][{m!r}].mean(), 2))"
        return question, _rounded(Fraction(sum(values), len(values) * unit), 2), code, m
    if kind == 2:
        ordered = sorted(cells)
        low, high = ordered[len(cells) // 5] / unit, ordered[4 * len(cells) // 5] / unit
        step = 10 ** max(len(str(int(high))) - 2, 0)
        threshold = round(rng.uniform(low, high) / step) * step
        question = f"how many of {subset} have a '{m}' above {threshold}?"
        code = f"final_answer(int(((df[{g_col!r}] == {group!r}) & (df[{m!r}] > {threshold})).sum()))"
        return question, str(sum(v > threshold * unit for v in values)), code, m
    totals = {g: 0 for g in data.groups}
    counts = {g: 0 for g in data.groups}
    for c, g in zip(cells, data.group_of, strict=True):
        totals[g] += c
        counts[g] += 1
    if kind == 3:
        question = pick(rng, [
            f"what is the largest total '{m}' of a single {theme.group_noun} (column '{g_col}')?",
            f"grouping the {theme.rows} by '{g_col}', what is the largest total '{m}' of one {theme.group_noun}?",
        ])  # fmt: skip
        code = _sum_code(f"df.groupby({g_col!r})[{m!r}]", measure).replace(".sum()", ".sum().max()")
        return question + ending, _total([max(totals.values())], measure), code, m
    if kind == 4:
        best = max(Fraction(totals[g], counts[g] * unit) for g in data.groups)
        question = f"what is the highest average '{m}' of any {theme.group_noun} (column '{g_col}')?"
        code = f"final_answer(round(df.groupby({g_col!r})[{m!r}].mean().max(), 2))"
        return question + " Round to 2 decimal places.", _rounded(best, 2), code, m
    label = rng.choice(theme.labels)
    labels = [lab for lab, g in zip(data.label_of, data.group_of, strict=True) if g == group]
    if kind == 5:
        share = Fraction(100 * labels.count(label), len(labels))
        question = f"what percentage of {subset} have '{l_col}' equal to '{label}'? Round to 1 decimal place."
        code = (
            f"sub = df[df[{g_col!r}] == {group!r}]\nfinal_answer(round(100 * (sub[{l_col!r}] == {label!r}).mean(), 1))"
        )
        return question, _rounded(share, 1), code, ""
    both = [v for v, lab in zip(values, labels, strict=True) if lab == label]
    if not both:
        raise Skip("no row in both groups")
    question = f"what is the total '{m}' of {subset} and '{l_col}' is '{label}'?{ending}"
    column = f"df[(df[{g_col!r}] == {group!r}) & (df[{l_col!r}] == {label!r})][{m!r}]"
    return question, _total(both, measure), _sum_code(column, measure), m


def load_frame(filename: str, numeric: str) -> tuple[str, ...]:
    """The first steps: load the attached table ``filename`` into ``df`` and print its head.

    csv and xlsx through pandas, json through ``json.load`` (its ``records``): one step. docx, pdf and txt
    through ``inspect_file``'s ``a | b | c`` lines, then a ``DataFrame`` with the column ``numeric`` (the one
    the question needs, if any) made numeric: two steps, so that each fits a small model's turn (about 64
    tokens).
    """
    fmt = filename.rsplit(".", 1)[-1]
    if fmt == "csv":
        return (f"import pandas as pd\ndf = pd.read_csv({filename!r})\nprint(df.head())",)
    if fmt == "xlsx":
        return (f"import pandas as pd\ndf = pd.read_excel({filename!r})\nprint(df.head())",)
    if fmt == "json":
        return (
            f"import json\nimport pandas as pd\nwith open({filename!r}) as f:\n"
            "    df = pd.DataFrame(json.load(f)['records'])\nprint(df.head())",
        )
    read = f"rows = [line.split(' | ') for line in inspect_file({filename!r}).splitlines() if ' | ' in line]"
    frame = "import pandas as pd\ndf = pd.DataFrame(rows[1:], columns=rows[0])"
    if numeric:
        frame += f"\ndf[{numeric!r}] = pd.to_numeric(df[{numeric!r}])"
    return (f"{read}\nprint(rows[:3])", f"{frame}\nprint(df.head())")


def long_table(world: World, rng: random.Random, fmt: str) -> Draft:
    """A question about an aggregate of one long attached table in format ``fmt`` (module docstring)."""
    theme = rng.choice(THEMES)
    table, data = _table(rng, theme, fmt)
    place = _name(rng, (2, 2))
    document = Document(title=theme.title.format(place=place), paragraphs=(theme.note,), tables=(table,))
    name = f"{rng.choice(theme.stems)}.{fmt}"
    visible = _visible_text(document, table)
    for _ in range(12):
        try:
            question, answer, code, numeric = _ask(rng, theme, data)
        except Skip:
            continue
        intro = f"In the attached file {name} ({document.title[:1].lower()}{document.title[1:]}), "
        if answer not in visible and answer not in intro + question:
            steps = (*load_frame(name, numeric), code)
            return Draft(intro + question, answer, steps, (Attachment(name, document),))
    raise Skip("every question's answer shows in a printout of the file")


#: One template per format, all level 1.
TEMPLATES: list[Template] = [
    Template(name=f"long_table_{fmt}", level=1, make=functools.partial(long_table, fmt=fmt)) for fmt in LONG_FORMATS
]
