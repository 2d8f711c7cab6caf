"""Person names: the alias table and the rules that decide two full names are one person's.

Two full person names merge when the surnames are compatible (equal, an alias pair, or the same
phonetic key -- metaphone of a transliteration skeleton that folds w/v, c/k, y/i, doubled letters --
and Jaro-Winkler >= ``NAME_JW_MIN`` on the names or their skeletons) and the given names are
compatible. Given names never match by similarity alone (John/Joan, Alexander/Alexandra): they must
be equal, an initial of the other ("S. Witkoff", rule ``initial``; only when every full name the
initial fits is one person), a known variant pair (the small built-in table ``data/given_names.json``:
Steve/Steven/Stephen, Volodymyr/Vladimir/Wolodymyr ...; rule ``name-variant``; or a pair derived
from the alias table, rule ``alias``), or equal as transliteration skeletons (Eric/Erik, rule
``skeleton``); a pair where one is the other plus a feminine/diminutive ending (Paul/Paula,
Daniel/Danielle) never matches. A merge's rule joins the given-name and surname rules
("name-variant+phonetic+similarity"); its score is the weaker of the two parts (a phonetic surname
match scores the Jaro-Winkler similarity of the surnames as written, Witkoff/Vitkoff 0.90).
Alias merges name the table they come from: "built-in alias table" (``DEFAULT_ALIASES``, recorded in
digest.json as ``source.builtin_aliases``) or "user alias table" (``--aliases``, ``source.aliases``).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from extractor.digest.tables import _GIVEN_NAME_ENDINGS, _VARIANT_PAIRS, DEFAULT_ALIASES
from extractor.digest.text import _jw, _norm_key, _phonetic_key, _skeleton
from extractor.errors import ConfigError

NAME_JW_MIN = 0.85


@dataclass(frozen=True)
class _Parsed:
    kind: str  # person | single | country | place | institution | source | group | role | other
    key: str
    name: str
    steps: tuple[tuple[str, str], ...] = ()
    countries: tuple[str, ...] = ()
    given: str = ""
    surname: str = ""


def load_aliases(path: Path | str) -> dict[str, str]:
    """Read an alias file: a TOML ``[aliases]`` table of ``"variant name" = "canonical name"``.

    Raises ConfigError (one line) when the file is unreadable, not TOML or not such a table.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        why = (
            f"alias file {path} is not UTF-8: {exc.reason}"
            if isinstance(exc, UnicodeDecodeError)
            else f"cannot read alias file {path}: {exc.strerror or exc}"
        )
        raise ConfigError(why) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"alias file {path} is not valid TOML: {exc}") from exc
    table = data.get("aliases")
    if not isinstance(table, dict):
        raise ConfigError(f'alias file {path}: needs an [aliases] table of "variant" = "canonical" strings')
    out: dict[str, str] = {}
    for variant, canonical in table.items():
        if not isinstance(canonical, str):
            raise ConfigError(f"alias file {path}: value of {variant!r} must be a string, got {canonical!r}")
        if not variant.strip() or not canonical.strip():
            raise ConfigError(f"alias file {path}: empty name in {variant!r} = {canonical!r}")
        out[variant] = canonical
    return out


BUILTIN_ALIAS_TABLE = "built-in alias table"
USER_ALIAS_TABLE = "user alias table"


def _table_label(origins: Iterable[str]) -> str:
    found = sorted(set(origins))
    return found[0] if len(found) == 1 else " + ".join(found)


