"""Issue 17's evaluation figures: speakers by exact name and by person; quote precision per reason."""

from __future__ import annotations

import pytest

from extractor.evaluate import GoldArticle, GoldQuote, evaluate, flat_metrics
from extractor.evaluate.quotemarks import inside_quotes, quoted_regions
from extractor.evaluate.scores import Accuracy, Counts, QuoteScores
from extractor.matching import same_name, same_person
from extractor.models import ArticleResult, GroundedQuote, Span, text_sha256

TEXT = (
    "Prime Minister Giorgia Meloni said “Italy will not send troops to Ukraine” after the meeting.\n"
    "John Smith called it “a grave mistake”, and Jane Smith said “we disagree”.\n"
    "The talks went on for hours in Rome, officials said.\n"
    "Meloni added: “Our position is firm and it will not change.”"
)
SHA = text_sha256(TEXT)


def at(needle: str) -> tuple[int, int]:
    start = TEXT.index(needle)
    return start, start + len(needle)


def gold(*quotes: tuple[str, str | None]) -> dict[str, GoldArticle]:
    items = [GoldQuote(text=t, speaker=s, start=at(t)[0], end=at(t)[1]) for t, s in quotes]
    return {"a1": GoldArticle(article_id="a1", sha256=SHA, quotes=items)}


def predicted(*quotes: tuple[str, str | None]) -> ArticleResult:
    return ArticleResult(
        article_id="a1",
        source="a1.txt",
        sha256=SHA,
        status="ok",
        quotes=[
            GroundedQuote(
                text=t, speaker=s, cue=None, span=Span(status="exact", start=at(t)[0], end=at(t)[1])
            )
            for t, s in quotes
        ],
    )


def scores(preds: ArticleResult, gold_: dict[str, GoldArticle], *, text: bool = True) -> QuoteScores:
    return evaluate([preds], gold_, texts={SHA: TEXT} if text else None).totals.quotes


# --------------------------------------------------------------------------- speakers


@pytest.mark.parametrize(
    ("predicted_name", "gold_name", "expected"),
    [
        ("Meloni", "Giorgia Meloni", True),  # a bare surname
        ("Prime Minister Giorgia Meloni", "Giorgia Meloni", True),  # a title
        ("Gov. Harlow", "John Harlow", True),  # an abbreviated title and a surname
        ("G. Meloni", "Giorgia Meloni", True),
        ("Jane Smith", "John Smith", False),  # different given names never match
        ("Giorgio Meloni", "Giorgia Meloni", False),
        (None, None, True),
        (None, "Giorgia Meloni", False),
        ("Giorgia Meloni", None, False),
    ],
)
def test_same_person(predicted_name: str | None, gold_name: str | None, expected: bool) -> None:
    assert same_person(predicted_name, gold_name) is expected


def test_a_bare_surname_two_people_of_the_article_share_is_no_ones_name() -> None:
    article = ["John Smith", "Jane Smith", "Giorgia Meloni"]
    assert not same_person("Smith", "John Smith", article)
    assert not same_person("J. Smith", "John Smith", article)  # J. fits John and Jane
    assert same_person("J. Smith", "John Smith", ["John Smith", "Giorgia Meloni"])
    assert same_person("John Smith", "John Smith", article)
    assert same_person("Meloni", "Giorgia Meloni", article)


def test_same_name_is_the_name_as_written() -> None:
    assert same_name("Giorgia  Meloni ", "Giorgia Meloni")
    assert not same_name("Meloni", "Giorgia Meloni")
    assert not same_name("giorgia meloni", "Giorgia Meloni")
    assert same_name(None, None) and not same_name(None, "Meloni")


