"""Level 1: a few steps and one source (one wiki page, or one attached file), little computation.

Fact look-ups on one page (a city's population, a product's maker, ...), a small computation on one
page (population density, an event's length, a person's age on a date), or filtering and summing one
attached table.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from toolr1_env.suite.files import Document, Table
from toolr1_env.suite.generators.base import (
    WEB_HELPERS,
    Attachment,
    Draft,
    Skip,
    Template,
    file_name,
    first_look,
    fmt_number,
    load_rows,
    pick,
    table_document,
    template,
)
from toolr1_env.suite.names import word
from toolr1_env.suite.pages import long_date
from toolr1_env.suite.world import INDUSTRIES, World, random_date

TEMPLATES: list[Template] = []


@dataclass(frozen=True)
class FactSpec:
    """One fact of one entity kind: how to ask it, its answer, and the code that reads it from ``page``."""

    questions: tuple[str, ...]
    answer: Callable[[Any, World], str]
    read: str
    applies: Callable[[Any], bool] = lambda entity: True


def _iso(day: dt.date) -> str:
    return day.isoformat()


CITY_FACTS = (
    FactSpec(("What is the population of {name}?", "According to the wiki, how many people live in {name}?"),
             lambda c, w: str(c.population), 'int(number(fact(page, "Population")))'),
    FactSpec(("In what year was the city of {name} founded?", "When was {name} founded? Give the year."),
             lambda c, w: str(c.founded), 'int(fact(page, "Founded"))'),
    FactSpec(("How many metres above sea level does {name} lie?",),
             lambda c, w: str(c.elevation_m), 'int(number(fact(page, "Elevation")))'),
    FactSpec(("What is the area of {name} in square kilometres?",),
             lambda c, w: fmt_number(c.area_km2), 'number(fact(page, "Area"))'),
    FactSpec(("Who is the mayor of {name}?", "Give the full name of the mayor of {name}."),
             lambda c, w: c.mayor, 'fact(page, "Mayor")'),
)  # fmt: skip
PERSON_FACTS = (
    FactSpec(("In which year was {name} born?",), lambda p, w: str(p.born.year), 'day(fact(page, "Born")).year'),
    FactSpec(("On what date was {name} born? Answer in YYYY-MM-DD format.",),
             lambda p, w: _iso(p.born), 'day(fact(page, "Born")).isoformat()'),
    FactSpec(("In which city was {name} born?", "What is the birthplace of {name}?"),
             lambda p, w: p.birthplace, 'fact(page, "Birthplace")'),
    FactSpec(("Which organisation does {name} work for?",), lambda p, w: p.employer, 'fact(page, "Employer")',
             lambda p: bool(p.employer)),
    FactSpec(("How tall is {name}, in centimetres?",), lambda p, w: str(p.height_cm),
             'int(number(fact(page, "Height")))'),
)  # fmt: skip
ORG_FACTS = (
    FactSpec(("In what year was {name} founded?",), lambda o, w: str(o.founded), 'int(fact(page, "Founded"))'),
    FactSpec(("In which city does {name} have its headquarters?", "Where is {name} headquartered?"),
             lambda o, w: o.headquarters, 'fact(page, "Headquarters")'),
    FactSpec(("Who founded {name}?",), lambda o, w: o.founder, 'fact(page, "Founder")'),
    FactSpec(("How many employees does {name} have?",), lambda o, w: str(o.employees),
             'int(number(fact(page, "Employees")))'),
    FactSpec(("Who is the chief executive of {name}?",), lambda o, w: o.leader, 'fact(page, "Chief Executive")',
             lambda o: o.kind == "company"),
    FactSpec(("Who is the director of {name}?",), lambda o, w: o.leader, 'fact(page, "Director")',
             lambda o: o.kind == "institute"),
    FactSpec(("What is the revenue of {name}, in millions of its country's currency?",),
             lambda o, w: fmt_number(o.revenue_m), 'number(fact(page, "Revenue"))', lambda o: o.kind == "company"),
)  # fmt: skip
PRODUCT_FACTS = (
    FactSpec(("Which company makes the {name}?",), lambda p, w: p.maker, 'fact(page, "Maker")'),
    FactSpec(("In which year was the {name} launched?",), lambda p, w: str(p.launched.year),
             'day(fact(page, "Launched")).year'),
    FactSpec(("On what date was the {name} launched? Answer in YYYY-MM-DD format.",),
             lambda p, w: _iso(p.launched), 'day(fact(page, "Launched")).isoformat()'),
    FactSpec(("How many units of the {name} have been sold?",), lambda p, w: str(p.units_sold),
             'int(number(fact(page, "Units sold")))'),
    FactSpec(("How much does the {name} weigh, in kilograms?",), lambda p, w: fmt_number(p.weight_kg),
             'number(fact(page, "Weight"))'),
    FactSpec(("What is the price of the {name} in its maker's currency? Give the number only.",),
             lambda p, w: fmt_number(p.price), 'number(fact(page, "Price"))'),
)  # fmt: skip
EVENT_FACTS = (
    FactSpec(("In which city was the {name} held?",), lambda e, w: e.city, 'fact(page, "City")'),
    FactSpec(("How many visitors did the {name} draw?", "What was the attendance of the {name}?"),
             lambda e, w: str(e.attendance), 'int(number(fact(page, "Attendance")))'),
    FactSpec(("Which organisation organised the {name}?",), lambda e, w: e.organiser, 'fact(page, "Organiser")'),
    FactSpec(("Who won the {name}?",), lambda e, w: e.winner, 'fact(page, "Winner")', lambda e: bool(e.winner)),
    FactSpec(("On what date did the {name} start? Answer in YYYY-MM-DD format.",),
             lambda e, w: _iso(e.start), 'day(fact(page, "Start date")).isoformat()'),
)  # fmt: skip
COUNTRY_FACTS = (
    FactSpec(("What is the capital of {name}?",), lambda c, w: c.capital, 'fact(page, "Capital")'),
    FactSpec(("What is the three-letter currency code of {name}?",), lambda c, w: c.currency_code,
             're.search(r"\\((\\w+)\\)", fact(page, "Currency")).group(1)'),
    FactSpec(("According to the wiki, how many units of {name}'s currency does one US dollar buy?",),
             lambda c, w: fmt_number(c.usd_rate), 'number(fact(page, "Exchange rate").split("=")[1])'),
    FactSpec(("In what year did {name} become independent?",), lambda c, w: str(c.independence),
             'int(fact(page, "Independence"))'),
)  # fmt: skip


def _fact_draft(world: World, rng: random.Random, entities: list[Any], specs: tuple[FactSpec, ...]) -> Draft:
    spec = rng.choice(specs)
    candidates = [e for e in entities if spec.applies(e)]
    if not candidates:
        raise Skip("no entity has this fact")
    entity = rng.choice(candidates)
    question = pick(rng, spec.questions).format(name=entity.name)
    steps = (
        first_look(entity.name),
        f"{WEB_HELPERS}\n\n\npage = find_page({entity.name!r})\nprint(page)",
        f"final_answer({spec.read})",
    )
    return Draft(question, spec.answer(entity, world), steps)


@template(1, TEMPLATES)
def city_fact(world: World, rng: random.Random) -> Draft:
    """One fact from a city's page."""
    return _fact_draft(world, rng, list(world.cities.values()), CITY_FACTS)


