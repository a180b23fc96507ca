"""Long-file tasks (``train-files``, ``files-eval``; toolr1_env/suite/generators/long_files.py): tables of
150-400 rows in every tabular format, answers no printout shows, reference solutions and demonstrations that
compute them, and every older split unchanged."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from collections import Counter
from pathlib import Path

import gymnasium as gym
import pandas as pd
import pytest
from demo_play import play_scripts

from agents.learner.demonstrations import demonstration_scripts, host_tool, reference_turns
from toolr1_env.env import ToolR1Env, resolve_tasks
from toolr1_env.prompts import truncate_middle
from toolr1_env.scoring import question_scorer
from toolr1_env.suite import SPLITS, load_split, splits
from toolr1_env.suite.generators import TEMPLATES_BY_LEVEL, long_files
from toolr1_env.suite.inspect_file import inspect_file
from toolr1_env.suite.reference import run_reference, task_workdir
from toolr1_env.suite.splits import SUITE_VERSION
from toolr1_env.suite.worlds import get_world

FORMATS = ("csv", "xlsx", "json", "docx", "pdf", "txt")
#: What an 800-character observation can show: the head, and truncate_middle's head + tail.
SEEN = 800
#: Digest of the drafts (template, question, answer, solution) of every split that existed before the long-file
#: family: the four fixed splits in full, seeds 0-299 of the three generated ones. Computed on the code before it.
OLD_SPLITS_DIGEST = "a7055a7eb9321f3982aaa0dabec8f98f2e860cc748ec8b2acde1de121fc8906e"
AGGREGATES = re.compile(r"\.(sum|mean|max|groupby)\(")


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    """A ``$TOOLR1_CACHE``; the fixtures write under its default suite folder, so gym.make reuses the files."""
    return tmp_path_factory.mktemp("toolr1-cache")


@pytest.fixture(scope="module")
def files_eval(cache_root):
    return load_split("files-eval", cache_dir=cache_root / "suite" / f"v{SUITE_VERSION}")


@pytest.fixture(scope="module")
def train_files(cache_root):
    task_set = load_split("train-files", cache_dir=cache_root / "suite" / f"v{SUITE_VERSION}")
    return task_set, [task_set.generate(seed) for seed in range(24)]


def one_per_format(tasks) -> dict:
    found: dict = {}
    for task in tasks:
        found.setdefault(Path(task.files[0]).suffix[1:], task)
    assert set(found) == set(FORMATS), sorted(found)
    return found


def row_count(path: str) -> int:
    """Data rows of the attached table, read the way an agent would (pandas or the ``a | b`` lines)."""
    fmt = Path(path).suffix[1:]
    if fmt == "csv":
        return len(pd.read_csv(path))
    if fmt == "xlsx":
        return len(pd.read_excel(path))
    if fmt == "json":
        return len(json.loads(Path(path).read_text())["records"])
    text = inspect_file(path)
    assert "[cut:" not in text  # the whole table fits inspect_file's 20,000 characters
    return sum(" | " in line for line in text.splitlines()) - 1


def printouts(task) -> list[str]:
    """Every text an agent gets by printing the file: inspect_file, the raw text, pandas' frame, the steps' prints."""
    path = task.files[0]
    texts = [inspect_file(path)]
    if Path(path).suffix in (".csv", ".json", ".txt"):
        texts.append(Path(path).read_text())
    steps = reference_turns(task)[:-1]  # the loading steps, run here to get the frame and what they print
    namespace: dict = {"inspect_file": inspect_file}
    with task_workdir(task):
        for step in steps:
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                exec(step, namespace)
            texts.append(out.getvalue())
    frame = namespace["df"]
    texts += [str(frame), str(frame.head())]
    return texts


def test_every_format_has_a_long_table(files_eval, train_files):
    assert Counter(t.metadata["template"] for t in files_eval.tasks) == {
        "long_table_csv": 6, "long_table_json": 6, "long_table_pdf": 5, "long_table_docx": 5,
        "long_table_xlsx": 5, "long_table_txt": 5,
    }  # fmt: skip
    for tasks in (files_eval.tasks, train_files[1]):
        for fmt, task in one_per_format(tasks).items():
            assert task.level == 1 and len(task.files) == 1
            assert 150 <= row_count(task.files[0]) <= 400, (fmt, task.task_id)


def test_answers_never_show_in_a_printout_of_the_file(files_eval, train_files):
    for task in [*files_eval.tasks, *train_files[1][:12]]:
        for text in printouts(task):
            assert task.answer not in text[:SEEN], (task.task_id, task.answer)
            assert task.answer not in truncate_middle(text, SEEN), (task.task_id, task.answer)


def test_reference_solutions_compute_the_answer(files_eval, train_files):
    task_set, generated = train_files
    for tools, tasks in ((files_eval.tools, files_eval.tasks), (task_set.tools, generated)):
        for task in tasks:
            final = reference_turns(task)[-1]
            assert AGGREGATES.search(final) and task.answer not in task.reference_solution
            answer = run_reference(task, tools)
            assert question_scorer(str(answer), task.answer), (task.task_id, answer, task.answer)


def test_reference_solutions_get_full_reward_in_the_real_env(files_eval):
    tasks = list(one_per_format(files_eval.tasks).values())
    env = ToolR1Env(tasks=files_eval, max_turns=4, max_observation_chars=800)
    try:
        for task in tasks:
            env.reset(options={"task_id": task.task_id})
            for step in reference_turns(task):
                observation, reward, terminated, truncated, info = env.step(step)
                assert info["error_type"] is None, (task.task_id, step, observation)
            assert terminated and reward == pytest.approx(1.2), (task.task_id, info)
            assert question_scorer(info["final_answer"], task.answer) and info["ground_truth"] == task.answer
    finally:
        env.close()


def test_compact_demonstrations_compute_in_code_and_reach_the_answer(files_eval):
    tasks = list(one_per_format(files_eval.tasks).values())
    read_page, inspect = host_tool(files_eval.tools, "read_page"), host_tool(files_eval.tools, "inspect_file")
    scripts = demonstration_scripts(tasks, "compact", read_page, inspect)
    for task, script in zip(tasks, scripts, strict=True):
        assert script == reference_turns(task)  # no copy-from-the-printout script for these templates
        assert "pd." in script[0] or "inspect_file(" in script[0]
        assert AGGREGATES.search(script[-1]) and "final_answer(" in script[-1]
        assert not re.search(r"final_answer\(['\d]", script[-1])  # never a literal answer
    play_scripts(files_eval, tasks, scripts)  # each turn runs cleanly and the episode ends with reward 1.2


def test_splits_are_registered_and_resolve(monkeypatch, cache_root, files_eval):
    assert SPLITS["files-eval"].is_fixed and SPLITS["files-eval"].world == "files-eval"
    assert not SPLITS["train-files"].is_fixed and SPLITS["train-files"].world == "train"
    assert all(SPLITS[name].family == "standard" for name in
               ("validation", "test", "warmup-eval", "level1-eval", "train", "train-easy", "warmup"))  # fmt: skip
    names = {w: {n.lower() for n in get_world(w).all_names()} for w in ("files-eval", "train", "level1-eval")}
    assert not names["files-eval"] & names["train"] and not names["files-eval"] & names["level1-eval"]
    long_names = {t.name for t in long_files.TEMPLATES}
    assert not long_names & {t.name for templates in TEMPLATES_BY_LEVEL.values() for t in templates}
    monkeypatch.setenv("TOOLR1_CACHE", str(cache_root))
    generated = resolve_tasks("train-files")
    assert generated.is_generated and generated.pick(3).metadata["template"] in long_names
    mixed = resolve_tasks("train-easy-files")
    templates = Counter(mixed.pick(seed).metadata["template"] for seed in range(60))
    assert templates.keys() & long_names and templates.keys() - long_names
    env = gym.make("ToolR1-GAIA-v0", tasks="files-eval", max_turns=2)
    try:
        observation, info = env.reset(seed=0)
        assert info["task_id"].startswith("files-eval-") and "attached file" in observation
        assert env.unwrapped.task_set.get(info["task_id"]).files[0].startswith(str(cache_root))
    finally:
        env.close()


def test_older_splits_keep_their_tasks():
    digest = hashlib.sha256()
    for name in ("validation", "test", "warmup-eval", "level1-eval"):
        for template, draft in splits.fixed_drafts(name):
            digest.update(repr((name, template.name, draft.question, draft.answer, draft.solution)).encode())
    for name in ("train", "train-easy", "warmup"):
        for seed in range(300):
            template, draft = splits.generated_draft(SPLITS[name], seed)
            digest.update(repr((name, seed, template.name, draft.question, draft.answer, draft.solution)).encode())
    assert digest.hexdigest() == OLD_SPLITS_DIGEST
