"""Level 3: many steps across sources, with filtering, joins, dates and unit or currency conversions.

Chains of three or four pages ending in a currency conversion, attached tables joined with many pages
and filtered on facts found there, date spans over lists found on a page.
"""

from __future__ import annotations

import random

from toolr1_env.suite.files import Table
from toolr1_env.suite.generators.base import (
    WEB_HELPERS,
    Attachment,
    Draft,
    Skip,
    Template,
    file_name,
    first_look,
    fmt_list,
    fmt_number,
    load_rows,
    pick,
    sample,
    table_document,
    template,
)
from toolr1_env.suite.names import word
from toolr1_env.suite.world import World

TEMPLATES: list[Template] = []
LB_IN_KG = 0.45359237

#: Code reading the exchange rate (units per US dollar) of the country of the organisation ``org``.
_RATE_OF_ORG = """def usd_rate(org):
    city = fact(find_page(org), 'Headquarters')
    country = fact(find_page(city), 'Country')
    return number(fact(find_page(country), 'Exchange rate').split('=')[1])"""
#: Code reading the names listed under a heading (e.g. "Products") of a page.
_SECTION = """def section(page, heading):
    block = page.split('\\n' + heading + '\\n')[1].split('\\n\\n')[0]
    return re.findall(r'^- (.+?)(?: \\(.*\\))? <', block, re.M)"""


