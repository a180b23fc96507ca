"""GAIA as the papers report it: which tasks (subsets, published id lists) and which judge.

Published GAIA numbers differ in *what* was scored as much as in the agent:

* **Val-165, exact match.** All 165 validation tasks, scored by the leaderboard's ``question_scorer``
  (``toolr1_env.scoring``): the official rule, and the Tool-R1 paper's set (it uses an LLM judge).
* **Text-only.** Many search-agent papers (Search-o1, WebThinker, WebSailor and their successors) report
  the validation questions without attachments, often with an LLM judge. ``--subset text-only`` keeps the
  tasks that attach no file (127 of the 165 on today's copy). Their "103 questions" are a fixed list that
  also drops questions whose evidence is media named in the text (videos, say); such a list cannot be
  derived from the metadata: pass it as ``--task_ids FILE`` (one task id per line), and the subset is
  exactly that list.
* **The judge.** ``--judge exact`` (default) or ``--judge llm`` (an OpenAI-compatible model named by
  ``--judge_base_url``/``--judge_model``; ``--judge_prompt FILE`` replaces the prompt). The mode, the
  model, the endpoint and the full prompt text (with its SHA-256) are written into ``summary.json``, so a
  judged number always says what judged it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toolr1_env.judge import DEFAULT_JUDGE_PROMPT
from toolr1_env.tasks import Task

SUBSETS = ("all", "text-only")
JUDGES = ("", "exact", "llm")


def read_task_ids(path: str) -> list[str]:
    """Task ids from a file, one per line (blank lines and ``#`` comments ignored)."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"--task_ids: no file {file}")
    ids = [line.split("#", 1)[0].strip() for line in file.read_text().splitlines()]
    ids = [i for i in ids if i]
    if not ids:
        raise ValueError(f"--task_ids: {file} lists no task id")
    return ids


def apply_subset(tasks: Sequence[Task], subset: str, task_ids: str = "") -> list[Task]:
    """The tasks of ``subset`` (``all`` or ``text-only``), restricted to the ids in ``task_ids`` when given.

    Raises ``ValueError`` for an unknown subset, or an id list naming tasks that are not in the set.
    """
    if subset not in SUBSETS:
        raise ValueError(f"--subset must be one of {SUBSETS}, got {subset!r}")
    kept = [t for t in tasks if not t.files] if subset == "text-only" else list(tasks)
    if task_ids:
        wanted = read_task_ids(task_ids)
        known = {t.task_id for t in tasks}
        missing = [i for i in wanted if i not in known]
        if missing:
            raise ValueError(f"--task_ids: {len(missing)} id(s) are not in these tasks, e.g. {missing[:3]}")
        chosen = set(wanted)
        kept = [t for t in kept if t.task_id in chosen]
        if len(kept) < len(chosen):
            raise ValueError(f"--task_ids: {len(chosen) - len(kept)} listed task(s) attach files, which "
                             f"--subset {subset} leaves out")
    if not kept:
        raise ValueError(f"--subset {subset}: no task left")
    return kept


def judge_mode(judge: str, base_url: str, model: str) -> str:
    """``"exact"`` or ``"llm"``: ``--judge``, or ``llm`` when only ``--judge_base_url`` was given (older runs)."""
    if judge not in JUDGES:
        raise ValueError(f"--judge must be exact or llm, got {judge!r}")
    mode = judge or ("llm" if base_url else "exact")
    if mode == "llm" and not (base_url and model):
        raise ValueError("--judge llm needs --judge_base_url and --judge_model")
    if mode == "exact" and (base_url or model):
        raise ValueError("--judge exact takes no --judge_base_url/--judge_model (did you mean --judge llm?)")
    return mode


def judge_prompt(path: str) -> str:
    """The judge prompt: the file's text, or the default; it must use ``{question}``, ``{ground_truth}``,
    ``{prediction}``."""
    if not path:
        return DEFAULT_JUDGE_PROMPT
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"--judge_prompt: no file {file}")
    text = file.read_text()
    missing = [f for f in ("{question}", "{ground_truth}", "{prediction}") if f not in text]
    if missing:
        raise ValueError(f"--judge_prompt: {file} lacks the field(s) {missing}")
    return text


def judge_description(mode: str, base_url: str, model: str, prompt: str,
                      request_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """What ``summary.json`` says about the judge (enough to reproduce or compare a judged number)."""
    if mode == "exact":
        return {"mode": "exact", "scorer": "GAIA leaderboard question_scorer (toolr1_env.scoring)"}
    return {"mode": "llm", "model": model, "base_url": base_url, "prompt": prompt,
            "prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest(),
            "exact_match_shortcut": True, "request_options": request_options or {}}
