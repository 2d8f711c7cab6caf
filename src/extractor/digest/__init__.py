"""Cross-article digest: canonical entities, event clusters with conflicts, a stance table, quote variants.

Everything here is deterministic string work (no model): the same results give the same digest, in the same
order, whatever order the articles arrive in.

Entities
    Mentions are event actors, quote speakers and stance holders. Each surface form is cleaned (leading
    article, possessive 's, punctuation), looked up in the alias table ("variant" -> "canonical", the
    packaged ``DEFAULT_ALIASES`` overlaid by the user's file), then classified with small gazetteers:
    country ("the U.S."), place (capitals and venues, "Rome", "Elysee"), institution ("the Italian
    government", "Italian officials"), source ("the statement"), group ("Coalition members"), role
    ("Poland's Prime Minister") or person. Leading titles and roles ("Italian Prime Minister", "U.S.",
    "Secretary-General", ...) are stripped from person names (rule ``title-stripped``); a demonym among
    them becomes an ``affiliation`` link.
    Two full person names merge when the surnames are compatible (equal, an alias pair, or the same
    phonetic key -- metaphone of a transliteration skeleton that folds w/v, c/k, y/i, doubled letters --
    and Jaro-Winkler >= ``NAME_JW_MIN`` on the names or their skeletons) and the given names are
    compatible. Given names never match by similarity alone (John/Joan, Alexander/Alexandra): they must
    be equal, an initial of the other ("S. Witkoff", rule ``initial``; only when every full name the
    initial fits is one person), a known variant pair (the small built-in ``_GIVEN_NAME_VARIANTS`` table:
    Steve/Steven/Stephen, Volodymyr/Vladimir/Wolodymyr ...; rule ``name-variant``; or a pair derived
    from the alias table, rule ``alias``), or equal as transliteration skeletons (Eric/Erik, rule
    ``skeleton``); a pair where one is the other plus a feminine/diminutive ending (Paul/Paula,
    Daniel/Danielle) never matches. A merge's rule joins the given-name and surname rules
    ("name-variant+phonetic+similarity"); its score is the weaker of the two parts (a phonetic surname
    match scores the Jaro-Winkler similarity of the surnames as written, Witkoff/Vitkoff 0.90).
    Alias merges name the table they come from: "built-in alias table" (``DEFAULT_ALIASES``, recorded in
    digest.json as ``source.builtin_aliases``) or "user alias table" (``--aliases``, ``source.aliases``).
    Merging is agglomerative, strongest pair first, with complete linkage: a merge only happens when every
    name of one cluster is compatible with every name of the other, so John Smith and Jane Smith never
    meet through a chain. A bare surname ("Meloni") merges only with the unique full-name person with a
    compatible surname in the same article (rule ``surname-of-unique``). Otherwise it stays an
    article-local entity of kind ``name``: a surname alone says nothing about who another article's
    "Smith" is, so a full name found only in other articles becomes a ``possible_same_as`` link (rule
    ``surname-in-other-article``, or ``surname-ambiguous`` with a note when several full names fit),
    never a merge. (On the seeds every bare "Meloni", "Zelensky", "Trump" has its full name in the same
    article.) Quote variants may still group a bare surname's quote with its unique linked full name's.
    Institutions, places, roles, groups and sources are never merged with people: they get ``linked_to``
    relations to a country. A speaker like "the statement" with no country is article-local; it is linked
    to the country its article's voices (stance holders and quote speakers) point to, when that country is
    the unique most frequent one (relation ``inferred-from-article``).

Event clusters
    Two reports are compatible when (1) their types are equal, CONSULT and COOPERATE counting as one
    "meeting" family; (2) their dates do not conflict -- a date is (year, month, day) from ``date``, with
    gaps filled from ``date_text`` ("January 6" gives month 1, day 6 even when ``date`` is null), and two
    dates conflict when a component both know differs; (3) their locations do not conflict (normalised to a
    city through venues like "Elysee Palace" -> Paris; a city is compatible with its country; unknown is
    compatible with anything); (4) their canonical actors agree enough for the date evidence available:
    month and day agree -> same known location or one shared actor; only month/year agree -> one shared
    actor and (same known location or actor Jaccard >= 0.5); no common date component -> at least
    ``UNDATED_MIN_SHARED`` shared actors and Jaccard >= ``UNDATED_MIN_JACCARD``. Compatible pairs are merged
    strongest first (score: date agreement 2 for day, 1 for partial, + 1 for the same known place, + actor
    Jaccard); two clusters only merge when every cross pair satisfies (1)-(3), so an undated report never
    bridges two dates, and when they hold no two reports of the same article (it reports an event once).
    Conflicts list, per cluster, the differing date, date precision, location and counts (number + noun
    phrase found in evidence/summary, e.g. "35 ... member countries") with the articles reporting each.
    Counts of one noun are ``compatible`` when they can all be one number: two exact values must be equal;
    an approximate one stands for a range -- "around/about/some/approximately/roughly N" within
    ``COUNT_TOLERANCE`` (10 %) of N, "nearly/almost N" up to N, "more than/over N", "at least N", "up to N",
    "fewer/less than N" as they say -- and the note says which range the other values fit or miss.
    Displayed dates read "6 January 2026", "6 January (year not stated)" (``date_label``).

digest.json records (``source``) the sha256 and size of the results.jsonl it was built from and the user's
aliases; ``load_current_digest`` rebuilds a digest whose results have changed since (the review page does).

Stances are grouped by canonical holder and normalised target (casefold, no articles or punctuation); a row
whose articles disagree on polarity is flagged ``mixed_across_articles``.

Quote variants group quotes whose content-word Dice coefficient (stopwords dropped, words cut to 5 letters
so inflections meet) is >= ``QUOTE_MIN_SIMILARITY``, or whose shorter side (>= 4 content words) is
``QUOTE_MIN_CONTAINMENT`` contained in the longer, and whose speakers are compatible (the same entity, or
sharing a linked country when at least one is not a person). Groups with one wording from one article are
mere repeats and are left out. Unattributed quotes (``speaker`` null) have no speaker to be compatible
with, so they are in no group and no entity.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
import tomllib
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from pathlib import Path
from typing import Any

import jellyfish
from pydantic import BaseModel

from extractor.errors import ConfigError, StoreError
from extractor.matching import SURNAME_PARTICLES
from extractor.models import ArticleResult
from extractor.store import RESULTS_FILE, iter_results, write_json_atomic

__all__ = [
    "BUILTIN_ALIAS_TABLE",
    "COUNT_TOLERANCE",
    "DEFAULT_ALIASES",
    "DIGEST_CSS",
    "DIGEST_FILE",
    "NAME_JW_MIN",
    "QUOTE_MIN_CONTAINMENT",
    "QUOTE_MIN_SIMILARITY",
    "UNDATED_MIN_JACCARD",
    "UNDATED_MIN_SHARED",
    "ClusterLink",
    "Conflict",
    "ConflictValue",
    "CountMention",
    "Digest",
    "DigestSource",
    "Entity",
    "EntityLink",
    "EventCluster",
    "EventReport",
    "MentionInfo",
    "MergeRecord",
    "PossibleMatch",
    "QuoteGroup",
    "QuoteMember",
    "SkippedArticle",
    "StanceRow",
    "StanceSupport",
    "build_digest",
    "builtin_aliases",
    "date_label",
    "digest_html_section",
    "ensure_digest",
    "load_aliases",
    "load_current_digest",
    "precision_label",
    "render_digest_text",
    "results_fingerprint",
    "write_digest",
]

DIGEST_FILE = "digest.json"
NAME_JW_MIN = 0.85
UNDATED_MIN_SHARED = 2
UNDATED_MIN_JACCARD = 0.5
WEAK_DATE_MIN_JACCARD = 0.5
QUOTE_MIN_SIMILARITY = 0.4
QUOTE_MIN_CONTAINMENT = 0.8
QUOTE_MIN_CONTAINED_WORDS = 4
SINGLE_CLUSTERS_SHOWN = 40  # the text summary lists one-report clusters up to this many

DEFAULT_ALIASES: dict[str, str] = {
    "Vladimir Zelensky": "Volodymyr Zelensky",
    "Vladimir Zelenskyy": "Volodymyr Zelensky",
    "Volodymyr Zelenskyy": "Volodymyr Zelensky",
    "Volodymyr Zelenskiy": "Volodymyr Zelensky",
    "Wolodymyr Selenskyj": "Volodymyr Zelensky",
    "Zelenskyy": "Zelensky",
    "Kiev": "Kyiv",
    "Coalition of Willing": "Coalition of the Willing",
    "MBS": "Mohammed bin Salman",
}

# --------------------------------------------------------------------------- gazetteers

_COUNTRIES: dict[str, str] = {
    "italy": "Italy",
    "france": "France",
    "germany": "Germany",
    "ukraine": "Ukraine",
    "russia": "Russia",
    "russian federation": "Russia",
    "poland": "Poland",
    "spain": "Spain",
    "denmark": "Denmark",
    "czechia": "Czechia",
    "czech republic": "Czechia",
    "netherlands": "Netherlands",
    "belgium": "Belgium",
    "canada": "Canada",
    "japan": "Japan",
    "china": "China",
    "turkey": "Turkey",
    "turkiye": "Turkey",
    "saudi arabia": "Saudi Arabia",
    "finland": "Finland",
    "sweden": "Sweden",
    "norway": "Norway",
    "greece": "Greece",
    "portugal": "Portugal",
    "austria": "Austria",
    "hungary": "Hungary",
    "romania": "Romania",
    "estonia": "Estonia",
    "latvia": "Latvia",
    "lithuania": "Lithuania",
    "belarus": "Belarus",
    "iran": "Iran",
    "israel": "Israel",
    "india": "India",
    "australia": "Australia",
    "united states": "United States",
    "united states of america": "United States",
    "us": "United States",
    "usa": "United States",
    "america": "United States",
    "united kingdom": "United Kingdom",
    "uk": "United Kingdom",
    "britain": "United Kingdom",
    "great britain": "United Kingdom",
}

_DEMONYMS: dict[str, str] = {
    "italian": "Italy",
    "french": "France",
    "german": "Germany",
    "ukrainian": "Ukraine",
    "russian": "Russia",
    "polish": "Poland",
    "spanish": "Spain",
    "danish": "Denmark",
    "czech": "Czechia",
    "dutch": "Netherlands",
    "belgian": "Belgium",
    "canadian": "Canada",
    "japanese": "Japan",
    "chinese": "China",
    "turkish": "Turkey",
    "saudi": "Saudi Arabia",
    "finnish": "Finland",
    "swedish": "Sweden",
    "norwegian": "Norway",
    "greek": "Greece",
    "portuguese": "Portugal",
    "austrian": "Austria",
    "hungarian": "Hungary",
    "romanian": "Romania",
    "estonian": "Estonia",
    "latvian": "Latvia",
    "lithuanian": "Lithuania",
    "belarusian": "Belarus",
    "iranian": "Iran",
    "israeli": "Israel",
    "indian": "India",
    "australian": "Australia",
    "american": "United States",
    "us": "United States",
    "british": "United Kingdom",
    "uk": "United Kingdom",
}
_DEMONYM_OF: dict[str, str] = {}
for _adj, _country in _DEMONYMS.items():
    _DEMONYM_OF.setdefault(_country, "U.S." if _country == "United States" else _adj.capitalize())

# Capitals stand for their governments ("Rome backed ..."); other cities only locate events.
_CAPITALS: dict[str, str] = {
    "rome": "Italy",
    "paris": "France",
    "berlin": "Germany",
    "kyiv": "Ukraine",
    "moscow": "Russia",
    "warsaw": "Poland",
    "madrid": "Spain",
    "copenhagen": "Denmark",
    "prague": "Czechia",
    "amsterdam": "Netherlands",
    "brussels": "Belgium",
    "ottawa": "Canada",
    "tokyo": "Japan",
    "beijing": "China",
    "ankara": "Turkey",
    "riyadh": "Saudi Arabia",
    "helsinki": "Finland",
    "stockholm": "Sweden",
    "oslo": "Norway",
    "athens": "Greece",
    "lisbon": "Portugal",
    "vienna": "Austria",
    "budapest": "Hungary",
    "bucharest": "Romania",
    "minsk": "Belarus",
    "tehran": "Iran",
    "washington": "United States",
    "london": "United Kingdom",
}
_CITIES: dict[str, str] = {
    **_CAPITALS,
    "istanbul": "Turkey",
    "geneva": "Switzerland",
    "munich": "Germany",
    "new york": "United States",
    "jeddah": "Saudi Arabia",
    "istre": "France",
}
_VENUES: dict[str, str] = {
    "elysee": "paris",
    "elysee palace": "paris",
    "white house": "washington",
    "kremlin": "moscow",
    "downing street": "london",
    "quirinale": "rome",
    "palazzo chigi": "rome",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_REGIONS = frozenset(
    {
        "europe",
        "asia",
        "africa",
        "middle east",
        "arctic",
        "the west",
        "west",
        "balkans",
        "baltics",
        "greenland",
    }
)

_TITLE_WORDS = _words(
    "prime minister ministers pm president presidents vice vice-president chancellor secretary-general "
    "secretary general state foreign defence defense interior finance deputy former ex acting mr mrs ms "
    "dr sir dame lord lady king queen prince princess pope envoy envoys special presidential commander "
    "ambassador senator governor mayor spokesperson spokesman spokeswoman chief head leader commission "
    "european nato un eu of the premier adviser advisor national security council officer"
)
_ROLE_WORDS = _words(
    "minister pm president chancellor secretary-general secretary envoy commander ambassador senator "
    "governor mayor spokesperson spokesman spokeswoman chief head leader premier king queen pope"
)
_INSTITUTION_WORDS = _words(
    "government governments officials official ministry administration cabinet delegation parliament "
    "authorities presidency embassy military army navy leadership"
)
_SOURCE_WORDS = _words(
    "statement document declaration communique readout release website portal sources source"
)
_GROUP_WORDS = _words(
    "participants leaders members allies partners delegates envoys ministers countries nations observers "
    "protesters police troops forces analysts experts diplomats people players states"
)
_ORG_WORDS = _words(
    "coalition union council commission committee forces force party bureau office ministry government "
    "parliament agency organization organisation alliance nations court bank fund house palace "
    "department army navy command group federation republic kingdom states willing"
)
_PARTICLES = SURNAME_PARTICLES
_DETERMINERS = frozenset({"the", "a", "an"})

# Given names that are the same name: nicknames and transliterations (any two of one group match).
_GIVEN_NAME_VARIANTS: tuple[tuple[str, ...], ...] = (
    ("steve", "steven", "stephen", "stephan", "stefan"),
    ("volodymyr", "vladimir", "wolodymyr", "volodimir", "wladimir"),
    ("oleksandr", "aleksandr", "alexandr", "alexander", "aleksander"),
    ("mohammed", "mohammad", "mohamed", "muhammad", "muhammed", "mohamad"),
    ("sergei", "sergey", "serhiy", "serhii"),
    ("dmitry", "dmitri", "dmytro"),
    ("yuri", "yury", "yuriy", "yurii"),
    ("andriy", "andrii", "andrei", "andrey"),
    ("mikhail", "mykhailo", "michael"),
    ("michael", "mike"),
    ("william", "bill"),
    ("robert", "bob", "rob"),
    ("james", "jim"),
    ("thomas", "tom"),
    ("joseph", "joe"),
    ("anthony", "tony"),
    ("nicholas", "nick"),
    ("david", "dave"),
    ("matthew", "matt"),
    ("peter", "pete"),
    ("benjamin", "ben"),
    ("richard", "rick"),
    ("edward", "ed"),
)
_VARIANT_PAIRS: frozenset[frozenset[str]] = frozenset(
    frozenset({x, y}) for group in _GIVEN_NAME_VARIANTS for x, y in combinations(group, 2)
)
# Feminine and diminutive endings, as transliteration skeletons (ette -> ete, y -> i): a given name plus
# one of these is another person's name.
_GIVEN_NAME_ENDINGS = frozenset({"a", "e", "i", "ie", "ine", "ina", "ete", "eta", "ele", "ela", "ita"})

_MONTHS: dict[str, int] = {
    "january": 1,
    "jan": 1,
    "february": 2,
    "feb": 2,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "june": 6,
    "jun": 6,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sep": 9,
    "sept": 9,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}
_TYPE_FAMILY: dict[str, str] = {"COOPERATE": "CONSULT"}

_STOPWORDS = _words(
    "a an the of in on at to for from by with and or but as is are was were be been being has have had "
    "will would shall should can could may might must that this these those which who whom whose it its "
    "their there than then so such also not no into over under between about after before when while if "
    "what where how all any each other our we they he she his her them us i you your"
)

_NUMBER_WORDS: dict[str, int] = {
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
}
_COUNT_RE = re.compile(
    r"(?P<approx>\b(?:around|about|some|nearly|almost|approximately|roughly|over|more than|at least"
    r"|up to|fewer than|less than)\s+)?"
    r"\b(?P<num>\d{1,3}(?:,\d{3})+|\d+|" + "|".join(_NUMBER_WORDS) + r")\s+"
    r"(?P<mid>(?:(?![\d])[\w’'.-]+\s+){0,5}?)"
    r"(?P<noun>heads\s+of\s+state(?:\s+and\s+government)?|heads\s+of\s+government|countries|nations|states"
    r"|leaders|delegations|participants|members|envoys|troops|soldiers|people|civilians|deputies)\b",
    re.IGNORECASE,
)
_COUNT_CLASS: dict[str, str] = {"nations": "countries", "states": "countries"}


# --------------------------------------------------------------------------- output models


class MentionInfo(BaseModel):
    """One surface form of an entity: where it appears and in which roles."""

    surface: str
    articles: list[str]
    count: int
    roles: list[str]


class MergeRecord(BaseModel):
    """Why a surface form or name was folded into an entity."""

    surface: str
    matched: str
    rule: str
    score: float
    reason: str


class EntityLink(BaseModel):
    """A non-merging relation, e.g. "the Italian government" -institution-of-> Italy."""

    target: str
    target_name: str
    relation: str
    articles: list[str]


class PossibleMatch(BaseModel):
    """A person an entity may be, recorded instead of merged (e.g. a bare surname whose only full-name
    match is in another article, or an initial that fits several people)."""

    target: str
    target_name: str
    rule: str
    score: float
    reason: str


class Entity(BaseModel):
    id: str
    name: str
    kind: str
    articles: list[str]
    mention_count: int
    mentions: list[MentionInfo]
    merges: list[MergeRecord]
    linked_to: list[EntityLink]
    notes: list[str]
    possible_same_as: list[PossibleMatch] = []


class CountMention(BaseModel):
    noun: str
    value: int
    approximate: bool
    surface: str
    qualifier: str | None = None  # "around", "nearly", "more than", ... as written (casefolded)


class EventReport(BaseModel):
    """One article's report of an event, with its normalised date and location."""

    ref: str
    article_id: str
    index: int
    event_type: str
    summary: str
    date: str | None
    date_text: str | None
    date_value: str
    date_precision: str
    location: str | None
    location_key: str | None
    actors: list[str]
    actor_ids: list[str]
    evidence: str
    start: int | None
    end: int | None
    counts: list[CountMention]


