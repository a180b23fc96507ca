"""The named worlds of the bundled splits, built once per process and shared by their tools.

Every split is bound to one world. The evaluation splits each get their own small world; the generated
training splits share one larger world whose names exclude every evaluation world's names, so nothing
learnt about the training world's entities answers an evaluation question. Evaluation worlds added after
the training world was fixed (:data:`LATE_WORLDS`) keep the same separation the other way round: reserving
their names in the training world would change every training task, so they reserve the training world's
names (and every other world's) instead.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from toolr1_env.suite.pages import Page, render_pages
from toolr1_env.suite.search import OfflineWeb, SearchResult
from toolr1_env.suite.world import EVAL_SIZE, TRAIN_SIZE, World, WorldSize, build_world


@dataclass(frozen=True)
class WorldSpec:
    """A named world: its seed and size."""

    seed: int
    size: WorldSize


#: Evaluation worlds; their names are reserved (kept out of) the training world.
EVAL_WORLDS: dict[str, WorldSpec] = {
    "validation": WorldSpec(seed=1_001, size=EVAL_SIZE),
    "test": WorldSpec(seed=2_002, size=EVAL_SIZE),
    "level1-eval": WorldSpec(seed=3_003, size=EVAL_SIZE),
    "warmup-eval": WorldSpec(seed=4_004, size=EVAL_SIZE),
}
TRAIN_WORLD = "train"
TRAIN_WORLD_SPEC = WorldSpec(seed=9_009, size=TRAIN_SIZE)
#: Evaluation worlds added later, in order: each reserves the names of every world before it.
LATE_WORLDS: dict[str, WorldSpec] = {
    "files-eval": WorldSpec(seed=5_005, size=EVAL_SIZE),
    # A second training world, for reinforcement learning only (split ``rl-easy``): no demonstration,
    # validation or evaluation task lives in it, so what RL learns there is not a memorised fact.
    "rl": WorldSpec(seed=6_006, size=TRAIN_SIZE),
}
WORLD_NAMES = (*EVAL_WORLDS, TRAIN_WORLD, *LATE_WORLDS)


@dataclass(frozen=True)
class WorldBundle:
    """A built world with its rendered pages and its search backend."""

    name: str
    world: World
    pages: tuple[Page, ...]
    web: OfflineWeb


@functools.cache
def get_world(name: str) -> World:
    """The world called ``name`` (one of :data:`WORLD_NAMES`), built once per process."""
    if name in EVAL_WORLDS:
        spec = EVAL_WORLDS[name]
        return build_world(spec.seed, spec.size)
    if name == TRAIN_WORLD:
        reserved = frozenset(n.lower() for other in EVAL_WORLDS for n in get_world(other).all_names())
        return build_world(TRAIN_WORLD_SPEC.seed, TRAIN_WORLD_SPEC.size, reserved)
    if name in LATE_WORLDS:
        earlier = WORLD_NAMES[: WORLD_NAMES.index(name)]
        reserved = frozenset(n.lower() for other in earlier for n in get_world(other).all_names())
        return build_world(LATE_WORLDS[name].seed, LATE_WORLDS[name].size, reserved)
    raise KeyError(f"unknown world {name!r}; known: {WORLD_NAMES}")


@functools.cache
def get_bundle(name: str) -> WorldBundle:
    """The world called ``name`` with its pages and BM25 search index, built once per process."""
    world = get_world(name)
    pages = tuple(render_pages(world))
    return WorldBundle(name=name, world=world, pages=pages, web=OfflineWeb(pages))


class NamedWorldWeb:
    """A :class:`~toolr1_env.suite.search.WebBackend` for a named world, built on first use.

    It pickles as just the world's name, so tools bound to it are cheap to send to a worker process.
    """

    def __init__(self, name: str) -> None:
        if name not in WORLD_NAMES:
            raise KeyError(f"unknown world {name!r}; known: {WORLD_NAMES}")
        self.name = name

    def search(self, query: str, max_results: int) -> list[SearchResult]:
        """Search the world's pages (see :meth:`OfflineWeb.search`)."""
        return get_bundle(self.name).web.search(query, max_results)

    def read(self, url: str) -> str:
        """Read one of the world's pages (see :meth:`OfflineWeb.read`)."""
        return get_bundle(self.name).web.read(url)

    def __repr__(self) -> str:
        return f"NamedWorldWeb({self.name!r})"
