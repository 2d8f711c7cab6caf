"""What the model fills: the fields the issue lists, in a schema OpenAI strict structured outputs accept."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from extractor import ArticleExtraction
from extractor.models import EVENT_TYPES

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


@pytest.mark.parametrize("field", ["date", "date_text", "location"])
def test_optional_event_fields_are_nullable_but_required(field: str) -> None:
    event = {
        "summary": "s",
        "event_type": "CONSULT",
        "date": None,
        "date_text": None,
        "location": None,
        "actors": [],
        "evidence": "e",
    }
    ArticleExtraction.model_validate({"events": [event], "quotes": [], "stances": []})
    del event[field]
    with pytest.raises(ValidationError, match=rf"events\.0\.{field}"):
        ArticleExtraction.model_validate({"events": [event], "quotes": [], "stances": []})


@pytest.mark.parametrize("date", ["2026-01-06", "2025-03", "2025", None])
def test_iso_dates_at_three_precisions(date: str | None) -> None:
    """A date is kept at the precision the model gave: never widened to a day, nor turned into a date."""
    event = {"summary": "s", "event_type": "OTHER", "date": date, "date_text": None, "location": None}
    extraction = ArticleExtraction.model_validate(
        {"events": [{**event, "actors": [], "evidence": "e"}], "quotes": [], "stances": []}
    )
    assert extraction.events[0].date == date
    assert extraction.model_dump(mode="json")["events"][0]["date"] == date


@pytest.mark.parametrize("date", ["January 6", "2026-1-6", "2026-13", "06/01/2026", "--01-06"])
def test_non_iso_dates_are_schema_errors(date: str) -> None:
    event = {"summary": "s", "event_type": "OTHER", "date": date, "date_text": None, "location": None}
    with pytest.raises(ValidationError, match=r"events\.0\.date"):
        ArticleExtraction.model_validate(
            {"events": [{**event, "actors": [], "evidence": "e"}], "quotes": [], "stances": []}
        )
