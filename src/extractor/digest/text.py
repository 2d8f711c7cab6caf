"""String helpers: folding, lookup keys, transliteration skeletons, country mentions."""

from __future__ import annotations

import re
from functools import lru_cache

import jellyfish

from extractor.digest.tables import _CAPITALS, _COUNTRIES, _DEMONYMS, _DETERMINERS
from extractor.matching import fold


def _fold(text: str) -> str:
    """``matching.fold``, curly apostrophes made straight ("Élysée" -> "elysee", "Italy’s" -> "italy's")."""
    return fold(text, straight_apostrophes=True)


def _norm_key(text: str) -> str:
    """Lookup key: folded, dots dropped, punctuation (but hyphens/apostrophes) to spaces, spaces collapsed."""
    text = _fold(text).replace(".", "")
    text = re.sub(r"[^\w'\- ]+", " ", text)
    return " ".join(text.split())


def _strip_possessive(token: str) -> str:
    return re.sub(r"'s$|'$", "", token)


@lru_cache(maxsize=65536)
def _skeleton(name: str) -> str:
    """Transliteration skeleton: w/v, ph/f, c/k/q, y/i, silent h and doubled letters folded together."""
    s = re.sub(r"[^a-z]", "", _fold(name))
    s = s.replace("wh", "w").replace("w", "v").replace("ph", "f").replace("ck", "k")
    s = s.replace("c", "k").replace("q", "k").replace("y", "i")
    s = re.sub(r"(?<=[^aeiou])h", "", s)
    return re.sub(r"(.)\1+", r"\1", s)


@lru_cache(maxsize=65536)
def _phonetic_key(name: str) -> str:
    skel = _skeleton(name)
    return str(jellyfish.metaphone(skel)).upper() if skel else ""


def _jw(a: str, b: str) -> float:
    return float(jellyfish.jaro_winkler_similarity(a, b))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", _fold(text)).strip("-") or "x"


def _clean_surface(surface: str) -> str:
    text = " ".join(surface.replace("’", "'").split())
    text = text.strip(" \t\"'“”‘«»,;:()[]–—-")
    return re.sub(r"'s$", "", text).strip()


def _drop_determiner(text: str) -> str:
    words = text.split(" ")
    while len(words) > 1 and words[0].casefold() in _DETERMINERS:
        words = words[1:]
    return " ".join(words)


def _countries_in(text: str) -> list[str]:
    """Countries named in a phrase by name, demonym, possessive or capital, in order of appearance."""
    key = _norm_key(text)
    found: list[tuple[int, str]] = []
    for table in (_COUNTRIES, _CAPITALS):
        for name, country in table.items():
            for m in re.finditer(rf"(?<![\w']){re.escape(name)}(?:'s)?(?![\w'])", key):
                found.append((m.start(), country))
    for m in re.finditer(r"[\w'-]+", key):
        demonym = _DEMONYMS.get(_strip_possessive(m.group()))
        if demonym:
            found.append((m.start(), demonym))
    out: list[str] = []
    for _, country in sorted(found):
        if country not in out:
            out.append(country)
    return out


# --------------------------------------------------------------------------- aliases
