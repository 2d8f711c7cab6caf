"""Entities: every mention (event actor, quote speaker, stance holder) resolved to one entity.

Mentions are event actors, quote speakers and stance holders. Each surface form is cleaned (leading
article, possessive 's, punctuation), looked up in the alias table ("variant" -> "canonical", the
packaged ``DEFAULT_ALIASES`` overlaid by the user's file), then classified with small gazetteers:
country ("the U.S."), place (capitals and venues, "Rome", "Elysee"), institution ("the Italian
government", "Italian officials"), source ("the statement"), group ("Coalition members"), role
("Poland's Prime Minister") or person. Leading titles and roles ("Italian Prime Minister", "U.S.",
"Secretary-General", ...) are stripped from person names (rule ``title-stripped``); a demonym among
them becomes an ``affiliation`` link.

Two full person names are one person by the rules in ``names``. Merging is agglomerative, strongest pair
first, with complete linkage: a merge only happens when every name of one cluster is compatible with every
name of the other, so John Smith and Jane Smith never meet through a chain. A bare surname ("Meloni")
merges only with the unique full-name person with a compatible surname in the same article (rule
``surname-of-unique``). Otherwise it stays an article-local entity of kind ``name``: a surname alone says
nothing about who another article's "Smith" is, so a full name found only in other articles becomes a
``possible_same_as`` link (rule ``surname-in-other-article``, or ``surname-ambiguous`` with a note when
several full names fit), never a merge. (On the seeds every bare "Meloni", "Zelensky", "Trump" has its
full name in the same article.) Quote variants may still group a bare surname's quote with its unique
linked full name's.
Institutions, places, roles, groups and sources are never merged with people: they get ``linked_to``
relations to a country. A speaker like "the statement" with no country is article-local; it is linked
to the country its article's voices (stance holders and quote speakers) point to, when that country is
the unique most frequent one (relation ``inferred-from-article``).

Modules: ``names`` (the alias table and the name rules), ``mentions`` (reading one mention), ``people``
(merging full names, explaining the merges); this one attaches every mention to an entity.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from extractor.digest.mentions import _Mention
from extractor.digest.model import Entity, EntityLink, MentionInfo, MergeRecord, PossibleMatch
from extractor.digest.names import _AliasTable
from extractor.digest.people import (
    PersonClusters,
    blocks_of,
    display_forms,
    explain_people,
    merge_people,
    surname_candidates,
)
from extractor.digest.tables import _CAPITALS
from extractor.digest.text import _slug


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
        clusters = merge_people(mentions, self.aliases)
        self._person_root = clusters.root
        named = explain_people(clusters, mentions)
        self._cluster_name = {root: person.display for root, person in named.items()}
        for root, person in named.items():
            build = _EntityBuild(f"person:{root}", "person", person.display, merges=list(person.merges))
            self.builds[build.key] = build
        for m in mentions:
            if m.parsed.kind == "person":
                self._attach(m, f"person:{self._person_root[m.parsed.key]}")
        self._note_ambiguous_initials(clusters, display_forms(mentions))
        self._link_surnames(mentions, clusters)

    def _note_ambiguous_initials(self, clusters: PersonClusters, forms: Mapping[str, str]) -> None:
        for k, partners in sorted(clusters.ambiguous_initials.items()):
            build = self.builds[f"person:{self._person_root[k]}"]
            roots = sorted({self._person_root[x] for x in partners} - {self._person_root[k]})
            fits = ", ".join(sorted(self._cluster_name[r] for r in roots))
            build.notes.append(f"'{forms.get(k, k)}' is ambiguous: the initial fits {fits}")
            for r in roots:
                build.possible.append(
                    (
                        f"person:{r}",
                        "initial-ambiguous",
                        0.5,
                        f"initial of {self._cluster_name[r]}; not merged",
                    )
                )

    def _link_surnames(self, mentions: list[_Mention], clusters: PersonClusters) -> None:
        """Bare surnames merge only with the unique full-name person of the same article.

        Across articles a surname alone is no evidence (another article's "Smith" may be anyone), so there
        it stays its own entity with a ``possible_same_as`` link to each compatible full name of the corpus.
        """
        root_articles: dict[str, set[str]] = defaultdict(set)
        for m in mentions:
            if m.parsed.kind == "person":
                root_articles[self._person_root[m.parsed.key]].add(m.article_id)
        article_roots: dict[str, set[str]] = defaultdict(set)
        for root, arts in root_articles.items():
            for article_id in arts:
                article_roots[article_id].add(root)
        roots_by_block: dict[str, set[str]] = defaultdict(set)
        for root, names_in in clusters.clusters.items():
            for k in names_in:
                for block in blocks_of(clusters.people[k].surname, self.aliases):
                    roots_by_block[block].add(root)
        for m in mentions:
            if m.parsed.kind != "single":
                continue
            near = set().union(*(roots_by_block[b] for b in blocks_of(m.parsed.surname, self.aliases)))
            local = surname_candidates(
                m.parsed.surname, near & article_roots[m.article_id], clusters, self.aliases
            )
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
                found = surname_candidates(m.parsed.surname, near, clusters, self.aliases)
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