@dataclass
class _AliasTable:
    mapping: dict[str, str]  # _norm_key(variant) -> canonical display
    # pairs of folded name parts (Volodymyr/Vladimir) -> the table they come from
    name_variants: dict[frozenset[str], str]
    origin: dict[str, str] = field(default_factory=dict)  # _norm_key(variant) -> the table it comes from

    @classmethod
    def build(cls, aliases: Mapping[str, str] | None) -> _AliasTable:
        user = dict(aliases or {})
        merged = {**DEFAULT_ALIASES, **user}
        mapping: dict[str, str] = {}
        origin: dict[str, str] = {}
        for variant, canonical in merged.items():
            if _norm_key(variant) == _norm_key(canonical):
                mapping.pop(_norm_key(variant), None)
                continue
            mapping[_norm_key(variant)] = canonical
            origin[_norm_key(variant)] = USER_ALIAS_TABLE if variant in user else BUILTIN_ALIAS_TABLE
        table = cls(mapping, {}, origin)
        for variant, canonical in merged.items():
            a, b = _norm_key(variant).split(), _norm_key(canonical).split()
            if not a or not b or a == b or _norm_key(variant) not in mapping:
                continue
            # "Zelenskyy" = "Zelensky" pairs name parts; so does "Vladimir X" = "Volodymyr X" (first names).
            single = len(a) == len(b) == 1
            first_names = len(a) >= 2 and len(b) >= 2 and a[0] != b[0] and _surname_match(a[-1], b[-1], table)
            if single or first_names:
                table.name_variants[frozenset({a[0], b[0]})] = origin[_norm_key(variant)]
        return table

    def variants_of(self, a: str, b: str) -> str | None:
        """The table that pairs name parts ``a`` and ``b`` ("built-in alias table"), or None."""
        return self.name_variants.get(frozenset({a, b}))

    def resolve(self, text: str) -> tuple[str, str | None]:
        seen: set[str] = set()
        original = text
        origins: list[str] = []
        while (key := _norm_key(text)) in self.mapping and key not in seen:
            seen.add(key)
            origins.append(self.origin.get(key, BUILTIN_ALIAS_TABLE))
            text = self.mapping[key]
        if text == original:
            return text, None
        return text, f"{_table_label(origins)}: '{original}' -> '{text}'"


def builtin_aliases(aliases: Mapping[str, str] | None = None) -> dict[str, str]:
    """The entries of ``DEFAULT_ALIASES`` in effect under the user's ``aliases`` (not overridden or off)."""
    user = {_norm_key(k) for k in aliases or {}}
    return {k: v for k, v in DEFAULT_ALIASES.items() if _norm_key(k) not in user}


# --------------------------------------------------------------------------- parsing mentions


@dataclass(frozen=True)
class _PartMatch:
    rule: str  # equal | alias | phonetic (surnames); equal | initial | variant | alias | skeleton (given)
    score: float
    detail: str


def _part_match(a: str, b: str, aliases: _AliasTable) -> _PartMatch | None:
    """Surname parts: equal, an alias pair, or the same phonetic key with Jaro-Winkler >= ``NAME_JW_MIN``."""
    if a == b:
        return _PartMatch("equal", 1.0, "")
    if (table := aliases.variants_of(a, b)) is not None:
        x, y = sorted((a, b))
        return _PartMatch("alias", 1.0, f"{table} variants {x}/{y}")
    ka, kb = _phonetic_key(a), _phonetic_key(b)
    raw, skel = _jw(a, b), _jw(_skeleton(a), _skeleton(b))
    if ka and ka == kb and max(raw, skel) >= NAME_JW_MIN:
        # The score is the similarity of the surnames as written (Witkoff/Vitkoff 0.90), not of their
        # skeletons (equal by construction when the phonetic keys are): a merge never claims 1.00 for a
        # spelling difference.
        return _PartMatch(
            "phonetic", round(raw, 2), f"{a}/{b} jw={raw:.2f}, skeleton jw={skel:.2f}, key={ka}"
        )
    return None


def _is_initial(given: str) -> bool:
    return len(given) == 1 and given.isalpha()