class ConflictValue(BaseModel):
    value: str
    articles: list[str]
    surfaces: list[str]


class Conflict(BaseModel):
    """Differing values of one field inside a cluster; ``compatible`` when they may still agree."""

    field: str
    values: list[ConflictValue]
    compatible: bool
    note: str


class ClusterLink(BaseModel):
    a: str
    b: str
    score: float
    reason: str


class EventCluster(BaseModel):
    id: str
    event_types: list[str]
    date_value: str
    date_precision: str
    location: str | None
    actor_ids: list[str]
    actors: list[str]
    articles: list[str]
    reports: list[EventReport]
    links: list[ClusterLink]
    conflicts: list[Conflict]


class StanceSupport(BaseModel):
    article_id: str
    polarity: str
    target: str
    evidence: str
    start: int | None
    end: int | None
    span_status: str


class StanceRow(BaseModel):
    holder_id: str
    holder: str
    target: str
    target_key: str
    polarity: str
    polarities: dict[str, list[str]]
    mixed_across_articles: bool
    articles: list[str]
    supports: list[StanceSupport]


class QuoteMember(BaseModel):
    ref: str
    article_id: str
    index: int
    speaker: str
    speaker_id: str
    text: str
    cue: str | None
    start: int | None
    end: int | None


class QuoteGroup(BaseModel):
    id: str
    speaker_ids: list[str]
    speakers: list[str]
    articles: list[str]
    wordings: int
    members: list[QuoteMember]
    links: list[ClusterLink]


class SkippedArticle(BaseModel):
    article_id: str
    reason: str


class DigestSource(BaseModel):
    """What a digest was built from, so a stale digest.json can be recognised and rebuilt the same way."""

    results_sha256: str  # of results.jsonl up to its last complete line
    results_bytes: int
    results: int  # result lines read
    aliases: dict[str, str]  # the user's alias table (laid over DEFAULT_ALIASES)
    aliases_file: str | None
    # The built-in alias table (DEFAULT_ALIASES) entries in effect; None in older digests.
    builtin_aliases: dict[str, str] | None = None


class Digest(BaseModel):
    """The cross-article digest of a run (``model_dump(mode="json")`` is what digest.json holds)."""

    version: int = 2
    source: DigestSource | None = None
    articles: list[str]
    skipped: list[SkippedArticle]
    parameters: dict[str, float | int | str]
    entities: list[Entity]
    event_clusters: list[EventCluster]
    stances: list[StanceRow]
    quote_groups: list[QuoteGroup]


# --------------------------------------------------------------------------- text helpers


@lru_cache(maxsize=65536)
def _fold(text: str) -> str:
    """ASCII-fold and casefold ("Élysée" -> "elysee"), curly apostrophes made straight."""
    text = text.replace("’", "'").replace("‘", "'")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


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


