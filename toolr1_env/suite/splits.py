"""The bundled splits and :func:`load_split`: one call gives a :class:`~toolr1_env.tasks.TaskSet`.

Fixed splits (``validation``, ``test``, ``warmup-eval``, ``level1-eval``, ``files-eval``) are generated from
their split name at load time, always the same: for each level, the level's templates are used in turn so
every template appears, each task draws its entities from a seed derived from the split name and its index,
and repeated questions are redrawn. Generated splits (``train``, ``train-easy``, ``warmup``, ``train-files``,
``train-easy-files``) make one task per integer seed (``train-<seed>``) in the training world, which shares no
entity name with any evaluation world; ``rl-easy`` makes ``train-easy``'s mix in a second training world,
``rl``, whose names no other world uses (RL's own: no demonstration, validation or evaluation task is in it);
a generated draft whose question equals a fixed split's question (possible only for world-free warm-up
questions) is redrawn, so generated and fixed questions never overlap.

A split draws from one template family (:data:`~toolr1_env.suite.generators.FAMILIES`): the first seven and
``rl-easy`` from ``standard``; ``train-files`` and ``files-eval`` from ``long-files`` (one attached table of
150-400 rows per task, in every format, whose answer must be computed: copying from a printout cannot work);
``train-easy-files`` from both (``train-easy``'s mix with the long-file templates among its level-1 ones).

Attached files are written when a task is made, only if not already there, under
``<cache>/<split>/<task_id>/`` where ``<cache>`` is ``cache_dir`` or ``$TOOLR1_CACHE/suite/v<N>``
(default ``~/.cache/toolr1/suite/v<N>``); ``N`` is :data:`SUITE_VERSION`, bumped whenever generation changes.
"""

from __future__ import annotations

import functools
import hashlib
import os
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from toolr1_env.suite.files import write_document
from toolr1_env.suite.generators import FAMILIES, Draft, Template, draw
from toolr1_env.suite.generators.base import STEP_SEPARATOR
from toolr1_env.suite.inspect_file import inspect_file
from toolr1_env.suite.search import make_visit_page, make_web_tools
from toolr1_env.suite.worlds import TRAIN_WORLD, NamedWorldWeb, get_world
from toolr1_env.tasks import Task, TaskSet
from toolr1_env.tools import sandbox_tool

#: Bump when generation changes, so cached files of the old suite are never reused.
SUITE_VERSION = 1
#: GAIA validation's level mix (53 / 86 / 26 of 165).
GAIA_MIX: dict[int, int] = {1: 53, 2: 86, 3: 26}


@dataclass(frozen=True)
class SplitSpec:
    """A bundled split: fixed (``counts`` per level) or generated (``weights`` per level), drawing from the
    template family ``family``."""

    name: str
    world: str
    description: str
    counts: Mapping[int, int] | None = None
    weights: Mapping[int, float] | None = None
    family: str = "standard"

    def templates(self, level: int) -> tuple[Template, ...]:
        """The templates this split draws its tasks of ``level`` from."""
        return FAMILIES[self.family][level]

    @property
    def is_fixed(self) -> bool:
        """True for a fixed list of tasks, False for an unlimited generated stream."""
        return self.counts is not None