@template(1, TEMPLATES)
def person_fact(world: World, rng: random.Random) -> Draft:
    """One fact from a person's page."""
    return _fact_draft(world, rng, list(world.people.values()), PERSON_FACTS)


@template(1, TEMPLATES)
def organisation_fact(world: World, rng: random.Random) -> Draft:
    """One fact from an organisation's page."""
    return _fact_draft(world, rng, list(world.orgs.values()), ORG_FACTS)


@template(1, TEMPLATES)
def product_fact(world: World, rng: random.Random) -> Draft:
    """One fact from a product's page."""
    return _fact_draft(world, rng, list(world.products.values()), PRODUCT_FACTS)


@template(1, TEMPLATES)
def event_fact(world: World, rng: random.Random) -> Draft:
    """One fact from an event's page."""
    return _fact_draft(world, rng, list(world.events.values()), EVENT_FACTS)


@template(1, TEMPLATES)
def country_fact(world: World, rng: random.Random) -> Draft:
    """One fact from a country's page."""
    return _fact_draft(world, rng, list(world.countries.values()), COUNTRY_FACTS)


@template(1, TEMPLATES)
def population_density(world: World, rng: random.Random) -> Draft:
    """A city's population per square kilometre (one page, one division)."""
    city = rng.choice(list(world.cities.values()))
    question = pick(rng, [
        f"What is the population density of {city.name} in people per square kilometre? Round to the nearest "
        "whole number.",
        f"How many inhabitants per km2 does {city.name} have, rounded to the nearest integer?",
    ])  # fmt: skip
    steps = (
        first_look(city.name),
        f"{WEB_HELPERS}\n\n\npage = find_page({city.name!r})\n"
        'population = number(fact(page, "Population"))\narea = number(fact(page, "Area"))\nprint(population, area)',
        "final_answer(round(population / area))",
    )
    return Draft(question, str(round(city.population / city.area_km2)), steps)


