"""Invented, pronounceable names for the fictional world (so no answer can come from a model's memory).

Names are built from syllables with a seeded :class:`random.Random`. A :class:`NameBook` hands out names
that are unique within one world and never equal to a *reserved* name (the names of other worlds), so a
question about the training world can never be word for word a question about an evaluation world.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

_ONSETS = (
    "b", "br", "d", "dr", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "r", "s", "st", "t", "tr", "v",
    "z", "th", "sh", "j", "c", "w", "",
)  # fmt: skip
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ai", "ei", "y")
_CODAS = ("", "", "n", "r", "l", "s", "m", "k", "nd", "rn", "x", "th")

CITY_SUFFIXES = ("holm", "ford", "by", "ton", "mere", "wick", "stad", "burg", "vale", "port", "")
COUNTRY_SUFFIXES = ("ia", "land", "mark", "stan", "ora", "heim")
ORG_SUFFIXES = ("Works", "Industries", "Group", "Company", "Brothers", "Collective")
INSTITUTE_PREFIXES = ("Institute of", "Museum of", "Academy of", "University of")
PRODUCT_CODES = ("X", "K", "Z", "Q", "V", "R", "S", "M", "T")
CURRENCY_SUFFIXES = ("mark", "crown", "dal", "ren", "sol", "tal")

#: Lowercase words a name must never be: ``float()`` accepts some (GAIA would score them as numbers) and
#: pandas reads others as missing values or booleans.
_FLOAT_WORDS = frozenset({"nan", "inf", "infinity", "none", "null", "true", "false", "n/a"})


def syllable(rng: random.Random, closed: bool = False) -> str:
    """One random syllable: onset + vowel, plus a coda (often empty) when ``closed``."""
    return rng.choice(_ONSETS) + rng.choice(_VOWELS) + (rng.choice(_CODAS) if closed else "")


def word(rng: random.Random, n_min: int = 2, n_max: int = 3) -> str:
    """A capitalised invented word of ``n_min`` to ``n_max`` syllables (only the last one closed)."""
    n = rng.randint(n_min, n_max)
    text = "".join(syllable(rng, closed=i == n - 1) for i in range(n))
    return text[:1].upper() + text[1:]


@dataclass
class NameBook:
    """Hands out unique names for one world.

    Args:
        rng: the world's random generator.
        reserved: names (any case) that must never be produced, e.g. those of other worlds.
    """

    rng: random.Random
    reserved: frozenset[str] = frozenset()
    used: set[str] = field(default_factory=set)

    def _take(self, make: Callable[[], str]) -> str:
        for _ in range(1000):
            name = make()
            key = name.lower()
            if key in self.used or key in self.reserved or key in _FLOAT_WORDS or len(name) < 4:
                continue
            self.used.add(key)
            return name
        raise RuntimeError("name space exhausted")

    def person(self) -> str:
        """A person's full name, e.g. ``"Ilsa Dravenko"``."""
        return self._take(lambda: f"{word(self.rng, 1, 2)} {word(self.rng, 2, 3)}")

    def city(self) -> str:
        """A city name, e.g. ``"Varnholm"``."""
        return self._take(lambda: word(self.rng, 1, 2) + self.rng.choice(CITY_SUFFIXES))

    def country(self) -> str:
        """A country name, e.g. ``"Quellmark"``."""
        return self._take(lambda: word(self.rng, 1, 2) + self.rng.choice(COUNTRY_SUFFIXES))

    def company(self, suffixes: tuple[str, ...] = ORG_SUFFIXES) -> str:
        """A company name ending in one of ``suffixes``, e.g. ``"Brastow Works"``."""
        return self._take(lambda: f"{word(self.rng, 2, 2)} {self.rng.choice(suffixes)}")

    def institute(self, topic: str) -> str:
        """A non-profit's name on a topic, e.g. ``"Museum of Glass Drenholt"``."""
        return self._take(lambda: f"{word(self.rng, 2, 2)} {self.rng.choice(INSTITUTE_PREFIXES)} {topic}")

    def product(self) -> str:
        """A product name, e.g. ``"Zerin K4"``."""
        return self._take(lambda: f"{word(self.rng, 2, 2)} {self.rng.choice(PRODUCT_CODES)}{self.rng.randint(2, 99)}")

    def currency(self) -> str:
        """A lowercase currency name, e.g. ``"vorlmark"``."""
        return self._take(lambda: word(self.rng, 1, 1).lower() + self.rng.choice(CURRENCY_SUFFIXES))

    def event_stem(self) -> str:
        """A unique stem for a recurring event's name, e.g. ``"Lantern"``-like invented word."""
        return self._take(lambda: word(self.rng, 2, 2))
