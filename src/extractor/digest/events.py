"""Event clusters: reports of one event by several articles, with their conflicts and counts.

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
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations

from extractor.dates import PartialDate, date_agreement, date_label, date_value, dates_conflict
from extractor.digest.model import (
    ClusterLink,
    Conflict,
    ConflictValue,
    CountMention,
    EventCluster,
    EventReport,
)
from extractor.digest.tables import _CITIES, _NUMBER_WORDS, _VENUES
from extractor.digest.text import _clean_surface, _countries_in, _drop_determiner, _norm_key
from extractor.digest.unionfind import _UnionFind

UNDATED_MIN_SHARED = 2
UNDATED_MIN_JACCARD = 0.5
WEAK_DATE_MIN_JACCARD = 0.5
_TYPE_FAMILY: dict[str, str] = {"COOPERATE": "CONSULT"}

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
    date: PartialDate
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
        and not dates_conflict(a.date, b.date)
        and _locations_compatible(a.place, b.place)
    )


def _event_pair(a: _Report, b: _Report) -> tuple[float, str] | None:
    if not _pair_hard_ok(a, b):
        return None
    shared = a.actors & b.actors
    union = a.actors | b.actors
    jaccard = len(shared) / len(union) if union else 0.0
    same_place = a.place is not None and b.place is not None and _locations_compatible(a.place, b.place)
    level = date_agreement(a.date, b.date)
    if level == "day":
        ok = same_place or len(shared) >= 1
    elif level == "partial":
        ok = len(shared) >= 1 and (same_place or jaccard >= WEAK_DATE_MIN_JACCARD)
    else:
        ok = len(shared) >= UNDATED_MIN_SHARED and jaccard >= UNDATED_MIN_JACCARD
    if not ok:
        return None
    score = {"day": 2.0, "partial": 1.0, "none": 0.0}[level] + (1.0 if same_place else 0.0) + jaccard
    da, db = date_value(a.date)[0], date_value(b.date)[0]
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
    value, precision = date_value((date[0], date[1], date[2]))
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
    dated = [(r, date_value(r.date)) for r in rs if r.date != (None, None, None)]
    located = [r for r in rs if r.model.location]
    same_place = len({r.place.key for r in located if r.place}) == 1
    # (field, values, note): dates and places that differ only in what they state or how precisely.
    stated = (
        (
            "date",
            _conflict_values(
                (dv[0], r.model.article_id, r.model.date or r.model.date_text or "") for r, dv in dated
            ),
            "dates differ only in what they state; no known component disagrees",
        ),
        (
            "date_precision",
            _conflict_values((dv[1], r.model.article_id, dv[0]) for r, dv in dated),
            "reports state the date at different precision",
        ),
        (
            "location",
            _conflict_values(
                (
                    " ".join((r.model.location or "").split()),
                    r.model.article_id,
                    r.place.key if r.place else "",
                )
                for r in located
            ),
            "same place once normalised" if same_place else "compatible places (city/country)",
        ),
    )
    for field_name, values, note in stated:
        if len(values) > 1:
            out.append(Conflict(field=field_name, values=values, compatible=True, note=note))
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