def load_aliases(path: Path | str) -> dict[str, str]:
    """Read an alias file: a TOML ``[aliases]`` table of ``"variant name" = "canonical name"``.

    Raises ConfigError (one line) when the file is unreadable, not TOML or not such a table.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read alias file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"alias file {path} is not UTF-8: {exc.reason}") from exc
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
class _Parsed:
    kind: str  # person | single | country | place | institution | source | group | role | other
    key: str
    name: str
    steps: tuple[tuple[str, str], ...] = ()
    countries: tuple[str, ...] = ()
    given: str = ""
    surname: str = ""


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


# --------------------------------------------------------------------------- person matching


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


# --------------------------------------------------------------------------- entities


@dataclass
class _Mention:
    article_id: str
    surface: str
    role: str
    parsed: _Parsed


@dataclass
class _EntityBuild:
    key: str
    kind: str
    name: str
    mentions: list[_Mention] = field(default_factory=list)
    merges: list[MergeRecord] = field(default_factory=list)
    links: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (country, relation) -> articles
    notes: list[str] = field(default_factory=list)
    possible: list[tuple[str, str, float, str]] = field(default_factory=list)  # (key, rule, score, reason)


class _UnionFind:
    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {item: item for item in items}

    def find(self, item: str) -> str:
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = defaultdict(list)
        for item in sorted(self.parent):
            out[self.find(item)].append(item)
        return out


_LINK_RELATION = {
    "place": "capital-of",
    "institution": "institution-of",
    "source": "source-of",
    "group": "includes",
    "role": "role-of",
    "person": "affiliation",
}


class _Entities:
    """Resolves every mention to an entity id and builds the entity list."""

    def __init__(self, mentions: list[_Mention], aliases: _AliasTable) -> None:
        self.aliases = aliases
        self.by_mention: dict[tuple[str, str], str] = {}  # (article_id, surface) -> entity key
        self.builds: dict[str, _EntityBuild] = {}
        self._resolve_people(mentions)
        self._resolve_rest(mentions)
        self._infer_local_countries(mentions)
        self.ids = self._assign_ids()
        self._key_of = {ident: key for key, ident in self.ids.items()}
        self._names = {self.ids[key]: build.name for key, build in self.builds.items()}

    # -- people
    def _resolve_people(self, mentions: list[_Mention]) -> None:
        people: dict[str, _Parsed] = {}
        for m in mentions:
            if m.parsed.kind == "person":
                people.setdefault(m.parsed.key, m.parsed)
        keys = sorted(people)
        pairs: list[tuple[float, str, str, _PairMatch]] = []
        for a, b in self._candidate_pairs(keys, people):
            match = _person_match(people[a], people[b], self.aliases)
            if match is not None:
                pairs.append((match.score, a, b, match))
        pairs, ambiguous_initials = self._drop_ambiguous_initials(pairs, people)
        pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
        uf = _UnionFind(keys)
        members: dict[str, list[str]] = {k: [k] for k in keys}
        edges: list[tuple[str, str, _PairMatch]] = []
        for _, a, b, match in pairs:
            ra, rb = uf.find(a), uf.find(b)
            if ra == rb:
                continue
            # Complete linkage: every name of one cluster must match every name of the other.
            if not all(
                _person_match(people[x], people[y], self.aliases) for x in members[ra] for y in members[rb]
            ):
                continue
            merged = members.pop(ra) + members.pop(rb)
            uf.union(ra, rb)
            members[uf.find(ra)] = sorted(merged)
            edges.append((a, b, match))
        self._person_root = {k: uf.find(k) for k in keys}
        self._people = people
        full_counts = _mention_stats(m for m in mentions if m.parsed.kind == "person")

        clusters = uf.groups()
        display_forms = _display_forms(mentions)
        self._cluster_name: dict[str, str] = {}
        canonical: dict[str, str] = {}
        for root, names in clusters.items():
            # Most articles, then most mentions, then the most central spelling, then the first seen.
            best = min(
                names, key=lambda k: (*_rank(full_counts, k), -_medoid(k, names), _first(full_counts, k), k)
            )
            canonical[root] = best
            display = display_forms.get(best, people[best].name)
            self._cluster_name[root] = display
            build = _EntityBuild(f"person:{root}", "person", display)
            self.builds[build.key] = build
        # Each merge edge is reported pointing towards the canonical name (a walk of the spanning tree).
        neighbours: dict[str, list[tuple[str, _PairMatch]]] = defaultdict(list)
        for a, b, match in edges:
            neighbours[a].append((b, match))
            neighbours[b].append((a, match))
        for root, best in canonical.items():
            build = self.builds[f"person:{root}"]
            stack, seen = [best], {best}
            while stack:
                parent = stack.pop()
                for child, match in sorted(neighbours[parent], key=lambda nm: nm[0]):
                    if child in seen:
                        continue
                    seen.add(child)
                    stack.append(child)
                    build.merges.append(
                        MergeRecord(
                            surface=display_forms.get(child, child),
                            matched=display_forms.get(parent, parent),
                            rule=match.rule,
                            score=match.score,
                            reason=match.reason,
                        )
                    )
        for m in mentions:
            if m.parsed.kind == "person":
                self._attach(m, f"person:{self._person_root[m.parsed.key]}")
        root_articles: dict[str, set[str]] = defaultdict(set)
        for m in mentions:
            if m.parsed.kind == "person":
                root_articles[self._person_root[m.parsed.key]].add(m.article_id)
        for k, partners in sorted(ambiguous_initials.items()):
            build = self.builds[f"person:{self._person_root[k]}"]
            roots = sorted({self._person_root[x] for x in partners} - {self._person_root[k]})
            fits = ", ".join(sorted(self._cluster_name[r] for r in roots))
            build.notes.append(f"'{display_forms.get(k, k)}' is ambiguous: the initial fits {fits}")
            for r in roots:
                build.possible.append(
                    (
                        f"person:{r}",
                        "initial-ambiguous",
                        0.5,
                        f"initial of {self._cluster_name[r]}; not merged",
                    )
                )

        # Bare surnames merge only with the unique full-name person of the same article. Across articles a
        # surname alone is no evidence (another article's "Smith" may be anyone), so there it stays its own
        # entity with a ``possible_same_as`` link to each compatible full name of the corpus.
        article_roots: dict[str, set[str]] = defaultdict(set)
        for root, arts in root_articles.items():
            for article_id in arts:
                article_roots[article_id].add(root)
        roots_by_block: dict[str, set[str]] = defaultdict(set)
        for root, names_in in clusters.items():
            for k in names_in:
                for block in self._blocks_of(people[k].surname):
                    roots_by_block[block].add(root)
        for m in mentions:
            if m.parsed.kind != "single":
                continue
            near = set().union(*(roots_by_block[b] for b in self._blocks_of(m.parsed.surname)))
            local = self._surname_candidates(m.parsed.surname, near & article_roots[m.article_id], clusters)
            if len(local) == 1:
                root, score = next(iter(local.items()))
                key = f"person:{root}"
                self._attach(m, key)
                self.builds[key].merges.append(
                    MergeRecord(
                        surface=m.surface,
                        matched=self._cluster_name[root],
                        rule="surname-of-unique",
                        score=score,
                        reason=f"only full name with surname '{m.parsed.name}' in the same article "
                        f"({m.article_id})",
                    )
                )
                continue
            key = f"name:{m.parsed.key}@{m.article_id}"
            build = self.builds.setdefault(key, _EntityBuild(key, "name", m.parsed.name))
            self._attach(m, key)
            scope, found = ("same article", local) if local else ("corpus", None)
            if found is None:
                found = self._surname_candidates(m.parsed.surname, near, clusters)
            if len(found) > 1:
                candidates = ", ".join(sorted(self._cluster_name[r] for r in found))
                note = f"'{m.parsed.name}' is ambiguous in the {scope}: {candidates}"
                if note not in build.notes:
                    build.notes.append(note)
            for root, score in sorted(found.items()):
                where = ", ".join(sorted(root_articles[root]))
                if scope == "same article":
                    rule, why = "surname-ambiguous", f"one of {len(found)} full names with this surname here"
                elif len(found) == 1:
                    rule = "surname-in-other-article"
                    why = f"the only full name with surname '{m.parsed.name}', but named only in {where}"
                else:
                    rule, why = (
                        "surname-ambiguous",
                        f"one of {len(found)} full names with this surname ({where})",
                    )
                entry = (f"person:{root}", rule, score, f"{why}; not merged")
                if entry not in build.possible:
                    build.possible.append(entry)

    def _drop_ambiguous_initials(
        self, pairs: list[tuple[float, str, str, _PairMatch]], people: Mapping[str, _Parsed]
    ) -> tuple[list[tuple[float, str, str, _PairMatch]], dict[str, set[str]]]:
        """An initial ("S. Witkoff") merges only when every full name it fits is one person."""
        partners: dict[str, set[str]] = defaultdict(set)
        for _, a, b, match in pairs:
            if match.rule.startswith("initial"):
                initial, full = (a, b) if _is_initial(people[a].given) else (b, a)
                if not _is_initial(people[full].given):
                    partners[initial].add(full)
        ambiguous: dict[str, set[str]] = {}
        for initial, fulls in partners.items():
            given = {people[f].given for f in fulls}
            if len(given) > 1 and not all(
                _given_match(x, y, self.aliases) for x, y in combinations(sorted(given), 2)
            ):
                ambiguous[initial] = fulls
        kept = [p for p in pairs if not ({p[1], p[2]} & ambiguous.keys() and p[3].rule.startswith("initial"))]
        return kept, ambiguous

    def _blocks_of(self, surname: str) -> set[str]:
        """Blocking keys: only surnames sharing one can match (same last-word phonetic key, or alias pair)."""
        last = surname.split()[-1]
        out = {_phonetic_key(last) or last}
        for pair in self.aliases.name_variants:
            if last in pair:
                out.update(_phonetic_key(w) or w for w in pair)
        return out

    def _candidate_pairs(self, keys: Sequence[str], people: Mapping[str, _Parsed]) -> list[tuple[str, str]]:
        blocks: dict[str, list[str]] = defaultdict(list)
        for k in keys:
            for block in self._blocks_of(people[k].surname):
                blocks[block].append(k)
        pairs = {(a, b) for names in blocks.values() for a, b in combinations(sorted(names), 2)}
        return sorted(pairs)

    def _surname_candidates(
        self, surname: str, roots: Iterable[str], clusters: Mapping[str, list[str]]
    ) -> dict[str, float]:
        out: dict[str, float] = {}
        for root in sorted(roots):
            scores = [
                match.score
                for k in clusters[root]
                if (match := _surname_match(surname, self._people[k].surname, self.aliases)) is not None
            ]
            if scores:
                out[root] = max(scores)
        return out

    # -- everything else
    def _resolve_rest(self, mentions: list[_Mention]) -> None:
        for m in mentions:
            p = m.parsed
            if p.kind in {"person", "single"}:
                continue
            if p.kind in {"institution", "source"} and not p.countries:
                key = f"{p.kind}:{p.key}@{m.article_id}"
            else:
                key = f"{p.kind}:{p.key}"
            self.builds.setdefault(key, _EntityBuild(key, p.kind, p.name))
            self._attach(m, key)

    def _attach(self, m: _Mention, key: str) -> None:
        self.by_mention[(m.article_id, m.surface)] = key
        build = self.builds[key]
        build.mentions.append(m)
        relation = _LINK_RELATION.get(m.parsed.kind)
        if relation:
            for country in m.parsed.countries:
                if build.kind == "place" and _CAPITALS.get(m.parsed.key.split()[-1]) != country:
                    rel = "located-in"
                else:
                    rel = relation
                build.links.setdefault((country, rel), set()).add(m.article_id)
        for rule, detail in m.parsed.steps:
            record = MergeRecord(
                surface=m.surface, matched=m.parsed.name, rule=rule, score=1.0, reason=detail
            )
            if record not in build.merges:
                build.merges.append(record)

    def countries_of(self, key: str) -> set[str]:
        build = self.builds[key]
        out = {country for country, _ in build.links}
        if build.kind == "country":
            out.add(build.name)
        return out

    def _infer_local_countries(self, mentions: list[_Mention]) -> None:
        voices: dict[str, Counter[str]] = defaultdict(Counter)
        for m in mentions:
            if m.role in {"speaker", "holder"}:
                key = self.by_mention[(m.article_id, m.surface)]
                if "@" not in key:
                    voices[m.article_id].update(self.countries_of(key))
        for key, build in sorted(self.builds.items()):
            if "@" not in key or build.links:
                continue
            article_id = key.rsplit("@", 1)[1]
            ranked = voices[article_id].most_common()
            if ranked and (len(ranked) == 1 or ranked[0][1] > ranked[1][1]):
                build.links[(ranked[0][0], "inferred-from-article")] = {article_id}
                build.notes.append(
                    f"country inferred from the article's stance holders and speakers ({ranked[0][0]} named "
                    f"{ranked[0][1]} time(s))"
                )

    def _assign_ids(self) -> dict[str, str]:
        for build in list(self.builds.values()):
            for country, _ in build.links:
                self.builds.setdefault(
                    f"country:{country}", _EntityBuild(f"country:{country}", "country", country)
                )
        ids: dict[str, str] = {}
        used: set[str] = set()
        for key in sorted(self.builds):
            build = self.builds[key]
            base = _slug(build.name)
            if "@" in key:
                base = f"{base}@{key.rsplit('@', 1)[1]}"
            if build.kind != "person":
                base = f"{build.kind}:{base}"
            ident, n = base, 2
            while ident in used:
                ident, n = f"{base}-{n}", n + 1
            used.add(ident)
            ids[key] = ident
        return ids

    def entity_id(self, article_id: str, surface: str) -> str:
        return self.ids[self.by_mention[(article_id, surface)]]

    def name_of(self, entity_id: str) -> str:
        return self._names[entity_id]

    def countries_by_id(self, entity_id: str) -> set[str]:
        return self.countries_of(self._key_of[entity_id])

    def to_models(self) -> list[Entity]:
        out: list[Entity] = []
        for key, build in self.builds.items():
            ident = self.ids[key]
            surfaces: dict[str, list[_Mention]] = defaultdict(list)
            for m in build.mentions:
                surfaces[m.surface].append(m)
            mention_infos = [
                MentionInfo(
                    surface=surface,
                    articles=sorted({m.article_id for m in ms}),
                    count=len(ms),
                    roles=sorted({m.role for m in ms}),
                )
                for surface, ms in sorted(surfaces.items(), key=lambda kv: (-len(kv[1]), kv[0]))
            ]
            links = [
                EntityLink(
                    target=self.ids[f"country:{country}"],
                    target_name=country,
                    relation=relation,
                    articles=sorted(articles),
                )
                for (country, relation), articles in sorted(build.links.items())
            ]
            out.append(
                Entity(
                    id=ident,
                    name=build.name,
                    kind=build.kind,
                    articles=sorted({m.article_id for m in build.mentions}),
                    mention_count=len(build.mentions),
                    mentions=mention_infos,
                    merges=_unique_merges(build.merges),
                    linked_to=links,
                    notes=build.notes,
                    possible_same_as=[
                        PossibleMatch(
                            target=self.ids[target],
                            target_name=self.builds[target].name,
                            rule=rule,
                            score=score,
                            reason=reason,
                        )
                        for target, rule, score, reason in build.possible
                    ],
                )
            )
        out.sort(key=lambda e: (-len(e.articles), -e.mention_count, e.id))
        return out


def _unique_merges(records: Iterable[MergeRecord]) -> list[MergeRecord]:
    unique = {(r.rule, r.surface, r.matched, r.reason): r for r in records}
    return [unique[k] for k in sorted(unique)]


def _mention_stats(mentions: Iterable[_Mention]) -> dict[str, tuple[int, int, str]]:
    """Per name key: (number of articles, number of mentions, first article id)."""
    articles: dict[str, set[str]] = defaultdict(set)
    counts: Counter[str] = Counter()
    for m in mentions:
        articles[m.parsed.key].add(m.article_id)
        counts[m.parsed.key] += 1
    return {k: (len(articles[k]), counts[k], min(articles[k])) for k in counts}


def _rank(stats: Mapping[str, tuple[int, int, str]], key: str) -> tuple[int, int]:
    n_articles, n_mentions, _ = stats.get(key, (0, 0, ""))
    return -n_articles, -n_mentions


def _first(stats: Mapping[str, tuple[int, int, str]], key: str) -> str:
    return stats.get(key, (0, 0, ""))[2]


def _medoid(key: str, names: Sequence[str]) -> float:
    return sum(_jw(key, other) for other in names if other != key)


def _display_forms(mentions: Iterable[_Mention]) -> dict[str, str]:
    """Per person name key, its most frequent written form (ties: alphabetical)."""
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    for m in mentions:
        if m.parsed.kind == "person":
            forms[m.parsed.key][m.parsed.name] += 1
    return {key: min(c, key=lambda f: (-c[f], f)) for key, c in forms.items()}


# --------------------------------------------------------------------------- dates and locations

_PartialDate = tuple[int | None, int | None, int | None]
_MONTH_RE = "|".join(sorted(_MONTHS, key=len, reverse=True))


def _parse_iso(value: str | None) -> _PartialDate:
    if not value:
        return (None, None, None)
    m = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", value.strip())
    if not m:
        return (None, None, None)
    return (int(m.group(1)), int(m.group(2)) if m.group(2) else None, int(m.group(3)) if m.group(3) else None)


def _parse_date_text(text: str | None) -> _PartialDate:
    """Month/day/year named in a date phrase ("on January 6", "6 Jan. 2026", "in March 2025")."""
    if not text:
        return (None, None, None)
    t = _fold(text)
    iso = re.search(r"\b(\d{4})-(\d{2})(?:-(\d{2}))?\b", t)
    if iso:
        return _parse_iso(iso.group(0))
    year_m = re.search(r"\b(1[89]\d{2}|20\d{2})\b", t)
    year = int(year_m.group(1)) if year_m else None
    md = re.search(rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?!\d)", t)
    dm = re.search(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({_MONTH_RE})\b", t)
    month: int | None = None
    day: int | None = None
    if md:
        month, day = _MONTHS[md.group(1)], int(md.group(2))
    elif dm:
        month, day = _MONTHS[dm.group(2)], int(dm.group(1))
    elif (bare := re.search(rf"\b({_MONTH_RE})\b", t)) and (
        # A bare month name counts when spelled out, or next to a year: "may" and "mar" are usually words.
        year is not None or (len(bare.group(1)) > 3 and bare.group(1) != "may")
    ):
        month = _MONTHS[bare.group(1)]
    if day is not None and not 1 <= day <= 31:
        day = None
    return (year, month, day)


def _event_date(date: str | None, date_text: str | None) -> _PartialDate:
    """``date`` completed from ``date_text`` when the two agree; ``date`` alone when they disagree."""
    base = _parse_iso(date)
    extra = _parse_date_text(date_text)
    if _dates_conflict(base, extra):
        return base
    year, month, day = (x if x is not None else y for x, y in zip(base, extra, strict=True))
    return (year, month, day if month is not None else None)


def _date_value(d: _PartialDate) -> tuple[str, str]:
    year, month, day = d
    if year is not None:
        if month is None:
            return f"{year:04d}", "year"
        if day is None:
            return f"{year:04d}-{month:02d}", "month"
        return f"{year:04d}-{month:02d}-{day:02d}", "day"
    if month is not None:
        if day is None:
            return f"--{month:02d}", "month (no year)"
        return f"--{month:02d}-{day:02d}", "day (no year)"
    return "unknown", "unknown"


_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def date_label(value: str) -> str:
    """A ``date_value`` for people: "6 January 2026", "January 2026", "6 January (year not stated)"."""
    m = re.fullmatch(r"(\d{4}|-)-?(\d{2})?(?:-(\d{2}))?", value)
    if value == "unknown" or not m or (m.group(1) == "-" and not m.group(2)):
        return "date not stated" if value == "unknown" else value
    year = None if m.group(1) == "-" else m.group(1)
    month = int(m.group(2)) if m.group(2) else None
    day = int(m.group(3)) if m.group(3) else None
    if month is None or not 1 <= month <= 12:
        return year or value
    when = f"{day} {_MONTH_NAMES[month - 1]}" if day is not None else _MONTH_NAMES[month - 1]
    return f"{when} {year}" if year else f"{when} (year not stated)"


_PRECISION_LABELS = {
    "day (no year)": "day, year not stated",
    "month (no year)": "month, year not stated",
    "unknown": "not stated",
}


def precision_label(precision: str) -> str:
    return _PRECISION_LABELS.get(precision, precision)


def _dates_conflict(a: _PartialDate, b: _PartialDate) -> bool:
    return any(x is not None and y is not None and x != y for x, y in zip(a, b, strict=True))


def _date_agreement(a: _PartialDate, b: _PartialDate) -> str:
    """'day' when month and day are both known and equal, 'partial' for a shared year/month, else 'none'."""
    if a[1] is not None and a[2] is not None and b[1] is not None and b[2] is not None:
        return "day"
    if any(x is not None and y is not None for x, y in zip(a, b, strict=True)):
        return "partial"
    return "none"


@dataclass(frozen=True)
class _Place:
    key: str
    country: str | None

    @property
    def country_key(self) -> str | None:
        return _country_key(self.country) if self.country else None


@lru_cache(maxsize=1024)
def _country_key(country: str) -> str:
    return _norm_key(country)


def _location(value: str | None) -> _Place | None:
    """Normalised place: the city named (venues map to their city), else a country, else the folded text."""
    if not value or not value.strip():
        return None
    key = _norm_key(_drop_determiner(_clean_surface(value)))
    if not key:
        return None
    found: list[tuple[int, str]] = []
    for city in _CITIES:
        m = re.search(rf"(?<![\w']){re.escape(city)}(?![\w'])", key)
        if m:
            found.append((m.start(), city))
    if found:
        city = min(found)[1]
        return _Place(city, _CITIES[city])
    for venue, city in sorted(_VENUES.items(), key=lambda kv: -len(kv[0])):
        if re.search(rf"(?<![\w']){re.escape(venue)}(?![\w'])", key):
            return _Place(city, _CITIES.get(city))
    countries = _countries_in(value)
    if len(countries) == 1:
        return _Place(_norm_key(countries[0]), countries[0])
    return _Place(key, None)


def _locations_compatible(a: _Place | None, b: _Place | None) -> bool:
    if a is None or b is None or a.key == b.key:
        return True
    # A city is compatible with its own country ("Paris" / "France").
    return a.country_key == b.key or b.country_key == a.key


# --------------------------------------------------------------------------- events


@dataclass
class _Report:
    model: EventReport
    family: str
    date: _PartialDate
    place: _Place | None
    actors: frozenset[str]


def _counts(*texts: str) -> list[CountMention]:
    seen: set[tuple[str, int, str]] = set()
    out: list[CountMention] = []
    for text in texts:
        for m in _COUNT_RE.finditer(text):
            raw = m.group("num").casefold().replace(",", "")
            value = _NUMBER_WORDS[raw] if raw in _NUMBER_WORDS else int(raw)
            if len(raw) == 4 and 1900 <= value <= 2100:
                continue
            noun_text = " ".join(m.group("noun").casefold().split())
            noun = "leaders" if noun_text.startswith("heads of") else _COUNT_CLASS.get(noun_text, noun_text)
            surface = " ".join(m.group(0).split())
            qualifier = " ".join(m.group("approx").casefold().split()) if m.group("approx") else None
            key = (noun, value, surface)
            if key not in seen:
                seen.add(key)
                out.append(
                    CountMention(
                        noun=noun,
                        value=value,
                        approximate=qualifier is not None,
                        surface=surface,
                        qualifier=qualifier,
                    )
                )
    return out


def _pair_hard_ok(a: _Report, b: _Report) -> bool:
    return (
        a.family == b.family
        and not _dates_conflict(a.date, b.date)
        and _locations_compatible(a.place, b.place)
    )


def _event_pair(a: _Report, b: _Report) -> tuple[float, str] | None:
    if not _pair_hard_ok(a, b):
        return None
    shared = a.actors & b.actors
    union = a.actors | b.actors
    jaccard = len(shared) / len(union) if union else 0.0
    same_place = a.place is not None and b.place is not None and _locations_compatible(a.place, b.place)
    level = _date_agreement(a.date, b.date)
    if level == "day":
        ok = same_place or len(shared) >= 1
    elif level == "partial":
        ok = len(shared) >= 1 and (same_place or jaccard >= WEAK_DATE_MIN_JACCARD)
    else:
        ok = len(shared) >= UNDATED_MIN_SHARED and jaccard >= UNDATED_MIN_JACCARD
    if not ok:
        return None
    score = {"day": 2.0, "partial": 1.0, "none": 0.0}[level] + (1.0 if same_place else 0.0) + jaccard
    da, db = _date_value(a.date)[0], _date_value(b.date)[0]
    place = (
        f"location {a.place.key if a.place else '?'} ~ {b.place.key if b.place else '?'}"
        if (a.place or b.place)
        else "no location"
    )
    types = (
        a.model.event_type
        if a.model.event_type == b.model.event_type
        else f"{a.model.event_type}~{b.model.event_type}"
    )
    reason = (
        f"type {types}; date {date_label(da)} ~ {date_label(db)} (agreement: {level}); {place}; "
        f"{len(shared)} shared actor(s), jaccard {jaccard:.2f}"
    )
    return round(score, 3), reason


def _event_candidates(reports: Sequence[_Report]) -> list[tuple[str, str]]:
    """Pairs that can pass ``_event_pair``: a shared actor, or the same type family, day and place."""
    index: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for r in reports:
        for actor in r.actors:
            index[("actor", r.family, actor)].append(r.model.ref)
        _, month, day = r.date
        if month is not None and day is not None and r.place is not None:
            where = r.place.country_key or r.place.key
            index[("day", r.family, str(month), str(day), where)].append(r.model.ref)
    pairs = {(a, b) for refs in index.values() for a, b in combinations(sorted(refs), 2)}
    return sorted(pairs)


def _cluster_events(reports: list[_Report], names: Mapping[str, str]) -> list[EventCluster]:
    by_ref = {r.model.ref: r for r in reports}
    refs = sorted(by_ref)
    pairs: list[tuple[float, str, str, str]] = []
    for a, b in _event_candidates(reports):
        if by_ref[a].model.article_id == by_ref[b].model.article_id:
            continue  # one article reports each event once (prompt rule 4)
        result = _event_pair(by_ref[a], by_ref[b])
        if result is not None:
            pairs.append((result[0], a, b, result[1]))
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    uf = _UnionFind(refs)
    members: dict[str, list[str]] = {r: [r] for r in refs}
    links: dict[str, list[ClusterLink]] = defaultdict(list)
    for score, a, b, reason in pairs:
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        xs, ys = members[ra], members[rb]
        if not all(_pair_hard_ok(by_ref[x], by_ref[y]) for x in xs for y in ys):
            continue
        if {by_ref[x].model.article_id for x in xs} & {by_ref[y].model.article_id for y in ys}:
            continue
        uf.union(ra, rb)
        root = uf.find(a)
        merged = sorted(xs + ys)
        members.pop(ra)
        members.pop(rb)
        members[root] = merged
        links[root] = [
            *links.pop(ra, []),
            *links.pop(rb, []),
            ClusterLink(a=a, b=b, score=score, reason=reason),
        ]

    clusters: list[EventCluster] = []
    for root, refs_in in uf.groups().items():
        rs = [by_ref[r] for r in refs_in]
        clusters.append(_make_cluster(rs, links.get(root, []), names))
    clusters.sort(key=lambda c: (-len(c.articles), c.reports[0].ref))
    return [c.model_copy(update={"id": f"E{i}"}) for i, c in enumerate(clusters, start=1)]


def _make_cluster(rs: list[_Report], links: list[ClusterLink], names: Mapping[str, str]) -> EventCluster:
    rs = sorted(rs, key=lambda r: (r.model.article_id, r.model.index))
    date: list[int | None] = [None, None, None]
    for r in rs:
        for i, part in enumerate(r.date):
            if date[i] is None and part is not None:
                date[i] = part
    value, precision = _date_value((date[0], date[1], date[2]))
    places = Counter(r.place.key for r in rs if r.place is not None)
    location = min(places, key=lambda k: (-places[k], k)) if places else None
    actor_ids = sorted({a for r in rs for a in r.actors})
    return EventCluster(
        id="",
        event_types=sorted({r.model.event_type for r in rs}),
        date_value=value,
        date_precision=precision,
        location=location.title() if location else None,
        actor_ids=actor_ids,
        actors=[names.get(a, a) for a in actor_ids],
        articles=sorted({r.model.article_id for r in rs}),
        reports=[r.model for r in rs],
        links=sorted(links, key=lambda link: (link.a, link.b)),
        conflicts=_conflicts(rs) if len(rs) > 1 else [],
    )


def _conflict_values(pairs: Iterable[tuple[str, str, str]]) -> list[ConflictValue]:
    articles: dict[str, set[str]] = defaultdict(set)
    surfaces: dict[str, set[str]] = defaultdict(set)
    for value, article_id, surface in pairs:
        articles[value].add(article_id)
        surfaces[value].add(surface)
    return [
        ConflictValue(value=v, articles=sorted(articles[v]), surfaces=sorted(surfaces[v]))
        for v in sorted(articles, key=lambda v: (-len(articles[v]), v))
    ]


def _conflicts(rs: list[_Report]) -> list[Conflict]:
    out: list[Conflict] = []
    dated = [(r, _date_value(r.date)) for r in rs if r.date != (None, None, None)]
    values = _conflict_values(
        (dv[0], r.model.article_id, r.model.date or r.model.date_text or "") for r, dv in dated
    )
    if len(values) > 1:
        out.append(
            Conflict(
                field="date",
                values=values,
                compatible=True,
                note="dates differ only in what they state; no known component disagrees",
            )
        )
    precisions = _conflict_values((dv[1], r.model.article_id, dv[0]) for r, dv in dated)
    if len(precisions) > 1:
        out.append(
            Conflict(
                field="date_precision",
                values=precisions,
                compatible=True,
                note="reports state the date at different precision",
            )
        )
    located = [r for r in rs if r.model.location]
    locs = _conflict_values(
        (" ".join((r.model.location or "").split()), r.model.article_id, r.place.key if r.place else "")
        for r in located
    )
    if len(locs) > 1:
        same = len({r.place.key for r in located if r.place}) == 1
        out.append(
            Conflict(
                field="location",
                values=locs,
                compatible=True,
                note="same place once normalised" if same else "compatible places (city/country)",
            )
        )
    per_noun: dict[str, list[CountMention]] = defaultdict(list)
    articles_of: dict[int, str] = {}
    for r in rs:
        for c in r.model.counts:
            per_noun[c.noun].append(c)
            articles_of[id(c)] = r.model.article_id
    for noun in sorted(per_noun):
        counts = per_noun[noun]
        if len({(c.value, _qualifier(c)) for c in counts}) < 2:
            continue
        compatible, note = _counts_agree(noun, counts)
        out.append(
            Conflict(
                field=f"count:{noun}",
                values=_conflict_values((_count_label(c), articles_of[id(c)], c.surface) for c in counts),
                compatible=compatible,
                note=note,
            )
        )
    return out


# An approximate count ("around 30") is compatible with the numbers it can stand for: within
# ``COUNT_TOLERANCE`` of its value, or its own range ("more than 30", "up to 30").
COUNT_TOLERANCE = 0.10
_ABOUT = frozenset({"around", "about", "some", "approximately", "roughly"})


def _qualifier(c: CountMention) -> str | None:
    if c.qualifier:
        return c.qualifier
    return "around" if c.approximate else None  # digests from before qualifiers were recorded


def _count_label(c: CountMention) -> str:
    q = _qualifier(c)
    return f"{q} {c.value}" if q else str(c.value)


def _count_range(c: CountMention) -> tuple[int, float]:
    """The whole numbers a count can stand for, as a closed range (the upper end may be infinite)."""
    v, q = c.value, _qualifier(c)
    if q is None:
        return v, v
    if q in {"nearly", "almost"}:
        return math.ceil(v * (1 - COUNT_TOLERANCE)), v
    if q in {"over", "more than"}:
        return v + 1, math.inf
    if q == "at least":
        return v, math.inf
    if q == "up to":
        return 0, v
    if q in {"fewer than", "less than"}:
        return 0, max(v - 1, 0)
    return math.ceil(v * (1 - COUNT_TOLERANCE - 1e-9)), math.floor(v * (1 + COUNT_TOLERANCE + 1e-9))


def _range_text(c: CountMention) -> str:
    """ "around 30 (±10 % = 27–33)", "more than 30 (31+)"."""
    lo, hi = _count_range(c)
    span = f"{lo}+" if hi == math.inf else f"{lo}–{int(hi)}"
    if _qualifier(c) in _ABOUT:
        span = f"±{round(COUNT_TOLERANCE * 100)} % = {span}"
    return f"{_count_label(c)} ({span})"


def _counts_agree(noun: str, counts: Sequence[CountMention]) -> tuple[bool, str]:
    """Whether all counts of one noun can be the same number, and why (a note for the reader)."""
    distinct = sorted({(c.value, _qualifier(c) or ""): c for c in counts}.values(), key=lambda c: c.value)
    exact = sorted({c.value for c in distinct if _qualifier(c) is None})
    ranges = [c for c in distinct if _qualifier(c) is not None]
    if len(exact) > 1:
        return False, f"reports give different exact numbers of {noun}: {', '.join(map(str, exact))}"
    bounds = " and ".join(_range_text(c) for c in ranges)
    if exact:
        outside = [c for c in ranges if not _count_range(c)[0] <= exact[0] <= _count_range(c)[1]]
        if outside:
            return False, f"{exact[0]} {noun} is outside {' and '.join(map(_range_text, outside))}"
        return True, f"{exact[0]} {noun} is within {bounds}"
    lo = max(_count_range(c)[0] for c in ranges)
    hi = min(_count_range(c)[1] for c in ranges)
    if lo > hi:
        return False, f"{bounds} do not overlap"
    common = f"{lo}+" if hi == math.inf else f"{lo}–{int(hi)}"
    return True, f"{bounds} overlap ({common} {noun})"


# --------------------------------------------------------------------------- stances and quotes


def _target_key(target: str) -> str:
    """Grouping key of a stance target: folded, no articles, possessives or punctuation."""
    words = [w for w in re.findall(r"\w+", re.sub(r"'s\b", "", _fold(target))) if w not in _DETERMINERS]
    return " ".join(words)


def _stance_rows(results: Sequence[ArticleResult], ents: _Entities) -> list[StanceRow]:
    groups: dict[tuple[str, str], list[tuple[str, Any]]] = defaultdict(list)
    for result in results:
        for stance in result.stances:
            holder = ents.entity_id(result.article_id, stance.holder)
            groups[(holder, _target_key(stance.target))].append((result.article_id, stance))
    rows: list[StanceRow] = []
    for (holder, key), items in groups.items():
        polarities: dict[str, set[str]] = defaultdict(set)
        targets: Counter[str] = Counter()
        supports: list[StanceSupport] = []
        for article_id, stance in items:
            polarities[stance.polarity].add(article_id)
            targets[stance.target] += 1
            supports.append(
                StanceSupport(
                    article_id=article_id,
                    polarity=stance.polarity,
                    target=stance.target,
                    evidence=stance.evidence,
                    start=stance.span.start,
                    end=stance.span.end,
                    span_status=stance.span.status,
                )
            )
        articles = sorted({a for a, _ in items})
        distinct = sorted(polarities)
        rows.append(
            StanceRow(
                holder_id=holder,
                holder=ents.name_of(holder),
                target=min(targets, key=lambda t: (-targets[t], t)),
                target_key=key,
                polarity=distinct[0] if len(distinct) == 1 else "mixed",
                polarities={p: sorted(a) for p, a in sorted(polarities.items())},
                mixed_across_articles=len(distinct) > 1 and len(articles) > 1,
                articles=articles,
                supports=sorted(supports, key=lambda s: (s.article_id, s.start or 0, s.target)),
            )
        )
    rows.sort(key=lambda r: (r.holder, r.target_key, r.holder_id))
    return rows


def _content_words(text: str) -> list[str]:
    return [w[:5] for w in re.findall(r"\w+", _fold(text)) if w not in _STOPWORDS]


def _quote_similarity(a: str, b: str) -> tuple[float, str]:
    return _set_similarity(frozenset(_content_words(a)), frozenset(_content_words(b)), a, b)


def _set_similarity(wa: frozenset[str], wb: frozenset[str], a: str, b: str) -> tuple[float, str]:
    if not wa or not wb:
        return (1.0, "identical") if _norm_key(a) == _norm_key(b) else (0.0, "no content words")
    shared = len(wa & wb)
    dice = 2 * shared / (len(wa) + len(wb))
    small = min(len(wa), len(wb))
    containment = shared / small
    if small >= QUOTE_MIN_CONTAINED_WORDS and containment >= QUOTE_MIN_CONTAINMENT and containment > dice:
        return round(containment, 3), f"containment {containment:.2f} of {small} content words"
    return round(dice, 3), f"content-word dice {dice:.2f}"


def _quote_candidates(words: Mapping[str, frozenset[str]], texts: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every pair that can reach the quote thresholds, found without comparing all pairs (prefix filtering).

    Words are ordered rarest first. Dice >= 0.4 implies an overlap >= a quarter of each set, so the two
    sets' prefixes (all but that quarter, minus one) share a word; containment >= 0.8 of a set S implies
    S's prefix of |S| - ceil(0.8|S|) + 1 words meets the other set. Common words thus never pair quotes.
    """
    df: Counter[str] = Counter(w for ws in words.values() for w in ws)
    order = {ref: sorted(ws, key=lambda w: (df[w], w)) for ref, ws in words.items()}
    dice_index: dict[str, list[str]] = defaultdict(list)
    full_index: dict[str, list[str]] = defaultdict(list)
    pairs: set[tuple[str, str]] = set()
    by_text: dict[str, list[str]] = defaultdict(list)
    for ref, ws in order.items():
        if not ws:
            by_text[_norm_key(texts[ref])].append(ref)
            continue
        overlap = math.ceil(len(ws) * QUOTE_MIN_SIMILARITY / (2 - QUOTE_MIN_SIMILARITY))
        for w in ws[: len(ws) - overlap + 1]:
            dice_index[w].append(ref)
        for w in ws:
            full_index[w].append(ref)
    for postings in (*dice_index.values(), *by_text.values()):
        pairs.update(combinations(sorted(postings), 2))
    for ref, ws in order.items():
        if len(ws) < QUOTE_MIN_CONTAINED_WORDS:
            continue
        need = math.ceil(len(ws) * QUOTE_MIN_CONTAINMENT)
        for w in ws[: len(ws) - need + 1]:
            for other in full_index[w]:
                if other != ref and len(order[other]) >= len(ws):
                    pairs.add((min(ref, other), max(ref, other)))
    return sorted(pairs)


