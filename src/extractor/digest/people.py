"""Full person names across a run: which names are one person (merge) and why (explanation).

Merging is agglomerative, strongest pair first, with complete linkage: a merge only happens when every
name of one cluster is compatible (``names._person_match``) with every name of the other, so John Smith
and Jane Smith never meet through a chain. An initial ("S. Witkoff") merges only when every full name it
fits is one person. Each cluster's canonical name is the one in most articles, then with most mentions,
then the most central spelling, then the first seen; every merge edge is reported pointing towards it.
Bare surnames are linked afterwards (``entities``), with ``surname_candidates``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from extractor.digest.mentions import _Mention
from extractor.digest.model import MergeRecord
from extractor.digest.names import (
    _AliasTable,
    _given_match,
    _is_initial,
    _PairMatch,
    _Parsed,
    _person_match,
    _surname_match,
)
from extractor.digest.text import _jw, _phonetic_key
from extractor.digest.unionfind import _UnionFind

_Pair = tuple[float, str, str, _PairMatch]


@dataclass
class PersonClusters:
    """Full person names grouped into people: ``root`` maps each name key to its cluster's root key."""

    people: dict[str, _Parsed]  # name key -> the parsed name
    root: dict[str, str]  # name key -> cluster root
    clusters: dict[str, list[str]]  # cluster root -> its name keys
    edges: list[tuple[str, str, _PairMatch]]  # the merges made, as a spanning tree of each cluster
    ambiguous_initials: dict[str, set[str]]  # an initial's name key -> the full names it fits


@dataclass
class PersonName:
    """A cluster's canonical name and the merge records that explain it."""

    canonical: str  # name key
    display: str
    merges: list[MergeRecord]


def merge_people(mentions: Iterable[_Mention], aliases: _AliasTable) -> PersonClusters:
    """Cluster the full person names of ``mentions`` (see the module docstring)."""
    people: dict[str, _Parsed] = {}
    for m in mentions:
        if m.parsed.kind == "person":
            people.setdefault(m.parsed.key, m.parsed)
    keys = sorted(people)
    pairs: list[_Pair] = []
    for a, b in _candidate_pairs(keys, people, aliases):
        match = _person_match(people[a], people[b], aliases)
        if match is not None:
            pairs.append((match.score, a, b, match))
    pairs, ambiguous_initials = _drop_ambiguous_initials(pairs, people, aliases)
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    uf = _UnionFind(keys)
    members: dict[str, list[str]] = {k: [k] for k in keys}
    edges: list[tuple[str, str, _PairMatch]] = []
    for _, a, b, match in pairs:
        ra, rb = uf.find(a), uf.find(b)
        if ra == rb:
            continue
        # Complete linkage: every name of one cluster must match every name of the other.
        if not all(_person_match(people[x], people[y], aliases) for x in members[ra] for y in members[rb]):
            continue
        merged = members.pop(ra) + members.pop(rb)
        uf.union(ra, rb)
        members[uf.find(ra)] = sorted(merged)
        edges.append((a, b, match))
    return PersonClusters(people, {k: uf.find(k) for k in keys}, uf.groups(), edges, ambiguous_initials)


def _drop_ambiguous_initials(
    pairs: list[_Pair], people: Mapping[str, _Parsed], aliases: _AliasTable
) -> tuple[list[_Pair], dict[str, set[str]]]:
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
        if len(given) > 1 and not all(_given_match(x, y, aliases) for x, y in combinations(sorted(given), 2)):
            ambiguous[initial] = fulls
    kept = [p for p in pairs if not ({p[1], p[2]} & ambiguous.keys() and p[3].rule.startswith("initial"))]
    return kept, ambiguous


def blocks_of(surname: str, aliases: _AliasTable) -> set[str]:
    """Blocking keys: only surnames sharing one can match (same last-word phonetic key, or alias pair)."""
    last = surname.split()[-1]
    out = {_phonetic_key(last) or last}
    for pair in aliases.name_variants:
        if last in pair:
            out.update(_phonetic_key(w) or w for w in pair)
    return out


def _candidate_pairs(
    keys: Sequence[str], people: Mapping[str, _Parsed], aliases: _AliasTable
) -> list[tuple[str, str]]:
    blocks: dict[str, list[str]] = defaultdict(list)
    for k in keys:
        for block in blocks_of(people[k].surname, aliases):
            blocks[block].append(k)
    pairs = {(a, b) for names in blocks.values() for a, b in combinations(sorted(names), 2)}
    return sorted(pairs)


def surname_candidates(
    surname: str, roots: Iterable[str], clusters: PersonClusters, aliases: _AliasTable
) -> dict[str, float]:
    """The clusters among ``roots`` with a full name whose surname matches ``surname``, with the score."""
    out: dict[str, float] = {}
    for root in sorted(roots):
        scores = [
            match.score
            for k in clusters.clusters[root]
            if (match := _surname_match(surname, clusters.people[k].surname, aliases)) is not None
        ]
        if scores:
            out[root] = max(scores)
    return out


# --------------------------------------------------------------------------- explanation


def explain_people(clusters: PersonClusters, mentions: Sequence[_Mention]) -> dict[str, PersonName]:
    """Per cluster root: the canonical name and one merge record per edge, walked from the canonical name."""
    full_counts = _mention_stats(m for m in mentions if m.parsed.kind == "person")
    forms = display_forms(mentions)
    out: dict[str, PersonName] = {}
    for root, names in clusters.clusters.items():
        # Most articles, then most mentions, then the most central spelling, then the first seen.
        best = min(
            names, key=lambda k: (*_rank(full_counts, k), -_medoid(k, names), _first(full_counts, k), k)
        )
        out[root] = PersonName(best, forms.get(best, clusters.people[best].name), [])
    neighbours: dict[str, list[tuple[str, _PairMatch]]] = defaultdict(list)
    for a, b, match in clusters.edges:
        neighbours[a].append((b, match))
        neighbours[b].append((a, match))
    for person in out.values():
        stack, seen = [person.canonical], {person.canonical}
        while stack:
            parent = stack.pop()
            for child, match in sorted(neighbours[parent], key=lambda nm: nm[0]):
                if child in seen:
                    continue
                seen.add(child)
                stack.append(child)
                person.merges.append(
                    MergeRecord(
                        surface=forms.get(child, child),
                        matched=forms.get(parent, parent),
                        rule=match.rule,
                        score=match.score,
                        reason=match.reason,
                    )
                )
    return out


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


def display_forms(mentions: Iterable[_Mention]) -> dict[str, str]:
    """Per person name key, its most frequent written form (ties: alphabetical)."""
    forms: dict[str, Counter[str]] = defaultdict(Counter)
    for m in mentions:
        if m.parsed.kind == "person":
            forms[m.parsed.key][m.parsed.name] += 1
    return {key: min(c, key=lambda f: (-c[f], f)) for key, c in forms.items()}