def _gendered_pair(a: str, b: str) -> str | None:
    """The ending when one given name is the other plus a feminine/diminutive ending, else None.

    Compared on transliteration skeletons (so Dmitri/Dmitriy stay one name): Paul/Paula, Eric/Erica,
    Louis/Louise, Daniel/Danielle, Antoine/Antoinette (a final vowel replaced), Henri/Henriette.
    """
    short, long = sorted((_skeleton(a), _skeleton(b)), key=len)
    if len(short) < 2 or len(long) == len(short):
        return None
    stems = [short] + ([short[:-1]] if short[-1] in "aeiou" and len(short) > 3 else [])
    for stem in stems:
        rest = long[len(stem) :]
        if long.startswith(stem) and rest in _GIVEN_NAME_ENDINGS:
            return rest
    return None


def _given_match(a: str, b: str, aliases: _AliasTable) -> _PartMatch | None:
    """Given names never match by mere similarity (John/Joan, Alexander/Alexandra are different people).

    They match when equal, when one is an initial of the other ("S." / "Steve"), when they are a known
    variant pair (a pair derived from the alias table, or one of the curated ``_GIVEN_NAME_VARIANTS``), or
    when their transliteration skeletons are equal (Volodymyr/Wolodymyr, Eric/Erik) -- but a pair where
    one is the other plus a feminine/diminutive ending (Paul/Paula, Daniel/Danielle) never matches by
    skeleton (the curated table holds no such pair).
    """
    if a == b:
        return _PartMatch("equal", 1.0, "")
    if not a or not b:
        return None
    x, y = sorted((a, b))
    if _is_initial(a) or _is_initial(b):
        initial, full = (a, b) if _is_initial(a) else (b, a)
        if full.startswith(initial):
            return _PartMatch("initial", 0.8, f"initial {initial}. of {full}")
        return None
    pair = frozenset({a, b})
    if (table := aliases.variants_of(a, b)) is not None:
        return _PartMatch("alias", 1.0, f"{table} variants {x}/{y}")
    if pair in _VARIANT_PAIRS:
        return _PartMatch("variant", 0.95, f"known given-name variants {x}/{y}")
    if _gendered_pair(a, b) is not None:
        return None
    if _skeleton(a) == _skeleton(b):
        return _PartMatch("skeleton", 0.95, f"given names {x}/{y} share the skeleton {_skeleton(a)}")
    return None


def _surname_match(a: str, b: str, aliases: _AliasTable) -> _PartMatch | None:
    if a == b or frozenset({a, b}) in aliases.name_variants:
        return _part_match(a, b, aliases)
    # Particles do not decide: "von der leyen" and "leyen" share their last word.
    last_a, last_b = a.split()[-1], b.split()[-1]
    if last_a == last_b:
        return _PartMatch("equal", 1.0, "")
    return _part_match(last_a, last_b, aliases)


@dataclass(frozen=True)
class _PairMatch:
    rule: str
    score: float
    reason: str


_GIVEN_RULE = {"initial": "initial", "variant": "name-variant", "alias": "alias", "skeleton": "skeleton"}
_SURNAME_RULE = {"alias": "alias", "phonetic": "phonetic+similarity"}


def _person_match(a: _Parsed, b: _Parsed, aliases: _AliasTable) -> _PairMatch | None:
    sur = _surname_match(a.surname, b.surname, aliases)
    if sur is None:
        return None
    giv = _given_match(a.given, b.given, aliases)
    if giv is None:
        return None
    rules = [r for r in (_GIVEN_RULE.get(giv.rule), _SURNAME_RULE.get(sur.rule)) if r]
    rule = "+".join(dict.fromkeys(rules)) or "same-name"
    if rule == "same-name":
        return _PairMatch(rule, 1.0, "same first name and surname")
    given = f"given names: {giv.detail}" if giv.detail else "same given name"
    surname = f"surnames: {sur.detail}" if sur.detail else "same surname"
    score = round(min(sur.score, giv.score), 3)
    return _PairMatch(rule, score, f"{rule} ({given}; {surname})")