def _speakers_compatible(
    a: str,
    b: str,
    countries: Mapping[str, frozenset[str]],
    kinds: Mapping[str, str],
    possible: Mapping[str, str] | None = None,
) -> str | None:
    if a == b:
        return "same speaker"
    if possible and (possible.get(a) == b or possible.get(b) == a):
        # A bare surname whose only full-name match is in another article: not merged, but the wordings
        # of one statement may still be grouped (each member keeps its own speaker).
        return "speaker possibly the same person (the only full name with that surname)"
    if kinds[a] == "person" and kinds[b] == "person":
        return None
    shared = countries[a] & countries[b]
    return f"speakers linked via {', '.join(sorted(shared))}" if shared else None


def _quote_groups(
    results: Sequence[ArticleResult], ents: _Entities, entities: list[Entity]
) -> list[QuoteGroup]:
    kinds = {e.id: e.kind for e in entities}
    possible = {
        e.id: e.possible_same_as[0].target
        for e in entities
        if len(e.possible_same_as) == 1 and e.possible_same_as[0].rule == "surname-in-other-article"
    }
    members: dict[str, QuoteMember] = {}
    for result in results:
        for i, q in enumerate(result.quotes):
            if q.speaker is None:
                continue  # unattributed: no speaker to compare
            ref = f"{result.article_id}#q{i}"
            members[ref] = QuoteMember(
                ref=ref,
                article_id=result.article_id,
                index=i,
                speaker=q.speaker,
                speaker_id=ents.entity_id(result.article_id, q.speaker),
                text=q.text,
                cue=q.cue,
                start=q.span.start,
                end=q.span.end,
            )
    refs = sorted(members)
    words = {ref: frozenset(_content_words(members[ref].text)) for ref in refs}
    all_speakers = {m.speaker_id for m in members.values()}
    countries = {ident: frozenset(ents.countries_by_id(ident)) for ident in all_speakers}
    uf = _UnionFind(refs)
    links: list[ClusterLink] = []
    # Speakers must be compatible, so only quotes sharing a speaker or a linked country are compared.
    blocks: dict[str, list[str]] = defaultdict(list)
    for ref in refs:
        speaker = members[ref].speaker_id
        also = (f"s:{possible[speaker]}",) if speaker in possible else ()
        for block in (f"s:{speaker}", *also, *(f"c:{c}" for c in countries[speaker])):
            blocks[block].append(ref)
    texts = {ref: m.text for ref, m in members.items()}
    candidates: set[tuple[str, str]] = set()
    for block_refs in blocks.values():
        candidates.update(_quote_candidates({ref: words[ref] for ref in block_refs}, texts))
    for a, b in sorted(candidates):
        ma, mb = members[a], members[b]
        speakers = _speakers_compatible(ma.speaker_id, mb.speaker_id, countries, kinds, possible)
        if speakers is None:
            continue
        score, how = _set_similarity(words[a], words[b], ma.text, mb.text)
        if score < QUOTE_MIN_SIMILARITY:
            continue
        uf.union(a, b)
        links.append(ClusterLink(a=a, b=b, score=score, reason=f"{how}; {speakers}"))
    links_by_root: dict[str, list[ClusterLink]] = defaultdict(list)
    for link in links:
        links_by_root[uf.find(link.a)].append(link)
    groups: list[QuoteGroup] = []
    for root, refs_in in uf.groups().items():
        ms = [members[r] for r in refs_in]
        articles = sorted({m.article_id for m in ms})
        wordings = len({_norm_key(m.text) for m in ms})
        if len(ms) < 2 or (wordings < 2 and len(articles) < 2):
            continue
        speaker_ids = sorted({m.speaker_id for m in ms})
        groups.append(
            QuoteGroup(
                id="",
                speaker_ids=speaker_ids,
                speakers=sorted({m.speaker for m in ms}),
                articles=articles,
                wordings=wordings,
                members=ms,
                links=links_by_root[root],
            )
        )
    groups.sort(key=lambda g: (-len(g.articles), g.members[0].ref))
    return [g.model_copy(update={"id": f"Q{i}"}) for i, g in enumerate(groups, start=1)]


