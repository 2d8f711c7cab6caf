"""Checks the hand-made seed fixtures: gold annotations (fixtures/gold), reference answers (fixtures/answers).

Gold offsets must slice the seed text exactly; reference answers must be valid model output whose texts are
verbatim, except the two deliberate defects documented in fixtures/answers/README.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest

from extractor.models import EVENT_TYPES, Article, ArticleExtraction, Polarity, text_sha256

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
GOLD = ROOT / "fixtures" / "gold"
ANSWERS = ROOT / "fixtures" / "answers"

SEED_IDS = sorted(p.stem for p in SEEDS.glob("*.txt"))
POLARITIES: tuple[str, ...] = get_args(Polarity)
ISO_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")
OPENING_MARKS = "“‘'\""
CLOSING_MARKS = "”’'\""
FOOTER_MARKER = "SHARE NEWS"
TROOPS_TARGET = "deploying Italian troops to Ukraine"
# Curly quotation marks folded to their straight forms, for the "normalized" (quote-mark variant) check.
STRAIGHTEN = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"'})

GOLD_KEYS = {"article_id", "sha256", "quotes", "events", "stances"}
QUOTE_KEYS = {"text", "speaker", "start", "end"}
EVENT_KEYS = {
    "event_type",
    "date",
    "date_text",
    "true_date",
    "location",
    "actors",
    "evidence",
    "start",
    "end",
}
STANCE_KEYS = {"holder", "target", "polarity", "evidence", "start", "end"}


def seed_text(article_id: str) -> str:
    """The seed's ``Article.text`` (the file decoded as UTF-8, BOM and CR line ends normalised)."""
    return Article.from_text((SEEDS / f"{article_id}.txt").read_bytes().decode("utf-8"), id=article_id).text


def load_gold(article_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GOLD / f"{article_id}.json").read_text(encoding="utf-8"))
    return data


def load_answer(article_id: str) -> ArticleExtraction:
    return ArticleExtraction.model_validate_json((ANSWERS / f"{article_id}.json").read_text(encoding="utf-8"))


def gold_spans(gold: dict[str, Any]) -> list[tuple[str, dict[str, Any], str]]:
    """(kind, item, the string its offsets must slice) for every gold item."""
    spans = [("quote", q, q["text"]) for q in gold["quotes"]]
    spans += [("event", e, e["evidence"]) for e in gold["events"]]
    spans += [("stance", s, s["evidence"]) for s in gold["stances"]]
    return spans


def test_every_seed_has_gold_and_answer() -> None:
    assert len(SEED_IDS) == 5
    assert sorted(p.stem for p in GOLD.glob("*.json")) == SEED_IDS
    assert sorted(p.stem for p in ANSWERS.glob("*.json")) == SEED_IDS


# --------------------------------------------------------------------------- gold


@pytest.mark.parametrize("article_id", SEED_IDS)
def test_gold_format_and_sha256(article_id: str) -> None:
    gold = load_gold(article_id)
    assert set(gold) == GOLD_KEYS
    assert gold["article_id"] == article_id
    assert gold["sha256"] == text_sha256(seed_text(article_id))
    assert all(set(q) == QUOTE_KEYS for q in gold["quotes"])
    assert all(set(e) == EVENT_KEYS for e in gold["events"])
    assert all(set(s) == STANCE_KEYS for s in gold["stances"])


@pytest.mark.parametrize("article_id", SEED_IDS)
def test_gold_offsets_slice_exactly(article_id: str) -> None:
    text = seed_text(article_id)
    for kind, item, expected in gold_spans(load_gold(article_id)):
        start, end = item["start"], item["end"]
        assert 0 <= start < end <= len(text), (kind, item)
        assert text[start:end] == expected, (kind, expected)


@pytest.mark.parametrize("article_id", SEED_IDS)
def test_gold_quotes_sit_between_quotation_marks(article_id: str) -> None:
    text = seed_text(article_id)
    quotes = load_gold(article_id)["quotes"]
    for q in quotes:
        assert text[q["start"] - 1] in OPENING_MARKS, q["text"]
        assert text[q["end"]] in CLOSING_MARKS, q["text"]
        assert q["speaker"].strip()
    # A statement quoted twice is two entries, each at its own occurrence.
    assert len({(q["start"], q["end"]) for q in quotes}) == len(quotes)