def round_threshold(low: int, high: int) -> int:
    """The roundest number ``t`` with ``low <= t < high`` (so "more than t" keeps ``high`` and drops ``low``)."""
    for digits in range(7, -1, -1):
        unit = 10**digits
        t = -(-low // unit) * unit
        if low <= t < high:
            return t
    raise Skip("no threshold between equal values")


@template(3, TEMPLATES)
def revenue_in_usd(world: World, rng: random.Random) -> Draft:
    """A company's revenue converted to US dollars with its country's exchange rate (four pages)."""
    org = rng.choice(world.companies())
    rate = world.country_of_org(org.name).usd_rate
    question = pick(rng, [
        f"What was the revenue of {org.name} in millions of US dollars? Convert with the exchange rate given on "
        "the wiki page of the country where its headquarters are, and round to 2 decimal places.",
        f"{org.name} reports its revenue in the currency of the country where it is headquartered. Using the "
        "exchange rate on that country's wiki page, how many millions of US dollars is that? Round to 2 decimal "
        "places.",
    ])  # fmt: skip
    steps = (
        first_look(org.name),
        f"{WEB_HELPERS}\n\n\npage = find_page({org.name!r})\nrevenue = number(fact(page, 'Revenue'))\n"
        "city = fact(page, 'Headquarters')\nprint(revenue, city)",
        "country = fact(find_page(city), 'Country')\nprint(country)",
        "rate = number(fact(find_page(country), 'Exchange rate').split('=')[1])\nprint(rate)",
        "final_answer(round(revenue / rate, 2))",
    )
    return Draft(question, fmt_number(org.revenue_m / rate, 2), steps)


@template(3, TEMPLATES)
def latest_product_in_usd(world: World, rng: random.Random) -> Draft:
    """The US dollar price of a company's most recently launched product."""
    makers = [o for o in world.companies() if len(world.products_of(o.name)) >= 2]
    if not makers:
        raise Skip("no maker with two products")
    org = rng.choice(makers)
    products = world.products_of(org.name)
    if len({p.launched for p in products}) < len(products):
        raise Skip("launch dates tie")
    latest = products[-1]
    rate = world.country_of_org(org.name).usd_rate
    question = (f"What is the price, in US dollars, of the most recently launched product of {org.name}? Convert "
                "the listed price with the exchange rate on the wiki page of the country where the company is "
                "headquartered, and round to 2 decimal places.")  # fmt: skip
    steps = (
        first_look(org.name),
        f"{WEB_HELPERS}\n\n\n{_SECTION}\n\n\npage = find_page({org.name!r})\nproducts = section(page, 'Products')\n"
        "print(products)",
        "launched = {p: day(fact(find_page(p), 'Launched')) for p in products}\n"
        "latest = max(launched, key=launched.get)\n"
        "price = number(fact(find_page(latest), 'Price'))\nprint(latest, price)",
        f"{_RATE_OF_ORG}\n\n\nrate = usd_rate({org.name!r})\nprint(rate)",
        "final_answer(round(price / rate, 2))",
    )
    return Draft(question, fmt_number(latest.price / rate, 2), steps)


@template(3, TEMPLATES)
def shipment_weight(world: World, rng: random.Random) -> Draft:
    """Total weight in pounds of the attached shipments going to big cities (join, filter, convert)."""
    products = sample(rng, list(world.products.values()), rng.randint(3, 4))
    cities = sorted(sample(rng, list(world.cities.values()), rng.randint(3, 4)), key=lambda c: c.population)
    if cities[0].population == cities[1].population:
        raise Skip("tie")
    cut = rng.randint(1, len(cities) - 1)
    threshold = round_threshold(cities[cut - 1].population, cities[cut].population)
    rows = [(rng.choice(products), rng.randint(1, 60), rng.choice(cities)) for _ in range(rng.randint(5, 8))]
    if not any(c.population > threshold for _, _, c in rows):
        raise Skip("nothing passes the filter")
    rows_kg = sum(q * p.weight_kg for p, q, c in rows if c.population > threshold)
    table = Table(("Product", "Quantity", "Destination"), tuple((p.name, q, c.name) for p, q, c in rows))
    name = file_name(rng, ("shipments", "dispatch_log", "deliveries"))
    factor = pick(rng, ["", f" (1 lb = {LB_IN_KG} kg)"])
    depot = f"{word(rng, 2, 2)} depot"
    question = (f"The attached file {name} lists shipments from the {depot}. Using the product weights and city "
                f"populations on the wiki, what is the total weight in pounds{factor} of the shipments sent to "
                f"cities with more than {threshold:,} inhabitants? Round to the nearest pound.")  # fmt: skip
    steps = (
        load_rows(name),
        f"{WEB_HELPERS}\n\n\n"
        "weights = {p: number(fact(find_page(p), 'Weight')) for p in {r['Product'] for r in rows}}\nprint(weights)",
        "pops = {c: number(fact(find_page(c), 'Population')) for c in {r['Destination'] for r in rows}}\nprint(pops)",
        f"kg = sum(int(r['Quantity']) * weights[r['Product']] for r in rows if pops[r['Destination']] > {threshold})\n"
        f"final_answer(round(kg / {LB_IN_KG}))",
    )
    document = table_document(f"Shipments from the {depot}", table, ("Quantities are in units of product.",))
    return Draft(question, str(round(rows_kg / LB_IN_KG)), steps, (Attachment(name, document),))


@template(3, TEMPLATES)
def born_in_country(world: World, rng: random.Random) -> Draft:
    """The people of an attached list born in a given country, alphabetically (join person -> city -> country)."""
    country = rng.choice(list(world.countries.values()))
    inside = [p for p in world.people.values() if world.cities[p.birthplace].country == country.name]
    outside = [p for p in world.people.values() if world.cities[p.birthplace].country != country.name]
    chosen = sample(rng, inside, rng.randint(2, 3)) + sample(rng, outside, rng.randint(2, 4))
    rng.shuffle(chosen)
    table = Table(("Name", "Team"), tuple((p.name, rng.choice(("Red", "Blue", "Green"))) for p in chosen))
    name = file_name(rng, ("attendees", "participants", "guest_list"))
    workshop = f"{word(rng, 2, 2)} workshop"
    question = (f"Which of the people listed in the attached file {name} (the attendees of the {workshop}) were "
                f"born in a city of {country.name}? "
                "Give their full names in alphabetical order, separated by commas.")  # fmt: skip
    answer = fmt_list(sorted(p.name for p in chosen if p in inside))
    steps = (
        load_rows(name),
        f"{WEB_HELPERS}\n\n\nbirthplace = {{r['Name']: fact(find_page(r['Name']), 'Birthplace') for r in rows}}\n"
        "print(birthplace)",
        "country_of = {c: fact(find_page(c), 'Country') for c in set(birthplace.values())}\nprint(country_of)",
        f"final_answer(', '.join(sorted(n for n, c in birthplace.items() if country_of[c] == {country.name!r})))",
    )
    document = table_document(f"Attendees of the {workshop}", table, ("Teams were assigned at random.",))
    return Draft(question, answer, steps, (Attachment(name, document),))


@template(3, TEMPLATES)
def attendance_of_long_events(world: World, rng: random.Random) -> Draft:
    """Total attendance of the attached events held in big cities and lasting some days (join, filter, dates)."""
    events = sample(rng, list(world.events.values()), rng.randint(5, 8))
    min_days = rng.choice((2, 3))
    threshold = rng.choice((50_000, 100_000, 200_000, 500_000))

    def passes(e: object) -> bool:
        return world.cities[e.city].population > threshold and (e.end - e.start).days + 1 >= min_days  # type: ignore[attr-defined]

    kept = [e for e in events if passes(e)]
    if not kept or len(kept) == len(events):
        raise Skip("filter keeps none or all")
    table = Table(("Event", "Contact"), tuple((e.name, e.organiser) for e in events))
    name = file_name(rng, ("events", "event_list", "season_calendar"))
    board = f"{word(rng, 2, 2)} tourist office"
    question = (f"Of the events listed in the attached file {name} (a leaflet of the {board}), consider those "
                f"held in a city with more than {threshold:,} inhabitants that lasted at least {min_days} days "
                "(first and last day included). What is their total attendance according to the wiki?")  # fmt: skip
    steps = (
        load_rows(name),
        f"{WEB_HELPERS}\n\n\ninfo = {{}}\nfor r in rows:\n    page = find_page(r['Event'])\n"
        "    info[r['Event']] = (fact(page, 'City'), day(fact(page, 'Start date')), day(fact(page, 'End date')),\n"
        "                        int(number(fact(page, 'Attendance'))))\nprint(info)",
        "pops = {c: number(fact(find_page(c), 'Population')) for c, _, _, _ in info.values()}\nprint(pops)",
        f"final_answer(sum(a for c, s, e, a in info.values()\n"
        f"                 if pops[c] > {threshold} and (e - s).days + 1 >= {min_days}))",
    )
    document = table_document(
        f"Events this season, by the {board}", table, ("Contact the organiser for group tickets.",)
    )
    return Draft(question, str(sum(e.attendance for e in kept)), steps, (Attachment(name, document),))


@template(3, TEMPLATES)
def richest_in_usd(world: World, rng: random.Random) -> Draft:
    """Which attached company has the highest revenue once converted to US dollars."""
    by_country: dict[str, list] = {}
    for org in world.companies():
        by_country.setdefault(world.country_of_org(org.name).name, []).append(org)
    countries = sample(rng, sorted(by_country), rng.randint(3, 4))
    orgs = [rng.choice(by_country[c]) for c in countries]
    usd = [o.revenue_m / world.country_of_org(o.name).usd_rate for o in orgs]
    best = orgs[usd.index(max(usd))]
    if best is max(orgs, key=lambda o: o.revenue_m) or sorted(usd)[-1] == sorted(usd)[-2]:
        raise Skip("conversion would not matter")
    table = Table(("Company", "Account manager"), tuple((o.name, o.leader) for o in orgs))
    name = file_name(rng, ("suppliers", "clients", "partners"))
    delegation = f"{word(rng, 2, 2)} trade delegation"
    question = (f"Which of the companies listed in the attached file {name} (the members of the {delegation}) has "
                "the highest revenue in US dollars? "
                "Convert each revenue with the exchange rate on the wiki page of the country where the company is "
                "headquartered.")  # fmt: skip
    steps = (
        load_rows(name),
        f"{WEB_HELPERS}\n\n\n"
        "revenue = {r['Company']: number(fact(find_page(r['Company']), 'Revenue')) for r in rows}\nprint(revenue)",
        f"{_RATE_OF_ORG}\n\n\nrates = {{c: usd_rate(c) for c in revenue}}\nprint(rates)",
        "final_answer(max(revenue, key=lambda c: revenue[c] / rates[c]))",
    )
    document = table_document(f"Members of the {delegation}", table, ("Revenues are reported in local currency.",))
    return Draft(question, best.name, steps, (Attachment(name, document),))


@template(3, TEMPLATES)
def event_span_of_organiser(world: World, rng: random.Random) -> Draft:
    """Days between the first and last events an organisation organised (list on a page, then dates)."""
    counts: dict[str, int] = {}
    for event in world.events.values():
        counts[event.organiser] = counts.get(event.organiser, 0) + 1
    organisers = sorted(o for o, n in counts.items() if n >= 2)
    if not organisers:
        raise Skip("no organiser of two events")
    org = rng.choice(organisers)
    starts = sorted(e.start for e in world.events.values() if e.organiser == org)
    question = (f"How many days passed between the start of the first and the start of the last event organised by "
                f"{org}, according to the wiki?")  # fmt: skip
    steps = (
        first_look(org),
        f"{WEB_HELPERS}\n\n\n{_SECTION}\n\n\nevents = section(find_page({org!r}), 'Events organised')\nprint(events)",
        "starts = [day(fact(find_page(e), 'Start date')) for e in events]\nprint(starts)",
        "final_answer((max(starts) - min(starts)).days)",
    )
    return Draft(question, str((starts[-1] - starts[0]).days), steps)


@template(3, TEMPLATES)
def founder_age_at_launch(world: World, rng: random.Random) -> Draft:
    """Age of the founder of a product's maker on the launch day (product -> maker -> founder)."""
    product = rng.choice(list(world.products.values()))
    born = world.people[world.orgs[product.maker].founder].born
    when = product.launched
    age = when.year - born.year - ((when.month, when.day) < (born.month, born.day))
    question = (f"How old, in completed years, was the founder of the company that makes the {product.name} on the "
                "day the product was launched?")  # fmt: skip
    steps = (
        first_look(product.name),
        f"{WEB_HELPERS}\n\n\npage = find_page({product.name!r})\nlaunched = day(fact(page, 'Launched'))\n"
        "maker = fact(page, 'Maker')\nprint(launched, maker)",
        "founder = fact(find_page(maker), 'Founder')\nprint(founder)",
        "born = day(fact(find_page(founder), 'Born'))\nprint(born)",
        "final_answer(launched.year - born.year - ((launched.month, launched.day) < (born.month, born.day)))",
    )
    return Draft(question, str(age), steps)