# --------------------------------------------------------------------------- entry points


def build_digest(results: Iterable[ArticleResult], aliases: Mapping[str, str] | None = None) -> Digest:
    """Canonical entities, event clusters with conflicts, a stance table and quote variants of a run.

    ``aliases`` ("variant" -> "canonical") are laid over ``DEFAULT_ALIASES``; map a name to itself to
    switch a default off. Error results and duplicates (``duplicate_of``) are listed as skipped.
    """
    table = _AliasTable.build(aliases)
    usable: list[ArticleResult] = []
    skipped: list[SkippedArticle] = []
    seen: set[str] = set()
    for result in sorted(results, key=lambda r: r.article_id):
        if result.status != "ok":
            reason = f"error: {result.error.type}" if result.error else "error"
            skipped.append(SkippedArticle(article_id=result.article_id, reason=reason))
        elif result.duplicate_of is not None:
            skipped.append(
                SkippedArticle(article_id=result.article_id, reason=f"duplicate of {result.duplicate_of}")
            )
        elif result.article_id in seen:
            skipped.append(SkippedArticle(article_id=result.article_id, reason="repeated article id"))
        else:
            seen.add(result.article_id)
            usable.append(result)

    parse_cache: dict[str, _Parsed] = {}

    def parsed(surface: str) -> _Parsed:
        if surface not in parse_cache:
            parse_cache[surface] = _parse(surface, table)
        return parse_cache[surface]

    mentions: list[_Mention] = []
    for result in usable:
        for event in result.events:
            mentions.extend(_Mention(result.article_id, a, "actor", parsed(a)) for a in event.actors)
        mentions.extend(
            _Mention(result.article_id, q.speaker, "speaker", parsed(q.speaker))
            for q in result.quotes
            if q.speaker is not None
        )
        mentions.extend(
            _Mention(result.article_id, s.holder, "holder", parsed(s.holder)) for s in result.stances
        )
    ents = _Entities(mentions, table)
    entities = ents.to_models()
    names = {e.id: e.name for e in entities}

    reports: list[_Report] = []
    for result in usable:
        for i, event in enumerate(result.events):
            date = _event_date(event.date, event.date_text)
            value, precision = _date_value(date)
            place = _location(event.location)
            actor_ids = sorted({ents.entity_id(result.article_id, a) for a in event.actors})
            model = EventReport(
                ref=f"{result.article_id}#e{i}",
                article_id=result.article_id,
                index=i,
                event_type=event.event_type,
                summary=event.summary,
                date=event.date,
                date_text=event.date_text,
                date_value=value,
                date_precision=precision,
                location=event.location,
                location_key=place.key if place else None,
                actors=list(event.actors),
                actor_ids=actor_ids,
                evidence=event.evidence,
                start=event.span.start,
                end=event.span.end,
                counts=_counts(event.evidence, event.summary),
            )
            family = _TYPE_FAMILY.get(event.event_type, event.event_type)
            reports.append(_Report(model, family, date, place, frozenset(actor_ids)))

    return Digest(
        articles=[r.article_id for r in usable],
        skipped=skipped,
        parameters={
            "name_jaro_winkler_min": NAME_JW_MIN,
            "undated_min_shared_actors": UNDATED_MIN_SHARED,
            "undated_min_actor_jaccard": UNDATED_MIN_JACCARD,
            "partial_date_min_actor_jaccard": WEAK_DATE_MIN_JACCARD,
            "quote_min_similarity": QUOTE_MIN_SIMILARITY,
            "quote_min_containment": QUOTE_MIN_CONTAINMENT,
            "event_type_families": "COOPERATE~CONSULT",
        },
        entities=entities,
        event_clusters=_cluster_events(reports, names),
        stances=_stance_rows(usable, ents),
        quote_groups=_quote_groups(usable, ents, entities),
    )


