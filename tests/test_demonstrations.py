"""Demonstration scripts (agents/learner/demonstrations.py): compact look-then-answer turns that read their
answer off the observation, played through the real environment to full reward."""

from __future__ import annotations

import re

import pytest
from demo_play import play_scripts

from agents.learner.demonstrations import compact_turns, demonstration_scripts, host_tool, reference_turns
from toolr1_env.suite import load_split


@pytest.fixture(scope="module")
def train_easy():
    return load_split("train-easy")


def by_template(task_set, wanted: set[str], limit: int = 200) -> dict:
    found = {}
    for seed in range(limit):
        task = task_set.pick(seed)
        found.setdefault(task.metadata["template"], task)
        if wanted <= found.keys():
            break
    return {name: found[name] for name in wanted}


def test_compact_web_turns_look_then_copy_what_the_page_showed(train_easy):
    read_page = host_tool(train_easy.tools, "read_page")
    tasks = by_template(train_easy, {"city_fact", "person_fact", "country_fact", "product_fact"})
    for task in tasks.values():
        look, answer = compact_turns(task, read_page)
        entity = re.fullmatch(r"print\(read_page\('(.+)'\)\)", look).group(1)
        assert entity in task.question
        page = read_page(entity)
        copied = re.fullmatch(r"final_answer\('(.+)'\)", answer)
        if copied:  # a literal answer is a piece of the page, never the ground truth from elsewhere
            assert copied.group(1) in page


def test_compact_file_turns_print_the_file_then_copy_what_it_showed(train_easy):
    inspect_file = host_tool(train_easy.tools, "inspect_file")
    tasks = by_template(train_easy, {"memo_expenses", "inventory_file", "schedule_file"})
    for task in tasks.values():
        name = task.files[0].rsplit("/", 1)[-1]
        look, answer = compact_turns(task, host_tool(train_easy.tools, "read_page"), inspect_file)
        assert look == f"print(inspect_file({name!r}))"
        text = inspect_file(task.files[0])
        dates = re.findall(r"date\((\d+), (\d+), (\d+)\)", answer)
        if dates:  # the schedule's first and last dates, as printed (YYYY-MM-DD)
            assert len(dates) == 2 and all(f"{y}-{int(m):02d}-{int(d):02d}" in text for y, m, d in dates)
        else:  # a memo's amounts or a category's stocks, each as printed
            copied = re.findall(r"\d+(?:\.\d+)?", answer.removeprefix("final_answer(round(").removesuffix(", 2))"))
            assert len(copied) >= 2 and all(n in text.replace(",", "") for n in copied), (answer, text)
        assert task.answer not in answer  # computed from copied values, not the ground truth written down
    assert compact_turns(tasks["memo_expenses"], None, None) is None  # no host inspect_file: reference steps


def test_a_file_name_given_to_read_page_gets_an_error_that_names_the_right_tool(train_easy):
    read_page = host_tool(train_easy.tools, "read_page")
    with pytest.raises(LookupError, match=r"file name, not a web page\. Read an attached file with "
                                          r"inspect_file\('memo\.txt'\)"):
        read_page("memo.txt")
    with pytest.raises(LookupError, match=r"Use a 'url' from the results of web_search"):
        read_page("No Such Page")


def test_every_compact_script_reaches_full_reward_in_the_sandboxed_env(train_easy):
    wanted = {"city_fact", "event_fact", "organisation_fact", "population_density", "event_length", "age_on_date",
              "memo_expenses", "inventory_file", "schedule_file", "multiply"}
    tasks = list(by_template(train_easy, wanted).values())
    scripts = demonstration_scripts(tasks, "compact", host_tool(train_easy.tools, "read_page"),
                                    host_tool(train_easy.tools, "inspect_file"))
    play_scripts(train_easy, tasks, scripts)
    for task, script in zip(tasks, scripts, strict=True):
        assert len(script) == (2 if task.level == 1 else 1)
        if task.files:
            assert script[0].startswith("print(inspect_file(")


def test_reference_style_and_fallbacks_keep_the_reference_steps(train_easy):
    level0 = next(train_easy.pick(s) for s in range(50) if train_easy.pick(s).level == 0)
    web = by_template(train_easy, {"city_fact"})["city_fact"]
    read_page = host_tool(train_easy.tools, "read_page")
    assert demonstration_scripts([web], "reference", read_page) == [reference_turns(web)]
    assert len(reference_turns(web)) == 3 and "def find_page" in reference_turns(web)[1]
    assert demonstration_scripts([level0], "compact", read_page) == [reference_turns(level0)]
    assert compact_turns(web, None) is None  # no host read_page (another task source): reference steps
    with pytest.raises(ValueError, match="style"):
        demonstration_scripts([web], "sft", read_page)


def test_compact_web_keeps_the_reference_steps_of_file_tasks(train_easy):
    read_page, inspect_file = host_tool(train_easy.tools, "read_page"), host_tool(train_easy.tools, "inspect_file")
    tasks = by_template(train_easy, {"city_fact", "memo_expenses"})
    web, memo = tasks["city_fact"], tasks["memo_expenses"]
    scripts = demonstration_scripts([web, memo], "compact-web", read_page, inspect_file)
    assert scripts == [compact_turns(web, read_page), reference_turns(memo)]
    assert compact_turns(memo, read_page, inspect_file) != reference_turns(memo)  # what "compact" would give
