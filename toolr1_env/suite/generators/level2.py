"""Level 2: two or three sources (pages, or an attached file plus pages) and some computation.

Two-hop look-ups (the founder's birthplace, the host city's mayor), differences between facts of two
pages, an attached order priced from the wiki, and an attached list of people compared by birth date.
"""

from __future__ import annotations

import random

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
    sample,
    table_document,
    template,
)
from toolr1_env.suite.names import word
from toolr1_env.suite.world import World

TEMPLATES: list[Template] = []


def _two_hop(first: str, first_key: str, second_read: str, show: str = "") -> tuple[str, ...]:
    """Steps of a two-hop look-up: page of ``first`` -> its ``first_key`` -> that page -> ``second_read``."""
    return (
        first_look(first),
        f"{WEB_HELPERS}\n\n\npage = find_page({first!r})\nhop = fact(page, {first_key!r})\nprint(hop)",
        f"page2 = find_page(hop)\nprint(page2){show}",
        f"final_answer({second_read})",
    )


@template(2, TEMPLATES)
def founder_birthplace(world: World, rng: random.Random) -> Draft:
    """The birthplace of an organisation's founder."""
    org = rng.choice(list(world.orgs.values()))
    question = pick(rng, [f"In which city was the founder of {org.name} born?",
                          f"{org.name} was founded by one person. Where was that person born?"])  # fmt: skip
    steps = _two_hop(org.name, "Founder", 'fact(page2, "Birthplace")')
    return Draft(question, world.people[org.founder].birthplace, steps)


@template(2, TEMPLATES)
def headquarters_population(world: World, rng: random.Random) -> Draft:
    """The population of the city an organisation is headquartered in."""
    org = rng.choice(list(world.orgs.values()))
    question = f"What is the population of the city where {org.name} has its headquarters?"
    steps = _two_hop(org.name, "Headquarters", 'int(number(fact(page2, "Population")))')
    return Draft(question, str(world.cities[org.headquarters].population), steps)


@template(2, TEMPLATES)
def maker_employees(world: World, rng: random.Random) -> Draft:
    """The number of employees of the company that makes a product."""
    product = rng.choice(list(world.products.values()))
    question = pick(rng, [
        f"How many employees does the company that makes the {product.name} have?",
        f"The {product.name} is made by a company. How many people does that company employ?",
    ])  # fmt: skip
    steps = _two_hop(product.name, "Maker", 'int(number(fact(page2, "Employees")))')
    return Draft(question, str(world.orgs[product.maker].employees), steps)


@template(2, TEMPLATES)
def host_city_mayor(world: World, rng: random.Random) -> Draft:
    """The mayor of the city that hosted an event."""
    event = rng.choice(list(world.events.values()))
    question = f"Who is the mayor of the city where the {event.name} was held?"
    steps = _two_hop(event.name, "City", 'fact(page2, "Mayor")')
    return Draft(question, world.cities[event.city].mayor, steps)


@template(2, TEMPLATES)
def winner_age(world: World, rng: random.Random) -> Draft:
    """How old the winner of a competition was on its first day."""
    events = [e for e in world.events.values() if e.winner]
    if not events:
        raise Skip("no competition")
    event = rng.choice(events)
    born = world.people[event.winner].born
    age = event.start.year - born.year - ((event.start.month, event.start.day) < (born.month, born.day))
    question = f"How old, in completed years, was the winner of the {event.name} on the day it started?"
    steps = (
        first_look(event.name),
        f"{WEB_HELPERS}\n\n\npage = find_page({event.name!r})\nwinner = fact(page, 'Winner')\n"
        "start = day(fact(page, 'Start date'))\nprint(winner, start)",
        "born = day(fact(find_page(winner), 'Born'))\nprint(born)",
        "final_answer(start.year - born.year - ((start.month, start.day) < (born.month, born.day)))",
    )
    return Draft(question, str(age), steps)


@template(2, TEMPLATES)
def winner_birthplace_mayor(world: World, rng: random.Random) -> Draft:
    """Three hops: event -> winner -> birthplace -> its mayor."""
    events = [e for e in world.events.values() if e.winner]
    if not events:
        raise Skip("no competition")
    event = rng.choice(events)
    birthplace = world.people[event.winner].birthplace
    question = f"Who is the mayor of the city where the winner of the {event.name} was born?"
    steps = (
        first_look(event.name),
        f"{WEB_HELPERS}\n\n\nwinner = fact(find_page({event.name!r}), 'Winner')\nprint(winner)",
        "birthplace = fact(find_page(winner), 'Birthplace')\nprint(birthplace)",
        "final_answer(fact(find_page(birthplace), 'Mayor'))",
    )
    return Draft(question, world.cities[birthplace].mayor, steps)


@template(2, TEMPLATES)
def population_difference(world: World, rng: random.Random) -> Draft:
    """How many more inhabitants one city has than another."""
    big, small = sorted(sample(rng, list(world.cities.values()), 2), key=lambda c: -c.population)
    if big.population == small.population:
        raise Skip("equal populations")
    question = pick(rng, [
        f"How many more inhabitants does {big.name} have than {small.name}?",
        f"What is the difference between the populations of {small.name} and {big.name}?",
    ])  # fmt: skip
    steps = (
        first_look(big.name),
        f"{WEB_HELPERS}\n\n\npops = {{}}\nfor city in [{big.name!r}, {small.name!r}]:\n"
        "    pops[city] = int(number(fact(find_page(city), 'Population')))\nprint(pops)",
        "final_answer(max(pops.values()) - min(pops.values()))",
    )
    return Draft(question, str(big.population - small.population), steps)


