"""The gazetteers, word lists, given-name variants and built-in alias table the digest reads mentions with.

They are data files shipped in the package (``extractor/digest/data/*.json``), read once at import:

- ``aliases.json``: the built-in alias table ``DEFAULT_ALIASES`` ("variant" -> "canonical").
- ``places.json``: countries, demonyms, capitals, other cities, venues (-> their city) and regions.
- ``words.json``: title, role, institution, source, group and organisation words; quote stopwords.
- ``given_names.json``: groups of given names that are one name; feminine/diminutive endings.
- ``numbers.json``: number words read in counts.

Keys are folded (lower case, no accents), as ``text.norm_key`` makes lookup keys.
"""

from __future__ import annotations

import json
from importlib import resources
from itertools import combinations
from typing import Any

from extractor.matching import SURNAME_PARTICLES

__all__ = ["DATA_FILES", "load_table"]

DATA_FILES = ("aliases.json", "places.json", "words.json", "given_names.json", "numbers.json")


def load_table(name: str) -> dict[str, Any]:
    """One data file of the package (``name`` from ``DATA_FILES``) as a JSON object."""
    data = json.loads(resources.files("extractor.digest").joinpath("data", name).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise TypeError(f"extractor/digest/data/{name} must hold a JSON object")
    return data


def _str_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()}


def _words(value: Any) -> frozenset[str]:
    return frozenset(str(w) for w in value)


_aliases = load_table("aliases.json")
_places = load_table("places.json")
_word_lists = load_table("words.json")
_given = load_table("given_names.json")
_numbers = load_table("numbers.json")

DEFAULT_ALIASES: dict[str, str] = _str_map(_aliases["aliases"])

_COUNTRIES: dict[str, str] = _str_map(_places["countries"])
_DEMONYMS: dict[str, str] = _str_map(_places["demonyms"])
_DEMONYM_OF: dict[str, str] = {}
for _adj, _country in _DEMONYMS.items():
    _DEMONYM_OF.setdefault(_country, "U.S." if _country == "United States" else _adj.capitalize())
# Capitals stand for their governments ("Rome backed ..."); other cities only locate events.
_CAPITALS: dict[str, str] = _str_map(_places["capitals"])
_CITIES: dict[str, str] = {**_CAPITALS, **_str_map(_places["other_cities"])}
_VENUES: dict[str, str] = _str_map(_places["venues"])
_REGIONS = _words(_places["regions"])

_TITLE_WORDS = _words(_word_lists["title"])
_ROLE_WORDS = _words(_word_lists["role"])
_INSTITUTION_WORDS = _words(_word_lists["institution"])
_SOURCE_WORDS = _words(_word_lists["source"])
_GROUP_WORDS = _words(_word_lists["group"])
_ORG_WORDS = _words(_word_lists["organisation"])
_STOPWORDS = _words(_word_lists["quote_stopwords"])
_PARTICLES = SURNAME_PARTICLES
_DETERMINERS = frozenset({"the", "a", "an"})

# Given names that are the same name: nicknames and transliterations (any two of one group match).
_GIVEN_NAME_VARIANTS: tuple[tuple[str, ...], ...] = tuple(tuple(map(str, g)) for g in _given["variants"])
_VARIANT_PAIRS: frozenset[frozenset[str]] = frozenset(
    frozenset({x, y}) for group in _GIVEN_NAME_VARIANTS for x, y in combinations(group, 2)
)
# Feminine and diminutive endings, as transliteration skeletons (ette -> ete, y -> i): a given name plus
# one of these is another person's name.
_GIVEN_NAME_ENDINGS = _words(_given["feminine_endings"])

_NUMBER_WORDS: dict[str, int] = {str(k): int(v) for k, v in _numbers["number_words"].items()}
