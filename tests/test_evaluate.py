from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from extractor.cli.tables import eval_articles_table, eval_table
from extractor.evaluate import (
    DATE_OUTCOMES,
    EVIDENCE_MIN_SHARE,
    EVIDENCE_OVERLAP,
    QUOTE_IOU,
    TARGET_JACCARD,
    EvalReport,
    GoldArticle,
    GoldError,
    GoldEvent,
    GoldQuote,
    GoldStance,
    check_gold_offsets,
    classify_date,
    evaluate,
    evaluate_path,
    flat_metrics,
    gold_as_result,
    load_gold,
)
from extractor.matching import names_match, normalize_name, target_similarity, target_tokens
from extractor.models import (
    Article,
    ArticleResult,
    ErrorInfo,
    EventType,
    GroundedEvent,
    GroundedQuote,
    GroundedStance,
    Polarity,
    Rejected,
    Span,
    SpanStatus,
    text_sha256,
)
from extractor.store import ResultsWriter, write_article_text

ROOT = Path(__file__).resolve().parents[1]

TEXT = (
    'Prime Minister Giorgia Meloni said "Italy will not send troops to Ukraine" after the meeting. '
    'Emmanuel Macron said "Europe must stand together" in Paris. '
    "The leaders met in Paris on January 6 and agreed on a plan for monitoring the ceasefire. "
    "Meloni opposes deploying Italian troops to Ukraine. "
    "Macron supports a multinational force for Ukraine."
)
SHA = text_sha256(TEXT)