@template(2, TEMPLATES)
def launch_after_founding(world: World, rng: random.Random) -> Draft:
    """Years between a maker's founding and a product's launch."""
    product = rng.choice(list(world.products.values()))
    founded = world.orgs[product.maker].founded
    question = (f"How many years after its maker was founded was the {product.name} launched? "
                "Subtract the founding year from the launch year.")  # fmt: skip
    steps = (
        first_look(product.name),
        f"{WEB_HELPERS}\n\n\npage = find_page({product.name!r})\nlaunched = day(fact(page, 'Launched'))\n"
        "maker = fact(page, 'Maker')\nprint(launched, maker)",
        "founded = int(fact(find_page(maker), 'Founded'))\nprint(founded)",
        "final_answer(launched.year - founded)",
    )
    return Draft(question, str(product.launched.year - founded), steps)


@template(2, TEMPLATES)
def order_total(world: World, rng: random.Random) -> Draft:
    """An attached order (products and quantities) priced with the prices on the products' pages."""
    makers = [o for o in world.companies() if len(world.products_of(o.name)) >= 2]
    if not makers:
        raise Skip("no maker with two products")
    maker = rng.choice(makers)
    products = sample(rng, world.products_of(maker.name), min(rng.randint(2, 3), len(world.products_of(maker.name))))
    quantities = [rng.randint(1, 40) for _ in products]
    currency = world.country_of_org(maker.name).currency
    table = Table(("Product", "Quantity"), tuple((p.name, q) for p, q in zip(products, quantities, strict=True)))
    name = file_name(rng, ("order", "purchase_order", "invoice_request"))
    buyer = f"{word(rng, 2, 2)} {rng.choice(('Store', 'Outlet', 'Trading Post', 'Supplies'))}"
    question = (f"The attached file {name} is an order placed by {buyer}. Using the price listed on each "
                f"product's wiki page, what is the total cost of the order in {currency}? Round to 2 decimal "
                "places.")  # fmt: skip
    total = sum(q * p.price for p, q in zip(products, quantities, strict=True))
    steps = (
        load_rows(name),
        f"{WEB_HELPERS}\n\n\nprices = {{}}\nfor r in rows:\n"
        "    prices[r['Product']] = number(fact(find_page(r['Product']), 'Price'))\nprint(prices)",
        "final_answer(round(sum(int(r['Quantity']) * prices[r['Product']] for r in rows), 2))",
    )
    document = table_document(f"Order for {maker.name}", table, ("Please deliver within 30 days.",))
    return Draft(question, fmt_number(total, 2), steps, (Attachment(name, document),))


@template(2, TEMPLATES)
def oldest_in_file(world: World, rng: random.Random) -> Draft:
    """Which of the people named in an attached file was born first (or last)."""
    people = sample(rng, list(world.people.values()), rng.randint(3, 4))
    if len({p.born for p in people}) < len(people):
        raise Skip("shared birthday")
    oldest = rng.random() < 0.5
    chosen = min(people, key=lambda p: p.born) if oldest else max(people, key=lambda p: p.born)
    roles = ("Chair", "Treasurer", "Secretary", "Member")
    table = Table(("Name", "Role"), tuple((p.name, roles[i]) for i, p in enumerate(people)))
    name = file_name(rng, ("committee", "board_members", "panel"))
    body = f"{word(rng, 2, 2)} {rng.choice(('Society', 'Rowing Club', 'Choir', 'Chess Club', 'Garden Club'))}"
    question = (f"The attached file {name} lists the committee of the {body}. Which of these people is the "
                f"{'oldest' if oldest else 'youngest'}? Use their birth dates on the wiki.")  # fmt: skip
    pick_fn = "min" if oldest else "max"
    steps = (
        load_rows(name),
        f"{WEB_HELPERS}\n\n\nborn = {{}}\nfor r in rows:\n"
        "    born[r['Name']] = day(fact(find_page(r['Name']), 'Born'))\nprint(born)",
        f"final_answer({pick_fn}(born, key=born.get))",
    )
    document = table_document(f"{body} committee", table, ("Elected at the annual meeting.",))
    return Draft(question, chosen.name, steps, (Attachment(name, document),))


@template(2, TEMPLATES)
def letter_product_founder(world: World, rng: random.Random) -> Draft:
    """The founder of the maker of the product a prose letter (docx, pdf or txt) asks about."""
    product = rng.choice(list(world.products.values()))
    sender = f"{word(rng, 2, 2)} {rng.choice(('School', 'Library', 'Youth Centre', 'Hostel'))}"
    paragraphs = (
        "Dear sales team,",
        f"The {sender} would like to order {rng.randint(2, 60)} units of the {product.name} for its new "
        f"{rng.choice(('workshop', 'common room', 'activity hall', 'lending service'))}. Could you send us a quote "
        "and tell us the earliest delivery date?",
        f"Kind regards, the purchasing office of the {sender}",
    )
    name = file_name(rng, ("letter", "enquiry", "request_for_quote"), ("docx", "pdf", "txt"))
    question = pick(rng, [
        f"The attached letter {name} from the {sender} asks about a product. Who founded the company that makes it?",
        f"Who is the founder of the company that makes the product the {sender} wants to order in the attached "
        f"file {name}?",
    ])  # fmt: skip
    steps = (
        f"text = inspect_file({name!r})\nprint(text)",
        f"{WEB_HELPERS}\n\n\nflat = ' '.join(text.split())\n"
        "product = re.search(r'units of the (.+?) for its', flat).group(1)\nprint(product)",
        "maker = fact(find_page(product), 'Maker')\nprint(maker)",
        "final_answer(fact(find_page(maker), 'Founder'))",
    )
    document = Document(title=f"Request for a quote: {sender}", paragraphs=paragraphs)
    return Draft(question, world.orgs[product.maker].founder, steps, (Attachment(name, document),))