@template(1, TEMPLATES)
def event_length(world: World, rng: random.Random) -> Draft:
    """How many days an event lasted, first and last day included."""
    events = [e for e in world.events.values() if e.end > e.start]
    if not events:
        raise Skip("no multi-day event")
    event = rng.choice(events)
    question = f"How many days did the {event.name} last, counting both its first and its last day?"
    steps = (
        first_look(event.name),
        f"{WEB_HELPERS}\n\n\npage = find_page({event.name!r})\n"
        'start, end = day(fact(page, "Start date")), day(fact(page, "End date"))\nprint(start, end)',
        "final_answer((end - start).days + 1)",
    )
    return Draft(question, str((event.end - event.start).days + 1), steps)


@template(1, TEMPLATES)
def age_on_date(world: World, rng: random.Random) -> Draft:
    """A person's age in whole years on a given date."""
    person = rng.choice(list(world.people.values()))
    when = random_date(rng, person.born + dt.timedelta(days=3650), dt.date(2024, 12, 31))
    age = when.year - person.born.year - ((when.month, when.day) < (person.born.month, person.born.day))
    question = f"How old was {person.name} (in completed years) on {long_date(when)}?"
    steps = (
        first_look(person.name),
        f"{WEB_HELPERS}\n\n\npage = find_page({person.name!r})\nborn = day(fact(page, 'Born'))\nprint(born)",
        f"when = date({when.year}, {when.month}, {when.day})\n"
        "final_answer(when.year - born.year - ((when.month, when.day) < (born.month, born.day)))",
    )
    return Draft(question, str(age), steps)


@template(1, TEMPLATES)
def inventory_file(world: World, rng: random.Random) -> Draft:
    """A question about one attached inventory table (argmax, filtered sum, count, total value)."""
    industry = rng.choice(list(INDUSTRIES))
    categories = rng.sample(INDUSTRIES[industry], 3)
    items = sorted({f"{word(rng, 2, 2)} {rng.choice('KMRTXZ')}{rng.randint(2, 99)}" for _ in range(rng.randint(9, 16))})
    stock = rng.sample(range(3, 5000), len(items))
    prices = [round(rng.uniform(4, 700), 2) for _ in items]
    cats = [rng.choice(categories) for _ in items]
    table = Table(("Item", "Category", "Stock", "Unit price"), tuple(zip(items, cats, stock, prices, strict=True)))
    name = file_name(rng, ("inventory", "stock_list", "warehouse"))
    load = load_rows(name)
    place = f"the attached file {name} (the inventory of the {word(rng, 2, 2)} warehouse)"
    kind = rng.randrange(4)
    if kind == 0:
        question = f"Which item in {place} has the highest stock?"
        answer = items[stock.index(max(stock))]
        code = "final_answer(max(rows, key=lambda r: int(r['Stock']))['Item'])"
    elif kind == 1:
        category = rng.choice(sorted(set(cats)))
        question = f"What is the total stock of the items in the '{category}' category in {place}?"
        answer = str(sum(s for s, c in zip(stock, cats, strict=True) if c == category))
        code = f"final_answer(sum(int(r['Stock']) for r in rows if r['Category'] == {category!r}))"
    elif kind == 2:
        threshold = rng.choice(sorted(prices)[2:-2])
        question = f"How many items in {place} have a unit price above {threshold}?"
        answer = str(sum(p > threshold for p in prices))
        code = f"final_answer(sum(float(r['Unit price']) > {threshold} for r in rows))"
    else:
        question = (
            f"What is the total value (stock times unit price) of all items in {place}? Round to 2 decimal places."
        )
        answer = fmt_number(sum(s * p for s, p in zip(stock, prices, strict=True)), 2)
        code = "final_answer(round(sum(int(r['Stock']) * float(r['Unit price']) for r in rows), 2))"
    document = table_document("Inventory", table, ("Stock counted at the end of the quarter.",))
    return Draft(question, answer, (load, code), (Attachment(name, document),))


