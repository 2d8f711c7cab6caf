"""The phenomena suite (issue 17): one short article per rule of the prompt, replayed through the pipeline.

``tests/phenomena/`` holds, per case NAME: ``articles/NAME.txt`` (written for the rule), ``gold/NAME.json``
(the fixtures/gold format), ``answers/NAME.json`` (a hand-written reference answer that follows the rules)
and an entry in ``cases.json``: the rule, the settings it runs with, what must NOT be a quote or an event
there, and ``mistakes``: items a model gets wrong that the pipeline must reject (they are added to the
answer, after its own items). The answer goes through the real path: OpenAI wire format (respx), the
openai + instructor client, the schema, grounding, the ``max_events`` limit and ``extractor eval``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import respx

from extractor import Article, Extractor, Settings
from extractor.evaluate import evaluate
from extractor.evaluate.gold import GoldArticle, check_gold_offsets, load_gold_file
from extractor.evaluate.quotemarks import inside_quotes, quoted_regions
from extractor.models import ArticleExtraction, ArticleResult
from extractor.prompts import verbatim_problems
from tests import wire

PHENOMENA = Path(__file__).resolve().parent / "phenomena"
CASES: dict[str, dict[str, Any]] = json.loads((PHENOMENA / "cases.json").read_text(encoding="utf-8"))
KINDS = ("quotes", "events", "stances")


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    gold: GoldArticle
    answer: dict[str, Any]
    rule: str
    settings: dict[str, Any]
    not_quotes: list[dict[str, str]]
    not_events: list[dict[str, str]]
    mistakes: list[dict[str, Any]]


@cache
def case(name: str) -> Case:
    meta = CASES[name]
    answer = json.loads((PHENOMENA / "answers" / f"{name}.json").read_text(encoding="utf-8"))
    return Case(
        name=name,
        text=(PHENOMENA / "articles" / f"{name}.txt").read_text(encoding="utf-8"),
        gold=load_gold_file(PHENOMENA / "gold" / f"{name}.json"),
        answer=answer,
        rule=meta["rule"],
        settings=meta.get("settings", {}),
        not_quotes=meta.get("not_quotes", []),
        not_events=meta.get("not_events", []),
        mistakes=meta.get("mistakes", []),
    )


@cache
def replayed(name: str) -> tuple[ArticleResult, list[dict[str, str]]]:
    """The case's answer (plus its mistakes) through the pipeline, and the messages it was asked with."""
    c = case(name)
    answer = {kind: list(c.answer[kind]) for kind in KINDS}
    for mistake in c.mistakes:
        answer[mistake["kind"] + "s"].append(mistake["item"])
    settings = Settings(
        api_key="sk-test-not-a-key",
        base_url=wire.API,
        model="gpt-test",
        use_cache=False,
        reasks=0,
        **c.settings,
    )
    with respx.mock:
        route = respx.post(wire.CHAT).mock(return_value=wire.ok(answer))
        with Extractor(settings) as ex:
            result = ex.extract(Article.from_text(c.text, id=name))
        assert route.call_count == 1
        messages: list[dict[str, str]] = json.loads(route.calls[0].request.content)["messages"]
    return result, messages


def occurrences(text: str, needle: str) -> list[tuple[int, int]]:
    found, at = [], text.find(needle)
    while at >= 0:
        found.append((at, at + len(needle)))
        at = text.find(needle, at + 1)
    return found


NAMES = sorted(CASES)


def test_every_case_has_its_files_and_nothing_else_is_there() -> None:
    for folder, suffix in (("articles", ".txt"), ("gold", ".json"), ("answers", ".json")):
        assert sorted(p.stem for p in (PHENOMENA / folder).iterdir()) == NAMES, folder
        assert all(p.suffix == suffix for p in (PHENOMENA / folder).iterdir()), folder
    assert len(NAMES) >= 20


