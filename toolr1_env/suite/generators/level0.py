"""Level 0 (warm-up): one line of code gives an answer no small model can compute in its head.

Big-number arithmetic, string manipulation, calendar arithmetic, unit conversion with the factor given,
and reading one small attached table. No web search is needed; the reference solution is one step.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable

from toolr1_env.suite.files import Table
from toolr1_env.suite.generators.base import (
    Attachment,
    Draft,
    Skip,
    Template,
    fmt_list,
    fmt_number,
    pick,
    table_document,
    template,
)
from toolr1_env.suite.names import word
from toolr1_env.suite.pages import long_date
from toolr1_env.suite.world import World, random_date

TEMPLATES: list[Template] = []
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _date(rng: random.Random) -> dt.date:
    return random_date(rng, dt.date(1900, 1, 1), dt.date(2030, 12, 31))


def _date_style(rng: random.Random) -> Callable[[dt.date], str]:
    return rng.choice((dt.date.isoformat, long_date))


@template(0, TEMPLATES)
def multiply(world: World, rng: random.Random) -> Draft:
    """The product of two big integers."""
    a, b = rng.randint(10**6, 10**10), rng.randint(10**5, 10**9)
    question = pick(rng, [f"What is {a} multiplied by {b}?", f"Compute {a} * {b}.",
                          f"What is the product of {a} and {b}?"])  # fmt: skip
    return Draft(question, str(a * b), (f"final_answer({a} * {b})",))


@template(0, TEMPLATES)
def add_many(world: World, rng: random.Random) -> Draft:
    """The sum of a dozen six- and seven-digit numbers."""
    numbers = [rng.randint(10**5, 10**7) for _ in range(rng.randint(8, 14))]
    listed = ", ".join(map(str, numbers))
    question = pick(rng, [f"What is the sum of the following numbers: {listed}?",
                          f"Add up these numbers and give the total: {listed}."])  # fmt: skip
    return Draft(question, str(sum(numbers)), (f"numbers = [{listed}]\nfinal_answer(sum(numbers))",))


@template(0, TEMPLATES)
def remainder(world: World, rng: random.Random) -> Draft:
    """A big integer modulo a small one."""
    a, b = rng.randint(10**12, 10**18), rng.randint(101, 99_999)
    question = pick(rng, [f"What is the remainder when {a} is divided by {b}?", f"What is {a} modulo {b}?"])
    return Draft(question, str(a % b), (f"final_answer({a} % {b})",))


@template(0, TEMPLATES)
def digit_sum_of_power(world: World, rng: random.Random) -> Draft:
    """The digit sum of a large power."""
    base, exponent = rng.randint(2, 19), rng.randint(40, 400)
    question = pick(rng, [
        f"What is the sum of the digits of {base} to the power of {exponent}?",
        f"Compute {base}**{exponent} and add up its decimal digits. What is the result?",
    ])  # fmt: skip
    code = f"final_answer(sum(int(d) for d in str({base} ** {exponent})))"
    return Draft(question, str(sum(int(d) for d in str(base**exponent))), (code,))


@template(0, TEMPLATES)
def days_between(world: World, rng: random.Random) -> Draft:
    """Days between two dates."""
    first, second = sorted((_date(rng), _date(rng)))
    if first == second:
        raise Skip("same date")
    show = _date_style(rng)
    question = pick(rng, [
        f"How many days are there from {show(first)} to {show(second)}?",
        f"How many days passed between {show(first)} and {show(second)}?",
    ])  # fmt: skip
    code = (
        "from datetime import date\n"
        f"final_answer((date({second.year}, {second.month}, {second.day}) - "
        f"date({first.year}, {first.month}, {first.day})).days)"
    )
    return Draft(question, str((second - first).days), (code,))


@template(0, TEMPLATES)
def weekday(world: World, rng: random.Random) -> Draft:
    """The weekday of a date."""
    day = _date(rng)
    question = pick(rng, [f"On what day of the week did {long_date(day)} fall?",
                          f"Which day of the week was {day.isoformat()}? Answer with the weekday's name."])  # fmt: skip
    code = f"from datetime import date\nfinal_answer(date({day.year}, {day.month}, {day.day}).strftime('%A'))"
    return Draft(question, day.strftime("%A"), (code,))


@template(0, TEMPLATES)
def date_after(world: World, rng: random.Random) -> Draft:
    """The date some thousands of days after a given date."""
    day, days = _date(rng), rng.randint(100, 20_000)
    result = day + dt.timedelta(days=days)
    question = f"What date is {days} days after {_date_style(rng)(day)}? Answer in YYYY-MM-DD format."
    code = (
        "from datetime import date, timedelta\n"
        f"final_answer((date({day.year}, {day.month}, {day.day}) + timedelta(days={days})).isoformat())"
    )
    return Draft(question, result.isoformat(), (code,))


@template(0, TEMPLATES)
def reverse_text(world: World, rng: random.Random) -> Draft:
    """A random string written backwards."""
    text = "".join(rng.choice(_LETTERS) for _ in range(rng.randint(14, 24)))
    question = pick(rng, [f"Write the string '{text}' backwards.",
                          f"What do you get when you reverse the letters of '{text}'?"])  # fmt: skip
    return Draft(question, text[::-1], (f"final_answer({text!r}[::-1])",))


@template(0, TEMPLATES)
def count_letter(world: World, rng: random.Random) -> Draft:
    """How often a letter occurs in a long invented text."""
    text = " ".join(word(rng, 1, 3).lower() for _ in range(rng.randint(40, 70)))
    letter = rng.choice("aeinorst")
    question = f"How many times does the letter '{letter}' occur in the following text?\n\n{text}"
    code = f"text = {text!r}\nfinal_answer(text.count({letter!r}))"
    return Draft(question, str(text.count(letter)), (code,))


@template(0, TEMPLATES)
def sort_words(world: World, rng: random.Random) -> Draft:
    """Invented words sorted alphabetically."""
    words = sorted({word(rng, 2, 3).lower() for _ in range(rng.randint(6, 9))})
    shuffled = rng.sample(words, len(words))
    question = (f"Sort these words alphabetically and give them as a comma-separated list: "
                f"{' '.join(shuffled)}")  # fmt: skip
    code = f"words = {' '.join(shuffled)!r}.split()\nfinal_answer(', '.join(sorted(words)))"
    return Draft(question, fmt_list(words), (code,))


#: (unit, its singular, target unit, factor)
_CONVERSIONS = (
    ("miles", "mile", "kilometres", 1.609344),
    ("pounds", "pound", "kilograms", 0.45359237),
    ("feet", "foot", "metres", 0.3048),
    ("US gallons", "US gallon", "litres", 3.785411784),
    ("nautical miles", "nautical mile", "kilometres", 1.852),
)


@template(0, TEMPLATES)
def convert_units(world: World, rng: random.Random) -> Draft:
    """A unit conversion with the factor given in the question."""
    source, singular, target, factor = rng.choice(_CONVERSIONS)
    amount = round(rng.uniform(100, 99_999), rng.choice((0, 1, 2)))
    amount_text = fmt_number(amount)
    question = (f"Convert {amount_text} {source} to {target} (1 {singular} = {factor} {target}). "
                "Round to 2 decimal places.")  # fmt: skip
    code = f"final_answer(round({amount_text} * {factor}, 2))"
    return Draft(question, fmt_number(float(amount_text) * factor, 2), (code,))


@template(0, TEMPLATES)
def seconds_in(world: World, rng: random.Random) -> Draft:
    """Seconds in a duration given in days, hours, minutes and seconds."""
    d, h, m, s = rng.randint(2, 400), rng.randint(1, 23), rng.randint(1, 59), rng.randint(1, 59)
    question = f"How many seconds are there in {d} days, {h} hours, {m} minutes and {s} seconds?"
    code = f"final_answer({d} * 86400 + {h} * 3600 + {m} * 60 + {s})"
    return Draft(question, str(d * 86400 + h * 3600 + m * 60 + s), (code,))


@template(0, TEMPLATES)
def column_total(world: World, rng: random.Random) -> Draft:
    """The total of one column of a small attached csv, json or xlsx file."""
    stem, label, column = rng.choice((
        ("donations", "donor", "Amount"), ("readings", "station", "Rainfall (mm)"),
        ("sales", "shop", "Units"), ("expenses", "department", "Cost"),
    ))  # fmt: skip
    fmt = rng.choice(("csv", "json", "xlsx"))
    names = sorted({word(rng, 2, 2) for _ in range(rng.randint(8, 16))})
    values = [rng.randint(100, 99_999) for _ in names]
    table = Table((label.capitalize(), column), tuple(zip(names, values, strict=True)))
    name = f"{stem}.{fmt}"
    owner = f"{word(rng, 2, 2)} {rng.choice(('Club', 'Society', 'Cooperative', 'League', 'Trust'))}"
    question = pick(rng, [
        f"The attached file {name} lists the {stem} of the {owner}. What is the total of its '{column}' column?",
        f"What is the sum of the '{column}' values in the attached file {name} (the {stem} of the {owner})?",
    ])  # fmt: skip
    if fmt == "json":
        code = (f"import json\nwith open({name!r}) as f:\n"
                f"    final_answer(sum(r[{column!r}] for r in json.load(f)['records']))")  # fmt: skip
    else:
        reader = "read_csv" if fmt == "csv" else "read_excel"
        code = f"import pandas as pd\nfinal_answer(int(pd.{reader}({name!r})[{column!r}].sum()))"
    document = table_document(f"{owner}: {stem} by {label}", table)
    return Draft(question, str(sum(values)), (code,), (Attachment(name, document),))


@template(0, TEMPLATES)
def largest_row(world: World, rng: random.Random) -> Draft:
    """The row with the largest value in a small attached file."""
    fmt = rng.choice(("csv", "json", "xlsx"))
    names = sorted({word(rng, 2, 3) for _ in range(rng.randint(8, 16))})
    values = rng.sample(range(1_000, 999_999), len(names))
    best = names[values.index(max(values))]
    name = f"scores.{fmt}"
    table = Table(("Player", "Score"), tuple(zip(names, values, strict=True)))
    contest = f"{word(rng, 2, 2)} {rng.choice(('Open', 'Cup', 'League', 'Challenge'))}"
    question = f"The attached file {name} holds the scores of the {contest}. Which player has the highest score?"
    if fmt == "json":
        code = (f"import json\nwith open({name!r}) as f:\n    rows = json.load(f)['records']\n"
                "final_answer(max(rows, key=lambda r: r['Score'])['Player'])")  # fmt: skip
    else:
        reader = "read_csv" if fmt == "csv" else "read_excel"
        code = f"import pandas as pd\ndf = pd.{reader}({name!r})\nfinal_answer(df.loc[df['Score'].idxmax(), 'Player'])"
    return Draft(question, best, (code,), (Attachment(name, table_document(f"{contest} scores", table)),))