#: All bundled splits by name.
SPLITS: dict[str, SplitSpec] = {
    spec.name: spec
    for spec in (
        SplitSpec("validation", "validation", "165 tasks, GAIA's level mix (53/86/26)", counts=GAIA_MIX),
        SplitSpec("test", "test", "165 tasks, GAIA's level mix (53/86/26)", counts=GAIA_MIX),
        SplitSpec("warmup-eval", "warmup-eval", "64 level-0 tasks", counts={0: 64}),
        SplitSpec("level1-eval", "level1-eval", "64 tasks: 32 level 0 + 32 level 1", counts={0: 32, 1: 32}),
        SplitSpec("train", TRAIN_WORLD, "generated, levels 1-3 in GAIA's proportions",
                  weights={level: n / 165 for level, n in GAIA_MIX.items()}),
        SplitSpec("train-easy", TRAIN_WORLD, "generated, half level 0, half level 1", weights={0: 0.5, 1: 0.5}),
        SplitSpec("warmup", TRAIN_WORLD, "generated, level 0 only", weights={0: 1.0}),
        SplitSpec("files-eval", "files-eval", "32 level-1 tasks on long attached tables (150-400 rows)",
                  counts={1: 32}, family="long-files"),
        SplitSpec("train-files", TRAIN_WORLD, "generated, level 1 only: long attached tables (150-400 rows)",
                  weights={1: 1.0}, family="long-files"),
        SplitSpec("train-easy-files", TRAIN_WORLD, "generated, train-easy's mix plus the long-table tasks (a third "
                  "of level 1)", weights={0: 0.5, 1: 0.5}, family="standard+long-files"),
        SplitSpec("rl-easy", "rl", "generated, train-easy's mix in a world of its own that no demonstration, "
                  "validation or evaluation task uses (an RL pool: --rl_tasks rl-easy)", weights={0: 0.5, 1: 0.5}),
    )
}  # fmt: skip