@pytest.mark.parametrize("name", NAMES)
def test_gold_and_reference_answer_follow_the_format_and_the_rules(name: str) -> None:
    c = case(name)
    assert check_gold_offsets(c.gold, c.text) == []
    regions = quoted_regions(c.text)
    for q in c.gold.quotes:  # every gold quote is words between quotation marks
        assert inside_quotes(regions, q.start, q.end), q.text
    for kind in ("quotes", "events", "stances"):
        items = getattr(c.gold, kind)
        assert [i.start for i in items] == sorted(i.start for i in items), kind
    answer = ArticleExtraction.model_validate(c.answer)
    assert answer.schema_rejects == []
    assert verbatim_problems(answer, c.text) == []
    max_events = c.settings.get("max_events", 10)
    assert len(answer.events) <= max_events
    for not_quote in c.not_quotes:  # inside quotation marks, so a rule (not the marks) keeps it out
        spans = occurrences(c.text, not_quote["text"])
        assert spans and all(inside_quotes(regions, *s) for s in spans), not_quote
        assert not any(q.text == not_quote["text"] for q in answer.quotes), not_quote


@pytest.mark.parametrize("name", NAMES)
def test_each_gold_item_grounds_at_its_offsets_with_its_speaker(name: str) -> None:
    c = case(name)
    result, _ = replayed(name)
    assert result.status == "ok", result.error

    def by_start(items: list[Any]) -> list[Any]:
        return sorted(items, key=lambda i: i.span.start)

    assert [
        (q.text, q.speaker, q.cue, q.span.status, q.span.start, q.span.end) for q in by_start(result.quotes)
    ] == [(g.text, g.speaker, g.cue, "exact", g.start, g.end) for g in c.gold.quotes]
    assert [
        (
            e.event_type,
            e.date,
            e.date_text,
            e.location,
            e.actors,
            e.summary,
            e.span.status,
            e.span.start,
            e.span.end,
        )
        for e in by_start(result.events)
    ] == [
        (g.event_type, g.date, g.date_text, g.location, g.actors, g.summary, "exact", g.start, g.end)
        for g in c.gold.events
    ]
    assert [
        (s.holder, s.target, s.polarity, s.span.status, s.span.start, s.span.end)
        for s in by_start(result.stances)
    ] == [(g.holder, g.target, g.polarity, "exact", g.start, g.end) for g in c.gold.stances]


@pytest.mark.parametrize("name", NAMES)
def test_what_is_not_a_quote_or_an_event_is_not_extracted_as_one(name: str) -> None:
    c = case(name)
    result, _ = replayed(name)
    for not_quote in c.not_quotes:
        for start, end in occurrences(c.text, not_quote["text"]):
            assert not any(start <= q.span.start and q.span.end <= end for q in result.quotes), not_quote
    for not_event in c.not_events:
        for start, end in occurrences(c.text, not_event["text"]):
            assert not any(
                e.span.start is not None
                and e.span.end is not None
                and e.span.start < end
                and start < e.span.end
                for e in result.events
            ), not_event


@pytest.mark.parametrize("name", NAMES)
def test_the_mistakes_are_rejected_for_their_reason_and_nothing_else_is(name: str) -> None:
    c = case(name)
    result, _ = replayed(name)
    assert [(r.kind, r.field, r.item, r.reason) for r in result.rejected] == [
        (m["kind"], m["field"], m["item"], m["reason"]) for m in c.mistakes
    ]


@pytest.mark.parametrize("name", NAMES)
def test_eval_scores_the_reference_answer_as_the_gold(name: str) -> None:
    c = case(name)
    result, _ = replayed(name)
    scores = evaluate([result], {name: c.gold}, texts={result.sha256: c.text}).totals
    n_quotes, n_events, n_stances = len(c.gold.quotes), len(c.gold.events), len(c.gold.stances)
    assert (scores.quotes.exact.tp, scores.quotes.exact.fp, scores.quotes.exact.fn) == (n_quotes, 0, 0)
    assert (scores.quotes.speaker_exact.correct, scores.quotes.speaker_exact.total) == (n_quotes, n_quotes)
    assert (scores.events.matched.tp, scores.events.matched.fp, scores.events.matched.fn) == (n_events, 0, 0)
    assert scores.events.event_type.correct == n_events
    assert scores.events.date.correct == n_events
    assert (scores.stances.strict.tp, scores.stances.strict.fp, scores.stances.strict.fn) == (n_stances, 0, 0)


@pytest.mark.parametrize("name", [n for n in NAMES if CASES[n].get("settings")])
def test_the_case_settings_reach_the_prompt(name: str) -> None:
    c = case(name)
    _, messages = replayed(name)
    system = " ".join(messages[0]["content"].split())
    if "max_events" in c.settings:
        assert f"most important first, at most {c.settings['max_events']}." in system
    if "output_language" in c.settings:
        assert f"`summary` and `target` are in {c.settings['output_language']}." in system
