"""The fictional world: countries, cities, people, organisations, products and events, built from a seed.

Everything is drawn from one :class:`random.Random` seeded with ``"world:<seed>"`` (string seeds hash with
SHA-512, so a world is the same in every process and on every machine). Facts are consistent with each
other: a founder is born decades before the organisation is founded, a product launches after its maker
is founded, a race winner is an adult on race day. The world is plain data; :mod:`.pages` renders it as
wiki pages and :mod:`.search` indexes those pages.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field, replace

from toolr1_env.suite.names import ORG_SUFFIXES, NameBook

#: Industry -> the product categories its companies make.
INDUSTRIES: dict[str, tuple[str, ...]] = {
    "consumer electronics": ("headphones", "tablet", "smart speaker", "camera", "drone"),
    "kitchenware": ("kettle", "blender", "coffee grinder", "toaster", "rice cooker"),
    "bicycles": ("road bike", "cargo bike", "folding bike", "bike helmet", "e-bike"),
    "outdoor gear": ("tent", "backpack", "sleeping bag", "camping stove", "kayak"),
    "musical instruments": ("synthesizer", "violin", "digital piano", "drum machine", "guitar amplifier"),
    "toys": ("board game", "puzzle", "model train", "building set", "kite"),
}
#: Industry -> words that may end its companies' names (besides the generic ones).
INDUSTRY_SUFFIXES: dict[str, tuple[str, ...]] = {
    "consumer electronics": ("Electronics", "Audio", "Systems", "Labs"),
    "kitchenware": ("Kitchenware", "Home", "Housewares"),
    "bicycles": ("Cycles", "Bikes", "Mobility"),
    "outdoor gear": ("Outdoor", "Outfitters", "Expeditions"),
    "musical instruments": ("Instruments", "Music", "Sound"),
    "toys": ("Toys", "Games", "Playthings"),
}
INSTITUTE_TOPICS = ("Glass", "Maps", "Clocks", "Textiles", "Astronomy", "Ceramics", "Botany", "Printing")
OCCUPATIONS = ("engineer", "designer", "chemist", "economist", "architect", "accountant", "historian",
               "software developer", "marketing manager", "physician", "lawyer", "photographer")  # fmt: skip
ROLES = ("Engineer", "Analyst", "Designer", "Manager", "Researcher", "Technician", "Curator", "Consultant")
#: Event kinds; the competitive ones have a winner.
EVENT_KINDS = ("Marathon", "Chess Open", "Regatta", "Festival", "Trade Fair", "Film Festival")
COMPETITIVE_KINDS = frozenset({"Marathon", "Chess Open", "Regatta"})
#: The last day the world knows about; ages and "as of" questions use dates up to here.
WORLD_END = dt.date(2024, 12, 31)


@dataclass(frozen=True)
class WorldSize:
    """How many entities of each kind a world holds."""

    countries: int = 6
    cities: int = 36
    companies: int = 48
    institutes: int = 10
    extra_people: int = 60
    products: int = 110
    events: int = 50


#: Evaluation worlds (validation, test, ...) and the larger training world.
EVAL_SIZE = WorldSize()
TRAIN_SIZE = WorldSize(countries=10, cities=110, companies=150, institutes=30, extra_people=200,
                       products=360, events=160)  # fmt: skip


@dataclass(frozen=True)
class Country:
    """A country with its own currency (``usd_rate`` units of it buy one US dollar)."""

    name: str
    currency: str
    currency_code: str
    usd_rate: float
    independence: int
    capital: str = ""


@dataclass(frozen=True)
class City:
    """A city; ``area_km2`` has one decimal, ``mayor`` is a person's name."""

    name: str
    country: str
    population: int
    area_km2: float
    founded: int
    elevation_m: int
    mayor: str = ""


@dataclass(frozen=True)
class Person:
    """A person; ``employer`` is an organisation name or empty (mayors)."""

    name: str
    born: dt.date
    birthplace: str
    occupation: str
    employer: str = ""
    role: str = ""
    joined: int = 0
    height_cm: int = 170


@dataclass(frozen=True)
class Organisation:
    """A company (``kind == "company"``, with revenue in millions of its country's currency) or institute."""

    name: str
    kind: str
    industry: str
    founded: int
    headquarters: str
    founder: str
    leader: str
    employees: int
    revenue_m: float = 0.0


