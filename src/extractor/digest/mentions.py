"""Reading one mention (an actor, speaker or holder as written) into a kind, a key and a name."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from extractor.digest.names import _AliasTable, _Parsed
from extractor.digest.tables import (
    _CAPITALS,
    _CITIES,
    _COUNTRIES,
    _DEMONYM_OF,
    _DEMONYMS,
    _DETERMINERS,
    _GROUP_WORDS,
    _INSTITUTION_WORDS,
    _ORG_WORDS,
    _PARTICLES,
    _REGIONS,
    _ROLE_WORDS,
    _SOURCE_WORDS,
    _TITLE_WORDS,
    _VENUES,
)
from extractor.digest.text import (
    _clean_surface,
    _countries_in,
    _drop_determiner,
    _norm_key,
    _strip_possessive,
)


@dataclass
class _Mention:
    article_id: str
    surface: str
    role: str
    parsed: _Parsed


def _is_name_token(token: str) -> bool:
    if token.casefold() in _PARTICLES:
        return True
    if not token[:1].isupper() or not re.fullmatch(r"[^\W\d_][\w'.-]*", token):
        return False
    # All-capitals words of two or more letters are acronyms (NATO, TASS), not names; "J." is an initial.
    letters = re.sub(r"[^A-Za-z]", "", token)
    return not (len(letters) >= 2 and letters.isupper())


def _person_shape(tokens: Sequence[str]) -> bool:
    if not 1 <= len(tokens) <= 5 or not all(_is_name_token(t) for t in tokens):
        return False
    if tokens[0].casefold() in _PARTICLES or tokens[-1].casefold() in _PARTICLES:
        return False
    folded = [_strip_possessive(_norm_key(t)) for t in tokens]
    if any(t in _ORG_WORDS or t in _DETERMINERS for t in folded):
        return False
    joined = " ".join(folded)
    return joined not in _COUNTRIES and joined not in _CITIES and joined not in _VENUES


def _split_name(key_tokens: Sequence[str]) -> tuple[str, str]:
    """(first name, surname) of folded name tokens; particles start the surname ("von der leyen")."""
    if len(key_tokens) == 1:
        return "", key_tokens[0]
    start = len(key_tokens) - 1
    while start > 1 and key_tokens[start - 1] in _PARTICLES:
        start -= 1
    return key_tokens[0], " ".join(key_tokens[start:])


def _strip_title(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Split a leading run of title/role words off a name: (title tokens, rest)."""
    i = 0
    while i < len(tokens):
        multi = next(
            (n for n in (3, 2) if _strip_possessive(_norm_key(" ".join(tokens[i : i + n]))) in _COUNTRIES),
            0,
        )
        if multi and i + multi <= len(tokens):
            i += multi
            continue
        raw = _norm_key(tokens[i])
        word = _strip_possessive(raw)
        possessive = raw != word
        is_place = word in _COUNTRIES or word in _DEMONYMS or word in _CAPITALS
        is_acronym = possessive and tokens[i][:1].isupper() and word.isalpha()
        if word in _TITLE_WORDS or is_place or (possessive and is_acronym):
            i += 1
            continue
        break
    return tokens[:i], tokens[i:]


def _parse(surface: str, aliases: _AliasTable) -> _Parsed:
    steps: list[tuple[str, str]] = []
    text = _clean_surface(surface)
    text, why = aliases.resolve(text)
    if why is None:
        text2, why = aliases.resolve(_drop_determiner(text))
        if why is not None:
            text = text2
    if why is not None:
        steps.append(("alias", why))
    text = _drop_determiner(text)
    key = _norm_key(text)
    if key in _COUNTRIES:
        return _Parsed("country", _COUNTRIES[key], _COUNTRIES[key], tuple(steps))
    if key in _REGIONS:
        return _Parsed("place", key, text, tuple(steps))
    if key in _CITIES or key in _VENUES:
        city = _VENUES.get(key, key)
        country = _CITIES.get(city, "")
        name = " ".join(w.capitalize() for w in key.split())
        return _Parsed("place", key, name, tuple(steps), (country,) if country else ())
    words = [_strip_possessive(w) for w in key.split()]
    countries = tuple(_countries_in(text))
    if any(w in _SOURCE_WORDS for w in words):
        return _Parsed("source", key, text, tuple(steps), countries)
    if any(w in _INSTITUTION_WORDS for w in words):
        return _institution(text, key, words, steps, countries)

    head, _, tail = text.partition(",")
    tokens = head.split()
    title, rest = _strip_title(tokens)
    if (
        tail
        and _person_shape(tokens)
        and all(_norm_key(t) in _TITLE_WORDS or _countries_in(t) for t in tail.split())
    ):
        title, rest = tail.split(), tokens
    if rest and _person_shape(rest):
        name = " ".join(rest)
        if title:
            steps.append(("title-stripped", f"stripped '{' '.join(title)}'"))
            name, why = aliases.resolve(name)
            if why is not None:
                steps.append(("alias", why))
        affiliation = tuple(_countries_in(" ".join(title)))
        key_tokens = _norm_key(name).split()
        if len(key_tokens) >= 2:
            given, surname = _split_name(key_tokens)
            return _Parsed("person", " ".join(key_tokens), name, tuple(steps), affiliation, given, surname)
        single = key_tokens[0] if key_tokens else ""
        if single and single not in _GROUP_WORDS:
            return _Parsed("single", single, name, tuple(steps), affiliation, "", single)
    if not rest and title and any(_strip_possessive(_norm_key(t)) in _ROLE_WORDS for t in title):
        return _Parsed("role", key, text, tuple(steps), countries)
    if countries or any(w in _GROUP_WORDS for w in words):
        return _Parsed("group", key, text, tuple(steps), countries)
    return _Parsed("other", key, text, tuple(steps), countries)


def _institution(
    text: str, key: str, words: list[str], steps: list[tuple[str, str]], countries: tuple[str, ...]
) -> _Parsed:
    if len(countries) != 1:
        return _Parsed("institution", key, text, tuple(steps), countries)
    # "Italy's government", "the government of Italy" and "the Italian government" share one key.
    drop = {w for w in words if w in _DEMONYMS or w in _COUNTRIES or w in _CAPITALS}
    rest = [w for w in words if w not in drop]
    while rest and rest[-1] in {"of", "in", "from"}:
        rest.pop()
    while rest and rest[0] in _DETERMINERS:
        rest.pop(0)
    country = countries[0]
    name = f"{_DEMONYM_OF.get(country, country)} {' '.join(rest)}".strip()
    return _Parsed("institution", _norm_key(name), name, tuple(steps), countries)
