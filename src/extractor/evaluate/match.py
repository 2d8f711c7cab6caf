"""One-to-one matching of predicted items to gold items, and the scores of one article."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from extractor.dates import date_text_tokens, date_texts_agree
from extractor.evaluate import scores
from extractor.evaluate.gold import GoldArticle, GoldEvent, GoldQuote, GoldStance, _GoldItem
from extractor.evaluate.quotemarks import inside_quotes, quoted_regions
from extractor.matching import names_match, same_name, same_person, target_similarity
from extractor.models import ArticleResult, GroundedEvent, GroundedQuote, GroundedStance, Span


def classify_date(
    predicted: str | None,
    gold: str | None,
    predicted_text: str | None = None,
    gold_text: str | None = None,
) -> scores.DateOutcome:
    """Compare an event's ISO dates of different precision (YYYY, YYYY-MM, YYYY-MM-DD) and, when the gold
    date is null, its date_text; see the module docstring."""
    if gold is None:
        if predicted is not None:
            return "invented"
        if date_texts_agree(predicted_text, gold_text):
            return "correct"
        return "missing" if not date_text_tokens(predicted_text) else "wrong"
    if predicted is None:
        return "missing"
    if predicted == gold:
        return "correct"
    p, g = predicted.split("-"), gold.split("-")
    if len(p) < len(g) and g[: len(p)] == p:
        return "compatible"
    if len(p) > len(g) and p[: len(g)] == g:
        return "invented"
    return "wrong"


Interval = tuple[int, int]
Pairs = list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class _Placement:
    extent: Interval
    pieces: tuple[Interval, ...]

    @property
    def size(self) -> int:
        return sum(e - s for s, e in self.pieces)

    def overlap(self, gold: Interval) -> int:
        gs, ge = gold
        return sum(max(0, min(e, ge) - max(s, gs)) for s, e in self.pieces)


def _placements(span: Span, text: str | None) -> list[_Placement]:
    """Where a predicted span may sit: its own offsets, or every occurrence of its text when it repeats."""
    if span.start is None or span.end is None or span.status == "not_found":
        return []
    if span.status == "elided" and span.pieces:
        return [_Placement((span.start, span.end), tuple((s, e) for s, e in span.pieces))]
    own = _Placement((span.start, span.end), ((span.start, span.end),))
    if text is None or span.occurrences <= 1 or not 0 <= span.start < span.end <= len(text):
        return [own]
    needle = text[span.start : span.end]
    found: list[_Placement] = []
    at = text.find(needle)
    while at >= 0:
        found.append(_Placement((at, at + len(needle)), ((at, at + len(needle)),)))
        at = text.find(needle, at + 1)
    return found or [own]


def _iou(places: Sequence[_Placement], gold: Interval) -> float:
    best = 0.0
    for place in places:
        inter = place.overlap(gold)
        union = place.size + (gold[1] - gold[0]) - inter
        best = max(best, inter / union if union else 0.0)
    return best


def _evidence_overlaps(places: Sequence[_Placement], gold: Interval) -> bool:
    """Whether a predicted evidence and a gold one report from the same place (see module docstring)."""
    for place in places:
        overlap = place.overlap(gold)
        shorter, longer = sorted((place.size, gold[1] - gold[0]))
        enough = overlap / shorter >= scores.EVIDENCE_OVERLAP if shorter else False
        if enough and overlap / longer >= scores.EVIDENCE_MIN_SHARE:
            return True
    return False


def _match(
    n_gold: int,
    n_pred: int,
    score: Callable[[int, int], float | None],
    agreement: Callable[[int, int], tuple[float, ...]],
) -> Pairs:
    """Greedy one-to-one matching; ``score`` returns None for pairs that fail the criterion."""
    candidates: list[tuple[float, tuple[float, ...], int, int]] = []
    for gi in range(n_gold):
        for pi in range(n_pred):
            value = score(gi, pi)
            if value is not None:
                candidates.append((-value, tuple(-a for a in agreement(gi, pi)), gi, pi))
    candidates.sort()
    used_gold: set[int] = set()
    used_pred: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, _, gi, pi in candidates:
        if gi not in used_gold and pi not in used_pred:
            used_gold.add(gi)
            used_pred.add(pi)
            pairs.append((gi, pi))
    return pairs


def _span(item: _GoldItem) -> Interval:
    return (item.start, item.end)


_G = TypeVar("_G", GoldQuote, GoldEvent, GoldStance)
_P = TypeVar("_P", GroundedQuote, GroundedEvent, GroundedStance)


@dataclass(frozen=True)
class _Sides(Generic[_G, _P]):
    """The gold and the predicted items of one kind in one article, and where each prediction sits."""

    gold: Sequence[_G]
    pred: Sequence[_P]
    text: str | None
    places: list[list[_Placement]]

    @classmethod
    def of(cls, gold: Sequence[_G], pred: Sequence[_P], text: str | None) -> _Sides[_G, _P]:
        return cls(gold, pred, text, [_placements(item.span, text) for item in pred])

    def iou(self, gi: int, pi: int) -> float:
        return _iou(self.places[pi], _span(self.gold[gi]))

    def match(
        self, score: Callable[[int, int], float | None], agreement: Callable[[int, int], tuple[float, ...]]
    ) -> Pairs:
        return _match(len(self.gold), len(self.pred), score, agreement)

    def counts(self, pairs: Pairs) -> scores.Counts:
        tp = len(pairs)
        return scores.Counts(tp=tp, fp=len(self.pred) - tp, fn=len(self.gold) - tp)


QuoteOutcome = Literal["matched", "not_a_quote", "wrong_span", "duplicate", "not_in_gold", "unchecked"]


def quote_outcome(
    places: Sequence[_Placement],
    gold: Sequence[Interval],
    matched: bool,
    quoted: Sequence[tuple[int, int]] | None,
) -> QuoteOutcome:
    """What became of one predicted quote (``places``: where it may sit) in the overlap matching.

    matched: it is paired with a gold quote (IoU >= ``QUOTE_IOU``). Otherwise: duplicate, when it has
    IoU >= ``QUOTE_IOU`` with a gold quote another prediction took; wrong span, when it shares characters
    with a gold quote but never reaches the IoU; and when it overlaps no gold quote, by the article text
    (``quoted``: its quoted regions, None when the text is unknown): not in gold, when it lies inside
    quotation marks; not a direct quote, when it does not (or could not be found in the text at all);
    unchecked, when the text is unknown.
    """
    if matched:
        return "matched"
    if any(_iou(places, g) >= scores.QUOTE_IOU for g in gold):
        return "duplicate"
    if any(place.overlap(g) > 0 for place in places for g in gold):
        return "wrong_span"
    if quoted is None:
        return "unchecked"
    if any(inside_quotes(quoted, *place.extent) for place in places):
        return "not_in_gold"
    return "not_a_quote"


def _score_quotes(sides: _Sides[GoldQuote, GroundedQuote]) -> scores.QuoteScores:
    gold, pred, text = sides.gold, sides.pred, sides.text
    names = [q.speaker for q in gold if q.speaker is not None]

    def said_by(gi: int, pi: int) -> bool:
        """The same person (``same_person``); an unattributed prediction matches only an unattributed one."""
        return same_person(pred[pi].speaker, gold[gi].speaker, names)

    def speaker(gi: int, pi: int) -> tuple[float, ...]:
        return (float(said_by(gi, pi)),)

    def exact(gi: int, pi: int) -> float | None:
        return 1.0 if any(p.extent == _span(gold[gi]) for p in sides.places[pi]) else None

    def overlap(gi: int, pi: int) -> float | None:
        value = sides.iou(gi, pi)
        return value if value >= scores.QUOTE_IOU else None

    exact_pairs = sides.match(exact, speaker)
    overlap_pairs = sides.match(overlap, speaker)
    matched = {pi for _, pi in overlap_pairs}
    quoted = quoted_regions(text) if text is not None else None
    spans = [_span(g) for g in gold]
    outcomes: Counter[str] = Counter(
        quote_outcome(sides.places[pi], spans, pi in matched, quoted) for pi in range(len(pred))
    )
    return scores.QuoteScores(
        exact=sides.counts(exact_pairs),
        overlap=sides.counts(overlap_pairs),
        speaker=scores.Accuracy.over(overlap_pairs, said_by),
        speaker_exact=scores.Accuracy.over(
            overlap_pairs, lambda gi, pi: same_name(pred[pi].speaker, gold[gi].speaker)
        ),
        predicted=scores.QuotePredictions(**outcomes),
    )


def _score_events(sides: _Sides[GoldEvent, GroundedEvent]) -> scores.EventScores:
    gold, pred = sides.gold, sides.pred

    def score(gi: int, pi: int) -> float | None:
        return sides.iou(gi, pi) if _evidence_overlaps(sides.places[pi], _span(gold[gi])) else None

    def date(gi: int, pi: int) -> scores.DateOutcome:
        g, p = gold[gi], pred[pi]
        return classify_date(p.date, g.date, p.date_text, g.date_text)

    def same_type(gi: int, pi: int) -> bool:
        return gold[gi].event_type == pred[pi].event_type

    def agreement(gi: int, pi: int) -> tuple[float, ...]:
        return (float(same_type(gi, pi)), float(date(gi, pi) == "correct"))

    pairs = sides.match(score, agreement)
    dates: Counter[str] = Counter(date(gi, pi) for gi, pi in pairs)
    return scores.EventScores(
        matched=sides.counts(pairs),
        event_type=scores.Accuracy.over(pairs, same_type),
        date=scores.DateScores(**dates),
    )


def _score_stances(sides: _Sides[GoldStance, GroundedStance]) -> scores.StanceScores:
    gold, pred = sides.gold, sides.pred

    def holder_target(gi: int, pi: int) -> float | None:
        g, p = gold[gi], pred[pi]
        if not names_match(g.holder, p.holder):
            return None
        similarity = target_similarity(g.target, p.target)
        return similarity if similarity >= scores.TARGET_JACCARD else None

    def same_polarity(gi: int, pi: int) -> bool:
        return gold[gi].polarity == pred[pi].polarity

    def strict(gi: int, pi: int) -> float | None:
        return holder_target(gi, pi) if same_polarity(gi, pi) else None

    def evidence(gi: int, pi: int) -> tuple[float, ...]:
        return (sides.iou(gi, pi),)

    def polarity_then_evidence(gi: int, pi: int) -> tuple[float, ...]:
        return (float(same_polarity(gi, pi)), sides.iou(gi, pi))

    strict_pairs = sides.match(strict, evidence)
    loose_pairs = sides.match(holder_target, polarity_then_evidence)
    return scores.StanceScores(
        strict=sides.counts(strict_pairs),
        holder_target=sides.counts(loose_pairs),
        polarity=scores.Accuracy.over(loose_pairs, same_polarity),
    )


def _score_article(gold: GoldArticle, result: ArticleResult | None, text: str | None) -> scores.ArticleScores:
    predicted = result if result is not None and result.status == "ok" else None
    return scores.ArticleScores(
        article_id=gold.article_id,
        status="missing" if result is None else result.status,
        quotes=_score_quotes(_Sides.of(gold.quotes, predicted.quotes if predicted else [], text)),
        events=_score_events(_Sides.of(gold.events, predicted.events if predicted else [], text)),
        stances=_score_stances(_Sides.of(gold.stances, predicted.stances if predicted else [], text)),
    )
