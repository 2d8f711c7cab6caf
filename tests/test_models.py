"""What the model fills: the fields the issue lists, in a schema OpenAI strict structured outputs accept."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from extractor import ArticleExtraction, Rejected
from extractor.models import (
    EVENT_TYPES,
    SCHEMA_ERROR_PREFIX,
    Article,
    ArticleResult,
    ErrorInfo,
    describe_validation_error,
)

# Pinned as the issue spells it, independently of the Literal in models.py.
PLOVER_TEXT = (
    "AGREE CONSULT SUPPORT CONCEDE COOPERATE AID RETREAT REQUEST ACCUSE REJECT THREATEN PROTEST SANCTION "
    "MOBILIZE COERCE ASSAULT OTHER"
)
PLOVER = PLOVER_TEXT.split()


def _objects(schema: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [("ArticleExtraction", schema)]
    found += list(schema.get("$defs", {}).items())
    return found


def test_fields_are_exactly_the_documented_ones() -> None:
    schema = ArticleExtraction.model_json_schema()
    props = {name: set(obj["properties"]) for name, obj in _objects(schema)}
    assert props == {
        "ArticleExtraction": {"events", "quotes", "stances"},
        "Event": {"summary", "event_type", "date", "date_text", "location", "actors", "evidence"},
        "Quote": {"text", "speaker", "cue"},
        "Stance": {"holder", "target", "polarity", "evidence"},
    }
    defs = schema["$defs"]
    assert defs["Event"]["properties"]["event_type"]["enum"] == PLOVER == list(EVENT_TYPES)
    assert defs["Stance"]["properties"]["polarity"]["enum"] == ["support", "oppose", "neutral", "mixed"]


def test_schema_is_valid_for_strict_structured_outputs() -> None:
    """Strict mode: every property required, no additional properties, no defaults anywhere."""
    schema = ArticleExtraction.model_json_schema()
    for name, obj in _objects(schema):
        assert obj["type"] == "object", name
        assert set(obj["required"]) == set(obj["properties"]), name
        assert obj["additionalProperties"] is False, name

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            assert "default" not in node, path
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}/{i}")

    walk(schema, "#")


def _event(**fields: Any) -> dict[str, Any]:
    base = {
        "summary": "s",
        "event_type": "CONSULT",
        "date": None,
        "date_text": None,
        "location": None,
        "actors": [],
        "evidence": "e",
    }
    return {**base, **fields}


def _answer(events: Any = (), quotes: Any = (), stances: Any = ()) -> dict[str, Any]:
    return {"events": list(events), "quotes": list(quotes), "stances": list(stances)}


@pytest.mark.parametrize("field", ["date", "date_text", "location"])
def test_optional_event_fields_are_nullable_required_in_the_schema_and_repaired_when_missing(
    field: str,
) -> None:
    schema = ArticleExtraction.model_json_schema()["$defs"]["Event"]
    assert field in schema["required"] and {"type": "null"} in schema["properties"][field]["anyOf"]
    event = _event(date="2025-03", date_text="in March", location="Paris")
    del event[field]
    extraction = ArticleExtraction.model_validate(_answer([event]))
    assert extraction.schema_rejects == []
    assert getattr(extraction.events[0], field) is None


def test_speaker_is_nullable_but_required_in_the_schema() -> None:
    quote = ArticleExtraction.model_json_schema()["$defs"]["Quote"]
    assert "speaker" in quote["required"]
    assert quote["properties"]["speaker"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    extraction = ArticleExtraction.model_validate(
        _answer(quotes=[{"text": "t", "speaker": None, "cue": None}])
    )
    assert extraction.quotes[0].speaker is None and extraction.schema_rejects == []


@pytest.mark.parametrize("date", ["2026-01-06", "2025-03", "2025", None])
def test_iso_dates_at_three_precisions(date: str | None) -> None:
    """A date is kept at the precision the model gave: never widened to a day, nor turned into a date."""
    extraction = ArticleExtraction.model_validate(_answer([_event(event_type="OTHER", date=date)]))
    assert extraction.events[0].date == date and extraction.schema_rejects == []
    assert extraction.model_dump(mode="json")["events"][0]["date"] == date


@pytest.mark.parametrize(
    "date", ["January 6", "2026-1-6", "2026-13", "06/01/2026", "--01-06", "2025-13-45", "2025-02-30"]
)
def test_a_bad_date_rejects_its_event_with_the_field_and_keeps_the_rest(date: str) -> None:
    answer = _answer(
        [_event(date=date), _event(evidence="kept")], quotes=[{"text": "q", "speaker": "X", "cue": None}]
    )
    extraction = ArticleExtraction.model_validate(answer)
    assert [e.evidence for e in extraction.events] == ["kept"] and len(extraction.quotes) == 1
    [reject] = extraction.schema_rejects
    assert (reject.kind, reject.field, reject.item) == ("event", "date", answer["events"][0])
    assert reject.reason.startswith("schema: date: "), reject.reason
    assert "pattern" in reject.reason or "not a date in the calendar" in reject.reason


@pytest.mark.parametrize(
    ("kind", "item", "key", "value"),
    [
        ("events", _event(event_type=" reject"), "event_type", "REJECT"),
        ("events", _event(event_type="Consult\n"), "event_type", "CONSULT"),
        ("events", _event(date=" 2025-03 "), "date", "2025-03"),
        ("events", _event(location=""), "location", None),
        ("events", _event(date_text="null"), "date_text", None),
        ("events", _event(date="NULL"), "date", None),
        ("events", {**_event(), "confidence": 0.8}, "summary", "s"),
        ("quotes", {"text": "t", "speaker": "X"}, "cue", None),
        ("quotes", {"text": "t", "cue": None}, "speaker", None),
        ("quotes", {"text": "t", "speaker": "  ", "cue": None}, "speaker", None),
        ("quotes", {"text": "t", "speaker": "X", "cue": None, "confidence": 0.8}, "speaker", "X"),
        (
            "stances",
            {"holder": "h", "target": "t", "polarity": "Oppose", "evidence": "e"},
            "polarity",
            "oppose",
        ),
        (
            "stances",
            {"holder": "h", "target": "t", "polarity": " MIXED ", "evidence": "e"},
            "polarity",
            "mixed",
        ),
    ],
)
def test_harmless_drift_is_repaired(kind: str, item: dict[str, Any], key: str, value: Any) -> None:
    extraction = ArticleExtraction.model_validate({**_answer(), kind: [item], "note": "extra top-level key"})
    assert extraction.schema_rejects == []
    [kept] = getattr(extraction, kind)
    assert getattr(kept, key) == value
    assert "confidence" not in kept.model_dump()
    assert extraction.answer[kind] == [item]  # the raw answer is kept as sent, for the cache


def test_what_repair_cannot_fix_is_rejected_with_its_field_path() -> None:
    answer = _answer(
        events=[_event(event_type="MEETING"), _event(actors="Macron"), _event(actors=["a", 7]), _event()],
        quotes=["just a string", {"speaker": "X", "cue": None}, {"text": "ok", "speaker": 5, "cue": None}],
        stances=[{"holder": "h", "target": "t", "polarity": "against", "evidence": "e"}],
    )
    extraction = ArticleExtraction.model_validate(answer)
    assert len(extraction.events) == 1 and extraction.quotes == [] and extraction.stances == []
    got = [(r.kind, r.field, r.reason.split(":")[1].strip()) for r in extraction.schema_rejects]
    assert got == [
        ("event", "event_type", "event_type"),
        ("event", "actors", "actors"),
        ("event", "actors.1", "actors.1"),
        ("quote", "(item)", "(item)"),
        ("quote", "text", "text"),
        ("quote", "speaker", "speaker"),
        ("stance", "polarity", "polarity"),
    ]
    assert all(r.reason.startswith("schema: ") for r in extraction.schema_rejects)
    assert extraction.schema_rejects[3].item == {"value": "just a string"}


@pytest.mark.parametrize(
    ("answer", "path"),
    [
        ({"events": [], "quotes": []}, "stances: Field required"),
        ({"events": [], "quotes": None, "stances": []}, "quotes: Input should be a valid list"),
        ([], "(root): Input should be a valid dictionary"),
    ],
)
def test_an_answer_without_the_three_lists_is_unusable(answer: Any, path: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ArticleExtraction.model_validate(answer)
    assert describe_validation_error(caught.value).startswith(path)


def test_error_descriptions_name_paths_and_are_capped() -> None:
    with pytest.raises(ValidationError) as caught:
        Rejected.model_validate({"kind": "x", "field": 1, "item": [], "reason": None})
    text = describe_validation_error(caught.value, max_listed=2)
    assert text.startswith("kind: Input should be") and "; field: " in text and text.endswith("(and 2 more)")
    assert "validation error" not in text and "\n" not in text


def test_in_a_reask_context_bad_items_fail_the_answer_with_their_paths_capped() -> None:
    answer = _answer([_event(date=f"2025-13-{i:02d}") for i in range(1, 15)])
    with pytest.raises(ValidationError) as caught:
        ArticleExtraction.model_validate(answer, context={"reask_items": True, "max_listed": 10})
    message = caught.value.errors()[0]["msg"]
    assert SCHEMA_ERROR_PREFIX in message and "(and 4 more)" in message
    assert (
        '- events.0 ("e"): date: String should match pattern' in message and '(got "2025-13-01")' in message
    )
    # repaired drift alone never fails, even in a re-ask context
    drift = _answer([_event(event_type=" reject", confidence=0.8)])
    ArticleExtraction.model_validate(drift, context={"reask_items": True, "max_listed": 10})


def test_a_result_for_an_article_carries_its_identity_and_the_given_fields() -> None:
    published = dt.date(2025, 3, 6)
    article = Article.from_text("Text.", id="a1", source="in/a1.txt", title="T", published=published)
    error = ErrorInfo(type="LLMError", message="down")
    result = ArticleResult.for_article(article, status="error", error=error, model="m")
    assert result == ArticleResult(
        article_id="a1",
        source="in/a1.txt",
        sha256=article.sha256,
        status="error",
        error=error,
        title="T",
        published=published,
        model="m",
    )
    with pytest.raises(ValidationError, match="status"):
        ArticleResult.for_article(article)


def test_a_result_retold_for_a_copy_takes_the_copys_identity_and_keeps_the_outcome() -> None:
    first = Article.from_text("Text.", id="a1", source="in/a1.txt", title="T")
    copy = Article.from_text("Text.", id="b2", source="in/b2.txt", published=dt.date(2025, 3, 6))
    result = ArticleResult.for_article(first, status="ok", model="m", latency_s=1.5, cache_hit=True)
    retold = result.retold(copy)
    assert retold == ArticleResult.for_article(copy, status="ok", model="m", latency_s=1.5, cache_hit=True)
    assert result.article_id == "a1"  # the original is left as it was