def results_fingerprint(run_dir: Path | str) -> tuple[str, int]:
    """(sha256, size) of a run's results.jsonl up to its last complete line, as recorded in digest.json."""
    path = Path(run_dir) / RESULTS_FILE
    sha, size = hashlib.sha256(), 0
    try:
        with path.open("rb") as fh:
            for line in fh:
                if line.endswith(b"\n"):  # a torn last line is left out, as ``iter_results`` does
                    sha.update(line)
                    size += len(line)
    except OSError as exc:
        raise StoreError(f"cannot read results {path}: {exc.strerror or exc}") from exc
    return sha.hexdigest(), size


def _read_results(run_dir: Path) -> tuple[list[ArticleResult], str, int]:
    """The results of a run folder with its fingerprint, taken first: results appended meanwhile make the
    digest look stale (and be rebuilt), never current."""
    sha, size = results_fingerprint(run_dir)
    return list(iter_results(run_dir)), sha, size


def _build_from_run(
    run_dir: Path, aliases: Mapping[str, str] | None, aliases_file: Path | str | None
) -> Digest:
    results, sha, size = _read_results(run_dir)
    digest = build_digest(results, aliases)
    source = DigestSource(
        results_sha256=sha,
        results_bytes=size,
        results=len(results),
        aliases=dict(aliases or {}),
        aliases_file=None if aliases_file is None else str(aliases_file),
        builtin_aliases=builtin_aliases(aliases),
    )
    return digest.model_copy(update={"source": source})