@dataclass(frozen=True)
class Product:
    """A product; ``price`` is in the maker's country's currency, two decimals."""

    name: str
    maker: str
    category: str
    launched: dt.date
    price: float
    weight_kg: float
    units_sold: int


@dataclass(frozen=True)
class Event:
    """A dated event in a city; competitive kinds have a ``winner`` (a person's name)."""

    name: str
    kind: str
    city: str
    start: dt.date
    end: dt.date
    attendance: int
    organiser: str
    winner: str = ""


@dataclass
class World:
    """All entities of one world, each kind keyed by its (world-unique) name, in creation order."""

    seed: int
    countries: dict[str, Country] = field(default_factory=dict)
    cities: dict[str, City] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    orgs: dict[str, Organisation] = field(default_factory=dict)
    products: dict[str, Product] = field(default_factory=dict)
    events: dict[str, Event] = field(default_factory=dict)

    def all_names(self) -> set[str]:
        """Every entity name in the world."""
        out: set[str] = set()
        for table in (self.countries, self.cities, self.people, self.orgs, self.products, self.events):
            out.update(table)
        out.update(c.currency for c in self.countries.values())
        out.update(e.split(" ")[0] for e in self.events)
        return out

    def country_of_org(self, org: str) -> Country:
        """The country of an organisation's headquarters."""
        return self.countries[self.cities[self.orgs[org].headquarters].country]

    def companies(self) -> list[Organisation]:
        """Organisations of kind ``company``."""
        return [o for o in self.orgs.values() if o.kind == "company"]

    def products_of(self, org: str) -> list[Product]:
        """Products made by ``org``, in launch order."""
        return sorted((p for p in self.products.values() if p.maker == org), key=lambda p: p.launched)

    def employed(self) -> list[Person]:
        """People with an employer."""
        return [p for p in self.people.values() if p.employer]


