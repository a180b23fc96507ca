"""Render a :class:`~toolr1_env.suite.world.World` as wiki pages (title, URL, plain text).

Every entity gets one page at ``https://wiki.toolr1/<Title_with_underscores>``. A page is prose (with a
distractor number or two, as real pages have) followed by a ``Facts`` block of ``Key: value`` lines, then
lists of related pages with their URLs. The ``Facts`` keys are stable, so code can read a fact with
``re.search(r"^Population: (.+)$", page, re.M)``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from toolr1_env.suite.world import City, Country, Event, Organisation, Person, Product, World

BASE_URL = "https://wiki.toolr1/"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")  # fmt: skip


@dataclass(frozen=True)
class Page:
    """One wiki page: ``kind`` is the entity kind (``city``, ``person``, ...)."""

    url: str
    title: str
    kind: str
    text: str


def url_for(title: str) -> str:
    """The wiki URL of the page titled ``title``."""
    return BASE_URL + title.replace(" ", "_")


def long_date(day: dt.date) -> str:
    """A date as pages write it, e.g. ``"5 April 2019"`` (parse with ``strptime(s, "%d %B %Y")``)."""
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def _links(heading: str, titles: list[str], notes: list[str] | None = None) -> list[str]:
    if not titles:
        return []
    notes = notes or [""] * len(titles)
    return ["", heading] + [f"- {t}{n} <{url_for(t)}>" for t, n in zip(titles, notes, strict=True)]


def _facts(pairs: list[tuple[str, object]]) -> list[str]:
    return ["", "Facts"] + [f"{key}: {value}" for key, value in pairs if value not in ("", None)]


def _page(title: str, kind: str, prose: list[str], body: list[str]) -> Page:
    text = "\n".join([title, "", " ".join(prose), *body]) + "\n"
    return Page(url=url_for(title), title=title, kind=kind, text=text)


def country_page(world: World, c: Country, rng: random.Random) -> Page:
    """The page of a country (capital, currency and its US dollar exchange rate, its cities)."""
    cities = sorted((x for x in world.cities.values() if x.country == c.name), key=lambda x: x.name)
    prose = [
        f"{c.name} is a country whose capital is {c.capital}.",
        f"It became independent in {c.independence} and its currency is the {c.currency} ({c.currency_code}).",
        f"In {rng.randint(1990, 2015)} one US dollar bought {round(c.usd_rate * rng.uniform(0.5, 0.9), 2)} "
        f"{c.currency}; the rate has changed since.",
    ]
    facts = [("Capital", c.capital), ("Independence", c.independence),
             ("Currency", f"{c.currency} ({c.currency_code})"),
             ("Exchange rate", f"1 USD = {c.usd_rate} {c.currency}")]  # fmt: skip
    body = _facts(facts) + _links("Cities", [x.name for x in cities])
    return _page(c.name, "country", prose, body)


def city_page(world: World, c: City, rng: random.Random) -> Page:
    """The page of a city (population, area, founding year, mayor, organisations and events there)."""
    census_year = rng.randint(1900, 1990)
    prose = [
        f"{c.name} is a city in {c.country}, founded in {c.founded}.",
        f"It lies {c.elevation_m} metres above sea level and its mayor is {c.mayor}.",
        f"A census in {census_year} counted {int(c.population * rng.uniform(0.3, 0.8)):,} residents.",
    ]
    if world.countries[c.country].capital == c.name:
        prose.append(f"It is the capital of {c.country}.")
    facts = [("Country", c.country), ("Population", f"{c.population:,}"), ("Area", f"{c.area_km2} km2"),
             ("Elevation", f"{c.elevation_m} m"), ("Founded", c.founded), ("Mayor", c.mayor)]  # fmt: skip
    orgs = sorted(o.name for o in world.orgs.values() if o.headquarters == c.name)
    events = sorted((e for e in world.events.values() if e.city == c.name), key=lambda e: e.start)
    body = (
        _facts(facts)
        + _links("Organisations based here", orgs)
        + _links("Events held here", [e.name for e in events])
        + _links("See also", [c.country, c.mayor])
    )
    return _page(c.name, "city", prose, body)


def person_page(world: World, p: Person, rng: random.Random) -> Page:
    """The page of a person (birth date and place, occupation, employer, position, height)."""
    first = p.name.split(" ")[0]
    prose = [f"{p.name} (born {long_date(p.born)} in {p.birthplace}) is a {p.occupation}."]
    if p.employer:
        prose.append(f"Since {p.joined}, {first} has worked at {p.employer} as {p.role}.")
    else:
        prose.append(f"{first} serves as {p.role}.")
    prose.append(f"{first} moved house {rng.randint(2, 9)} times before turning {rng.randint(25, 40)}.")
    won = sorted((e for e in world.events.values() if e.winner == p.name), key=lambda e: e.start)
    facts = [("Born", long_date(p.born)), ("Birthplace", p.birthplace), ("Occupation", p.occupation),
             ("Employer", p.employer), ("Position", p.role), ("Joined employer", p.joined or ""),
             ("Height", f"{p.height_cm} cm")]  # fmt: skip
    body = (
        _facts(facts)
        + _links("Victories", [e.name for e in won])
        + _links("See also", [p.birthplace] + ([p.employer] if p.employer else []))
    )
    return _page(p.name, "person", prose, body)


def org_page(world: World, o: Organisation, rng: random.Random) -> Page:
    """The page of a company or institute (founding, headquarters, people, size, revenue, products)."""
    country = world.country_of_org(o.name)
    what = f"{o.industry} company" if o.kind == "company" else "cultural institute"
    past_year = rng.randint(o.founded, 2023)
    prose = [
        f"{o.name} is a {what} headquartered in {o.headquarters}, {country.name}.",
        f"It was founded in {o.founded} by {o.founder}.",
        f"In {past_year} it employed {max(1, int(o.employees * rng.uniform(0.2, 0.9))):,} people.",
    ]
    leader_title = "Chief Executive" if o.kind == "company" else "Director"
    facts: list[tuple[str, object]] = [
        ("Type", "Company" if o.kind == "company" else "Institute"), ("Industry", o.industry),
        ("Founded", o.founded), ("Headquarters", o.headquarters), ("Founder", o.founder),
        (leader_title, o.leader), ("Employees", f"{o.employees:,}"),
    ]  # fmt: skip
    if o.kind == "company":
        facts.append(("Revenue", f"{o.revenue_m:,.1f} million {country.currency}"))
    products = world.products_of(o.name)
    events = sorted((e for e in world.events.values() if e.organiser == o.name), key=lambda e: e.start)
    body = (
        _facts(facts)
        + _links("Products", [p.name for p in products], [f" ({p.category}, {p.launched.year})" for p in products])
        + _links("Events organised", [e.name for e in events])
        + _links("See also", [o.headquarters, o.founder, o.leader])
    )
    return _page(o.name, "organisation", prose, body)


def product_page(world: World, p: Product, rng: random.Random) -> Page:
    """The page of a product (maker, launch date, price in the maker's currency, weight, units sold)."""
    currency = world.country_of_org(p.maker).currency
    prose = [
        f"The {p.name} is a {p.category} made by {p.maker}, launched on {long_date(p.launched)}.",
        f"An early prototype weighed {round(p.weight_kg * rng.uniform(1.1, 1.6), 2)} kg.",
    ]
    facts = [("Maker", p.maker), ("Category", p.category), ("Launched", long_date(p.launched)),
             ("Price", f"{p.price:,.2f} {currency}"), ("Weight", f"{p.weight_kg} kg"),
             ("Units sold", f"{p.units_sold:,}")]  # fmt: skip
    return _page(p.name, "product", prose, _facts(facts) + _links("See also", [p.maker]))


def event_page(world: World, e: Event, rng: random.Random) -> Page:
    """The page of an event (city, start and end dates, attendance, organiser, winner)."""
    prose = [
        f"The {e.name} was a {e.kind.lower()} held in {e.city} "
        + (f"from {long_date(e.start)} to {long_date(e.end)}." if e.end > e.start else f"on {long_date(e.start)}."),
        f"It was organised by {e.organiser} and drew {e.attendance:,} visitors.",
        f"Tickets went on sale {rng.randint(20, 120)} days in advance.",
    ]
    if e.winner:
        prose.append(f"The winner was {e.winner}.")
    facts = [("Type", e.kind), ("City", e.city), ("Start date", long_date(e.start)),
             ("End date", long_date(e.end)), ("Attendance", f"{e.attendance:,}"), ("Organiser", e.organiser),
             ("Winner", e.winner)]  # fmt: skip
    see = [e.city, e.organiser] + ([e.winner] if e.winner else [])
    return _page(e.name, "event", prose, _facts(facts) + _links("See also", see))


def render_pages(world: World) -> list[Page]:
    """All pages of ``world`` in a fixed order (countries, cities, people, organisations, products, events)."""
    rng = random.Random(f"pages:{world.seed}")
    pages = [country_page(world, c, rng) for c in world.countries.values()]
    pages += [city_page(world, c, rng) for c in world.cities.values()]
    pages += [person_page(world, p, rng) for p in world.people.values()]
    pages += [org_page(world, o, rng) for o in world.orgs.values()]
    pages += [product_page(world, p, rng) for p in world.products.values()]
    pages += [event_page(world, e, rng) for e in world.events.values()]
    return pages