@template(1, TEMPLATES)
def schedule_file(world: World, rng: random.Random) -> Draft:
    """Days between the earliest and latest date of an attached schedule."""
    start = random_date(rng, dt.date(2000, 1, 1), dt.date(2030, 1, 1))
    dates = sorted({start + dt.timedelta(days=rng.randint(0, 900)) for _ in range(rng.randint(6, 12))})
    if len(dates) < 3:
        raise Skip("too few dates")
    topics = [f"{word(rng, 2, 2)} review" for _ in dates]
    order = rng.sample(range(len(dates)), len(dates))
    table = Table(("Meeting", "Date"), tuple((topics[i], dates[i].isoformat()) for i in order))
    name = file_name(rng, ("meetings", "schedule", "calendar"))
    project = f"{word(rng, 2, 2)} project"
    question = pick(rng, [
        f"How many days are there between the earliest and the latest meeting of the {project} listed in the "
        f"attached file {name}?",
        f"The attached file {name} lists the meetings of the {project}. How many days separate the first meeting "
        "from the last one?",
    ])  # fmt: skip
    code = (
        "from datetime import date\n"
        "dates = [date.fromisoformat(str(r['Date'])[:10]) for r in rows]\n"
        "final_answer((max(dates) - min(dates)).days)"
    )
    document = table_document(f"Meeting schedule of the {project}", table, ("Dates are given as YYYY-MM-DD.",))
    return Draft(question, str((dates[-1] - dates[0]).days), (load_rows(name), code), (Attachment(name, document),))


@template(1, TEMPLATES)
def memo_expenses(world: World, rng: random.Random) -> Draft:
    """The total of the amounts quoted in the prose of an attached memo (docx, pdf or txt)."""
    team = f"{word(rng, 2, 2)} team"
    items = rng.sample(("travel", "catering", "printing", "software licences", "room hire", "courier services",
                        "training", "office supplies"), rng.randint(3, 5))  # fmt: skip
    amounts = [round(rng.uniform(40, 25_000), 2) for _ in items]
    sentences = [
        f"The {item} bill for the quarter came to {amount:,.2f} credits."
        for item, amount in zip(items, amounts, strict=True)
    ]
    sentences.insert(rng.randint(0, len(sentences)), f"The team now has {rng.randint(4, 40)} members.")
    sentences.append(
        f"Please send questions before {long_date(random_date(rng, dt.date(2015, 1, 1), dt.date(2030, 1, 1)))}."
    )
    name = file_name(rng, ("memo", "quarterly_note", "expenses_memo"), ("docx", "pdf", "txt"))
    document = Document(title=f"Memo to the {team}", paragraphs=(" ".join(sentences[:3]), " ".join(sentences[3:])))
    question = (f"What is the total of all the amounts in credits mentioned in the attached memo {name} (sent to "
                f"the {team})? Round to 2 decimal places.")  # fmt: skip
    steps = (
        f"text = inspect_file({name!r})\nprint(text)",
        "import re\n"
        "amounts = [float(x.replace(',', '')) for x in re.findall(r'([\\d,]+\\.\\d\\d)\\s+credits', text)]\n"
        "print(amounts)\nfinal_answer(round(sum(amounts), 2))",
    )
    return Draft(question, fmt_number(sum(amounts), 2), steps, (Attachment(name, document),))
