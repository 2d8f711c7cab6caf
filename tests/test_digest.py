"""The cross-article digest: entity canonicalisation, event clusters, conflicts, stances, quote variants."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from extractor.digest import (
    DEFAULT_ALIASES,
    CountMention,
    Digest,
    Entity,
    EventCluster,
    build_digest,
    date_label,
    ensure_digest,
    load_aliases,
    load_current_digest,
    write_digest,
)
from extractor.errors import ConfigError
from extractor.grounding import ground
from extractor.models import Article, ArticleExtraction, ArticleResult, ErrorInfo, Span
from extractor.review import digest_html_section, render_digest_text
from extractor.store import ResultsWriter

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
ANSWERS = ROOT / "fixtures" / "answers"

JAN_MEETING = {"000_2b0579c4498e7e08", "001_7026c964f11f0189", "003_7ee454be139f98c4"}
SEPT_MEETING = "002_0277cc05516288b5"
MARCH_SUMMIT = "004_50c378a0aef4af03"


# --------------------------------------------------------------------------- builders


def _span(start: int = 0, end: int = 10) -> dict[str, Any]:
    return {"status": "exact", "start": start, "end": end}


def ev(
    actors: Sequence[str],
    *,
    event_type: str = "CONSULT",
    date: str | None = None,
    date_text: str | None = None,
    location: str | None = None,
    summary: str = "Leaders met.",
    evidence: str = "Leaders met.",
) -> dict[str, Any]:
    return {
        "summary": summary,
        "event_type": event_type,
        "date": date,
        "date_text": date_text,
        "location": location,
        "actors": list(actors),
        "evidence": evidence,
        "span": _span(),
    }


def qt(text: str, speaker: str | None, cue: str | None = None) -> dict[str, Any]:
    return {"text": text, "speaker": speaker, "cue": cue, "span": _span(5, 5 + len(text))}


def st(holder: str, target: str, polarity: str, evidence: str = "evidence", start: int = 0) -> dict[str, Any]:
    return {
        "holder": holder,
        "target": target,
        "polarity": polarity,
        "evidence": evidence,
        "span": _span(start, start + len(evidence)),
    }


def res(
    article_id: str,
    events: Sequence[dict[str, Any]] = (),
    quotes: Sequence[dict[str, Any]] = (),
    stances: Sequence[dict[str, Any]] = (),
) -> ArticleResult:
    return ArticleResult.model_validate(
        {
            "article_id": article_id,
            "source": f"{article_id}.txt",
            "sha256": "0" * 64,
            "status": "ok",
            "events": list(events),
            "quotes": list(quotes),
            "stances": list(stances),
        }
    )


def entity_with(digest: Digest, surface: str) -> Entity:
    found = [e for e in digest.entities if any(m.surface == surface for m in e.mentions)]
    assert len(found) == 1, f"{surface!r} is in {len(found)} entities"
    return found[0]


def cluster_of(digest: Digest, ref: str) -> EventCluster:
    return next(c for c in digest.event_clusters if any(r.ref == ref for r in c.reports))


# --------------------------------------------------------------------------- entities


def test_two_people_sharing_a_surname_stay_apart() -> None:
    digest = build_digest(
        [
            res("a1", [ev(["John Smith", "Smith"])]),
            res("a2", [ev(["Jane Smith"])]),
            res("a3", [ev(["Smith", "Ms Smith"])]),
            res("a4", [ev(["Jane Smyth"])]),
        ]
    )
    john, jane = entity_with(digest, "John Smith"), entity_with(digest, "Jane Smith")
    assert john.id != jane.id
    # In a1 "Smith" is the only Smith with a full name in the same article, so it is John.
    assert {"John Smith", "Smith"} <= {m.surface for m in john.mentions}
    assert any(r.rule == "surname-of-unique" and "same article" in r.reason for r in john.merges)
    # Jane Smyth is the same first name with a phonetically equal, similar surname: same person as Jane.
    assert "Jane Smyth" in {m.surface for m in jane.mentions}
    # In a3 "Smith" could be John or Jane: it stays a separate, unresolved entity and says why.
    ambiguous = next(e for e in digest.entities if "a3" in e.articles and e.kind == "name")
    assert ambiguous.id not in {john.id, jane.id}
    assert any(
        "ambiguous" in note and "Jane Smith" in note and "John Smith" in note for note in ambiguous.notes
    )
    assert {m.surface for m in ambiguous.mentions} == {"Smith", "Ms Smith"}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Alexander Smith", "Alexandra Smith"),
        ("John Smith", "Joan Smith"),
        ("Jean Smith", "Joan Smith"),
        ("Daniel Smith", "Danielle Smith"),
        ("Eric Smith", "Erica Smith"),
        ("Paul Smith", "Paula Smith"),
        ("Robert Smith", "Roberta Smith"),
        ("Francis Smith", "Frances Smith"),
        ("Louis Smith", "Louise Smith"),
        ("Antoine Smith", "Antoinette Smith"),
    ],
)
def test_similar_given_names_are_different_people(first: str, second: str) -> None:
    # Surnames may differ in spelling (Smith/Smyth); given names may not merely look or sound alike.
    for a, b in ((first, second), (first, second.replace("Smith", "Smyth"))):
        digest = build_digest([res("a1", [ev([a])]), res("a2", [ev([b])]), res("a3", [ev([a, b])])])
        one, other = entity_with(digest, a), entity_with(digest, b)
        assert one.id != other.id, one.merges
        assert (one.articles, other.articles) == (["a1", "a3"], ["a2", "a3"])
        assert not one.merges and not other.merges


@pytest.mark.parametrize(
    ("a", "b", "rule", "why"),
    [
        ("Steve Witkoff", "Steven Witkoff", "name-variant", "known given-name variants steve/steven"),
        ("S. Witkoff", "Steve Witkoff", "initial", "initial s. of steve"),
        ("Stephen Whitcoff", "Steve Witkoff", "name-variant+phonetic+similarity", "key=FTKF"),
        ("Wolodymyr Zelensky", "Volodymyr Zelensky", "name-variant", "volodymyr/wolodymyr"),
        ("Vladimir Zelenskiy", "Volodymyr Zelensky", "alias+phonetic+similarity", "vladimir/volodymyr"),
        ("Eric Larsen", "Erik Larsen", "skeleton", "eric/erik share the skeleton erik"),
    ],
)
def test_given_name_variants_initials_and_transliterations_merge_with_their_rule(
    a: str, b: str, rule: str, why: str
) -> None:
    digest = build_digest([res("a1", [ev([a])]), res("a2", [ev([b])])])
    person = entity_with(digest, a)
    assert person.id == entity_with(digest, b).id and person.articles == ["a1", "a2"]
    (record,) = person.merges
    assert {record.surface, record.matched} == {a, b}
    assert record.rule == rule and why in record.reason and 0.75 <= record.score <= 1


def test_an_initial_that_fits_two_people_merges_with_neither() -> None:
    digest = build_digest(
        [
            res("a1", [ev(["Steve Witkoff"])]),
            res("a2", [ev(["Sarah Witkoff"])]),
            res("a3", [ev(["S. Witkoff"])]),
        ]
    )
    steve, sarah, initial = (entity_with(digest, n) for n in ("Steve Witkoff", "Sarah Witkoff", "S. Witkoff"))
    assert len({steve.id, sarah.id, initial.id}) == 3
    assert {x.target for x in initial.possible_same_as} == {steve.id, sarah.id}
    assert any("ambiguous" in n for n in initial.notes)


def test_a_bare_surname_never_attaches_to_a_full_name_from_another_article() -> None:
    digest = build_digest(
        [
            res("a1", [ev(["John Smith", "Ana Lopez"])]),
            res("a2", [ev(["Jane Smith"])]),
            res("a3", [ev(["Smith"])]),
            res("b1", [ev(["Mark Rutte"])]),
            res("b2", [ev(["Rutte"])]),
        ]
    )
    john, jane = entity_with(digest, "John Smith"), entity_with(digest, "Jane Smith")
    assert john.id != jane.id and john.articles == ["a1"] and jane.articles == ["a2"]
    bare = next(e for e in digest.entities if e.articles == ["a3"])
    assert bare.id not in {john.id, jane.id} and bare.kind == "name"
    assert {(x.target, x.rule) for x in bare.possible_same_as} == {
        (john.id, "surname-ambiguous"),
        (jane.id, "surname-ambiguous"),
    }
    # Even a surname with one full-name match in the whole corpus is only linked, never merged.
    rutte = entity_with(digest, "Mark Rutte")
    assert rutte.articles == ["b1"]
    (bare_rutte,) = [e for e in digest.entities if e.articles == ["b2"]]
    (link,) = bare_rutte.possible_same_as
    assert (link.target, link.rule) == (rutte.id, "surname-in-other-article")
    assert "named only in b1" in link.reason and "not merged" in link.reason
    assert "Possibly the same (not merged):" in render_digest_text(digest)


def test_quote_variants_still_group_a_bare_surname_speaker_with_its_only_full_name() -> None:
    said = "We will keep supporting Ukraine for as long as it takes, whatever happens"
    digest = build_digest(
        [
            res("a1", quotes=[qt(said, "Mark Rutte")]),
            res("a2", quotes=[qt("We will keep supporting Ukraine for as long as it takes", "Rutte")]),
            res("a3", quotes=[qt(said, "Jane Smith")]),
            res("a4", quotes=[qt(said, "Smith")], events=[ev(["John Smith"])]),
        ]
    )
    groups = {tuple(m.article_id for m in g.members): g for g in digest.quote_groups}
    assert set(groups) == {("a1", "a2")}
    assert "possibly the same person" in groups[("a1", "a2")].links[0].reason
    assert entity_with(digest, "Rutte").id != entity_with(digest, "Mark Rutte").id


def test_witkoff_spellings_merge_with_recorded_reasons() -> None:
    digest = build_digest(
        [
            res("a1", [ev(["Steve Witkoff", "Jared Kushner"]), ev(["Witkoff"])]),
            res("a2", [ev(["Steve Vitkoff"])]),
            res("a3", [ev(["U.S. envoy Steve Whitcoff"])]),
            res("a4", [ev(["Witkoff"])]),
        ]
    )
    person = entity_with(digest, "Steve Witkoff")
    assert person.kind == "person"
    assert {m.surface for m in person.mentions} == {
        "Steve Witkoff",
        "Steve Vitkoff",
        "U.S. envoy Steve Whitcoff",
        "Witkoff",
    }
    # "Witkoff" merges in a1, where Steve Witkoff is named; a4 names no Witkoff in full: a link, no merge.
    assert person.articles == ["a1", "a2", "a3"]
    (bare,) = [e for e in digest.entities if e.articles == ["a4"] and e.kind == "name"]
    assert [(x.target, x.rule) for x in bare.possible_same_as] == [(person.id, "surname-in-other-article")]
    assert "not merged" in bare.possible_same_as[0].reason
    phonetic = [r for r in person.merges if r.rule == "phonetic+similarity"]
    assert {r.surface for r in phonetic} | {r.matched for r in phonetic} >= {
        "Steve Witkoff",
        "Steve Vitkoff",
        "Steve Whitcoff",
    }
    for record in phonetic:
        assert "jw=" in record.reason and "key=" in record.reason
        assert record.score >= 0.85
    assert any(r.rule == "title-stripped" and r.surface == "U.S. envoy Steve Whitcoff" for r in person.merges)
    assert any(
        r.rule == "surname-of-unique" and r.surface == "Witkoff" and "(a1)" in r.reason for r in person.merges
    )
    assert entity_with(digest, "Jared Kushner").id != person.id
    # The envoy title names a country: an affiliation link, not a merge.
    assert [(link.target_name, link.relation) for link in person.linked_to] == [
        ("United States", "affiliation")
    ]


def test_zelensky_variants_are_one_person_and_putin_is_not() -> None:
    digest = build_digest(
        [
            res("a1", [ev(["Volodymyr Zelensky"])]),
            res("a2", [ev(["Vladimir Zelensky", "Zelensky"])]),
            res("a3", [ev(["Ukrainian President Volodymyr Zelenskyy", "Vladimir Putin"])]),
            res("a4", [ev(["Vladimir Zelenskiy"])]),
            res("a5", [ev(["Zelenskyy"])]),
        ]
    )
    zelensky = entity_with(digest, "Volodymyr Zelensky")
    assert zelensky.name == "Volodymyr Zelensky"
    assert {m.surface for m in zelensky.mentions} == {
        "Volodymyr Zelensky",
        "Vladimir Zelensky",
        "Zelensky",
        "Ukrainian President Volodymyr Zelenskyy",
        "Vladimir Zelenskiy",
    }
    # a5 only says "Zelenskyy" (an alias of "Zelensky"): linked to the one full name, not merged.
    (bare,) = [e for e in digest.entities if e.articles == ["a5"]]
    assert (bare.kind, [x.target for x in bare.possible_same_as]) == ("name", [zelensky.id])
    rules = {r.surface: r.rule for r in zelensky.merges if r.rule != "title-stripped"}
    assert rules["Vladimir Zelensky"] == "alias"
    assert rules["Zelensky"] == "surname-of-unique"
    # Not in the alias table: first names are an alias-derived variant pair, surnames sound alike.
    assert any(
        r.surface == "Vladimir Zelenskiy" and "vladimir/volodymyr" in r.reason for r in zelensky.merges
    )
    putin = entity_with(digest, "Vladimir Putin")
    assert putin.id != zelensky.id


def test_meloni_variants_merge_but_the_italian_government_is_only_linked() -> None:
    digest = build_digest(
        [
            res(
                "a1",
                [ev(["Italian Prime Minister Giorgia Meloni", "the Italian government"])],
                stances=[st("Meloni", "deploying Italian troops to Ukraine", "oppose")],
            ),
            res(
                "a2",
                [ev(["Giorgia Meloni", "Rome"])],
                quotes=[qt("We will not send troops", "Prime Minister Meloni")],
            ),
            res("a3", [ev(["Meloni", "Italy's government", "Italian officials"])]),
        ]
    )
    meloni = entity_with(digest, "Giorgia Meloni")
    assert {m.surface for m in meloni.mentions} == {
        "Italian Prime Minister Giorgia Meloni",
        "Giorgia Meloni",
        "Meloni",
        "Prime Minister Meloni",
    }
    by_rule = {(r.surface, r.rule) for r in meloni.merges}
    assert ("Italian Prime Minister Giorgia Meloni", "title-stripped") in by_rule
    assert ("Meloni", "surname-of-unique") in by_rule
    assert ("Prime Minister Meloni", "title-stripped") in by_rule
    # Merged where the article names her in full (a1, a2); a3 says only "Meloni": kept apart, but linked.
    assert meloni.articles == ["a1", "a2"]
    (bare,) = [e for e in digest.entities if e.kind == "name" and e.articles == ["a3"]]
    assert [(x.target_name, x.rule) for x in bare.possible_same_as] == [
        ("Giorgia Meloni", "surname-in-other-article")
    ]

    government = entity_with(digest, "the Italian government")
    assert government.kind == "institution" and government.id != meloni.id
    assert "Italy's government" in {m.surface for m in government.mentions}
    italy = next(e for e in digest.entities if e.kind == "country" and e.name == "Italy")
    assert [(link.target, link.relation) for link in government.linked_to] == [(italy.id, "institution-of")]
    rome = entity_with(digest, "Rome")
    assert (rome.kind, [link.target for link in rome.linked_to]) == ("place", [italy.id])
    officials = entity_with(digest, "Italian officials")
    assert officials.id not in {government.id, meloni.id}
    assert [link.target for link in officials.linked_to] == [italy.id]


def test_alias_file_overrides_and_extends_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "aliases.toml"
    path.write_text(
        '[aliases]\n"The Donald" = "Donald Trump"\n"Coalition of Willing" = "Coalition of Willing"\n',
        encoding="utf-8",
    )
    aliases = load_aliases(path)
    assert aliases == {"The Donald": "Donald Trump", "Coalition of Willing": "Coalition of Willing"}
    results = [
        res("a1", [ev(["The Donald", "Coalition of Willing"])]),
        res("a2", [ev(["Donald Trump", "Coalition of the Willing"])]),
    ]
    digest = build_digest(results, aliases)
    trump = entity_with(digest, "Donald Trump")
    assert any(r.surface == "The Donald" and r.rule == "alias" for r in trump.merges)
    # Mapping a name to itself switches a packaged alias off.
    assert "Coalition of Willing" in DEFAULT_ALIASES
    assert (
        entity_with(digest, "Coalition of Willing").id != entity_with(digest, "Coalition of the Willing").id
    )
    default = build_digest(results)
    assert (
        entity_with(default, "Coalition of Willing").id == entity_with(default, "Coalition of the Willing").id
    )
    assert entity_with(default, "The Donald").id != entity_with(default, "Donald Trump").id


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[aliases\n", "not valid TOML"),
        ('names = {"a" = "b"}\n', r"needs an \[aliases\] table"),
        ('[aliases]\n"Steve" = 3\n', "must be a string"),
        ('[aliases]\n"Steve" = " "\n', "empty name"),
    ],
)
def test_bad_alias_files_raise_config_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "aliases.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_aliases(path)


def test_missing_alias_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read alias file"):
        load_aliases(tmp_path / "nope.toml")


# --------------------------------------------------------------------------- events


def test_event_clusters_use_date_precision_location_and_actors() -> None:
    digest = build_digest(
        [
            res("a1", [ev(["Emmanuel Macron", "Keir Starmer"], date="2026-01-06", location="Paris")]),
            res("a2", [ev(["Giorgia Meloni"], date_text="on January 6", location="the Elysee Palace")]),
            res("a3", [ev(["Emmanuel Macron", "Keir Starmer"], location="Paris", event_type="COOPERATE")]),
            res("a4", [ev(["Emmanuel Macron", "Keir Starmer"], date_text="September 4", location="Paris")]),
            res("a5", [ev(["Emmanuel Macron"], location="Paris")]),
            res("a6", [ev(["Emmanuel Macron", "Keir Starmer"], date="2026-01-06", location="London")]),
            res("a7", [ev(["Emmanuel Macron", "Keir Starmer"], date="2026-01-06", event_type="ASSAULT")]),
        ]
    )
    january = cluster_of(digest, "a1#e0")
    # a2: month-day from date_text agrees at the coarser precision, the venue normalises to Paris.
    # a3: undated but two shared actors (jaccard 1.0) and the same place; COOPERATE is in the meeting family.
    assert january.articles == ["a1", "a2", "a3"]
    assert (january.date_value, january.date_precision, january.location) == ("2026-01-06", "day", "Paris")
    assert [c.articles for c in digest.event_clusters if c is not january] == [["a4"], ["a5"], ["a6"], ["a7"]]
    # a4 conflicts on the day, a5 has one shared actor and no date, a6 is elsewhere, a7 is another type.
    assert cluster_of(digest, "a2#e0").reports[1].date_precision == "day (no year)"
    link_reasons = " | ".join(link.reason for link in january.links)
    assert "agreement: day" in link_reasons and "agreement: none" in link_reasons

    conflicts = {c.field: c for c in january.conflicts}
    assert {v.value: v.articles for v in conflicts["date"].values} == {
        "2026-01-06": ["a1"],
        "--01-06": ["a2"],
    }
    assert {v.value for v in conflicts["date_precision"].values} == {"day", "day (no year)"}
    assert {v.value: v.articles for v in conflicts["location"].values} == {
        "Paris": ["a1", "a3"],
        "the Elysee Palace": ["a2"],
    }
    assert conflicts["location"].compatible


def test_undated_reports_need_two_shared_actors_and_do_not_bridge_dates() -> None:
    digest = build_digest(
        [
            res("a1", [ev(["Ana Lopez", "Ben Ode"], date_text="January 6")]),
            res("a2", [ev(["Ana Lopez", "Ben Ode"], date_text="February 9")]),
            # Undated and compatible with both: it joins one cluster, never bridges the two dates.
            res("a3", [ev(["Ana Lopez", "Ben Ode"])]),
        ]
    )
    clusters = [c.articles for c in digest.event_clusters]
    assert sorted(len(a) for a in clusters) == [1, 2]
    assert ["a1", "a2"] not in clusters and ["a1", "a2", "a3"] not in clusters


def test_count_conflicts_are_listed_per_noun_with_their_articles() -> None:
    digest = build_digest(
        [
            res(
                "a1",
                [
                    ev(
                        ["NATO"],
                        date_text="March 3",
                        location="Oslo",
                        evidence="Around 30 Western leaders attended.",
                    )
                ],
            ),
            res(
                "a2",
                [
                    ev(
                        ["NATO"],
                        date_text="3 March",
                        location="Oslo",
                        evidence="35 Coalition of the Willing member countries took part, "
                        "including 27 heads of state and government.",
                    )
                ],
            ),
            res(
                "a3",
                [ev(["NATO"], date_text="March 3", location="Oslo", summary="Leaders of 39 countries met.")],
            ),
        ]
    )
    (cluster,) = digest.event_clusters
    conflicts = {c.field: c for c in cluster.conflicts}
    assert {v.value: v.articles for v in conflicts["count:countries"].values} == {"35": ["a2"], "39": ["a3"]}
    leaders = conflicts["count:leaders"]
    assert {v.value: v.articles for v in leaders.values} == {"around 30": ["a1"], "27": ["a2"]}
    assert not conflicts["count:countries"].compatible
    assert conflicts["count:countries"].note == "reports give different exact numbers of countries: 35, 39"
    surfaces = {s for v in conflicts["count:countries"].values for s in v.surfaces}
    assert "35 Coalition of the Willing member countries" in surfaces
    # "Around 30" stands for 27-33 (within 10 %): 27 leaders agrees with it, and the note says why.
    assert leaders.compatible
    assert leaders.note == "27 leaders is within around 30 (±10 % = 27–33)"


def _count(value: int, qualifier: str | None = None) -> dict[str, Any]:
    surface = f"{qualifier + ' ' if qualifier else ''}{value} leaders"
    return ev(["NATO"], date_text="March 3", location="Oslo", evidence=f"{surface} met.", summary="Met.")


@pytest.mark.parametrize(
    ("a", "b", "compatible", "note"),
    [
        ((27, None), (30, "around"), True, "27 leaders is within around 30 (±10 % = 27–33)"),
        ((33, None), (30, "some"), True, "33 leaders is within some 30 (±10 % = 27–33)"),
        ((34, None), (30, "about"), False, "34 leaders is outside about 30 (±10 % = 27–33)"),
        ((38, None), (40, "nearly"), True, "38 leaders is within nearly 40 (36–40)"),
        ((41, None), (40, "almost"), False, "41 leaders is outside almost 40 (36–40)"),
        ((31, None), (30, "more than"), True, "31 leaders is within more than 30 (31+)"),
        ((30, None), (30, "more than"), False, "30 leaders is outside more than 30 (31+)"),
        ((25, None), (30, "up to"), True, "25 leaders is within up to 30 (0–30)"),
        ((30, "around"), (35, "nearly"), True, "around 30 (±10 % = 27–33) and nearly 35 (32–35) overlap"),
        ((20, "about"), (30, "at least"), False, "about 20 (±10 % = 18–22) and at least 30 (30+) do not"),
        ((27, None), (28, None), False, "reports give different exact numbers of leaders: 27, 28"),
    ],
)
def test_an_approximate_count_is_compatible_with_the_numbers_it_stands_for(
    a: tuple[int, str | None], b: tuple[int, str | None], compatible: bool, note: str
) -> None:
    digest = build_digest([res("a1", [_count(*a)]), res("a2", [_count(*b)])])
    (cluster,) = digest.event_clusters
    (conflict,) = [c for c in cluster.conflicts if c.field == "count:leaders"]
    assert conflict.compatible is compatible
    assert conflict.note.startswith(note), conflict.note
    labels = {f"{q} {v}" if q else str(v) for v, q in (a, b)}
    assert {v.value for v in conflict.values} == labels
    verdict = "compatible" if compatible else "disagree"
    assert f"[{verdict}: {conflict.note}]" in render_digest_text(digest)


def test_counts_from_older_digests_without_a_qualifier_read_as_around() -> None:
    old = CountMention.model_validate({"noun": "leaders", "value": 30, "approximate": True, "surface": "~30"})
    assert old.qualifier is None
    digest = build_digest([res("a1", [_count(27)]), res("a2", [_count(30, "around")])])
    data = digest.model_dump(mode="json")
    for cluster in data["event_clusters"]:
        for report in cluster["reports"]:
            for count in report["counts"]:
                count.pop("qualifier")
    assert render_digest_text(data) == render_digest_text(digest)


# --------------------------------------------------------------------------- stances and quotes


def test_stance_table_groups_holders_and_targets_and_flags_mixed_polarity() -> None:
    digest = build_digest(
        [
            res(
                "a1",
                stances=[
                    st("Giorgia Meloni", "Deploying Italian troops to Ukraine.", "oppose", "no troops", 4)
                ],
            ),
            res(
                "a2",
                [ev(["Giorgia Meloni"])],
                stances=[st("Meloni", "deploying the Italian troops to Ukraine", "oppose", "rules out", 9)],
            ),
            res(
                "a3",
                stances=[
                    st("Prime Minister Giorgia Meloni", "deploying Italian troops to Ukraine", "support")
                ],
            ),
            res("a4", stances=[st("Rome", "deploying Italian troops to Ukraine", "oppose")]),
        ]
    )
    meloni = [s for s in digest.stances if s.holder == "Giorgia Meloni"]
    assert len(meloni) == 1
    row = meloni[0]
    assert row.target_key == "deploying italian troops to ukraine"
    assert row.polarities == {"oppose": ["a1", "a2"], "support": ["a3"]}
    assert row.polarity == "mixed" and row.mixed_across_articles
    assert [(s.article_id, s.start, s.end, s.evidence) for s in row.supports][:2] == [
        ("a1", 4, 13, "no troops"),
        ("a2", 9, 18, "rules out"),
    ]
    rome = next(s for s in digest.stances if s.holder == "Rome")
    assert rome.polarity == "oppose" and not rome.mixed_across_articles


VARIANT_A = (
    "The voluntary nature of coalition countries’ participation in multinational forces and adherence to "
    "constitutional procedures for making decisions to support Ukraine in the event of a future attack, as "
    "stated in the adopted declaration, reflect the principles that Italy has repeatedly reaffirmed"
)
VARIANT_B = (
    "The voluntary nature of countries’ participation in multinational forces and respect for constitutional "
    "procedures when taking decisions will ensure Ukraine receives support in case of future aggression. "
    "This fully aligns with principles repeatedly confirmed by Italy,"
)


def test_quote_variants_group_translations_from_linked_speakers() -> None:
    digest = build_digest(
        [
            res(
                "a1",
                quotes=[
                    qt(VARIANT_A, "the Italian government"),
                    qt("a high level of convergence between Ukraine and partners", "the Italian government"),
                    qt("a high level of convergence between Ukraine and partners", "the Italian government"),
                ],
            ),
            res(
                "a2",
                quotes=[qt(VARIANT_B, "the statement", "the statement reads")],
                stances=[
                    st("Rome", "sending troops", "oppose"),
                    st("Italy", "a monitoring mechanism", "support"),
                ],
            ),
            # Same words, but a different person: not the same statement.
            res("a3", quotes=[qt(VARIANT_B, "Mark Rutte")]),
        ]
    )
    (group,) = digest.quote_groups
    assert [(m.article_id, m.speaker) for m in group.members] == [
        ("a1", "the Italian government"),
        ("a2", "the statement"),
    ]
    assert group.wordings == 2 and group.articles == ["a1", "a2"]
    (link,) = group.links
    assert link.score >= 0.4 and "linked via Italy" in link.reason
    statement = entity_with(digest, "the statement")
    assert statement.kind == "source"
    assert [(x.target_name, x.relation) for x in statement.linked_to] == [("Italy", "inferred-from-article")]
    # The repeated identical quote in a1 is a repeat, not a variant group.
    assert all(len(g.articles) > 1 or g.wordings > 1 for g in digest.quote_groups)


# --------------------------------------------------------------------------- output


def test_digest_is_deterministic_and_skips_errors_and_duplicates() -> None:
    results = [
        res("a1", [ev(["Steve Witkoff", "Jared Kushner"], date_text="January 6", location="Paris")]),
        res(
            "a2",
            [ev(["Steve Vitkoff", "Jared Kushner"], location="Paris")],
            [qt("constructive", "Italian officials")],
        ),
        res("a3", stances=[st("Meloni", "troops", "oppose")]),
        ArticleResult(
            article_id="a4",
            source="x",
            sha256="1" * 64,
            status="error",
            error=ErrorInfo(type="ParseError", message="m"),
        ),
        res("a5", [ev(["Somebody Else"])]).model_copy(update={"duplicate_of": "a1"}),
    ]
    first = build_digest(results).model_dump_json()
    for seed in range(5):
        shuffled = results[:]
        random.Random(seed).shuffle(shuffled)
        assert build_digest(shuffled).model_dump_json() == first
    digest = Digest.model_validate_json(first)
    assert digest.articles == ["a1", "a2", "a3"]
    assert [(s.article_id, s.reason) for s in digest.skipped] == [
        ("a4", "error: ParseError"),
        ("a5", "duplicate of a1"),
    ]


def test_write_digest_reads_the_run_and_writes_json(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with ResultsWriter(run) as writer:
        writer.write(res("a1", [ev(["The Boss"])]))
        writer.write(res("a2", [ev(["Bruce Springsteen"])]))
    aliases = tmp_path / "aliases.toml"
    aliases.write_text('[aliases]\n"The Boss" = "Bruce Springsteen"\n', encoding="utf-8")
    path = write_digest(run, aliases_file=aliases)
    assert path == run / "digest.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    digest = Digest.model_validate(data)
    assert entity_with(digest, "The Boss").articles == ["a1", "a2"]
    other = write_digest(run, out_path=tmp_path / "elsewhere" / "d.json")
    assert other == tmp_path / "elsewhere" / "d.json"
    assert len(Digest.model_validate_json(other.read_text(encoding="utf-8")).entities) == 2
    text = render_digest_text(data)
    assert "Bruce Springsteen [person]" in text and "'The Boss'" in text


def test_html_section_escapes_everything() -> None:
    digest = build_digest(
        [
            res(
                "<a1>",
                [ev(["<script>alert(1)</script> Jones"], summary="x & <b>y</b>")],
                [qt('"><img src=x onerror=alert(1)>', "Dr <i>Evil</i>")],
                [st("Tom & Jerry", "<target>", "support", "<evidence>")],
            )
        ]
    )
    page = digest_html_section(digest)
    assert page.startswith('<section id="digest" class="dg">') and page.endswith("</section>")
    for raw in ("<script>", "<b>y</b>", "<img", "<i>Evil", "<target>", "<evidence>", "<a1>"):
        assert raw not in page
    assert "&lt;script&gt;" in page and "Tom &amp; Jerry" in page and "&lt;a1&gt;" in page
    classes = {c for chunk in page.split('class="')[1:] for c in chunk.split('"', 1)[0].split()}
    assert classes and all(c == "dg" or c.startswith("dg-") for c in classes)
    assert "http" not in page and "<link" not in page and "<style" not in page
    linked = digest_html_section(digest, {"<a1>": '"><script>x'})
    assert (
        "<script" not in linked
        and '<a class="dg-art" href="#&quot;&gt;&lt;script&gt;x">&lt;a1&gt;</a>' in linked
    )
    # A dict (digest.json as loaded) renders the same.
    assert digest_html_section(digest.model_dump(mode="json")) == page


class _SectionParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.details: dict[str, bool] = {}  # id -> open
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.add(tag)
        if a.get("id"):
            self.ids.add(a["id"] or "")
        if tag == "a" and a.get("href"):
            self.hrefs.append(a["href"] or "")
        if tag == "details":
            self.details[a.get("id") or f"#{len(self.details)}"] = "open" in a


def section_of(html_text: str) -> _SectionParser:
    parser = _SectionParser()
    parser.feed(html_text)
    parser.close()
    return parser


def clustered_results() -> list[ArticleResult]:
    return [
        res(
            "a1",
            [
                ev(
                    ["Emmanuel Macron", "Keir Starmer"],
                    date="2026-01-06",
                    location="Paris",
                    evidence="27 leaders",
                )
            ],
        ),
        res("a2", [ev(["Giorgia Meloni"], date_text="on January 6", location="the Elysee Palace")]),
        res(
            "a3",
            [
                ev(["Emmanuel Macron", "Keir Starmer"], location="Paris", evidence="Around 30 leaders met."),
                ev(["Mark Rutte"], event_type="ACCUSE", date_text="March 3"),
            ],
        ),
        res("a4", [ev(["Ana Lopez"], event_type="REJECT")]),
    ]


def test_text_summary_says_whether_a_conflict_is_compatible() -> None:
    text = render_digest_text(build_digest(clustered_results()))
    assert (
        "conflict location: Paris (a1, a3); the Elysee Palace (a2) [compatible: same place once normalised]"
        in text
    )
    assert (
        "conflict date: 6 January (year not stated) (a2); 6 January 2026 (a1) "
        "[compatible: dates differ only in" in text
    )
    assert "conflict date_precision: day (a1); day, year not stated (a2) [compatible:" in text
    assert (
        "conflict count:leaders: 27 (a1); around 30 (a3) "
        "[compatible: 27 leaders is within around 30 (±10 % = 27–33)]" in text
    )
    # Cluster headers give dates as people write them, never "--01-06 (day (no year))".
    assert "  E1 CONSULT 6 January 2026 at Paris: 3 reports from a1, a2, a3" in text
    assert "  E2 ACCUSE 3 March (year not stated) at unknown place: a3#e1" in text
    assert "--01-06" not in text and "(no year)" not in text


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("2026-01-06", "6 January 2026"),
        ("2026-01", "January 2026"),
        ("2025", "2025"),
        ("--01-06", "6 January (year not stated)"),
        ("--09", "September (year not stated)"),
        ("unknown", "date not stated"),
    ],
)
def test_date_values_are_labelled_for_people(value: str, label: str) -> None:
    assert date_label(value) == label


def test_html_headers_name_dates_entity_kinds_and_real_merge_scores() -> None:
    digest = build_digest(
        [
            *clustered_results(),
            res("a5", [ev(["Steve Witkoff", "Vladimir Zelensky", "the U.S."])]),
            res("a6", [ev(["Steve Vitkoff", "Volodymyr Zelensky", "Rome"])]),
        ]
    )
    page = digest_html_section(digest)
    assert "6 January 2026 · Paris · 3 reports from" in page
    assert "(day (no year))" not in page and "--01-06" not in page
    # The entity header counts entities by kind; people are not mislabelled as everything else.
    kinds = {e.kind for e in digest.entities}
    assert {"person", "country", "place"} <= kinds
    people = sum(e.kind == "person" for e in digest.entities)
    header = page[page.index('id="dg-entities"') :]
    header = header[header.index("<summary>") + 9 : header.index("</summary>")]
    assert header == (
        f"Entities ({len(digest.entities)}: {people} people, 2 countries, 1 place) — 7 listed: people and "
        "entities with several forms or in several articles"
    )
    assert "people, merged or" not in page
    # The Witkoff merge shows the surnames' similarity as written (0.90), not the skeletons' 1.00.
    witkoff = entity_with(digest, "Steve Witkoff")
    (merge,) = [r for r in witkoff.merges if r.rule == "phonetic+similarity"]
    assert merge.score == 0.9 and "jw=0.90" in merge.reason and "skeleton jw=1.00" in merge.reason
    assert "Steve Vitkoff → Steve Witkoff (0.90)" in page
    # The Zelensky merge names the table it comes from.
    zelensky = entity_with(digest, "Volodymyr Zelensky")
    (alias,) = [r for r in zelensky.merges if r.rule == "alias"]
    assert alias.reason == "built-in alias table: 'Vladimir Zelensky' -> 'Volodymyr Zelensky'"


def test_alias_reasons_and_digest_source_name_the_built_in_and_user_tables(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with ResultsWriter(run) as writer:
        writer.write(res("a1", [ev(["Vladimir Zelensky", "The Boss"])]))
        writer.write(res("a2", [ev(["Volodymyr Zelensky", "Bruce Springsteen", "Vladimir Zelenskiy"])]))
    digest = Digest.model_validate_json(write_digest(run).read_text(encoding="utf-8"))
    assert digest.source is not None
    assert digest.source.aliases == {} and digest.source.builtin_aliases == DEFAULT_ALIASES
    zelensky = entity_with(digest, "Vladimir Zelensky")
    reasons = {r.surface: r.reason for r in zelensky.merges}
    assert reasons["Vladimir Zelensky"].startswith("built-in alias table: ")
    # The first-name pair Vladimir/Volodymyr derived from the built-in table says so too.
    assert "built-in alias table variants vladimir/volodymyr" in reasons["Vladimir Zelenskiy"]

    aliases = tmp_path / "aliases.toml"
    aliases.write_text(
        '[aliases]\n"The Boss" = "Bruce Springsteen"\n"Vladimir Zelensky" = "Vladimir Zelensky"\n',
        encoding="utf-8",
    )
    digest = Digest.model_validate_json(write_digest(run, aliases_file=aliases).read_text(encoding="utf-8"))
    assert digest.source is not None
    boss = entity_with(digest, "The Boss")
    assert [r.reason for r in boss.merges] == ["user alias table: 'The Boss' -> 'Bruce Springsteen'"]
    # Switched off by the user: not in the built-in entries recorded as in effect.
    assert "Vladimir Zelensky" not in (digest.source.builtin_aliases or {})
    assert digest.source.builtin_aliases == {
        k: v for k, v in DEFAULT_ALIASES.items() if k != "Vladimir Zelensky"
    }
    assert load_current_digest(run) == (digest, None)
    # A digest.json made under another built-in table is rebuilt.
    stale = digest.model_copy(
        update={"source": digest.source.model_copy(update={"builtin_aliases": {"A B": "C B"}})}
    )
    (run / "digest.json").write_text(stale.model_dump_json(), encoding="utf-8")
    rebuilt, note = load_current_digest(run)
    assert rebuilt == digest and note is not None
    assert note.startswith("digest.json was built with another built-in alias table; rebuilt")


def test_html_section_is_collapsible_and_links_articles_to_their_anchors() -> None:
    digest = build_digest(clustered_results())
    anchors = {"a1": "a1", "a2": "a2", "a3": "a3", "a4": "a4"}
    page = digest_html_section(digest, anchors, note="rebuilt <because>")
    parsed = section_of(page)
    (multi,) = [c for c in digest.event_clusters if len(c.articles) > 1]
    singles = [c for c in digest.event_clusters if len(c.articles) == 1]
    assert len(singles) == 2
    # Multi-article clusters are open details, one-article clusters are rows of one collapsed details.
    assert parsed.details[f"dg-{multi.id}"] is True
    assert all(f"dg-{c.id}" in parsed.ids and f"dg-{c.id}" not in parsed.details for c in singles)
    assert [o for i, o in parsed.details.items() if i.startswith("#")] == [False]
    assert parsed.details["dg-entities"] and parsed.details["dg-events"]
    # Every link points at an anchor of the page: an article section or an element of the digest.
    targets = {h[1:] for h in parsed.hrefs}
    assert all(h.startswith("#") for h in parsed.hrefs)
    assert targets <= parsed.ids | set(anchors.values())
    assert set(anchors.values()) <= targets
    assert '<a class="dg-art" href="#a2">a2#e0</a>' in page
    assert '<p class="dg-note">rebuilt &lt;because&gt;</p>' in page
    # Without anchors (an article not on the page) the id is plain text, never a dangling link.
    bare = section_of(digest_html_section(digest))
    assert not {h for h in bare.hrefs if h[1:] not in bare.ids}
    assert "script" not in parsed.tags and "style" not in parsed.tags


def test_write_digest_records_the_results_it_was_built_from(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with ResultsWriter(run) as writer:
        writer.write(res("a1", [ev(["Ana Lopez"])]))
    digest = Digest.model_validate_json(write_digest(run).read_text(encoding="utf-8"))
    data = (run / "results.jsonl").read_bytes()
    assert digest.source is not None
    assert (digest.source.results_sha256, digest.source.results_bytes, digest.source.results) == (
        hashlib.sha256(data).hexdigest(),
        len(data),
        1,
    )
    assert load_current_digest(run) == (digest, None)
    # A torn last line (a run still writing) is not part of the fingerprint, as it is not read.
    with (run / "results.jsonl").open("ab") as fh:
        fh.write(b'{"article_id": "a2", "sou')
    assert load_current_digest(run) == (digest, None)
    with ResultsWriter(run) as writer:  # repairs the torn line, then appends
        writer.write(res("a2", [ev(["Ben Ode"])]))
    rebuilt, note = load_current_digest(run)
    assert rebuilt is not None and rebuilt.articles == ["a1", "a2"]
    assert note == (
        "digest.json was built before results.jsonl changed (1 → 2 results: new a2); rebuilt: 2 article(s)"
    )
    assert Digest.model_validate_json((run / "digest.json").read_text(encoding="utf-8")) == rebuilt
    assert load_current_digest(run) == (rebuilt, None)
    assert load_current_digest(tmp_path / "elsewhere") == (None, None)


def test_a_stale_digest_is_rebuilt_with_the_aliases_it_recorded(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with ResultsWriter(run) as writer:
        writer.write(res("a1", [ev(["The Boss"])]))
    aliases = tmp_path / "aliases.toml"
    aliases.write_text('[aliases]\n"The Boss" = "Bruce Springsteen"\n', encoding="utf-8")
    write_digest(run, aliases_file=aliases)
    aliases.unlink()  # the recorded table is used, not the file
    with ResultsWriter(run) as writer:
        writer.write(res("a2", [ev(["Bruce Springsteen"])]))
    rebuilt, note = load_current_digest(run)
    assert rebuilt is not None and note is not None and "recorded aliases" in note
    assert entity_with(rebuilt, "The Boss").articles == ["a1", "a2"]
    # A digest.json from before fingerprints (or unreadable) is rebuilt too.
    (run / "digest.json").write_text('{"articles": []}', encoding="utf-8")
    rebuilt, note = load_current_digest(run)
    assert rebuilt is not None and rebuilt.articles == ["a1", "a2"] and note and "could not be read" in note


def test_the_rebuild_note_says_what_changed_in_the_results(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with ResultsWriter(run) as writer:
        for i in range(1, 6):
            writer.write(res(f"a{i}", [ev(["Ana Lopez"])]))
    write_digest(run)
    failed = ArticleResult(
        article_id="a6",
        source="x",
        sha256="1" * 64,
        status="error",
        error=ErrorInfo(type="LLMError", message="m"),
    )
    with ResultsWriter(run) as writer:
        writer.write(failed)
    rebuilt, note = load_current_digest(run)
    assert rebuilt is not None and len(rebuilt.articles) == 5
    assert note == (
        "digest.json was built before results.jsonl changed (5 → 6 results: new a6 (skipped: error: "
        "LLMError)); rebuilt: 5 article(s), 1 skipped"
    )
    # The failed article extracted on a later run, then another one re-extracted: each said as such.
    lines = (run / "results.jsonl").read_text(encoding="utf-8").splitlines()
    lines[5] = res("a6", [ev(["Ana Lopez"])]).model_dump_json()
    (run / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, note = load_current_digest(run)
    assert note is not None and note.endswith("(6 → 6 results: now extracted: a6); rebuilt: 6 article(s)")
    lines[0] = res("a1", [ev(["Ben Ode"])]).model_dump_json()
    (run / "results.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, note = load_current_digest(run)
    assert note is not None and "(6 → 6 results: the same articles, re-extracted)" in note


def test_ensure_digest_builds_a_missing_digest_with_the_built_in_aliases(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with ResultsWriter(run) as writer:
        writer.write(res("a1", [ev(["Vladimir Zelensky"])]))
        writer.write(res("a2", [ev(["Volodymyr Zelensky"])]))
    digest, note = ensure_digest(run)
    assert note is not None and note.startswith(
        "no digest.json yet: built from results.jsonl with the built-in"
    )
    assert "--aliases FILE" in note
    assert Digest.model_validate_json((run / "digest.json").read_text(encoding="utf-8")) == digest
    assert entity_with(digest, "Vladimir Zelensky").articles == ["a1", "a2"]
    assert ensure_digest(run) == (digest, None)  # current now: used as it is


# --------------------------------------------------------------------------- seeds


def _grounded(text: str, source: str) -> Span:
    g = ground(text, source)
    return Span(
        status=g.status, start=g.start, end=g.end, pieces=list(g.pieces) or None, occurrences=g.occurrences
    )


def seed_results() -> list[ArticleResult]:
    """ArticleResults for the seeds from the reference answers, grounded like the pipeline does."""
    results = []
    for path in sorted(ANSWERS.glob("*.json")):
        article = Article.from_text((SEEDS / f"{path.stem}.txt").read_text(encoding="utf-8"), id=path.stem)
        extraction = ArticleExtraction.model_validate_json(path.read_text(encoding="utf-8"))
        kept: dict[str, list[dict[str, Any]]] = {"events": [], "quotes": [], "stances": []}
        rejected = []
        for kind, items in (
            ("events", extraction.events),
            ("quotes", extraction.quotes),
            ("stances", extraction.stances),
        ):
            for item in items:
                data = item.model_dump()
                field = "text" if kind == "quotes" else "evidence"
                span = _grounded(data[field], article.text)
                if span.status == "not_found":
                    rejected.append(
                        {"kind": kind[:-1], "field": field, "item": data, "reason": "not in article"}
                    )
                else:
                    kept[kind].append({**data, "span": span})
        results.append(
            ArticleResult.model_validate(
                {
                    "article_id": article.id,
                    "source": str(path),
                    "sha256": article.sha256,
                    "status": "ok",
                    **kept,
                    "rejected": rejected,
                }
            )
        )
    return results


@pytest.fixture(scope="module")
def seed_digest() -> Digest:
    if not ANSWERS.is_dir() or not any(ANSWERS.glob("*.json")):
        pytest.skip("fixtures/answers/ does not exist yet: no reference answers to build seed results from")
    return build_digest(seed_results())


def test_seeds_cluster_into_the_three_meetings(seed_digest: Digest) -> None:
    consult = [c for c in seed_digest.event_clusters if "CONSULT" in c.event_types]
    by_article = {r.article_id: c.id for c in consult for r in c.reports if r.location_key == "paris"}
    # One Paris meeting report per article; three of them are the 6 January meeting.
    assert set(by_article) == {*JAN_MEETING, SEPT_MEETING, MARCH_SUMMIT}
    assert len({by_article[a] for a in JAN_MEETING}) == 1
    january = next(c for c in consult if c.id == by_article["001_7026c964f11f0189"])
    assert set(january.articles) == JAN_MEETING
    assert (january.date_value, january.location) == ("--01-06", "Paris")
    assert by_article[SEPT_MEETING] != by_article[MARCH_SUMMIT]
    assert {by_article[SEPT_MEETING], by_article[MARCH_SUMMIT]}.isdisjoint({january.id})
    september = next(c for c in consult if c.id == by_article[SEPT_MEETING])
    assert (september.articles, september.date_value) == ([SEPT_MEETING], "--09-04")
    # The January cluster reports the differing place wording and participant counts.
    conflicts = {c.field: c for c in january.conflicts}
    assert {v.value for v in conflicts["location"].values} == {"Paris", "Elysee"}
    assert {v.value for v in conflicts["count:leaders"].values} == {"around 30", "27"}
    assert conflicts["count:leaders"].compatible  # 27 is within 10 % of "around 30"
    assert conflicts["location"].compatible


def test_seeds_entities_and_quote_variants(seed_digest: Digest) -> None:
    witkoff = entity_with(seed_digest, "Steve Witkoff")
    assert "Steve Vitkoff" in {m.surface for m in witkoff.mentions}
    assert any(r.rule == "phonetic+similarity" for r in witkoff.merges)
    zelensky = entity_with(seed_digest, "Vladimir Zelensky")
    assert {"Volodymyr Zelensky", "Zelensky"} <= {m.surface for m in zelensky.mentions}
    meloni = entity_with(seed_digest, "Giorgia Meloni")
    assert "Meloni" in {m.surface for m in meloni.mentions} and len(meloni.articles) == 5
    government = entity_with(seed_digest, "the Italian government")
    assert government.id != meloni.id and [x.target_name for x in government.linked_to] == ["Italy"]
    (group,) = [g for g in seed_digest.quote_groups if len(g.articles) > 1]
    assert group.articles == ["001_7026c964f11f0189", "003_7ee454be139f98c4"]
    assert all(m.text.startswith("The voluntary nature of") for m in group.members)
    oppose = next(
        s
        for s in seed_digest.stances
        if s.holder == "Giorgia Meloni" and s.target_key.startswith("deploying italian")
    )
    assert oppose.polarity == "oppose" and len(oppose.articles) == 3


def test_unattributed_quotes_are_in_no_entity_and_no_quote_group() -> None:
    statement = "we will not send troops to Ukraine under any circumstances"
    results = [
        res(
            "a1",
            quotes=[qt(statement, None), qt("a different statement about the weather", "Giorgia Meloni")],
        ),
        res("a2", quotes=[qt(statement + " now", None)]),
    ]
    digest = build_digest(results)
    surfaces = {m.surface for e in digest.entities for m in e.mentions}
    assert surfaces == {"Giorgia Meloni"}
    assert digest.quote_groups == []
