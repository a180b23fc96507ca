"""The fictional world: deterministic, internally consistent, and disjoint from the training world."""

from __future__ import annotations

import datetime as dt

import pytest

from toolr1_env.suite.pages import render_pages
from toolr1_env.suite.world import EVAL_SIZE, build_world
from toolr1_env.suite.worlds import EVAL_WORLDS, TRAIN_WORLD, get_world


def test_same_seed_same_world_and_pages():
    first, second = build_world(77), build_world(77)
    assert first == second
    assert render_pages(first) == render_pages(second)


def test_different_seeds_give_different_worlds():
    assert set(build_world(1).cities) != set(build_world(2).cities)


def test_sizes_and_unique_names():
    world = build_world(5, EVAL_SIZE)
    assert len(world.countries) == EVAL_SIZE.countries
    assert len(world.cities) == EVAL_SIZE.cities
    assert len(world.orgs) == EVAL_SIZE.companies + EVAL_SIZE.institutes
    assert len(world.products) == EVAL_SIZE.products
    assert len(world.events) == EVAL_SIZE.events
    names = [n.lower() for table in (world.countries, world.cities, world.people, world.orgs, world.products)
             for n in table]  # fmt: skip
    assert len(names) == len(set(names))
    pages = render_pages(world)
    assert len({p.url for p in pages}) == len(pages)


@pytest.mark.parametrize("name", [*EVAL_WORLDS, TRAIN_WORLD])
def test_facts_are_consistent(name):
    world = get_world(name)
    for org in world.orgs.values():
        assert world.people[org.founder].born.year <= org.founded - 25
        assert org.headquarters in world.cities
        assert (org.revenue_m > 0) == (org.kind == "company")
    for product in world.products.values():
        assert world.orgs[product.maker].kind == "company"
        assert product.launched.year > world.orgs[product.maker].founded
    for event in world.events.values():
        assert event.start <= event.end <= dt.date(2024, 12, 31)
        if event.winner:
            assert (event.start - world.people[event.winner].born).days > 18 * 365
    for person in world.people.values():
        assert person.birthplace in world.cities
        if person.employer:
            assert person.joined >= person.born.year + 18
    for country in world.countries.values():
        assert world.cities[country.capital].country == country.name


def test_training_world_shares_no_name_with_evaluation_worlds():
    train = {n.lower() for n in get_world(TRAIN_WORLD).all_names()}
    for name in EVAL_WORLDS:
        assert not train & {n.lower() for n in get_world(name).all_names()}, name


def test_evaluation_worlds_differ():
    cities = [set(get_world(name).cities) for name in EVAL_WORLDS]
    for i, a in enumerate(cities):
        for b in cities[i + 1 :]:
            assert a != b