@pytest.mark.parametrize("article_id", SEED_IDS)
def test_gold_literals_and_dates(article_id: str) -> None:
    text = seed_text(article_id)
    gold = load_gold(article_id)
    for event in gold["events"]:
        assert event["event_type"] in EVENT_TYPES
        assert event["date"] is None or ISO_DATE.match(event["date"]), event["date"]
        assert event["true_date"] is None or ISO_DATE.match(event["true_date"]), event["true_date"]
        assert event["date_text"] is None or event["date_text"] in text
        assert event["location"] is None or event["location"] in text
        assert event["actors"]
        assert all(actor in text for actor in event["actors"]), event["actors"]
    for stance in gold["stances"]:
        assert stance["polarity"] in POLARITIES
        assert stance["holder"].strip()
        assert stance["target"].strip()


@pytest.mark.parametrize("article_id", SEED_IDS)
def test_gold_has_italy_ruling_out_troops(article_id: str) -> None:
    gold = load_gold(article_id)
    assert any(e["event_type"] == "REJECT" for e in gold["events"])
    assert any(s["target"] == TROOPS_TARGET and s["polarity"] == "oppose" for s in gold["stances"])


def test_gold_ignores_page_footer() -> None:
    footers = 0
    for article_id in SEED_IDS:
        text = seed_text(article_id)
        cutoff = text.find(FOOTER_MARKER)
        if cutoff < 0:
            continue
        footers += 1
        for kind, item, _ in gold_spans(load_gold(article_id)):
            assert item["end"] <= cutoff, (article_id, kind, item)
    assert footers == 1  # seed 003


# Per seed, each gold event's (date, true_date) in file order. `date` is what the article itself supports
# (the seeds have no publication date and only 003 states a year, "in March 2025"); `true_date` is the
# real-world date known from outside the text (fixtures/README.md, "Dates"), never scored.
JAN_6 = (None, "2026-01-06")
GOLD_DATES: dict[str, list[tuple[str | None, str | None]]] = {
    # meeting, Rome's limits, Zelensky "ahead of" it, technical talks "in parallel", pressure, Greenland
    "000_2b0579c4498e7e08": [JAN_6, JAN_6, (None, None), (None, None), JAN_6, JAN_6],
    "001_7026c964f11f0189": [JAN_6, JAN_6, JAN_6],
    # the rejection, the meeting, Zelensky's criticism "during the gathering", the allies' later debate
    "002_0277cc05516288b5": [(None, "2025-09-04")] * 3 + [(None, None)],
    "003_7ee454be139f98c4": [JAN_6, JAN_6, ("2025-03", "2025-03"), ("2025-03", "2025-03"), JAN_6],
    "004_50c378a0aef4af03": [(None, "2025-03")] * 7,
}


def test_gold_dates_per_seed() -> None:
    dates = {a: [(e["date"], e["true_date"]) for e in load_gold(a)["events"]] for a in SEED_IDS}
    assert dates == GOLD_DATES
    for article_id in SEED_IDS:
        text = seed_text(article_id)
        for event in load_gold(article_id)["events"]:
            # Nothing the text does not say: a gold date's year is printed in the article ...
            assert event["date"] is None or event["date"][:4] in text, (article_id, event["date"])
            # ... and its date words are the article's own.
            assert event["date_text"] is None or event["date_text"] in text, (article_id, event["date_text"])
            if event["date"] is not None:
                assert event["date_text"] is not None, (article_id, event["evidence"])
                assert event["true_date"] is not None and event["true_date"].startswith(event["date"])


# --------------------------------------------------------------------------- reference answers


@pytest.mark.parametrize("article_id", SEED_IDS)
def test_answer_is_valid_and_grounded(article_id: str) -> None:
    text = seed_text(article_id)
    answer = load_answer(article_id)
    assert answer.events
    assert answer.quotes
    assert answer.stances
    for event in answer.events:
        assert event.evidence in text, event.evidence
        assert event.date_text is None or event.date_text in text
    for stance in answer.stances:
        assert stance.evidence in text, stance.evidence
    for quote in answer.quotes:
        assert quote.cue is None or quote.cue in text


def test_answers_have_exactly_one_paraphrase_and_one_quote_mark_variant() -> None:
    paraphrased: list[tuple[str, str]] = []
    variants: list[tuple[str, str]] = []
    for article_id in SEED_IDS:
        text = seed_text(article_id)
        for quote in load_answer(article_id).quotes:
            assert quote.text.strip()
            if quote.text in text:
                continue
            if quote.text.translate(STRAIGHTEN) in text.translate(STRAIGHTEN):
                variants.append((article_id, quote.text))
            else:
                paraphrased.append((article_id, quote.text))
    assert len(paraphrased) == 1, paraphrased
    assert len(variants) == 1, variants
    assert set(variants[0][1]) & set("'\""), variants  # it uses straight marks where the article has curly
