"""Every bundled task is solvable with its tools, its solution computes (never contains) the answer, and
tool-free baselines score near zero."""

from __future__ import annotations

import re

import pytest

from toolr1_env.suite import SPLITS, load_split
from toolr1_env.suite.baselines import baseline_scores, question_only_answer
from toolr1_env.suite.generators.base import STEP_SEPARATOR
from toolr1_env.suite.reference import run_reference

FIXED = [name for name, spec in SPLITS.items() if spec.is_fixed]
GENERATED = [name for name, spec in SPLITS.items() if not spec.is_fixed]
ALLOWED_IMPORTS = {"json", "csv", "re", "datetime", "math", "statistics", "collections", "pandas"}


def question_scorer(answer, truth):
    from toolr1_env.scoring import question_scorer as scorer  # imported late: owned by another module

    return scorer(answer, truth)


@pytest.fixture(scope="module")
def fixed(tmp_path_factory):
    cache = tmp_path_factory.mktemp("suite-cache")
    return {name: load_split(name, cache_dir=cache) for name in FIXED}


@pytest.mark.parametrize("name", FIXED)
def test_every_fixed_reference_solution_solves_its_task(fixed, name):
    task_set = fixed[name]
    failures = []
    for task in task_set.tasks:
        answer = run_reference(task, task_set.tools)
        if not question_scorer(str(answer), task.answer):
            failures.append((task.task_id, task.metadata["template"], answer, task.answer))
    assert not failures, failures[:5]


@pytest.mark.parametrize("name", GENERATED)
def test_generated_reference_solutions_solve_their_tasks(tmp_path, name):
    task_set = load_split(name, cache_dir=tmp_path)
    for seed in range(0, 4000, 40):
        task = task_set.generate(seed)
        answer = run_reference(task, task_set.tools)
        assert question_scorer(str(answer), task.answer), (task.task_id, answer, task.answer)


def _mentions(text: str, answer: str) -> bool:
    """True when ``answer`` occurs in ``text`` as a whole word or number (case-insensitive)."""
    return re.search(rf"(?<![\w.]){re.escape(answer)}(?![\w]|\.\d)", text, re.IGNORECASE) is not None


def test_solutions_compute_the_answer_rather_than_contain_it(fixed):
    for task_set in fixed.values():
        for task in task_set.tasks:
            if len(task.answer) >= 3:
                assert not _mentions(task.reference_solution, task.answer), (task.task_id, task.answer)
            if task.level > 0 and len(task.answer) >= 3:  # warm-up questions quote operands, never answers
                assert not _mentions(task.question, task.answer), (task.task_id, task.answer)


def test_solutions_use_only_the_tools_allowed_imports_and_final_answer(fixed):
    for task_set in fixed.values():
        for task in task_set.tasks:
            code = task.reference_solution
            imported = set(re.findall(r"^(?:from|import) (\w+)", code, re.M))
            assert imported <= ALLOWED_IMPORTS, (task.task_id, imported)
            assert "open(" not in code or ".json" in code  # files are read through pandas/json/inspect_file
            steps = code.split(STEP_SEPARATOR)
            assert len(steps) == task.metadata["n_steps"]
            assert "final_answer(" in steps[-1]
            for path in task.files:
                name = path.rsplit("/", 1)[-1]
                assert repr(name) in code and path not in code  # relative names only
            if task.level == 0:
                assert len(steps) == 1 and "web_search" not in code


def test_tool_free_baselines_score_near_zero(fixed):
    for name, task_set in fixed.items():
        scores = baseline_scores(task_set.tasks)
        assert scores["empty"] == 0.0, name
        assert scores["question_only"] <= 0.03, (name, scores)
        assert scores["most_common"] <= 0.08, (name, scores)
        for level in {t.level for t in task_set.tasks}:
            per_level = baseline_scores([t for t in task_set.tasks if t.level == level])
            assert per_level["most_common"] <= 0.1, (name, level, per_level)


def test_question_only_guess_reads_the_question():
    assert question_only_answer("What is 1,234 plus 5?") == "5"
    assert question_only_answer("Who is the mayor of Varnholt?") == "Varnholt"
    assert question_only_answer("who?") == ""
