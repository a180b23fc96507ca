"""The ``parse`` demonstration style: look at the page, then answer with code that parses the asked field."""

from __future__ import annotations

import re

import pytest
from demo_play import play_scripts

from agents.learner.demonstrations import compact_turns, demonstration_scripts, host_tool, reference_turns
from agents.learner.parsed_demonstrations import COMPUTED_TEMPLATES, page_entity, parse_turns
from toolr1_env.suite import load_split

FIELD_TEMPLATES = {"city_fact", "person_fact", "country_fact", "product_fact", "event_fact", "organisation_fact"}


@pytest.fixture(scope="module")
def train_easy():
    return load_split("train-easy")


def parsed_by_template(task_set, wanted: set[str], limit: int = 300) -> dict:
    """The first task of each wanted template that has a parse script."""
    found = {}
    read_page = host_tool(task_set.tools, "read_page")
    for seed in range(limit):
        task = task_set.pick(seed)
        template = task.metadata["template"]
        if template in wanted and template not in found and parse_turns(task, read_page):
            found[template] = task
    assert found.keys() == wanted
    return found


def test_turn_two_names_a_field_of_the_page_and_never_copies_the_answer(train_easy):
    read_page = host_tool(train_easy.tools, "read_page")
    for template, task in parsed_by_template(train_easy, FIELD_TEMPLATES).items():
        look, answer = parse_turns(task, read_page)
        entity = page_entity(task)
        assert entity in task.question and look == f"print(read_page({entity!r}))"
        regex = re.fullmatch(r"import re\nfinal_answer\(re\.search\(r'(.+)', read_page\((.+)\)\)\[1\]\)", answer)
        assert regex and regex.group(2) == repr(entity), answer
        key = regex.group(1).split(": ")[0]
        assert f"\n{key}: " in read_page(entity), (template, key)  # a field the printed page shows
        assert str(task.answer) not in answer, (template, answer)  # the interpreter copies, not the model


def test_the_value_is_cut_to_what_the_question_asks(train_easy):
    read_page = host_tool(train_easy.tools, "read_page")
    tasks = [train_easy.pick(s) for s in range(300)]
    patterns = {}
    for task in tasks:
        script = parse_turns(task, read_page)
        if script:
            patterns.setdefault(task.metadata["template"], set()).add(re.search(r"r'(.+?)'", script[1]).group(1))
    assert "Currency: .*\\((\\w+)\\)" in patterns["country_fact"]  # "telcrown (TEL)" -> TEL
    assert "Height: ([\\d,.]+)" in patterns["person_fact"]  # "172 cm" -> 172
    assert "Exchange rate: .* = ([\\d,.]+)" in patterns["country_fact"]  # "1 USD = 46.06 telcrown" -> 46.06


def test_every_parse_script_reaches_full_reward_in_the_sandboxed_env(train_easy):
    tasks = list(parsed_by_template(train_easy, FIELD_TEMPLATES).values())
    scripts = demonstration_scripts(tasks, "parse", host_tool(train_easy.tools, "read_page"))
    assert all(len(script) == 2 for script in scripts)
    play_scripts(train_easy, tasks, scripts)


def test_other_tasks_keep_their_compact_or_reference_script(train_easy):
    read_page, inspect_file = host_tool(train_easy.tools, "read_page"), host_tool(train_easy.tools, "inspect_file")
    tasks = [train_easy.pick(s) for s in range(200)]
    computed = next(t for t in tasks if t.metadata["template"] in COMPUTED_TEMPLATES)
    with_file = next(t for t in tasks if t.files and t.level == 1)
    level0 = next(t for t in tasks if t.level == 0)
    for task in (computed, with_file, level0):
        assert parse_turns(task, read_page) is None
    scripts = demonstration_scripts([computed, with_file, level0], "parse", read_page, inspect_file)
    compact = [compact_turns(task, read_page, inspect_file) for task in (computed, with_file)]
    assert scripts == [*compact, reference_turns(level0)] and all(compact)
    web = parsed_by_template(train_easy, {"city_fact"})["city_fact"]
    assert parse_turns(web, None) is None  # no host read_page (another task source): the reference steps
    assert demonstration_scripts([web], "parse", None) == [reference_turns(web)]