def default_cache_dir() -> Path:
    """Where task files go when ``cache_dir`` is not given: ``$TOOLR1_CACHE/suite/v<N>`` or the home default."""
    root = os.environ.get("TOOLR1_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "toolr1")
    return Path(root) / "suite" / f"v{SUITE_VERSION}"


def make_task(spec: SplitSpec, task_id: str, template: Template, draft: Draft, cache_dir: Path, **meta: object) -> Task:
    """Turn a draft into a :class:`Task`, writing its attached files under ``cache_dir`` if missing."""
    folder = cache_dir / spec.name / task_id
    paths = []
    for attachment in draft.attachments:
        path = folder / attachment.name
        if not path.exists():
            write_document(attachment.document, path)
        paths.append(str(path))
    metadata = {
        "split": spec.name,
        "template": template.name,
        "world": spec.world,
        "world_seed": get_world(spec.world).seed,
        "n_steps": len(draft.steps),
        "suite_version": SUITE_VERSION,
        **meta,
    }
    return Task(task_id=task_id, question=draft.question, answer=draft.answer, level=template.level,
                files=tuple(paths), reference_solution=draft.solution, metadata=metadata)  # fmt: skip


@functools.cache
def fixed_drafts(name: str) -> tuple[tuple[Template, Draft], ...]:
    """The drafts of the fixed split ``name``, in task order (no files written)."""
    spec = SPLITS[name]
    if spec.counts is None:
        raise ValueError(f"split {name!r} is generated, not fixed")
    world = get_world(spec.world)
    jobs: list[tuple[int, Template]] = []
    for level, count in sorted(spec.counts.items()):
        templates = list(spec.templates(level))
        random.Random(f"{name}:templates:{level}").shuffle(templates)
        jobs += [(level, templates[i % len(templates)]) for i in range(count)]
    random.Random(f"{name}:order").shuffle(jobs)
    drafts: list[tuple[Template, Draft]] = []
    questions: set[str] = set()
    for index, (level, template) in enumerate(jobs):
        for retry in range(100):
            _, draft = draw(world, level, f"{name}:{index}:{retry}", template)
            if draft.question not in questions:
                break
        else:
            raise RuntimeError(f"{name}: no new question for task {index}")
        questions.add(draft.question)
        drafts.append((template, draft))
    return tuple(drafts)


@functools.lru_cache(maxsize=1)
def fixed_questions() -> frozenset[str]:
    """Every question of every fixed split; generated splits never produce one of them."""
    return frozenset(d.question for name, spec in SPLITS.items() if spec.is_fixed for _, d in fixed_drafts(name))


def _fixed_tasks(spec: SplitSpec, cache_dir: Path) -> list[Task]:
    return [
        make_task(spec, f"{spec.name}-{index:04d}", template, draft, cache_dir)
        for index, (template, draft) in enumerate(fixed_drafts(spec.name))
    ]


def _choose_level(weights: Mapping[int, float], rng: random.Random) -> int:
    levels = sorted(weights)
    return rng.choices(levels, weights=[weights[level] for level in levels])[0]


def generated_draft(spec: SplitSpec, seed: int) -> tuple[Template, Draft]:
    """The template and draft of task ``seed`` of the generated split ``spec`` (no files written)."""
    if spec.weights is None:
        raise ValueError(f"split {spec.name!r} is fixed, not generated")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    level = _choose_level(spec.weights, random.Random(f"{spec.name}:level:{seed}"))
    reserved = fixed_questions()
    for retry in range(100):
        template, draft = draw(
            get_world(spec.world),
            level,
            f"{spec.name}:{seed}" + (f":{retry}" if retry else ""),
            templates=spec.templates(level),
        )
        if draft.question not in reserved:
            return template, draft
    raise RuntimeError(f"{spec.name}: seed {seed} only gives questions of fixed splits")


def generate_task(spec: SplitSpec, seed: int, cache_dir: Path) -> Task:
    """Task ``seed`` of the generated split ``spec`` (id ``<split>-<seed>``), files written if missing."""
    template, draft = generated_draft(spec, seed)
    return make_task(spec, f"{spec.name}-{seed}", template, draft, cache_dir, seed=seed)


def split_tools(spec: SplitSpec) -> tuple:
    """The tools of a split: ``web_search`` and ``read_page`` over its world, and ``inspect_file``."""
    web_search, read_page = make_web_tools(NamedWorldWeb(spec.world))
    return (web_search, read_page, sandbox_tool(inspect_file))


def load_split(name: str, *, cache_dir: str | os.PathLike[str] | None = None) -> TaskSet:
    """Load a bundled split as a :class:`~toolr1_env.tasks.TaskSet` bound to its world's tools.

    Args:
        name: one of :data:`SPLITS` (``validation``, ``test``, ``warmup-eval``, ``level1-eval``,
            ``files-eval``, ``train``, ``train-easy``, ``warmup``, ``train-files``, ``train-easy-files``,
            ``rl-easy``).
        cache_dir: folder for attached files (default :func:`default_cache_dir`).

    Fixed splits come back with their tasks (files written on first load). Generated splits come back
    empty, with ``generate(seed)`` and ``lookup("<split>-<seed>")``.
    """
    if name not in SPLITS:
        raise KeyError(f"unknown split {name!r}; bundled splits: {sorted(SPLITS)}")
    spec = SPLITS[name]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    tools = split_tools(spec)
    hidden = (make_visit_page(NamedWorldWeb(spec.world)),)  # the real-web name, not listed in the prompt
    if spec.is_fixed:
        return TaskSet(name=name, tasks=_fixed_tasks(spec, root), tools=tools, hidden_tools=hidden)

    def generate(seed: int) -> Task:
        return generate_task(spec, seed, root)

    def lookup(task_id: str) -> Task:
        prefix, _, number = task_id.rpartition("-")
        if prefix != name or not number.isdigit() or str(int(number)) != number:
            raise KeyError(f"{task_id!r} is not an id of split {name!r} (expected '{name}-<seed>')")
        return generate(int(number))

    return TaskSet(name=name, tools=tools, generate=generate, lookup=lookup, hidden_tools=hidden)


def fingerprint(tasks: Iterable[Task]) -> str:
    """A SHA-256 over tasks (id, question, answer, level, solution) and their files' names and bytes.

    Log it with evaluation results: equal fingerprints mean the very same tasks and files were used.
    """
    digest = hashlib.sha256()
    for task in tasks:
        digest.update(repr((task.task_id, task.question, task.answer, task.level, task.reference_solution)).encode())
        for path in task.files:
            digest.update(os.path.basename(path).encode() + b"\0" + Path(path).read_bytes())
    return digest.hexdigest()


def split_steps(solution: str) -> list[str]:
    """The steps of a reference solution (split on the ``# --- step ---`` line)."""
    return solution.split(STEP_SEPARATOR)