def test_speaker_figures_exact_name_and_same_person() -> None:
    g = gold(("Italy will not send troops to Ukraine", "Giorgia Meloni"), ("a grave mistake", "John Smith"))
    q = scores(
        predicted(("Italy will not send troops to Ukraine", "Meloni"), ("a grave mistake", "John Smith")), g
    )
    assert q.speaker == Accuracy(correct=2, total=2)
    assert q.speaker_exact == Accuracy(correct=1, total=2)
    # "Smith" when the gold names two Smiths is neither.
    g2 = gold(("a grave mistake", "John Smith"), ("we disagree", "Jane Smith"))
    q2 = scores(predicted(("a grave mistake", "Smith"), ("we disagree", "Jane Smith")), g2)
    assert (q2.speaker.correct, q2.speaker_exact.correct) == (1, 1)


# --------------------------------------------------------------------------- quote precision by reason


def test_every_predicted_quote_has_one_outcome() -> None:
    g = gold(
        ("Italy will not send troops to Ukraine", "Giorgia Meloni"),
        ("Our position is firm and it will not change.", "Giorgia Meloni"),
    )
    preds = predicted(
        ("Italy will not send troops to Ukraine", "Giorgia Meloni"),  # matched
        ("Italy will not send troops", "Giorgia Meloni"),  # IoU 0.71 with a gold quote already taken
        ("Our position", "Giorgia Meloni"),  # overlaps a gold quote, IoU 0.27: wrong span
        ("a grave mistake", "John Smith"),  # in quotation marks, not in the gold
        ("The talks went on for hours in Rome", None),  # narration: not a direct quote
    )
    q = scores(preds, g)
    assert q.overlap == Counts(tp=1, fp=4, fn=1)
    outcomes = q.predicted
    assert (outcomes.matched, outcomes.duplicate, outcomes.wrong_span) == (1, 1, 1)
    assert (outcomes.not_in_gold, outcomes.not_a_quote, outcomes.unchecked) == (1, 1, 0)
    assert outcomes.total == 5
    metrics = flat_metrics(evaluate([preds], g, texts={SHA: TEXT}))
    reasons = (
        "not a direct quote",
        "wrong span",
        "duplicate",
        "not in gold",
        "unchecked (article text unknown)",
    )
    assert metrics["quotes overlap P"] + sum(metrics[f"quotes predicted: {r}"] or 0 for r in reasons) == 1.0
    # Without the article text, quotation marks cannot be checked.
    unchecked = scores(preds, g, text=False).predicted
    assert (unchecked.unchecked, unchecked.not_in_gold, unchecked.not_a_quote) == (2, 0, 0)


def test_outcomes_add_up_over_articles() -> None:
    g = gold(("Italy will not send troops to Ukraine", "Giorgia Meloni"))
    one = scores(predicted(("a grave mistake", None)), g)
    total = one + one
    assert total.predicted.not_in_gold == 2 and total.predicted.total == 2


# --------------------------------------------------------------------------- quotation marks


@pytest.mark.parametrize(
    ("text", "needle", "inside"),
    [
        ("He said “we stay” today.", "we stay", True),
        ("Er sagte: „Wir bleiben, ‚komme was wolle‘, hier“ heute.", "komme was wolle", True),
        ("Er sagte: „Wir bleiben hier“ heute.", "Wir bleiben hier", True),
        ("Il a dit : « Tout est réglé » hier.", "Tout est réglé", True),
        ("It doesn’t matter, O’Neill said.", "t matter, O", False),
        ("The so-called 'peace plan' failed.", "peace plan", True),
        ("“We will go on,\nand on", "and on", False),
        ("“We will go on,\nand on", "We will go on,", True),  # no closing mark: to the paragraph's end
        ("The leaders met in Rome.", "leaders met", False),
    ],
)
def test_inside_quotation_marks(text: str, needle: str, inside: bool) -> None:
    start = text.index(needle)
    assert inside_quotes(quoted_regions(text), start, start + len(needle)) is inside


def test_an_apostrophe_is_not_a_quotation_mark() -> None:
    assert quoted_regions("It doesn’t matter, O’Neill said, the leaders’ plan stands.") == []
