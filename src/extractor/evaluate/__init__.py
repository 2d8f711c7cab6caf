"""Score a run against hand-checked gold annotations (``extractor eval``).

``gold`` (the gold format, loading, offset checks), ``scores`` (the score models: each figure declared
once), ``match`` (one-to-one matching and the scores of one article), ``run`` (``evaluate``,
``evaluate_path``); ``extractor.cli.tables`` shows the scores as tables. Date phrases are compared by
``extractor.dates``, names and targets by ``extractor.matching``. What each figure means:

Only articles that have a gold file are scored. A result for an article without gold is counted as
*unscored*; a gold article without a result is *missing* and an error result is an *error* — both are
scored as empty predictions, so every gold item counts as a miss. If results.jsonl holds an article twice,
the last result is scored (and a warning says so).

Matching is one-to-one: candidate (gold, prediction) pairs that pass the criterion are sorted by score
(highest first), then by how well their other fields agree, then by gold index and prediction index, and
taken greedily; a gold item matches at most one prediction, so duplicate predictions are false positives.

Quotes
    *exact*: the predicted span's (start, end) equals the gold span's. *overlap*: character IoU
    (|intersection| / |union|, elided pieces counted piece by piece) >= ``QUOTE_IOU`` (0.5). IoU rather
    than "any overlap" so a prediction must cover most of the quote *and* not much more; 0.5 is the usual
    span-overlap threshold. Speakers, over the overlap-matched quotes, two figures: *same-person
    accuracy* (``matching.same_person``: ``names_match`` with abbreviated titles such as "Gov." dropped,
    so a title, a bare surname or an initial may stand for the gold's full name -- but only when it fits
    no other person the article's gold names, and different given names never match) and *exact-name
    accuracy* (the name as written, up to Unicode normalisation and spaces). An unattributed quote,
    speaker null, matches only an unattributed one.
    *Predicted quotes by outcome* (shares of all predicted quotes; "matched" is the overlap precision and
    the rest say where precision is lost -- each prediction gets exactly one):
      matched: paired with a gold quote (IoU >= ``QUOTE_IOU``);
      duplicate: IoU >= ``QUOTE_IOU`` with a gold quote another prediction was paired with;
      wrong span: shares characters with a gold quote but reaches the IoU with none;
      not in gold: overlaps no gold quote and lies inside quotation marks in the article text
        (``quotemarks``: “…”, „…“, «…», ‹…›, 「…」, "…", '…' ..., a quote running to the end of its
        paragraph when it is not closed; an apostrophe inside a word is not a mark);
      not a direct quote: overlaps no gold quote and is not inside quotation marks (or is not found in
        the article text at all);
      unchecked: overlaps no gold quote and the article text is unknown (``evaluate`` without ``texts``).
Names (speakers, stance holders)
    ``normalize_name``: accents removed, casefolded, possessive 's dropped, punctuation to spaces, articles
    (the/a/an) dropped, and titles (Prime Minister, President, Mr, ...) dropped with whatever precedes the
    last one when a name follows ("Italian Prime Minister Giorgia Meloni" -> giorgia meloni). Two names
    match when their tokens are equal (a single letter may stand for a word: "G. Meloni"), or when one is a
    single word that is the other's last word and not a group noun: "Meloni" = "Giorgia Meloni", but
    "John Smith" != "Jane Smith" and "the government" != "the Italian government".
Events
    Matched by evidence: the overlap must cover at least ``EVIDENCE_OVERLAP`` (0.5) of the shorter span
    and ``EVIDENCE_MIN_SHARE`` (0.25) of the longer one. Evidence may be a sentence or a clause, so a
    clause inside the gold sentence (or a sentence around a gold clause) matches when it is at least a
    quarter of it, but a word or two inside a long sentence ("Paris") does not; pairs
    are ranked by IoU, then by event type and date agreement. On matched events: *type accuracy*, and
    dates classified by ``classify_date``. The gold ``date`` is what the text itself supports (null when
    it gives no year), ``date_text`` the article's own words for it:
      correct: equal dates; or, for a null gold date, a null predicted date whose date_text agrees loosely
        with the gold one (``date_texts_agree``: case, punctuation, word order, prepositions, articles and
        ordinal endings ignored: "January 6" = "on January 6" = "the 6th of January"; both null agree);
      compatible: a strictly less precise prefix of the gold date ("2025" for "2025-03");
      missing: no date where gold has one (a null date, or for a null gold date, no date_text);
      invented: more than the text supports: any date for a null gold date, or a more precise one
        ("2025-03-06" for "2025-03");
      wrong: a different date (or, for a null gold date, a date_text that does not agree).
    *date accuracy* = correct / matched; *date compatible accuracy* = (correct + compatible) / matched.
    ``true_date`` (outside knowledge) is never scored.
Stances
    *strict*: holder names match, targets match and polarity is equal. Targets match when the Jaccard
    similarity of their token sets (accents removed, casefolded, punctuation and stopwords dropped, a
    plural -s and -ing/-ed endings cut: "monitoring mechanisms" ~ "monitor mechanism") is >=
    ``TARGET_JACCARD`` (0.5). Evidence is not required to match (a stance may be shown in several places);
    it only breaks ties. *holder+target*: the same without polarity; *polarity accuracy* on those matches.
Grounding
    Over every ok result read (scored or not): each kept item's span status (exact / normalized / elided /
    not_found) and each ``rejected`` entry, as shares of all items.
Totals and empty cases
    Totals are micro-averaged: counts are summed over the scored articles, then ratios are taken.
    P = tp / (tp + fp) and R = tp / (tp + fn); when a denominator is 0 the ratio is 1.0 if the other side is
    empty too (nothing to find and nothing found is perfect agreement) and 0.0 otherwise; F1 is 0.0 when
    P + R = 0. So 0 gold / 0 predicted gives P = R = F1 = 1.0, and 0 gold / 3 predicted gives 0.0.
    Accuracies over zero matched items (and shares over zero items) are None, shown as "n/a".

When the article text is known (``evaluate(texts=...)``; ``evaluate_path`` reads it from the run folder), a
predicted exact/normalized span whose text occurs several times in the article may match any occurrence,
and gold offsets are checked against the text (mismatches become warnings).
"""

from __future__ import annotations

from extractor.evaluate.gold import (
    GoldArticle,
    GoldError,
    GoldEvent,
    GoldQuote,
    GoldStance,
    check_gold_offsets,
    gold_as_result,
    load_gold,
)
from extractor.evaluate.match import classify_date
from extractor.evaluate.run import evaluate, evaluate_path
from extractor.evaluate.scores import (
    DATE_OUTCOMES,
    EVIDENCE_MIN_SHARE,
    EVIDENCE_OVERLAP,
    QUOTE_IOU,
    TARGET_JACCARD,
    Counts,
    EvalReport,
    flat_metrics,
    metric_sections,
)

__all__ = [
    "DATE_OUTCOMES",
    "EVIDENCE_MIN_SHARE",
    "EVIDENCE_OVERLAP",
    "QUOTE_IOU",
    "TARGET_JACCARD",
    "Counts",
    "EvalReport",
    "GoldArticle",
    "GoldError",
    "GoldEvent",
    "GoldQuote",
    "GoldStance",
    "check_gold_offsets",
    "classify_date",
    "evaluate",
    "evaluate_path",
    "flat_metrics",
    "gold_as_result",
    "load_gold",
    "metric_sections",
]