def write_digest(
    run_dir: Path | str, aliases_file: Path | str | None = None, out_path: Path | str | None = None
) -> Path:
    """Build the digest of a run folder and write it as JSON (default ``run_dir/digest.json``).

    The JSON records a fingerprint of the results.jsonl it was built from (``source``), so the review
    page can tell when the folder has changed since (``load_current_digest``).
    """
    run_dir = Path(run_dir)
    aliases = load_aliases(aliases_file) if aliases_file is not None else None
    digest = _build_from_run(run_dir, aliases, aliases_file)
    out = Path(out_path) if out_path is not None else run_dir / DIGEST_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, digest.model_dump(mode="json"))
    return out


def load_current_digest(run_dir: Path | str) -> tuple[Digest | None, str | None]:
    """The digest of ``run_dir/digest.json`` if it matches the folder's current results, else rebuilt.

    Returns ``(None, None)`` when the folder has no digest.json. When digest.json was built from other
    results (its fingerprint differs, or it records none, or it cannot be read), or under another built-in
    alias table, the digest is rebuilt from the current results with the user aliases it recorded,
    written back to digest.json, and returned with a note saying what changed (the review page shows it).
    """
    run_dir = Path(run_dir)
    path = run_dir / DIGEST_FILE
    if not path.is_file():
        return None, None
    sha, size = results_fingerprint(run_dir)
    old: Digest | None = None
    try:
        old = Digest.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        why = f"{DIGEST_FILE} could not be read ({type(exc).__name__})"
    else:
        src = old.source
        if src is None:
            why = f"{DIGEST_FILE} records no fingerprint of the results it was built from"
        elif (src.results_sha256, src.results_bytes) != (sha, size):
            why = ""  # said below, once the new results are known
        elif src.builtin_aliases is not None and src.builtin_aliases != builtin_aliases(src.aliases):
            why = f"{DIGEST_FILE} was built with another {BUILTIN_ALIAS_TABLE}"
        else:
            return old, None
    src = old.source if old is not None else None
    digest = _build_from_run(run_dir, src.aliases if src else None, src.aliases_file if src else None)
    write_json_atomic(path, digest.model_dump(mode="json"))
    if not why and old is not None and src is not None and digest.source is not None:
        why = f"{DIGEST_FILE} was built before {RESULTS_FILE} changed ({_what_changed(old, digest)})"
    aliases = " with its recorded aliases" if src and src.aliases else ""
    used = f"{len(digest.articles)} article(s)" + (
        f", {len(digest.skipped)} skipped" if digest.skipped else ""
    )
    return digest, f"{why}; rebuilt{aliases}: {used}"


def _what_changed(old: Digest, new: Digest) -> str:
    """ "5 → 6 results: new 005 (skipped: error: LLMError)" -- what differs between two digests' inputs."""
    assert old.source is not None and new.source is not None
    before = dict.fromkeys(old.articles, "") | {s.article_id: s.reason for s in old.skipped}
    after = dict.fromkeys(new.articles, "") | {s.article_id: s.reason for s in new.skipped}
    bits: list[str] = []

    def listed(ids: Sequence[str], reasons: Mapping[str, str]) -> str:
        shown = [f"{a} (skipped: {reasons[a]})" if reasons[a] else a for a in ids[:5]]
        return ", ".join(shown) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")

    if added := sorted(after.keys() - before.keys()):
        bits.append(f"new {listed(added, after)}")
    if gone := sorted(before.keys() - after.keys()):
        bits.append(f"gone {listed(gone, before)}")
    both = sorted(before.keys() & after.keys())
    if skipped := [a for a in both if after[a] and before[a] != after[a]]:
        bits.append(f"now {listed(skipped, after)}")
    if usable := [a for a in both if before[a] and not after[a]]:
        bits.append(f"now extracted: {listed(usable, after)}")
    if not bits:
        bits.append("the same articles, re-extracted")
    return f"{old.source.results} → {new.source.results} results: " + "; ".join(bits)


def ensure_digest(run_dir: Path | str) -> tuple[Digest, str | None]:
    """The folder's current digest: ``load_current_digest``, or, with no digest.json yet, one built now.

    A new digest is built from results.jsonl (deterministic, no model) with the built-in aliases only, and
    written to digest.json; the note says so and how to use an alias file instead.
    """
    run_dir = Path(run_dir)
    current, note = load_current_digest(run_dir)
    if current is not None:
        return current, note
    digest = _build_from_run(run_dir, None, None)
    write_json_atomic(run_dir / DIGEST_FILE, digest.model_dump(mode="json"))
    note = (
        f"no {DIGEST_FILE} yet: built from {RESULTS_FILE} with the {BUILTIN_ALIAS_TABLE} and saved "
        f"(run `extractor digest {run_dir} --aliases FILE` to add your own aliases)"
    )
    return digest, note


def _value_label(field_name: str, value: str) -> str:
    if field_name == "date":
        return date_label(value)
    if field_name == "date_precision":
        return precision_label(value)
    return value


def _as_digest(digest: Digest | Mapping[str, Any]) -> Digest:
    return digest if isinstance(digest, Digest) else Digest.model_validate(digest)


def render_digest_text(digest: Digest | Mapping[str, Any]) -> str:
    """A plain-text terminal summary: merged entities, event clusters with conflicts, quote variants."""
    d = _as_digest(digest)
    lines = [f"Digest of {len(d.articles)} article(s)" + (f", {len(d.skipped)} skipped" if d.skipped else "")]
    merged = [e for e in d.entities if len(e.mentions) > 1 or e.merges]
    lines.append(f"\nEntities: {len(d.entities)} ({len(merged)} with merged forms)")
    for e in merged:
        forms = ", ".join(f"{m.surface!r}" for m in e.mentions)
        lines.append(f"  {e.name} [{e.kind}]: {forms}")
        for merge in e.merges:
            lines.append(f"      {merge.surface!r} -> {merge.matched!r}: {merge.reason}")
    possible = [e for e in d.entities if e.possible_same_as]
    if possible:
        lines.append("\nPossibly the same (not merged):")
        for e in possible:
            for x in e.possible_same_as:
                lines.append(f"  {e.name} ({', '.join(e.articles)}) ~ {x.target_name}: {x.reason}")
    linked = [e for e in d.entities if e.linked_to]
    if linked:
        lines.append("\nLinks (not merged):")
        for e in linked:
            targets = ", ".join(f"{link.relation} {link.target_name}" for link in e.linked_to)
            lines.append(f"  {e.name} [{e.kind}]: {targets}")
    singles = [c for c in d.event_clusters if len(c.reports) == 1]
    lines.append(f"\nEvent clusters: {len(d.event_clusters)} ({len(singles)} reported by one article)")
    for c in d.event_clusters:
        where = c.location or "unknown place"
        head = f"  {c.id} {'/'.join(c.event_types)} {date_label(c.date_value)} at {where}"
        if len(c.reports) == 1:
            if len(singles) <= SINGLE_CLUSTERS_SHOWN:
                lines.append(f"{head}: {c.reports[0].ref}: {c.reports[0].summary}")
            continue
        lines.append(f"{head}: {len(c.reports)} reports from {', '.join(c.articles)}")
        for r in c.reports:
            lines.append(f"      {r.ref}: {r.summary}")
        for conflict in c.conflicts:
            vals = "; ".join(
                f"{_value_label(conflict.field, v.value)} ({', '.join(v.articles)})" for v in conflict.values
            )
            verdict = "compatible" if conflict.compatible else "disagree"
            lines.append(f"      conflict {conflict.field}: {vals} [{verdict}: {conflict.note}]")
    mixed = [s for s in d.stances if s.mixed_across_articles]
    lines.append(f"\nStances: {len(d.stances)} holder/target rows, {len(mixed)} with mixed polarity")
    for s in mixed:
        lines.append(f"  {s.holder} on {s.target!r}: {s.polarities}")
    lines.append(f"\nQuote variant groups: {len(d.quote_groups)}")
    for g in d.quote_groups:
        lines.append(f"  {g.id} {', '.join(g.speakers)} ({', '.join(g.articles)}):")
        for m in g.members:
            lines.append(f"      {m.ref}: “{m.text[:100]}{'…' if len(m.text) > 100 else ''}”")
    return "\n".join(lines)