def at(needle: str, text: str = TEXT, nth: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    return start, start + len(needle)


# --------------------------------------------------------------------------- builders


def gq(needle: str, speaker: str | None) -> GoldQuote:
    start, end = at(needle)
    return GoldQuote(text=needle, speaker=speaker, start=start, end=end)


def ge(
    needle: str, event_type: EventType = "CONSULT", date: str | None = None, date_text: str | None = None
) -> GoldEvent:
    start, end = at(needle)
    return GoldEvent(
        event_type=event_type, date=date, date_text=date_text, evidence=needle, start=start, end=end
    )


def gs(holder: str, target: str, polarity: Polarity, needle: str) -> GoldStance:
    start, end = at(needle)
    return GoldStance(holder=holder, target=target, polarity=polarity, evidence=needle, start=start, end=end)


def gold_article(
    quotes: list[GoldQuote] | None = None,
    events: list[GoldEvent] | None = None,
    stances: list[GoldStance] | None = None,
    article_id: str = "a1",
) -> GoldArticle:
    return GoldArticle(
        article_id=article_id, sha256=SHA, quotes=quotes or [], events=events or [], stances=stances or []
    )


def span(start: int, end: int, status: SpanStatus = "exact", **extra: Any) -> Span:
    return Span(status=status, start=start, end=end, occurrences=extra.pop("occurrences", 1), **extra)


def pq(where: tuple[int, int], speaker: str | None, status: SpanStatus = "exact") -> GroundedQuote:
    return GroundedQuote(text=TEXT[where[0] : where[1]], speaker=speaker, cue=None, span=span(*where, status))


def pe(
    where: tuple[int, int],
    event_type: EventType = "CONSULT",
    date: str | None = None,
    date_text: str | None = None,
) -> GroundedEvent:
    return GroundedEvent(
        summary="s",
        event_type=event_type,
        date=date,
        date_text=date_text,
        location=None,
        actors=[],
        evidence=TEXT[where[0] : where[1]],
        span=span(*where),
    )


def ps(holder: str, target: str, polarity: Polarity, where: tuple[int, int]) -> GroundedStance:
    return GroundedStance(
        holder=holder, target=target, polarity=polarity, evidence=TEXT[where[0] : where[1]], span=span(*where)
    )


def result(
    quotes: list[GroundedQuote] | None = None,
    events: list[GroundedEvent] | None = None,
    stances: list[GroundedStance] | None = None,
    article_id: str = "a1",
    **fields: Any,
) -> ArticleResult:
    return ArticleResult(
        article_id=article_id,
        source="test",
        sha256=fields.pop("sha256", SHA),
        status=fields.pop("status", "ok"),
        quotes=quotes or [],
        events=events or [],
        stances=stances or [],
        **fields,
    )


def run(gold: GoldArticle, res: ArticleResult, **kwargs: Any) -> EvalReport:
    return evaluate([res], {gold.article_id: gold}, **kwargs)


def render(table: Any, width: int = 200) -> str:
    console = Console(record=True, width=width, color_system=None)
    console.print(table)
    return console.export_text()


QUOTE = "Italy will not send troops to Ukraine"
QUOTE2 = "Europe must stand together"


# --------------------------------------------------------------------------- quotes


def test_exact_vs_overlap_quote_matching() -> None:
    gold = gold_article(quotes=[gq(QUOTE, "Meloni")])
    s, e = at(QUOTE)

    exact = run(gold, result([pq((s, e), "Meloni")])).totals.quotes
    assert (exact.exact.tp, exact.overlap.tp) == (1, 1)

    # The prediction includes the closing quotation mark and a few words more: overlap, not exact.
    longer = run(gold, result([pq((s, e + 7), "Meloni")])).totals.quotes
    assert (longer.exact.tp, longer.exact.fp, longer.exact.fn) == (0, 1, 1)
    assert (longer.overlap.tp, longer.overlap.fp, longer.overlap.fn) == (1, 0, 0)
    assert longer.exact.f1 == 0.0
    assert longer.overlap.f1 == 1.0

    # Only a third of the quote: IoU below the threshold, so no match at all.
    short = run(gold, result([pq((s, s + (e - s) // 3), "Meloni")])).totals.quotes
    assert short.overlap.tp == 0
    assert (short.overlap.fp, short.overlap.fn) == (1, 1)


def test_overlap_threshold_is_iou_at_least_half() -> None:
    gold = gold_article(quotes=[gq(QUOTE, "Meloni")])
    s, e = at(QUOTE)
    length = e - s
    assert length % 2 == 1  # so the boundary cases below are exact
    half_covering = (s, s + (length + 1) // 2)  # IoU just above 0.5
    just_under = (s, s + length // 2)  # IoU just below 0.5
    shifted = (s + length // 3, e + length // 3)  # overlap 2/3 of each, IoU = 0.5
    assert QUOTE_IOU == 0.5
    assert run(gold, result([pq(half_covering, "x")])).totals.quotes.overlap.tp == 1
    assert run(gold, result([pq(just_under, "x")])).totals.quotes.overlap.tp == 0
    inter = e - shifted[0]
    union = shifted[1] - s
    assert run(gold, result([pq(shifted, "x")])).totals.quotes.overlap.tp == int(inter / union >= 0.5)


def test_duplicate_predictions_are_false_positives() -> None:
    gold = gold_article(quotes=[gq(QUOTE, "Meloni")])
    where = at(QUOTE)
    scores = run(gold, result([pq(where, "Meloni"), pq(where, "Meloni")])).totals.quotes
    assert (scores.exact.tp, scores.exact.fp, scores.exact.fn) == (1, 1, 0)
    assert scores.exact.precision == 0.5
    assert scores.exact.recall == 1.0
    assert scores.exact.f1 == pytest.approx(2 / 3)
    assert scores.speaker.total == 1


def test_matching_is_one_to_one_and_prefers_the_best_overlap() -> None:
    gold = gold_article(quotes=[gq(QUOTE, "Meloni"), gq(QUOTE2, "Macron")])
    s, e = at(QUOTE)
    loose = pq((s + 2, e), "Meloni")  # IoU < 1 with the first gold quote
    tight = pq((s, e), "Meloni")  # IoU = 1 with the first gold quote
    scores = run(gold, result([loose, tight])).totals.quotes
    assert (scores.overlap.tp, scores.overlap.fp, scores.overlap.fn) == (1, 1, 1)
    assert scores.exact.tp == 1  # the exact prediction was the one kept


def test_elided_pieces_are_scored_piece_by_piece() -> None:
    gold = gold_article(quotes=[gq(QUOTE, "Meloni")])
    s, e = at(QUOTE)
    # "Italy will [...] troops to Ukraine" from one end to the other, most of it covered.
    elided = GroundedQuote(
        text="Italy will ... troops to Ukraine",
        speaker="Meloni",
        cue=None,
        span=span(s, e, "elided", pieces=[(s, s + 10), (s + 20, e)]),
    )
    scores = run(gold, result([elided])).totals.quotes
    assert scores.exact.tp == 1  # same (start, end)
    assert scores.overlap.tp == 1  # IoU = 28/38
    # Pieces covering under half of the quote fail the overlap test although the extent is the same.
    sparse = elided.model_copy(update={"span": span(s, e, "elided", pieces=[(s, s + 5), (e - 5, e)])})
    assert run(gold, result([sparse])).totals.quotes.overlap.tp == 0


def test_unlocated_prediction_never_matches() -> None:
    gold = gold_article(quotes=[gq(QUOTE, "Meloni")])
    lost = GroundedQuote(
        text=QUOTE, speaker="Meloni", cue=None, span=Span(status="not_found", start=None, end=None)
    )
    scores = run(gold, result([lost])).totals.quotes
    assert (scores.overlap.tp, scores.overlap.fp, scores.overlap.fn) == (0, 1, 1)


def test_repeated_quote_may_match_any_occurrence_when_the_text_is_known() -> None:
    text = 'He said "we stay". Later: "we stay".'
    gold = GoldArticle(
        article_id="r",
        sha256=text_sha256(text),
        quotes=[GoldQuote(text="we stay", speaker="he", start=text.rindex("we stay"), end=len(text) - 2)],
    )
    first = text.index("we stay")
    pred = ArticleResult(
        article_id="r",
        source="t",
        sha256=gold.sha256,
        status="ok",
        quotes=[
            GroundedQuote(text="we stay", speaker="he", cue=None, span=span(first, first + 7, occurrences=2))
        ],
    )
    without = evaluate([pred], {"r": gold}).totals.quotes
    assert without.overlap.tp == 0
    with_text = evaluate([pred], {"r": gold}, texts={gold.sha256: text}).totals.quotes
    assert (with_text.exact.tp, with_text.overlap.tp) == (1, 1)


# --------------------------------------------------------------------------- speakers / names


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Meloni", "Giorgia Meloni", True),
        ("Meloni", "Italian Prime Minister Giorgia Meloni", True),
        ("Prime Minister Meloni", "Giorgia Meloni", True),
        ("the Italian government", "Italian Government", True),
        ("The Italian government.", "the Italian government", True),
        ("Meloni's office", "meloni office", True),
        ("François Bayrou", "Francois Bayrou", True),
        ("the Prime Minister", "prime minister", True),
        ("Meloni", "Macron", False),
        ("Giorgia Meloni", "Emmanuel Macron", False),
        ("the Italian government", "the French government", False),
        ("the Prime Minister", "Meloni", False),
        ("the", "Meloni", False),
        # Surname alone, initials, and descriptors before a title.
        ("Smith", "Jane Smith", True),
        ("G. Meloni", "Giorgia Meloni", True),
        ("Italian Prime Minister Giorgia Meloni", "Giorgia Meloni", True),
        ("French President Emmanuel Macron", "Macron", True),
        ("Poland's Prime Minister", "Poland’s Prime Minister", True),
        # Word subsets that are different names.
        ("John Smith", "Jane Smith", False),
        ("J. Smith", "Jane Smith", True),
        ("John Smith", "Smith John", False),
        ("the government", "the Italian government", False),
        ("Italian officials", "officials", False),
        ("Giorgia Meloni", "Giorgia Meloni's office", False),
        ("Meloni", "Meloni's office", False),
        ("Giorgia Meloni", "Giorgia", False),
        ("Poland's Prime Minister", "the Prime Minister", False),
        # Surnames of several words, middle initials.
        ("von der Leyen", "Ursula von der Leyen", True),
        ("Commission President von der Leyen", "Ursula von der Leyen", True),
        ("Donald J. Trump", "Donald Trump", True),
        ("Donald J. Trump", "Donald T. Trump", False),
        ("der Leyen", "Ursula von der Leyen", True),
        ("Italian government", "the French Italian government", False),
    ],
)
def test_names_match(a: str, b: str, same: bool) -> None:
    assert names_match(a, b) is same
    assert names_match(b, a) is same


def test_normalize_name() -> None:
    assert normalize_name("  The Prime Minister, Giorgia Meloni ") == ("giorgia", "meloni")
    assert normalize_name("the President") == ("president",)
    assert normalize_name("Italian Prime Minister Giorgia Meloni") == ("giorgia", "meloni")
    assert normalize_name("Poland’s Prime Minister") == ("poland",)
    assert normalize_name("the Italian government") == ("italian", "government")


def test_speaker_surname_matches_but_a_different_first_name_does_not() -> None:
    gold = gold_article(quotes=[gq(QUOTE, "Giorgia Meloni"), gq(QUOTE2, "the Italian government")])
    preds = [pq(at(QUOTE), "Meloni"), pq(at(QUOTE2), "the government")]
    assert run(gold, result(preds)).totals.quotes.speaker.correct == 1
    preds = [pq(at(QUOTE), "Alessandra Meloni"), pq(at(QUOTE2), "the Italian Government")]
    assert run(gold, result(preds)).totals.quotes.speaker.correct == 1


def test_an_unattributed_quote_matches_only_an_unattributed_gold_quote() -> None:
    gold = gold_article(quotes=[gq(QUOTE, None), gq(QUOTE2, "Emmanuel Macron")])
    preds = [pq(at(QUOTE), None), pq(at(QUOTE2), None)]
    speaker = run(gold, result(preds)).totals.quotes.speaker
    assert (speaker.correct, speaker.total) == (1, 2)
    assert run(gold, result([pq(at(QUOTE), "Macron")])).totals.quotes.speaker.correct == 0


def test_speaker_accuracy_on_matched_quotes() -> None:
    gold = gold_article(quotes=[gq(QUOTE, "Giorgia Meloni"), gq(QUOTE2, "Emmanuel Macron")])
    preds = [pq(at(QUOTE), "Prime Minister Meloni"), pq(at(QUOTE2), "Meloni")]
    speaker = run(gold, result(preds)).totals.quotes.speaker
    assert (speaker.correct, speaker.total, speaker.value) == (1, 2, 0.5)
    # Unmatched quotes do not enter the speaker accuracy.
    speaker = run(gold, result([pq(at("Paris"), "Emmanuel Macron")])).totals.quotes.speaker
    assert (speaker.total, speaker.value) == (0, None)


# --------------------------------------------------------------------------- events and dates

MEETING = "The leaders met in Paris on January 6 and agreed on a plan for monitoring the ceasefire."


@pytest.mark.parametrize(
    ("predicted", "gold", "outcome"),
    [
        ("2026-01-06", "2026-01-06", "correct"),
        (None, None, "correct"),
        ("2026-01", "2026-01-06", "compatible"),
        ("2026", "2026-01-06", "compatible"),
        ("2026", "2026-01", "compatible"),
        (None, "2026-01-06", "missing"),
        ("2026-01-06", "2026-01", "invented"),
        ("2026-01-06", None, "invented"),
        ("2026-01-07", "2026-01-06", "wrong"),
        ("2025-01", "2026-01-06", "wrong"),
        ("2026-02-06", "2026-01", "wrong"),
    ],
)
def test_classify_date(predicted: str | None, gold: str | None, outcome: str) -> None:
    assert classify_date(predicted, gold) == outcome


@pytest.mark.parametrize(
    ("predicted", "predicted_text", "gold_text", "outcome"),
    [
        (None, "January 6", "on January 6", "correct"),
        (None, "On January 6,", "on January 6", "correct"),
        (None, "on the 6th of January", "January 6", "correct"),
        (None, "January 2026", "on January 6", "wrong"),
        (None, "on 6 January", "6 January", "correct"),
        (None, None, None, "correct"),
        (None, "", None, "correct"),
        (None, None, "on January 6", "missing"),
        (None, "on January 7", "on January 6", "wrong"),
        (None, "on January 6", None, "wrong"),
        ("2026-01-06", "on January 6", "on January 6", "invented"),  # the text gives no year
        ("2026", None, None, "invented"),
    ],
)
def test_classify_date_for_a_null_gold_date_uses_date_text(
    predicted: str | None, predicted_text: str | None, gold_text: str | None, outcome: str
) -> None:
    assert classify_date(predicted, None, predicted_text, gold_text) == outcome


def test_date_text_is_not_scored_when_gold_has_a_date() -> None:
    assert classify_date("2025-03", "2025-03", None, "in March 2025") == "correct"
    assert classify_date("2025", "2025-03", "last year", "in March 2025") == "compatible"
    assert classify_date(None, "2025-03", "in March 2025", "in March 2025") == "missing"


def test_date_outcomes_counted_and_shown() -> None:
    sentences = [
        "The leaders met in Paris on January 6",
        "agreed on a plan for monitoring the ceasefire",
        "Emmanuel Macron said",
        "Meloni opposes deploying Italian troops to Ukraine.",
        "Macron supports a multinational force for Ukraine.",
    ]
    gold = gold_article(
        events=[
            ge(sentences[0], date=None, date_text="on January 6"),  # no year in the text
            ge(sentences[1], date=None, date_text="on January 6"),
            ge(sentences[2], date="2026-01"),
            ge(sentences[3], date=None, date_text="on January 6"),
            ge(sentences[4], date="2026-01-06"),
        ]
    )
    preds = [
        pe(at(sentences[0]), date=None, date_text="January 6"),  # correct: the text's own words
        pe(at(sentences[1]), date="2026-01-06", date_text="on January 6"),  # invented: a year from outside
        pe(at(sentences[2]), date="2026"),  # compatible
        pe(at(sentences[3]), date=None, date_text=None),  # missing
        pe(at(sentences[4]), date="2025-01-06"),  # wrong
    ]
    report = run(gold, result(events=preds))
    date = report.totals.events.date
    assert (date.correct, date.compatible, date.missing, date.invented, date.wrong) == (1, 1, 1, 1, 1)
    assert (date.accuracy.correct, date.accuracy.total) == (1, 5)
    assert date.compatible_accuracy.value == pytest.approx(2 / 5)
    dumped = json.loads(report.model_dump_json())["totals"]["events"]["date"]
    assert {k: dumped[k] for k in DATE_OUTCOMES} == dict.fromkeys(DATE_OUTCOMES, 1)
    assert dumped["total"] == 5
    text = render(eval_table(report))
    for outcome in DATE_OUTCOMES:
        row = next(line for line in text.splitlines() if f"events dates {outcome} " in line)
        assert "0.200 1/5" in row
    assert flat_metrics(report)["events dates invented"] == pytest.approx(0.2)


def test_event_type_and_date_accuracy() -> None:
    clause_consult = "The leaders met in Paris on January 6"
    clause_agree = "agreed on a plan for monitoring the ceasefire"
    gold = gold_article(
        events=[
            ge(clause_consult, "CONSULT", "2026-01-06"),
            ge(clause_agree, "AGREE", "2026-01-06"),
            ge("Emmanuel Macron said", "OTHER", None),
        ]
    )
    preds = [
        pe(at(clause_consult), "CONSULT", "2026-01"),  # compatible date
        pe(at(clause_agree), "SUPPORT", "2026-01-06"),  # wrong type, correct date
        pe(at("Emmanuel Macron said"), "OTHER", None),  # null = null
    ]
    events = run(gold, result(events=preds)).totals.events
    assert (events.matched.tp, events.matched.fp, events.matched.fn) == (3, 0, 0)
    assert (events.event_type.correct, events.event_type.total) == (2, 3)
    assert (events.date.correct, events.date.compatible) == (2, 1)
    assert events.date.accuracy.value == pytest.approx(2 / 3)
    assert events.date.compatible_accuracy.value == 1.0

    wrong = run(gold, result(events=[pe(at(clause_consult), "CONSULT", "2025-09-04")])).totals.events
    assert wrong.date.wrong == 1
    assert wrong.date.compatible_accuracy.value == 0.0


def test_event_evidence_may_be_clause_or_sentence() -> None:
    clause = "agreed on a plan for monitoring the ceasefire"
    assert len(clause) / len(MEETING) > 0.5
    gold = gold_article(events=[ge(clause, "AGREE")])
    assert EVIDENCE_OVERLAP == 0.5 and EVIDENCE_MIN_SHARE == 0.25
    # The whole sentence contains the gold clause, which is over half of it: both spans half covered.
    sentence = run(gold, result(events=[pe(at(MEETING), "AGREE")])).totals.events
    assert sentence.matched.tp == 1
    # A different clause of the same sentence does not overlap the gold one.
    other = run(gold, result(events=[pe(at("The leaders met in Paris"), "AGREE")])).totals.events
    assert other.matched.tp == 0
    # And the other way round: a predicted clause that is over half of the gold sentence.
    gold_sentence = gold_article(events=[ge(MEETING, "AGREE")])
    part = run(gold_sentence, result(events=[pe(at(clause), "AGREE")])).totals.events
    assert part.matched.tp == 1


def test_event_evidence_may_be_a_clause_but_not_a_word_or_two() -> None:
    gold = gold_article(events=[ge(MEETING, "CONSULT")])
    # A single word inside the gold sentence is fully covered by it, but covers a tiny part of it.
    paris = at("Paris", nth=1)
    assert at(MEETING)[0] < paris[0] < at(MEETING)[1]
    one_word = run(gold, result(events=[pe(paris, "CONSULT")])).totals.events
    assert (one_word.matched.tp, one_word.matched.fp, one_word.matched.fn) == (0, 1, 1)
    # A clause of the gold sentence, under half of it but over a quarter, reports the same event.
    clause = "The leaders met in Paris on January 6"
    assert 0.25 < len(clause) / len(MEETING) < 0.5
    assert run(gold, result(events=[pe(at(clause), "CONSULT")])).totals.events.matched.tp == 1
    # A gold clause inside a predicted span more than four times its length does not match.
    short = gold_article(events=[ge("The leaders met", "CONSULT")])
    s, e = at(MEETING)
    assert (e - s) / len("The leaders met") > 4
    wide = run(short, result(events=[pe((s, e), "CONSULT")])).totals.events
    assert wide.matched.tp == 0


def test_same_evidence_events_pair_by_type() -> None:
    gold = gold_article(events=[ge(MEETING, "CONSULT"), ge(MEETING, "AGREE")])
    preds = [pe(at(MEETING), "AGREE"), pe(at(MEETING), "CONSULT"), pe(at(MEETING), "AGREE")]
    events = run(gold, result(events=preds)).totals.events
    assert (events.matched.tp, events.matched.fp) == (2, 1)
    assert events.event_type.value == 1.0


# --------------------------------------------------------------------------- stances

OPPOSES = "Meloni opposes deploying Italian troops to Ukraine."
SUPPORTS = "Macron supports a multinational force for Ukraine."


@pytest.mark.parametrize(
    ("a", "b", "similar"),
    [
        ("deploying Italian troops to Ukraine", "Deploying the Italian troops in Ukraine.", True),
        ("deploying Italian troops to Ukraine", "deployment of Italian troops in Ukraine", True),
        ("deploying Italian troops to Ukraine", "Italian troops", True),
        ("a mechanism to monitor a ceasefire in Ukraine", "mechanisms to monitor a ceasefire", True),
        ("a ceasefire monitoring mechanism", "a mechanism to monitor a ceasefire in Ukraine", True),
        ("Europe's weapons production", "the current level of weapons production in Europe", True),
        ("deploying Italian troops to Ukraine", "sanctions on Russia", False),
        ("deploying Italian troops to Ukraine", "a multinational force for Ukraine", False),
    ],
)
def test_target_normalisation(a: str, b: str, similar: bool) -> None:
    assert (target_similarity(a, b) >= TARGET_JACCARD) is similar


def test_target_similarity_values() -> None:
    assert target_similarity("deploying Italian troops to Ukraine", "the deploying of Italian troops") == 0.75
    assert target_similarity("", "the") == 1.0
    assert target_tokens("The monitoring of Ukraine's ceasefire mechanisms, as proposed") == {
        "monitor",
        "ukraine",
        "ceasefire",
        "mechanism",
        "propos",
    }
    assert target_tokens("gas and speed press") == {"gas", "speed", "press"}


def test_stance_holder_target_polarity() -> None:
    gold = gold_article(
        stances=[
            gs("Giorgia Meloni", "deploying Italian troops to Ukraine", "oppose", OPPOSES),
            gs("Emmanuel Macron", "a multinational force for Ukraine", "support", SUPPORTS),
        ]
    )
    preds = [
        ps("Meloni", "Deploying the Italian troops in Ukraine", "oppose", at(OPPOSES)),
        # Right holder and target, wrong polarity, and evidence elsewhere.
        ps("President Macron", "multinational force for Ukraine", "oppose", at(OPPOSES)),
        # A holder that holds no such stance.
        ps("Macron", "deploying Italian troops to Ukraine", "oppose", at(OPPOSES)),
    ]
    stances = run(gold, result(stances=preds)).totals.stances
    assert (stances.strict.tp, stances.strict.fp, stances.strict.fn) == (1, 2, 1)
    assert (stances.holder_target.tp, stances.holder_target.fp, stances.holder_target.fn) == (2, 1, 0)
    assert (stances.polarity.correct, stances.polarity.total) == (1, 2)


# --------------------------------------------------------------------------- empty cases and statuses


def test_empty_gold_and_empty_predictions_score_one() -> None:
    report = run(gold_article(), result())
    totals = report.totals
    for counts in (totals.quotes.exact, totals.quotes.overlap, totals.events.matched, totals.stances.strict):
        assert (counts.precision, counts.recall, counts.f1) == (1.0, 1.0, 1.0)
    assert totals.quotes.speaker.value is None
    assert totals.events.date.accuracy.value is None
    assert "n/a" in render(eval_table(report))


def test_empty_gold_with_predictions_and_gold_without_predictions_score_zero() -> None:
    spurious = run(gold_article(), result([pq(at(QUOTE), "Meloni")])).totals.quotes.exact
    assert (spurious.fp, spurious.precision, spurious.recall, spurious.f1) == (1, 0.0, 0.0, 0.0)
    missed = run(gold_article(quotes=[gq(QUOTE, "Meloni")]), result()).totals.quotes.exact
    assert (missed.fn, missed.precision, missed.recall, missed.f1) == (1, 0.0, 0.0, 0.0)


def test_micro_average_over_articles() -> None:
    g1 = gold_article(quotes=[gq(QUOTE, "Meloni"), gq(QUOTE2, "Macron")], article_id="a1")
    g2 = gold_article(article_id="a2")
    r1 = result([pq(at(QUOTE), "Meloni")], article_id="a1")
    r2 = result([pq(at(QUOTE2), "Macron"), pq(at("Paris"), "Macron")], article_id="a2")
    report = evaluate([r1, r2], {"a1": g1, "a2": g2})
    per = {row.article_id: row.quotes.exact for row in report.articles}
    assert (per["a1"].precision, per["a1"].recall) == (1.0, 0.5)
    assert (per["a2"].precision, per["a2"].recall) == (0.0, 0.0)
    total = report.totals.quotes.exact
    assert (total.tp, total.fp, total.fn) == (1, 2, 1)
    assert total.precision == pytest.approx(1 / 3)
    assert total.recall == 0.5


def test_missing_error_unscored_and_repeated_results() -> None:
    gold = {
        "a1": gold_article(quotes=[gq(QUOTE, "Meloni")], article_id="a1"),
        "a2": gold_article(quotes=[gq(QUOTE, "Meloni")], article_id="a2"),
        "a3": gold_article(quotes=[gq(QUOTE, "Meloni")], article_id="a3"),
    }
    failed = result(
        [pq(at(QUOTE), "Meloni")],
        article_id="a2",
        status="error",
        error=ErrorInfo(type="ParseError", message="bad"),
    )
    results = [
        result([pq(at(QUOTE2), "Meloni")], article_id="a1"),
        result([pq(at(QUOTE), "Meloni")], article_id="a1"),  # the later result wins
        failed,
        result([pq(at(QUOTE), "Meloni")], article_id="zz", sha256="0" * 64),
    ]
    report = evaluate(results, gold)
    assert report.unscored == ["zz"]
    assert report.missing == ["a3"]
    assert report.errors == ["a2"]
    assert [r.status for r in report.articles] == ["ok", "error", "missing"]
    assert any("a1" in w and "more than one result" in w for w in report.warnings)
    exact = report.totals.quotes.exact
    assert (exact.tp, exact.fp, exact.fn) == (1, 0, 2)  # error results count as empty predictions


def test_sha256_mismatch_is_warned() -> None:
    report = run(gold_article(), result(sha256="f" * 64))
    assert any("sha256" in w for w in report.warnings)


# --------------------------------------------------------------------------- grounding


def test_grounding_shares() -> None:
    s, e = at(QUOTE)
    res = result(
        [pq((s, e), "a"), pq((s, e), "b", "normalized"), pq((s, e), "c", "elided")],
        events=[pe(at(MEETING))],
        rejected=[
            Rejected(kind="quote", field="text", item={"text": "made up"}, reason="not in the article"),
        ],
    )
    other = result([pq((s, e), "d")], article_id="no-gold")
    failed = result([pq((s, e), "x")], article_id="err", status="error")
    grounding = evaluate([res, other, failed], {"a1": gold_article()}).grounding
    assert grounding.counts == {"exact": 3, "normalized": 1, "elided": 1, "not_found": 0, "rejected": 1}
    assert grounding.total == 6
    assert grounding.shares["exact"] == 0.5
    assert grounding.shares["rejected"] == pytest.approx(1 / 6)
    assert grounding.by_kind["quote"]["exact"] == 2
    assert grounding.by_kind["quote"]["rejected"] == 1
    assert grounding.by_kind["event"]["exact"] == 1
    assert evaluate([], {"a1": gold_article()}).grounding.shares["exact"] is None


# --------------------------------------------------------------------------- self-evaluation


def full_gold() -> GoldArticle:
    return gold_article(
        quotes=[gq(QUOTE, "Giorgia Meloni"), gq(QUOTE2, "Emmanuel Macron")],
        events=[ge(MEETING, "CONSULT", "2026-01-06"), ge(MEETING, "AGREE", "2026-01"), ge(OPPOSES, "REJECT")],
        stances=[gs("Giorgia Meloni", "deploying Italian troops to Ukraine", "oppose", OPPOSES)],
    )


def assert_perfect(report: EvalReport) -> None:
    t = report.totals
    for counts in (
        t.quotes.exact,
        t.quotes.overlap,
        t.events.matched,
        t.stances.strict,
        t.stances.holder_target,
    ):
        assert counts.fp == counts.fn == 0
        assert counts.f1 == 1.0
    for accuracy in (
        t.quotes.speaker,
        t.events.event_type,
        t.events.date.accuracy,
        t.stances.polarity,
    ):
        assert accuracy.value in (1.0, None)
    assert report.grounding.shares["exact"] in (1.0, None)


def test_gold_against_itself_is_perfect() -> None:
    gold = full_gold()
    report = evaluate([gold_as_result(gold)], {"a1": gold}, texts={SHA: TEXT})
    assert_perfect(report)
    assert report.warnings == []
    assert report.totals.quotes.speaker.total == 2


# --------------------------------------------------------------------------- report, JSON and rendering


def test_report_json_round_trip() -> None:
    report = run(full_gold(), result([pq(at(QUOTE), "Meloni")]))
    data = json.loads(report.model_dump_json())
    assert data["totals"]["quotes"]["exact"]["recall"] == 0.5
    assert data["totals"]["events"]["date"]["accuracy"]["value"] is None
    assert data["thresholds"] == {
        "quote_iou": 0.5,
        "evidence_overlap": 0.5,
        "evidence_min_share": 0.25,
        "target_jaccard": 0.5,
    }
    assert EvalReport.model_validate_json(report.model_dump_json()) == report


def test_render_table_single_run() -> None:
    report = run(full_gold(), result([pq(at(QUOTE), "Meloni")]))
    text = render(eval_table(report))
    assert "quotes exact R" in text
    assert "0.500 1/2" in text
    assert "grounding rejected" in text
    assert "1 gold articles" in text
    assert flat_metrics(report)["quotes exact R"] == 0.5


def test_render_table_compare_shows_both_runs_and_delta() -> None:
    gold = full_gold()
    v1 = run(gold, result([pq(at(QUOTE), "Meloni")]))
    v2 = run(gold, gold_as_result(gold))
    text = render(eval_table(v1, v2, labels=("prompt v1", "prompt v2")))
    assert "prompt v1" in text
    assert "prompt v2" in text
    assert "Δ (prompt v2 − prompt v1)" in text
    row = next(line for line in text.splitlines() if "quotes exact R" in line)
    assert "0.500" in row
    assert "1.000" in row
    assert "+0.500" in row


def test_eval_articles_table() -> None:
    report = evaluate(
        [gold_as_result(full_gold())],
        {"a1": full_gold(), "a9": gold_article(article_id="a9", quotes=[gq(QUOTE, "x")])},
    )
    text = render(eval_articles_table(report), width=250)
    assert "a1" in text
    assert "a9" in text
    assert "missing" in text


# --------------------------------------------------------------------------- gold files


def write_gold(folder: Path, gold: GoldArticle) -> Path:
    path = folder / f"{gold.article_id}.json"
    path.write_text(gold.model_dump_json(indent=2), encoding="utf-8")
    return path


def test_load_gold(tmp_path: Path) -> None:
    write_gold(tmp_path, full_gold())
    write_gold(tmp_path, gold_article(article_id="a2"))
    (tmp_path / "notes.txt").write_text("not gold")
    gold = load_gold(tmp_path)
    assert sorted(gold) == ["a1", "a2"]
    assert gold["a1"] == full_gold()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"article_id": "bad", "sha256": SHA}), "does not match the file name"),
        (json.dumps({"article_id": "bad", "sha256": "xyz"}), "sha256"),
        (
            json.dumps(
                {"article_id": "bad", "sha256": SHA, "quotes": [{"text": "abc", "start": 0, "end": 3}]}
            ),
            "quotes[0].speaker",
        ),
        (
            json.dumps(
                {
                    "article_id": "bad",
                    "sha256": SHA,
                    "quotes": [{"text": "abc", "speaker": "x", "start": 0, "end": 5}],
                }
            ),
            "end - start = 5 but the text has 3 characters",
        ),
        (
            json.dumps(
                {
                    "article_id": "bad",
                    "sha256": SHA,
                    "events": [
                        {"event_type": "MEET", "date": "6 Jan", "evidence": "a", "start": 0, "end": 1}
                    ],
                }
            ),
            "events[0].event_type",
        ),
        (json.dumps({"article_id": "bad", "sha256": SHA, "stance": []}), "stance: Extra inputs"),
    ],
)
def test_malformed_gold_names_the_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "mine.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(GoldError) as info:
        load_gold(tmp_path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_gold_folder_missing_or_empty(tmp_path: Path) -> None:
    with pytest.raises(GoldError, match="not found"):
        load_gold(tmp_path / "nope")
    with pytest.raises(GoldError, match="no gold files"):
        load_gold(tmp_path)


def test_check_gold_offsets() -> None:
    assert check_gold_offsets(full_gold(), TEXT) == []
    shifted = full_gold().model_copy(
        update={"quotes": [GoldQuote(text=QUOTE, speaker="Meloni", start=0, end=len(QUOTE))]}
    )
    assert check_gold_offsets(shifted, TEXT) == ["quotes[0]: text at 0:37 differs from the gold text"]
    assert "sha256" in check_gold_offsets(full_gold(), TEXT + " ")[0]


def test_evaluate_path_reads_run_folder(tmp_path: Path) -> None:
    gold_dir = tmp_path / "gold"
    gold_dir.mkdir()
    bad = full_gold().model_copy(
        update={
            "article_id": "a2",
            "quotes": [GoldQuote(text=QUOTE, speaker="Meloni", start=0, end=len(QUOTE))],
        }
    )
    write_gold(gold_dir, full_gold())
    write_gold(gold_dir, bad)
    out = tmp_path / "run"
    with ResultsWriter(out) as writer:
        writer.write(gold_as_result(full_gold()))
        writer.write(result(article_id="a2"))
    write_article_text(out, SHA, TEXT)

    report = evaluate_path(out, gold_dir)
    assert report.results == str(out)
    assert report.gold == str(gold_dir)
    assert [row.article_id for row in report.articles] == ["a1", "a2"]
    assert report.articles[0].quotes.exact.f1 == 1.0
    assert report.warnings == ["a2: gold quotes[0]: text at 0:37 differs from the gold text"]
    same = evaluate_path(out / "results.jsonl", gold_dir)
    assert same.totals == report.totals


# --------------------------------------------------------------------------- the project's gold

GOLD_DIR = ROOT / "fixtures" / "gold"
SEEDS_DIR = ROOT / "seeds"


def _real_gold() -> dict[str, GoldArticle]:
    if not GOLD_DIR.is_dir() or not any(GOLD_DIR.glob("*.json")):
        pytest.skip("no gold files in fixtures/gold yet")
    return load_gold(GOLD_DIR)


def test_project_gold_loads_and_matches_the_seeds() -> None:
    gold = _real_gold()
    for article_id, article in gold.items():
        seed = SEEDS_DIR / f"{article_id}.txt"
        assert seed.exists(), f"gold {article_id} has no seed"
        text = Article.from_text(seed.read_bytes().decode("utf-8"), id=article_id).text
        assert check_gold_offsets(article, text) == [], article_id


def test_project_gold_against_itself_is_perfect() -> None:
    gold = _real_gold()
    assert_perfect(evaluate([gold_as_result(g) for g in gold.values()], gold))


# --------------------------------------------------------------------------- the eval command


def two_runs(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A gold folder and two run folders: A gets every quote, B misses one of the two."""
    gold_dir = tmp_path / "gold"
    gold_dir.mkdir()
    write_gold(gold_dir, full_gold())
    run_a, run_b = tmp_path / "run_a", tmp_path / "run_b"
    perfect = gold_as_result(full_gold())
    with ResultsWriter(run_a) as writer:
        writer.write(perfect)
    with ResultsWriter(run_b) as writer:
        writer.write(perfect.model_copy(update={"quotes": perfect.quotes[:1]}))
    for folder in (run_a, run_b):
        write_article_text(folder, SHA, TEXT)
    return gold_dir, run_a, run_b


def cli_row(text: str, metric: str) -> list[str]:
    row = next(line for line in text.splitlines() if f" {metric} " in line)
    return [cell.strip() for cell in row.strip("│┃ ").split("│")]


def test_cli_eval_compare_shows_both_runs_and_the_delta(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from extractor import cli

    monkeypatch.setenv("COLUMNS", "200")
    gold_dir, run_a, run_b = two_runs(tmp_path)
    argv = ["eval", str(run_a), "--gold", str(gold_dir), "--compare", str(run_b / "results.jsonl")]
    assert cli.main([*argv, "--json", str(tmp_path / "scores.json")]) == 0
    out = capsys.readouterr().out
    assert cli_row(out, "quotes exact R") == ["quotes exact R", "1.000 2/2", "0.500 1/2", "-0.500"]
    assert cli_row(out, "quotes exact P") == ["quotes exact P", "1.000 2/2", "1.000 1/1", "+0.000"]
    assert cli_row(out, "events R") == ["events R", "1.000 3/3", "1.000 3/3", "+0.000"]
    assert f"A: 1 gold articles ({run_a})" in out
    assert f"B: 1 gold articles ({run_b / 'results.jsonl'})" in out
    scores = json.loads((tmp_path / "scores.json").read_text(encoding="utf-8"))
    assert scores["a"]["totals"]["quotes"]["exact"]["recall"] == 1.0
    assert scores["b"]["totals"]["quotes"]["exact"]["recall"] == 0.5


def test_cli_eval_per_article(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from extractor import cli

    monkeypatch.setenv("COLUMNS", "250")
    gold_dir, run_a, run_b = two_runs(tmp_path)
    assert cli.main(["eval", str(run_b), "--gold", str(gold_dir)]) == 0
    assert "Per article" not in capsys.readouterr().out
    assert cli.main(["eval", str(run_b), "--gold", str(gold_dir), "--per-article"]) == 0
    out = capsys.readouterr().out
    assert "Per article" in out
    row = next(line for line in out.splitlines() if line.split()[:1] == ["a1"])
    assert row.split()[1] == "0.667"  # quote exact F1 of B: P = 1, R = 1/2
    argv = ["eval", str(run_a), "--gold", str(gold_dir), "--compare", str(run_b), "--per-article"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "Per article, A" in out and "Per article, B" in out


@pytest.mark.parametrize("problem", ["missing", "malformed", "empty", "no results"])
def test_cli_eval_gold_or_results_problems_exit_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], problem: str
) -> None:
    from extractor import cli

    gold_dir, run_a, _ = two_runs(tmp_path)
    if problem == "missing":
        gold_dir = tmp_path / "nope"
    elif problem == "malformed":
        (gold_dir / "a1.json").write_text('{"article_id": "a1",\n "sha256": "xyz"}', encoding="utf-8")
    elif problem == "empty":
        (gold_dir / "a1.json").unlink()
    else:
        run_a = tmp_path / "no-run"
    assert cli.main(["eval", str(run_a), "--gold", str(gold_dir)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("extractor: configuration error: "), lines
