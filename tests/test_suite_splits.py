"""Bundled splits: sizes, level mix, determinism, caching, and no overlap between generated and fixed tasks."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from toolr1_env.suite import SPLITS, fingerprint, load_split
from toolr1_env.suite.generators import FAMILIES, TEMPLATES_BY_LEVEL
from toolr1_env.suite.splits import default_cache_dir, generated_draft
from toolr1_env.tasks import TaskSet

FIXED = [name for name, spec in SPLITS.items() if spec.is_fixed]
GENERATED = [name for name, spec in SPLITS.items() if not spec.is_fixed]
EXPECTED = {
    "validation": {1: 53, 2: 86, 3: 26},
    "test": {1: 53, 2: 86, 3: 26},
    "warmup-eval": {0: 64},
    "level1-eval": {0: 32, 1: 32},
    "files-eval": {1: 32},
}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("suite-cache")


@pytest.fixture(scope="module")
def fixed(cache):
    return {name: load_split(name, cache_dir=cache) for name in FIXED}


def test_split_sizes_and_level_mix(fixed):
    assert set(EXPECTED) == set(FIXED)
    for name, task_set in fixed.items():
        assert isinstance(task_set, TaskSet) and not task_set.is_generated
        assert dict(Counter(t.level for t in task_set.tasks)) == EXPECTED[name], name


def test_tools_are_the_three_named_tools(fixed):
    for task_set in fixed.values():
        assert [tool.__name__ for tool in task_set.tools] == ["web_search", "read_page", "inspect_file"]


def test_fixed_splits_use_every_template(fixed):
    used = {t.metadata["template"] for ts in fixed.values() for t in ts.tasks}
    assert used == {template.name for family in FAMILIES.values() for ts in family.values() for template in ts}
    levels_1_to_3 = {t.metadata["template"] for t in fixed["validation"].tasks}
    assert levels_1_to_3 == {tp.name for level in (1, 2, 3) for tp in TEMPLATES_BY_LEVEL[level]}


def test_ids_questions_unique_and_files_exist(fixed):
    ids = [t.task_id for ts in fixed.values() for t in ts.tasks]
    assert len(ids) == len(set(ids))
    for task_set in fixed.values():
        questions = [t.question for t in task_set.tasks]
        assert len(questions) == len(set(questions)), task_set.name
        for task in task_set.tasks:
            assert task.reference_solution and "final_answer(" in task.reference_solution
            for path in task.files:
                assert Path(path).is_file()
                assert Path(path).parent.name == task.task_id
                assert f"{task.task_id[: -len(task.task_id.split('-')[-1]) - 1]}" == task_set.name
                assert Path(path).name in task.question


def test_loading_again_gives_identical_tasks_and_file_bytes(fixed, tmp_path):
    again = [load_split(name, cache_dir=tmp_path) for name in ("validation", "level1-eval")]
    old = [fixed["validation"], fixed["level1-eval"]]
    assert fingerprint(t for ts in again for t in ts.tasks) == fingerprint(t for ts in old for t in ts.tasks)


def test_deterministic_across_processes_and_hash_seeds(tmp_path):
    code = (
        "import sys; from toolr1_env.suite import fingerprint, load_split; "
        "train = load_split('train', cache_dir=sys.argv[1]); "
        "print(fingerprint([*load_split('test', cache_dir=sys.argv[1]).tasks, *map(train.generate, range(100))]))"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / hash_seed)], env=env, check=True,
                             capture_output=True, text=True)  # fmt: skip
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_generated_split_is_deterministic_and_looks_up_ids(tmp_path):
    train = load_split("train", cache_dir=tmp_path)
    assert train.is_generated and len(train) == 0
    task = train.generate(42)
    assert task.task_id == "train-42" and task.metadata["seed"] == 42
    assert train.get("train-42") == task == train.pick(42)
    other = load_split("train", cache_dir=tmp_path / "other").generate(42)
    assert (other.question, other.answer, other.reference_solution) == (task.question, task.answer,
                                                                         task.reference_solution)  # fmt: skip
    for bad in ("validation-42", "train-x", "train-042", "warmup-42"):
        with pytest.raises(KeyError):
            train.get(bad)
    with pytest.raises(ValueError):
        train.generate(-1)


def test_generated_level_mix_follows_weights():
    for name in GENERATED:
        counts = Counter(generated_draft(SPLITS[name], seed)[0].level for seed in range(1000))
        weights = SPLITS[name].weights
        assert set(counts) == set(weights)
        for level, weight in weights.items():
            assert abs(counts[level] / 1000 - weight) < 0.05, (name, level, counts)


def test_no_overlap_between_generated_and_fixed_splits(fixed, tmp_path):
    fixed_ids = {t.task_id for ts in fixed.values() for t in ts.tasks}
    fixed_questions = {t.question for ts in fixed.values() for t in ts.tasks}
    for name in GENERATED:
        task_set = load_split(name, cache_dir=tmp_path)
        tasks = [task_set.generate(seed) for seed in range(200)]
        assert not fixed_ids & {t.task_id for t in tasks}
        assert SPLITS[name].world == ("rl" if name == "rl-easy" else "train")  # the two training worlds
        assert all(t.metadata["world"] == SPLITS[name].world for t in tasks)
        questions = {generated_draft(SPLITS[name], seed)[1].question for seed in range(3000)}
        assert not fixed_questions & questions, name
    assert all(t.metadata["world"] not in ("train", "rl") for ts in fixed.values() for t in ts.tasks)


def test_generated_training_tasks_are_distinct(tmp_path):
    # No wall-time bound here: a timed unit test fails on a loaded machine for reasons other than the code
    # (300 tasks took 62-81 s at load 14, 2026-12-06); generation speed belongs in a benchmark.
    train = load_split("train", cache_dir=tmp_path)
    tasks = [train.generate(seed) for seed in range(300)]
    assert len({t.task_id for t in tasks}) == 300
    assert len({t.question for t in tasks}) > 250  # a few templates may repeat a question, not many


def test_unknown_split_and_cache_default(monkeypatch, tmp_path):
    with pytest.raises(KeyError, match="validation"):
        load_split("nope")
    monkeypatch.setenv("TOOLR1_CACHE", str(tmp_path))
    assert default_cache_dir().is_relative_to(tmp_path / "suite")
