"""benchmarks/first_moves.py: sorting first actions into moves, and the table it reads off a run folder."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from benchmarks import first_moves

SELECT = {"select_tasks": "train-easy@200000", "eval_level": 1, "select_size": 48}


@pytest.mark.parametrize(("code", "move"), [
    ("print(read_page('Abyswick'))", "web"),
    ("hits = web_search('Abyswick mayor')\nprint(hits)", "web"),
    ("print(visit_page('https://wiki.toolr1/Abyswick', page=2))", "web"),
    ("print(inspect_file('stock.xlsx'))", "file"),
    ("import pandas as pd\nfinal_answer(int(pd.read_excel('d.xlsx')['Amount'].sum()))", "file"),
    ("with open('notes.txt') as f:\n    print(f.read())", "file"),
    ("final_answer(round(2944 / 84))", "answer"),
    ("print(Jagir Academy of Clocks)", "other"),
    ("x = 3 * 4", "other"),
])
def test_first_move_sorts_an_action_by_the_first_kind_of_tool_it_calls(code: str, move: str) -> None:
    assert first_moves.first_move(code) == move


def test_the_references_first_moves_are_web_or_file_at_level_1_and_answers_at_level_0() -> None:
    level1 = first_moves.needed_moves(SELECT)
    assert len(level1) == 48
    assert Counter(level1.values()) == {"web": 35, "file": 13}
    level0 = first_moves.needed_moves({**SELECT, "eval_level": 0, "select_size": 12})
    assert set(level0.values()) == {"answer"}


def _episode(task_id: str, action: str, correct: bool) -> str:
    return json.dumps({"task_id": task_id, "correct": correct, "turns": [{"action": action}]}) + "\n"


def test_a_run_folders_scorings_count_moves_success_and_agreement(tmp_path: Path) -> None:
    needed = first_moves.needed_moves(SELECT)
    web = [t for t, m in needed.items() if m == "web"][:3]
    file = [t for t, m in needed.items() if m == "file"][:1]
    grpo = tmp_path / "bench" / "seed2" / "grpo"
    (grpo / "episodes").mkdir(parents=True)
    (grpo / "args.json").write_text(json.dumps(SELECT))
    (grpo / "episodes" / "select-0.jsonl").write_text(
        _episode(web[0], "print(read_page('A'))", True) + _episode(web[1], "print(read_page('B'))", True)
        + _episode(web[2], "print(read_page('C'))", False) + _episode(file[0], "print(inspect_file('f.csv'))", True))
    (grpo / "episodes" / "select-10.jsonl").write_text(  # iteration 10 sorts after 2, not after 1
        _episode(web[0], "final_answer(7)", False) + _episode(web[1], "print(inspect_file('B'))", False)
        + _episode(web[2], "print(read_page('C'))", True) + _episode(file[0], "print(inspect_file('f.csv'))", True))
    (grpo / "episodes" / "select-2.jsonl").write_text(_episode(web[0], "print(read_page('A'))", True))

    start, middle, end = first_moves.scorings(tmp_path / "bench")
    assert (start.seed, start.iteration, middle.iteration, end.iteration) == (2, 0, 2, 10)
    assert (start.episodes, start.correct, start.agree) == (4, 3, 4)
    assert start.moves == {"web": 3, "file": 1, "answer": 0, "other": 0}
    assert (end.episodes, end.correct, end.agree) == (4, 2, 2)
    assert end.moves == {"web": 1, "file": 2, "answer": 1, "other": 0}

    table = first_moves.main(["--runs_dirs", str(tmp_path / "bench")])
    assert "| bench | 2 | 0 | 75.0 | 75 | 25 | 0 | 0 | 100 |" in table
    assert "| bench | 2 | 10 | 50.0 | 25 | 50 | 25 | 0 | 50 |" in table


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="select_tasks"):
        first_moves.scorings(tmp_path)
    foreign = tmp_path / "select-0.jsonl"
    foreign.write_text(_episode("rl-easy-3", "final_answer(1)", False))
    with pytest.raises(KeyError):
        first_moves.score_file(foreign, first_moves.needed_moves(SELECT), 0, 0)
    with pytest.raises(SystemExit, match="runs_dirs"):
        first_moves.main([])


def test_a_scoring_a_killed_run_left_empty_is_a_row_of_zeros(tmp_path: Path) -> None:
    grpo = tmp_path / "cut" / "seed0" / "grpo"
    (grpo / "episodes").mkdir(parents=True)
    (grpo / "args.json").write_text(json.dumps(SELECT))
    (grpo / "episodes" / "select-0.jsonl").write_text("")
    (empty,) = first_moves.scorings(tmp_path / "cut")
    assert (empty.episodes, empty.correct, empty.agree) == (0, 0, 0)
    assert "| cut | 0 | 0 | 0.0 | 0 | 0 | 0 | 0 | 0 |" in first_moves.table({"cut": [empty]})