DIGEST_CSS = """
.dg table{margin:6px 0 14px}.dg-kind,.dg-rule{font-size:11px;padding:0 5px;border-radius:8px;background:#eee}
.dg-merge{color:#555;font-size:12px}.dg-conflict{background:#fff4e5}.dg-ok{color:#2e7d32}
.dg-mixed{background:#fdecea}.dg-note{background:#fff4e5;border-left:4px solid #b26a00;padding:6px 8px}
.dg-part{margin:8px 0}.dg-part>summary{font-size:15px}.dg-more{margin:4px 0 10px 12px}
.dg-cluster{border:1px solid #ddd;border-radius:6px;padding:6px 10px;margin:8px 0;background:#fff}
.dg-cluster>summary{font-weight:400}.dg-ev{font-size:12px;color:#555}.dg-quote{font-style:italic}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(cls: str, head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    thead = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{thead}</tr></thead><tbody>{body}</tbody></table>'


def _details(cls: str, summary: str, body: str, *, open_: bool, ident: str | None = None) -> str:
    attrs = f' id="{_e(ident)}"' if ident else ""
    opened = " open" if open_ else ""
    return f'<details class="{cls}"{attrs}{opened}><summary>{summary}</summary>{body}</details>'


class _Links:
    """Article ids as links to their sections of the review page (``anchors``: article id -> element id)."""

    def __init__(self, anchors: Mapping[str, str] | None) -> None:
        self.anchors = anchors or {}

    def article(self, article_id: str, label: str | None = None) -> str:
        text = _e(label if label is not None else article_id)
        anchor = self.anchors.get(article_id)
        return f'<a class="dg-art" href="#{_e(anchor)}">{text}</a>' if anchor else text

    def articles(self, article_ids: Iterable[str]) -> str:
        return ", ".join(self.article(a) for a in article_ids)


def _entity_html(d: Digest, links: _Links) -> str:
    def row(ent: Entity) -> list[str]:
        mentions = "<br>".join(
            f'{_e(m.surface)} <span class="dg-ev">×{m.count} in {links.articles(m.articles)}</span>'
            for m in ent.mentions
        )
        merges = "<br>".join(
            f'<span class="dg-merge"><span class="dg-rule">{_e(r.rule)}</span> {_e(r.surface)} → '
            f"{_e(r.matched)} ({r.score:.2f}): {_e(r.reason)}</span>"
            for r in ent.merges
        )
        maybe = "<br>".join(
            f'<span class="dg-merge"><span class="dg-rule">{_e(x.rule)}</span> '
            f'<a href="#dg-ent-{_e(x.target)}">{_e(x.target_name)}</a>: {_e(x.reason)}</span>'
            for x in ent.possible_same_as
        )
        linked = "<br>".join(f"{_e(link.relation)} {_e(link.target_name)}" for link in ent.linked_to)
        notes = "<br>".join(_e(n) for n in ent.notes)
        return [
            f'<span id="dg-ent-{_e(ent.id)}">{_e(ent.name)}</span>',
            f'<span class="dg-kind">{_e(ent.kind)}</span>',
            mentions,
            merges,
            maybe,
            linked,
            notes,
        ]

    head = ["Entity", "Kind", "Mentions", "Merged because", "Possibly the same as", "Linked to", "Notes"]
    notable = [
        e
        for e in d.entities
        if len(e.articles) > 1 or len(e.mentions) > 1 or e.possible_same_as or e.notes or e.kind == "person"
    ]
    rest = [e for e in d.entities if e not in notable]
    body = _table("dg-entities", head, map(row, notable))
    if rest:
        body += _details(
            "dg-more",
            f"{len(rest)} other entities (one form, one article)",
            _table("dg-entities", head, map(row, rest)),
            open_=False,
        )
    kinds = Counter(e.kind for e in d.entities)
    by_kind = ", ".join(
        f"{n} {_KIND_NAMES.get(kind, (kind, kind + 's'))[n != 1]}"
        for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    summary = f"Entities ({len(d.entities)}: {by_kind})"
    if rest:
        summary += f" — {len(notable)} listed: people and entities with several forms or in several articles"
    return _details("dg-part", _e(summary), body, open_=True, ident="dg-entities")


_KIND_NAMES: dict[str, tuple[str, str]] = {
    "person": ("person", "people"),
    "name": ("bare surname", "bare surnames"),
    "country": ("country", "countries"),
    "place": ("place", "places"),
    "institution": ("institution", "institutions"),
    "source": ("source", "sources"),
    "group": ("group", "groups"),
    "role": ("role", "roles"),
    "other": ("other", "other"),
}


def _cluster_html(c: EventCluster, links: _Links) -> str:
    summary = (
        f"<strong>{_e(c.id)}</strong> {_e('/'.join(c.event_types))} · {_e(date_label(c.date_value))} "
        f"· {_e(c.location or 'location unknown')} · {len(c.reports)} reports from "
        f"{links.articles(c.articles)}"
    )
    rows = [
        [
            links.article(r.article_id, r.ref),
            _e(r.event_type),
            _e(r.date or r.date_text or "—"),
            _e(r.location or "—"),
            _e(", ".join(r.actors)),
            f'{_e(r.summary)}<div class="dg-ev">{_e(r.evidence)}</div>',
        ]
        for r in c.reports
    ]
    body = _table("dg-reports", ["Report", "Type", "Date", "Location", "Actors", "Summary / evidence"], rows)
    if c.conflicts:
        crows = [
            [
                _e(cf.field),
                "<br>".join(
                    f"{_e(_value_label(cf.field, v.value))} — {links.articles(v.articles)}" for v in cf.values
                ),
                _e("compatible" if cf.compatible else "disagree"),
                _e(cf.note),
            ]
            for cf in c.conflicts
        ]
        body += _table("dg-conflicts dg-conflict", ["Field", "Values (articles)", "Verdict", "Note"], crows)
    if c.links:
        body += (
            '<div class="dg-ev">'
            + "<br>".join(f"{_e(k.a)} ~ {_e(k.b)}: {_e(k.reason)}" for k in c.links)
            + "</div>"
        )
    return _details("dg-cluster", summary, body, open_=True, ident=f"dg-{c.id}")


def _events_html(d: Digest, links: _Links) -> str:
    multi = [c for c in d.event_clusters if len(c.articles) > 1]
    single = [c for c in d.event_clusters if len(c.articles) <= 1]
    body = "".join(_cluster_html(c, links) for c in multi)
    if single:
        rows = "".join(
            f'<tr id="dg-{_e(c.id)}"><td>{_e(c.id)}</td><td>{_e("/".join(c.event_types))}</td>'
            f"<td>{_e(date_label(c.date_value))}</td><td>{_e(c.location or '—')}</td>"
            f"<td>{'<br>'.join(links.article(r.article_id, r.ref) for r in c.reports)}</td>"
            f"<td>{'<br>'.join(_e(r.summary) for r in c.reports)}</td></tr>"
            for c in single
        )
        head = "".join(f"<th>{h}</th>" for h in ("Cluster", "Type", "Date", "Location", "Report", "Summary"))
        body += _details(
            "dg-more",
            f"{len(single)} events reported by one article",
            f'<table class="dg-singles"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>',
            open_=not multi,
        )
    summary = f"Event clusters ({len(d.event_clusters)}; {len(multi)} reported by several articles)"
    return _details("dg-part", _e(summary), body, open_=True, ident="dg-events")


def _stances_html(d: Digest, links: _Links) -> str:
    def row(s: StanceRow) -> list[str]:
        return [
            _e(s.holder),
            _e(s.target),
            f'<span class="{"dg-mixed" if s.mixed_across_articles else "dg-ok"}">{_e(s.polarity)}</span>',
            "<br>".join(
                f"{links.article(x.article_id)} [{_e(x.start)}–{_e(x.end)}] {_e(x.polarity)}: "
                f"{_e(x.evidence)}"
                for x in s.supports
            ),
        ]

    head = ["Holder", "Target", "Polarity", "Evidence (article, span)"]
    shared = [s for s in d.stances if len(s.articles) > 1 or s.mixed_across_articles]
    rest = [s for s in d.stances if s not in shared]
    body = _table("dg-stances", head, map(row, shared)) if shared else ""
    if rest:
        body += _details(
            "dg-more",
            f"{len(rest)} stances held in one article",
            _table("dg-stances", head, map(row, rest)),
            open_=not shared,
        )
    summary = f"Stances ({len(d.stances)}; {len(shared)} across articles)"
    return _details("dg-part", _e(summary), body, open_=True, ident="dg-stances")


def _quotes_html(d: Digest, links: _Links) -> str:
    rows = [
        [
            _e(g.id),
            _e(", ".join(g.speakers)),
            "<br>".join(
                f"{links.article(m.article_id, m.ref)} ({_e(m.speaker)}): "
                f'<span class="dg-quote">“{_e(m.text)}”</span>'
                for m in g.members
            ),
        ]
        for g in d.quote_groups
    ]
    body = _table("dg-quotes", ["Group", "Speakers", "Wordings"], rows)
    return _details(
        "dg-part", _e(f"Quote variants ({len(d.quote_groups)})"), body, open_=True, ident="dg-quotes"
    )


def digest_html_section(
    digest: Digest | Mapping[str, Any], anchors: Mapping[str, str] | None = None, note: str | None = None
) -> str:
    """An HTML fragment (a ``<section>``) of the digest for the review page; every value is escaped.

    ``anchors`` maps article ids to the ids of their sections on the page (``report.article_anchors``):
    article references become links to them. ``note`` (e.g. "rebuilt because ...") is shown on top. Parts
    are collapsible ``<details>``: clusters, stances and quote groups spanning several articles start
    open, one-article ones are collapsed. Uses only ``dg-`` classes, no scripts, no inline styles and no
    external assets; ``DIGEST_CSS`` holds optional styles for them.
    """
    d = _as_digest(digest)
    links = _Links(anchors)
    parts = [f'<section id="digest" class="dg"><h2>Digest ({len(d.articles)} articles)</h2>']
    if note:
        parts.append(f'<p class="dg-note">{_e(note)}</p>')
    parts.append(_entity_html(d, links))
    parts.append(_events_html(d, links))
    parts.append(_stances_html(d, links))
    parts.append(_quotes_html(d, links))
    if d.skipped:
        parts.append(
            '<p class="dg-ev">Skipped: '
            + "; ".join(f"{links.article(s.article_id)} ({_e(s.reason)})" for s in d.skipped)
            + "</p>"
        )
    parts.append("</section>")
    return "".join(parts)