def random_date(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    """A uniform random date in ``[start, end]``."""
    return start + dt.timedelta(days=rng.randint(0, (end - start).days))


def _log_uniform_int(rng: random.Random, low: int, high: int) -> int:
    return int(round(low * (high / low) ** rng.random()))


def build_world(seed: int, size: WorldSize = EVAL_SIZE, reserved: frozenset[str] = frozenset()) -> World:
    """Build the world for ``seed``; same seed, size and reserved names give the same world.

    Args:
        seed: the world seed.
        size: how many entities of each kind.
        reserved: lowercase names never to use (names of other worlds).
    """
    rng = random.Random(f"world:{seed}")
    book = NameBook(rng, reserved)
    world = World(seed=seed)

    codes: set[str] = set()
    for _ in range(size.countries):
        currency = book.currency()
        code = currency[:3].upper()
        while code in codes:
            code = code[:2] + rng.choice("BCDFGHJKLMNPRSTVWXZ")
        codes.add(code)
        country = Country(
            name=book.country(),
            currency=currency,
            currency_code=code,
            usd_rate=round(rng.uniform(0.3, 60.0), 2),
            independence=rng.randint(1800, 1995),
        )
        world.countries[country.name] = country
    country_names = list(world.countries)

    for i in range(size.cities):
        city = City(
            name=book.city(),
            country=country_names[i % len(country_names)] if i < len(country_names) else rng.choice(country_names),
            population=_log_uniform_int(rng, 6_000, 3_500_000),
            area_km2=round(rng.uniform(12.0, 950.0), 1),
            founded=rng.randint(850, 1950),
            elevation_m=rng.randint(2, 2400),
        )
        world.cities[city.name] = city
    city_names = list(world.cities)
    for country in world.countries.values():
        biggest = max((c for c in world.cities.values() if c.country == country.name), key=lambda c: c.population)
        world.countries[country.name] = replace(country, capital=biggest.name)

    def new_person(born_from: dt.date, born_to: dt.date, **kw: object) -> Person:
        fields: dict[str, object] = {
            "name": book.person(),
            "born": random_date(rng, born_from, born_to),
            "birthplace": rng.choice(city_names),
            "occupation": rng.choice(OCCUPATIONS),
            "height_cm": rng.randint(150, 200),
        }
        person = Person(**{**fields, **kw})  # type: ignore[arg-type]
        world.people[person.name] = person
        return person

    for city in list(world.cities.values()):
        mayor = new_person(dt.date(1945, 1, 1), dt.date(1988, 12, 31), occupation="politician",
                           role=f"Mayor of {city.name}")  # fmt: skip
        world.cities[city.name] = replace(city, mayor=mayor.name)

    industries = list(INDUSTRIES)
    kinds = ["company"] * size.companies + ["institute"] * size.institutes
    rng.shuffle(kinds)
    for kind in kinds:
        founded = rng.randint(1950, 2018)
        if kind == "company":
            industry = rng.choice(industries)
            name = book.company(INDUSTRY_SUFFIXES[industry] + ORG_SUFFIXES)
            employees = _log_uniform_int(rng, 15, 90_000)
        else:
            industry = "culture"
            name = book.institute(rng.choice(INSTITUTE_TOPICS))
            employees = _log_uniform_int(rng, 8, 900)
        founder_birth = dt.date(founded - rng.randint(25, 55), 1, 1)
        founder = new_person(founder_birth, dt.date(founder_birth.year, 12, 31), employer=name,
                             role="Founder", joined=founded)  # fmt: skip
        leader_joined = rng.randint(founded, 2022)
        leader = new_person(dt.date(1950, 1, 1), dt.date(1990, 12, 31), employer=name,
                            role="Chief Executive" if kind == "company" else "Director",
                            joined=max(leader_joined, 1972))  # fmt: skip
        if leader.born.year + 22 > leader.joined:
            world.people[leader.name] = replace(leader, joined=leader.born.year + rng.randint(22, 34))
        headquarters = rng.choice(city_names)
        rate = world.countries[world.cities[headquarters].country].usd_rate
        # Revenue is reported in local currency: 40k-400k US dollars per employee, times the exchange rate.
        revenue = round(employees * rng.uniform(0.04, 0.4) * rate, 1) if kind == "company" else 0.0
        org = Organisation(
            name=name,
            kind=kind,
            industry=industry,
            founded=founded,
            headquarters=headquarters,
            founder=founder.name,
            leader=leader.name,
            employees=employees,
            revenue_m=max(revenue, 0.1) if kind == "company" else 0.0,
        )
        world.orgs[org.name] = org
    org_names = list(world.orgs)

    for _ in range(size.extra_people):
        employer = rng.choice(org_names)
        person = new_person(dt.date(1950, 1, 1), dt.date(2000, 12, 31), employer=employer, role=rng.choice(ROLES))
        earliest = max(person.born.year + 20, world.orgs[employer].founded)
        world.people[person.name] = replace(person, joined=rng.randint(earliest, max(earliest, 2024)))

    companies = world.companies()
    for _ in range(size.products):
        maker = rng.choice(companies)
        product = Product(
            name=book.product(),
            maker=maker.name,
            category=rng.choice(INDUSTRIES[maker.industry]),
            launched=random_date(rng, dt.date(max(maker.founded + 1, 1985), 1, 1), dt.date(2024, 10, 31)),
            price=round(rng.uniform(8.0, 900.0) * world.country_of_org(maker.name).usd_rate, 2),
            weight_kg=round(rng.uniform(0.15, 35.0), 2),
            units_sold=_log_uniform_int(rng, 300, 2_000_000),
        )
        world.products[product.name] = product

    people = list(world.people.values())
    for _ in range(size.events):
        kind = rng.choice(EVENT_KINDS)
        start = random_date(rng, dt.date(1996, 1, 1), dt.date(2024, 9, 30))
        end = start + dt.timedelta(days=rng.randint(0, 9) if kind != "Marathon" else 0)
        winner = ""
        if kind in COMPETITIVE_KINDS:
            adults = [p for p in people if (start - p.born).days > 18 * 366]
            winner = rng.choice(adults).name
        event = Event(
            name=f"{book.event_stem()} {kind} {start.year}",
            kind=kind,
            city=rng.choice(city_names),
            start=start,
            end=end,
            attendance=_log_uniform_int(rng, 400, 250_000),
            organiser=rng.choice(org_names),
            winner=winner,
        )
        world.events[event.name] = event
    return world
