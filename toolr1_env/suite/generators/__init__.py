"""Task templates by level, and drawing one draft from them.

Each level module registers its templates in its own ``TEMPLATES`` list; :data:`TEMPLATES_BY_LEVEL`
gathers them. :func:`draw` picks a template (or takes the one given) and retries with a derived seed
when a template raises :class:`~toolr1_env.suite.generators.base.Skip`.
"""

from __future__ import annotations

import random

from toolr1_env.suite.generators import level0, level1, level2, level3
from toolr1_env.suite.generators.base import STEP_SEPARATOR, Attachment, Draft, Skip, Template
from toolr1_env.suite.world import World

#: Level -> its templates, in registration order.
TEMPLATES_BY_LEVEL: dict[int, tuple[Template, ...]] = {
    0: tuple(level0.TEMPLATES),
    1: tuple(level1.TEMPLATES),
    2: tuple(level2.TEMPLATES),
    3: tuple(level3.TEMPLATES),
}
MAX_ATTEMPTS = 64


def draw(world: World, level: int, seed: str, template: Template | None = None) -> tuple[Template, Draft]:
    """One draft of ``level`` for the string ``seed`` (deterministic), from ``template`` or a random one.

    Raises ``RuntimeError`` when no attempt succeeds (a template that cannot work in this world).
    """
    for attempt in range(MAX_ATTEMPTS):
        rng = random.Random(f"{seed}:{attempt}")
        chosen = template or rng.choice(TEMPLATES_BY_LEVEL[level])
        try:
            return chosen, chosen.make(world, rng)
        except Skip:
            continue
    raise RuntimeError(f"no {level=} draft for seed {seed!r} after {MAX_ATTEMPTS} attempts")


__all__ = ["STEP_SEPARATOR", "TEMPLATES_BY_LEVEL", "Attachment", "Draft", "Skip", "Template", "draw"]
