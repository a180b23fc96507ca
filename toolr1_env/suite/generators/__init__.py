"""Task templates by level, and drawing one draft from them.

Each level module registers its templates in its own ``TEMPLATES`` list; :data:`TEMPLATES_BY_LEVEL`
gathers them. :data:`FAMILIES` names the template sets a split may draw from: ``standard`` (the levels'
templates), ``long-files`` (:mod:`~toolr1_env.suite.generators.long_files`: level 1, one long table per
task) and ``standard+long-files`` (both). :func:`draw` picks a template (or takes the one given) and
retries with a derived seed when a template raises :class:`~toolr1_env.suite.generators.base.Skip`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from toolr1_env.suite.generators import level0, level1, level2, level3, long_files
from toolr1_env.suite.generators.base import STEP_SEPARATOR, Attachment, Draft, Skip, Template
from toolr1_env.suite.world import World

#: Level -> its templates, in registration order.
TEMPLATES_BY_LEVEL: dict[int, tuple[Template, ...]] = {
    0: tuple(level0.TEMPLATES),
    1: tuple(level1.TEMPLATES),
    2: tuple(level2.TEMPLATES),
    3: tuple(level3.TEMPLATES),
}
#: Template sets by name, level -> templates. The long-file templates live apart from
#: :data:`TEMPLATES_BY_LEVEL` so that the splits drawing from ``standard`` keep their tasks seed for seed.
FAMILIES: dict[str, Mapping[int, tuple[Template, ...]]] = {
    "standard": TEMPLATES_BY_LEVEL,
    "long-files": {1: tuple(long_files.TEMPLATES)},
    "standard+long-files": {**TEMPLATES_BY_LEVEL, 1: TEMPLATES_BY_LEVEL[1] + tuple(long_files.TEMPLATES)},
}
MAX_ATTEMPTS = 64


def draw(
    world: World, level: int, seed: str, template: Template | None = None, templates: Sequence[Template] | None = None
) -> tuple[Template, Draft]:
    """One draft of ``level`` for the string ``seed`` (deterministic), from ``template`` or a random one of
    ``templates`` (default: the level's :data:`TEMPLATES_BY_LEVEL`).

    Raises ``RuntimeError`` when no attempt succeeds (a template that cannot work in this world).
    """
    pool = TEMPLATES_BY_LEVEL[level] if templates is None else templates
    for attempt in range(MAX_ATTEMPTS):
        rng = random.Random(f"{seed}:{attempt}")
        chosen = template or rng.choice(pool)
        try:
            return chosen, chosen.make(world, rng)
        except Skip:
            continue
    raise RuntimeError(f"no {level=} draft for seed {seed!r} after {MAX_ATTEMPTS} attempts")


__all__ = ["FAMILIES", "STEP_SEPARATOR", "TEMPLATES_BY_LEVEL", "Attachment", "Draft", "Skip", "Template", "draw"]
