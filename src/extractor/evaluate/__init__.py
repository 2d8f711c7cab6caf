"""Score a run against hand-checked gold annotations (``extractor eval``).

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
    span-overlap threshold. *speaker accuracy*: share of overlap-matched quotes whose speaker matches
    (``names_match``; an unattributed quote, speaker null, matches only an unattributed one).
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

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field, model_validator
from pydantic_core import ErrorDetails
from rich import box
from rich.table import Table

from extractor.errors import ExtractorError, StoreError
from extractor.matching import names_match, normalize_name, target_similarity, target_tokens, word_tokens
from extractor.models import (
    ISO_DATE_PATTERN,
    ArticleResult,
    EventType,
    GroundedEvent,
    GroundedQuote,
    GroundedStance,
    Polarity,
    Span,
    text_sha256,
)
from extractor.store import iter_results, read_article_text

__all__ = [
    "DATE_OUTCOMES",
    "EVIDENCE_MIN_SHARE",
    "EVIDENCE_OVERLAP",
    "GROUNDING_STATUSES",
    "QUOTE_IOU",
    "TARGET_JACCARD",
    "Accuracy",
    "ArticleScores",
    "Counts",
    "DateOutcome",
    "DateScores",
    "EvalReport",
    "EventScores",
    "GoldArticle",
    "GoldError",
    "GoldEvent",
    "GoldQuote",
    "GoldStance",
    "GroundingStats",
    "QuoteScores",
    "Scores",
    "StanceScores",
    "check_gold_offsets",
    "classify_date",
    "date_text_tokens",
    "date_texts_agree",
    "evaluate",
    "evaluate_path",
    "flat_metrics",
    "gold_as_result",
    "load_gold",
    "load_gold_file",
    "names_match",
    "normalize_name",
    "render_articles",
    "render_table",
    "summary_lines",
    "target_similarity",
    "target_tokens",
]

QUOTE_IOU = 0.5
EVIDENCE_OVERLAP = 0.5
EVIDENCE_MIN_SHARE = 0.25
TARGET_JACCARD = 0.5

GROUNDING_STATUSES: tuple[str, ...] = ("exact", "normalized", "elided", "not_found", "rejected")
DateOutcome = Literal["correct", "compatible", "missing", "invented", "wrong"]
DATE_OUTCOMES: tuple[DateOutcome, ...] = ("correct", "compatible", "missing", "invented", "wrong")


class GoldError(ExtractorError):
    """A gold file or folder is missing or malformed."""


# --------------------------------------------------------------------------- gold format


class _GoldItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    note: str | None = None

    @property
    def spanned(self) -> str:
        """The text that ``start``/``end`` locate."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _check_span(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be greater than start ({self.start})")
        if self.end - self.start != len(self.spanned):
            raise ValueError(
                f"end - start = {self.end - self.start} but the text has {len(self.spanned)} characters"
            )
        return self


class GoldQuote(_GoldItem):
    text: str
    speaker: str | None  # null: the article does not say who spoke
    cue: str | None = None

    @property
    def spanned(self) -> str:
        return self.text


class GoldEvent(_GoldItem):
    event_type: EventType
    date: Annotated[str, Field(pattern=ISO_DATE_PATTERN)] | None
    date_text: str | None = None
    # The real-world date where it is known from outside the text (e.g. a year no seed states): for
    # readers and the digest's tests only, never scored: `date` is what the text itself supports.
    true_date: Annotated[str, Field(pattern=ISO_DATE_PATTERN)] | None = None
    location: str | None = None
    actors: list[str] = Field(default_factory=list)
    evidence: str
    summary: str | None = None

    @property
    def spanned(self) -> str:
        return self.evidence


class GoldStance(_GoldItem):
    holder: str
    target: str
    polarity: Polarity
    evidence: str

    @property
    def spanned(self) -> str:
        return self.evidence


class GoldArticle(BaseModel):
    """One fixtures/gold/<article_id>.json file (format in notes/CONTRACTS.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    article_id: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    quotes: list[GoldQuote] = Field(default_factory=list)
    events: list[GoldEvent] = Field(default_factory=list)
    stances: list[GoldStance] = Field(default_factory=list)


def _error_location(error: ErrorDetails) -> str:
    out = ""
    for part in error["loc"]:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<file>"


def load_gold_file(path: Path | str) -> GoldArticle:
    """Read and validate one gold file; raise ``GoldError`` naming the file and the fields at fault."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise GoldError(f"{path}: cannot read gold file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise GoldError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise GoldError(f"{path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from exc
    try:
        article = GoldArticle.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        shown = "; ".join(f"{_error_location(e)}: {e['msg']}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise GoldError(f"{path}: invalid gold: {shown}{more}") from exc
    if article.article_id != path.stem:
        raise GoldError(f"{path}: article_id {article.article_id!r} does not match the file name")
    return article


def load_gold(gold_dir: Path | str) -> dict[str, GoldArticle]:
    """Load every ``*.json`` gold file in ``gold_dir``, keyed by article_id (= file stem)."""
    root = Path(gold_dir)
    if not root.is_dir():
        raise GoldError(f"gold folder not found: {root}")
    files = sorted(p for p in root.glob("*.json") if not p.name.startswith("."))
    if not files:
        raise GoldError(f"no gold files (*.json) in {root}")
    return {path.stem: load_gold_file(path) for path in files}


def check_gold_offsets(gold: GoldArticle, text: str) -> list[str]:
    """Problems of ``gold`` against its article text: sha256 mismatch, spans that do not hold their text."""
    if text_sha256(text) != gold.sha256:
        return [f"sha256 of the article text is not the gold sha256 {gold.sha256[:12]}…"]
    problems: list[str] = []
    kinds: tuple[tuple[str, Sequence[_GoldItem]], ...] = (
        ("quotes", gold.quotes),
        ("events", gold.events),
        ("stances", gold.stances),
    )
    for kind, items in kinds:
        for i, item in enumerate(items):
            if text[item.start : item.end] != item.spanned:
                problems.append(f"{kind}[{i}]: text at {item.start}:{item.end} differs from the gold text")
    return problems


def gold_as_result(gold: GoldArticle) -> ArticleResult:
    """The gold annotations as a perfect ``ArticleResult`` (exact spans), e.g. to sanity-check scoring."""

    def span(item: _GoldItem) -> Span:
        return Span(status="exact", start=item.start, end=item.end, occurrences=1)

    return ArticleResult(
        article_id=gold.article_id,
        source="<gold>",
        sha256=gold.sha256,
        status="ok",
        quotes=[GroundedQuote(text=q.text, speaker=q.speaker, cue=q.cue, span=span(q)) for q in gold.quotes],
        events=[
            GroundedEvent(
                summary=e.summary or e.evidence,
                event_type=e.event_type,
                date=e.date,
                date_text=e.date_text,
                location=e.location,
                actors=list(e.actors),
                evidence=e.evidence,
                span=span(e),
            )
            for e in gold.events
        ],
        stances=[
            GroundedStance(
                holder=s.holder, target=s.target, polarity=s.polarity, evidence=s.evidence, span=span(s)
            )
            for s in gold.stances
        ],
    )


# --------------------------------------------------------------------------- normalisation

_DATE_FILLERS = frozenset(
    {"on", "in", "at", "by", "during", "since", "from", "until", "till", "of", "the", "a", "an"}
)  # fmt: skip
_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$")


def date_text_tokens(date_text: str | None) -> tuple[str, ...]:
    """A date phrase for loose comparison: accents removed, casefolded, punctuation, prepositions and
    articles dropped, ordinals to numbers ("On the 6th of January," -> 6 january)."""
    if date_text is None:
        return ()
    return tuple(_ORDINAL.sub(r"\1", t) for t in word_tokens(date_text) if t not in _DATE_FILLERS)


def date_texts_agree(predicted: str | None, gold: str | None) -> bool:
    """``date_text_tokens`` equal in any order: "January 6" = "on January 6" = "the 6th of January"; both
    null (or empty) agree."""
    return sorted(date_text_tokens(predicted)) == sorted(date_text_tokens(gold))


def classify_date(
    predicted: str | None,
    gold: str | None,
    predicted_text: str | None = None,
    gold_text: str | None = None,
) -> DateOutcome:
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


# --------------------------------------------------------------------------- score models


def _ratio(numerator: int, denominator: int, *, other_side_empty: bool) -> float:
    if denominator:
        return numerator / denominator
    return 1.0 if other_side_empty else 0.0


class Counts(BaseModel):
    """True/false positives and false negatives, with precision, recall and F1."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp, other_side_empty=self.fn == 0)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn, other_side_empty=self.fp == 0)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def __add__(self, other: Counts) -> Counts:
        return Counts(tp=self.tp + other.tp, fp=self.fp + other.fp, fn=self.fn + other.fn)


class Accuracy(BaseModel):
    """``correct`` of ``total`` matched items; ``value`` is None when nothing was matched."""

    correct: int = 0
    total: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def value(self) -> float | None:
        return self.correct / self.total if self.total else None

    def __add__(self, other: Accuracy) -> Accuracy:
        return Accuracy(correct=self.correct + other.correct, total=self.total + other.total)


class DateScores(BaseModel):
    """Outcomes of ``classify_date`` over matched events."""

    correct: int = 0
    compatible: int = 0
    missing: int = 0
    invented: int = 0
    wrong: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        return self.correct + self.compatible + self.missing + self.invented + self.wrong

    @computed_field  # type: ignore[prop-decorator]
    @property
    def accuracy(self) -> Accuracy:
        return Accuracy(correct=self.correct, total=self.total)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def compatible_accuracy(self) -> Accuracy:
        return Accuracy(correct=self.correct + self.compatible, total=self.total)

    def count(self, outcome: DateOutcome) -> int:
        value: int = getattr(self, outcome)
        return value

    def __add__(self, other: DateScores) -> DateScores:
        return DateScores(**{o: self.count(o) + other.count(o) for o in DATE_OUTCOMES})


class QuoteScores(BaseModel):
    exact: Counts = Field(default_factory=Counts)
    overlap: Counts = Field(default_factory=Counts)
    speaker: Accuracy = Field(default_factory=Accuracy)

    def __add__(self, other: QuoteScores) -> QuoteScores:
        return QuoteScores(
            exact=self.exact + other.exact,
            overlap=self.overlap + other.overlap,
            speaker=self.speaker + other.speaker,
        )


class EventScores(BaseModel):
    matched: Counts = Field(default_factory=Counts)
    event_type: Accuracy = Field(default_factory=Accuracy)
    date: DateScores = Field(default_factory=DateScores)

    def __add__(self, other: EventScores) -> EventScores:
        return EventScores(
            matched=self.matched + other.matched,
            event_type=self.event_type + other.event_type,
            date=self.date + other.date,
        )


class StanceScores(BaseModel):
    strict: Counts = Field(default_factory=Counts)
    holder_target: Counts = Field(default_factory=Counts)
    polarity: Accuracy = Field(default_factory=Accuracy)

    def __add__(self, other: StanceScores) -> StanceScores:
        return StanceScores(
            strict=self.strict + other.strict,
            holder_target=self.holder_target + other.holder_target,
            polarity=self.polarity + other.polarity,
        )


class Scores(BaseModel):
    quotes: QuoteScores = Field(default_factory=QuoteScores)
    events: EventScores = Field(default_factory=EventScores)
    stances: StanceScores = Field(default_factory=StanceScores)

    def __add__(self, other: Scores) -> Scores:
        return Scores(
            quotes=self.quotes + other.quotes,
            events=self.events + other.events,
            stances=self.stances + other.stances,
        )


class ArticleScores(Scores):
    """One gold article's scores; ``status`` is the result's status, or "missing" when there is none."""

    article_id: str
    status: Literal["ok", "error", "missing"]


class GroundingStats(BaseModel):
    """Span statuses of kept items plus rejected items, overall and per kind (event/quote/stance)."""

    counts: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(GROUNDING_STATUSES, 0))
    by_kind: dict[str, dict[str, int]] = Field(
        default_factory=lambda: {
            k: dict.fromkeys(GROUNDING_STATUSES, 0) for k in ("event", "quote", "stance")
        }
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @computed_field  # type: ignore[prop-decorator]
    @property
    def shares(self) -> dict[str, float | None]:
        total = self.total
        return {k: (v / total if total else None) for k, v in self.counts.items()}

    def add(self, kind: str, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        per_kind = self.by_kind.setdefault(kind, dict.fromkeys(GROUNDING_STATUSES, 0))
        per_kind[status] = per_kind.get(status, 0) + 1


class EvalReport(BaseModel):
    """Everything ``extractor eval`` reports; ``model_dump_json()`` is the JSON output."""

    results: str | None = None
    gold: str | None = None
    thresholds: dict[str, float] = Field(
        default_factory=lambda: {
            "quote_iou": QUOTE_IOU,
            "evidence_overlap": EVIDENCE_OVERLAP,
            "evidence_min_share": EVIDENCE_MIN_SHARE,
            "target_jaccard": TARGET_JACCARD,
        }
    )
    totals: Scores = Field(default_factory=Scores)
    articles: list[ArticleScores] = Field(default_factory=list)
    unscored: list[str] = Field(default_factory=list, description="result article_ids without gold")
    missing: list[str] = Field(default_factory=list, description="gold article_ids without a result")
    errors: list[str] = Field(default_factory=list, description="gold article_ids whose result is an error")
    warnings: list[str] = Field(default_factory=list)
    grounding: GroundingStats = Field(default_factory=GroundingStats)


# --------------------------------------------------------------------------- matching

Interval = tuple[int, int]


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
        if shorter and overlap / shorter >= EVIDENCE_OVERLAP and overlap / longer >= EVIDENCE_MIN_SHARE:
            return True
    return False


def _match(
    n_gold: int,
    n_pred: int,
    score: Callable[[int, int], float | None],
    agreement: Callable[[int, int], tuple[float, ...]],
) -> list[tuple[int, int]]:
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


def _counts(pairs: Sequence[tuple[int, int]], n_gold: int, n_pred: int) -> Counts:
    return Counts(tp=len(pairs), fp=n_pred - len(pairs), fn=n_gold - len(pairs))


def _span(item: _GoldItem) -> Interval:
    return (item.start, item.end)


def _score_quotes(gold: Sequence[GoldQuote], pred: Sequence[GroundedQuote], text: str | None) -> QuoteScores:
    places = [_placements(q.span, text) for q in pred]

    def said_by(gi: int, pi: int) -> bool:
        """An unattributed prediction matches only an unattributed gold quote."""
        g, p = gold[gi].speaker, pred[pi].speaker
        return g is None and p is None if g is None or p is None else names_match(g, p)

    def speaker(gi: int, pi: int) -> tuple[float, ...]:
        return (float(said_by(gi, pi)),)

    def exact(gi: int, pi: int) -> float | None:
        return 1.0 if any(p.extent == _span(gold[gi]) for p in places[pi]) else None

    def overlap(gi: int, pi: int) -> float | None:
        value = _iou(places[pi], _span(gold[gi]))
        return value if value >= QUOTE_IOU else None

    exact_pairs = _match(len(gold), len(pred), exact, speaker)
    overlap_pairs = _match(len(gold), len(pred), overlap, speaker)
    correct = sum(said_by(gi, pi) for gi, pi in overlap_pairs)
    return QuoteScores(
        exact=_counts(exact_pairs, len(gold), len(pred)),
        overlap=_counts(overlap_pairs, len(gold), len(pred)),
        speaker=Accuracy(correct=correct, total=len(overlap_pairs)),
    )


def _score_events(gold: Sequence[GoldEvent], pred: Sequence[GroundedEvent], text: str | None) -> EventScores:
    places = [_placements(e.span, text) for e in pred]

    def score(gi: int, pi: int) -> float | None:
        if not _evidence_overlaps(places[pi], _span(gold[gi])):
            return None
        return _iou(places[pi], _span(gold[gi]))

    def date(gi: int, pi: int) -> DateOutcome:
        g, p = gold[gi], pred[pi]
        return classify_date(p.date, g.date, p.date_text, g.date_text)

    def agreement(gi: int, pi: int) -> tuple[float, ...]:
        return (float(gold[gi].event_type == pred[pi].event_type), float(date(gi, pi) == "correct"))

    pairs = _match(len(gold), len(pred), score, agreement)
    dates: Counter[str] = Counter(date(gi, pi) for gi, pi in pairs)
    return EventScores(
        matched=_counts(pairs, len(gold), len(pred)),
        event_type=Accuracy(
            correct=sum(gold[gi].event_type == pred[pi].event_type for gi, pi in pairs), total=len(pairs)
        ),
        date=DateScores(**dates),
    )


def _score_stances(
    gold: Sequence[GoldStance], pred: Sequence[GroundedStance], text: str | None
) -> StanceScores:
    places = [_placements(s.span, text) for s in pred]

    def holder_target(gi: int, pi: int) -> float | None:
        g, p = gold[gi], pred[pi]
        if not names_match(g.holder, p.holder):
            return None
        similarity = target_similarity(g.target, p.target)
        return similarity if similarity >= TARGET_JACCARD else None

    def strict(gi: int, pi: int) -> float | None:
        return holder_target(gi, pi) if gold[gi].polarity == pred[pi].polarity else None

    def evidence(gi: int, pi: int) -> tuple[float, ...]:
        return (_iou(places[pi], _span(gold[gi])),)

    def polarity_then_evidence(gi: int, pi: int) -> tuple[float, ...]:
        return (float(gold[gi].polarity == pred[pi].polarity), *evidence(gi, pi))

    strict_pairs = _match(len(gold), len(pred), strict, evidence)
    loose_pairs = _match(len(gold), len(pred), holder_target, polarity_then_evidence)
    return StanceScores(
        strict=_counts(strict_pairs, len(gold), len(pred)),
        holder_target=_counts(loose_pairs, len(gold), len(pred)),
        polarity=Accuracy(
            correct=sum(gold[gi].polarity == pred[pi].polarity for gi, pi in loose_pairs),
            total=len(loose_pairs),
        ),
    )


def _score_article(gold: GoldArticle, result: ArticleResult | None, text: str | None) -> ArticleScores:
    predicted = result if result is not None and result.status == "ok" else None
    return ArticleScores(
        article_id=gold.article_id,
        status="missing" if result is None else result.status,
        quotes=_score_quotes(gold.quotes, predicted.quotes if predicted else [], text),
        events=_score_events(gold.events, predicted.events if predicted else [], text),
        stances=_score_stances(gold.stances, predicted.stances if predicted else [], text),
    )


def _grounding(results: Iterable[ArticleResult]) -> GroundingStats:
    stats = GroundingStats()
    for result in results:
        if result.status != "ok":
            continue
        kept: tuple[tuple[str, Sequence[GroundedEvent | GroundedQuote | GroundedStance]], ...] = (
            ("event", result.events),
            ("quote", result.quotes),
            ("stance", result.stances),
        )
        for kind, items in kept:
            for item in items:
                stats.add(kind, item.span.status)
        for rejected in result.rejected:
            stats.add(rejected.kind, "rejected")
    return stats


def evaluate(
    results: Iterable[ArticleResult],
    gold: Mapping[str, GoldArticle],
    *,
    texts: Mapping[str, str] | None = None,
) -> EvalReport:
    """Score ``results`` against ``gold``; ``texts`` (sha256 -> article text) is optional, see module doc."""
    latest: dict[str, ArticleResult] = {}
    warnings: list[str] = []
    for result in results:
        if result.article_id in latest:
            warnings.append(f"{result.article_id}: more than one result; the last one is scored")
        latest[result.article_id] = result
    texts = texts or {}
    rows: list[ArticleScores] = []
    for article_id in sorted(gold):
        gold_article = gold[article_id]
        found = latest.get(article_id)
        if found is not None and found.sha256 != gold_article.sha256:
            warnings.append(
                f"{article_id}: result sha256 differs from the gold sha256; offsets may not agree"
            )
        gold_text = texts.get(gold_article.sha256)
        if gold_text is not None:
            warnings.extend(f"{article_id}: gold {p}" for p in check_gold_offsets(gold_article, gold_text))
        text = texts.get(found.sha256) if found is not None else None
        rows.append(_score_article(gold_article, found, text))
    totals = Scores()
    for row in rows:
        totals = totals + row
    return EvalReport(
        totals=totals,
        articles=rows,
        unscored=sorted(set(latest) - set(gold)),
        missing=[r.article_id for r in rows if r.status == "missing"],
        errors=[r.article_id for r in rows if r.status == "error"],
        warnings=warnings,
        grounding=_grounding(latest.values()),
    )


def evaluate_path(results: Path | str, gold_dir: Path | str) -> EvalReport:
    """Score a run folder (or a results.jsonl path) against the gold files in ``gold_dir``."""
    gold = load_gold(gold_dir)
    path = Path(results)
    run_dir = path if path.is_dir() else path.parent
    loaded = list(iter_results(path))
    texts: dict[str, str] = {}
    for sha256 in {r.sha256 for r in loaded} | {g.sha256 for g in gold.values()}:
        try:
            text = read_article_text(run_dir, sha256)
        except StoreError:
            continue
        if text is not None:
            texts[sha256] = text
    report = evaluate(loaded, gold, texts=texts)
    report.results = str(path)
    report.gold = str(gold_dir)
    return report


# --------------------------------------------------------------------------- rendering

Metric = tuple[str, float | None, str]


def _prf_rows(name: str, counts: Counts) -> list[Metric]:
    return [
        (f"{name} P", counts.precision, f"{counts.tp}/{counts.tp + counts.fp}"),
        (f"{name} R", counts.recall, f"{counts.tp}/{counts.tp + counts.fn}"),
        (f"{name} F1", counts.f1, ""),
    ]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _accuracy_row(name: str, accuracy: Accuracy) -> Metric:
    return (name, accuracy.value, f"{accuracy.correct}/{accuracy.total}")


def _metric_sections(report: EvalReport) -> list[list[Metric]]:
    t = report.totals
    grounding = report.grounding
    return [
        [
            *_prf_rows("quotes exact", t.quotes.exact),
            *_prf_rows("quotes overlap", t.quotes.overlap),
            _accuracy_row("quotes speaker acc", t.quotes.speaker),
        ],
        [
            *_prf_rows("events", t.events.matched),
            _accuracy_row("events type acc", t.events.event_type),
            _accuracy_row("events date acc", t.events.date.accuracy),
            _accuracy_row("events date compatible acc", t.events.date.compatible_accuracy),
            *(
                (
                    f"events dates {o}",
                    _share(t.events.date.count(o), t.events.date.total),
                    f"{t.events.date.count(o)}/{t.events.date.total}",
                )
                for o in DATE_OUTCOMES
            ),
        ],
        [
            *_prf_rows("stances", t.stances.strict),
            *_prf_rows("stances holder+target", t.stances.holder_target),
            _accuracy_row("stances polarity acc", t.stances.polarity),
        ],
        [
            (f"grounding {status}", grounding.shares[status], f"{grounding.counts[status]}/{grounding.total}")
            for status in GROUNDING_STATUSES
        ],
    ]


def flat_metrics(report: EvalReport) -> dict[str, float | None]:
    """Every headline metric of ``report`` by display name (the rows of ``render_table``)."""
    return {name: value for section in _metric_sections(report) for name, value, _ in section}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _cell(value: float | None, detail: str) -> str:
    return f"{_fmt(value)} [dim]{detail}[/dim]" if detail else _fmt(value)


def _summary(report: EvalReport, label: str | None) -> str:
    prefix = f"{label}: " if label else ""
    where = f" ({report.results})" if report.results else ""
    return (
        f"{prefix}{len(report.articles)} gold articles{where}, {len(report.unscored)} unscored, "
        f"{len(report.missing)} missing, {len(report.errors)} errors, {len(report.warnings)} warnings"
    )


def summary_lines(
    report: EvalReport, other: EvalReport | None = None, labels: tuple[str, str] = ("A", "B")
) -> list[str]:
    """What was scored: one line per run (gold articles, results file, unscored / missing / errors)."""
    if other is None:
        return [_summary(report, None)]
    return [_summary(report, labels[0]), _summary(other, labels[1])]


def render_table(
    report: EvalReport,
    other: EvalReport | None = None,
    labels: tuple[str, str] = ("A", "B"),
    *,
    caption: bool = True,
) -> Table:
    """Micro-averaged totals as a rich table; with ``other``, both runs side by side and B − A.
    ``caption``: put ``summary_lines`` under the table."""
    table = Table(title="Evaluation against gold")
    table.add_column("metric")
    table.add_column(labels[0] if other is not None else "value", justify="right")
    if caption:
        table.caption = "\n".join(summary_lines(report, other, labels))
    sections = _metric_sections(report)
    if other is None:
        for i, section in enumerate(sections):
            if i:
                table.add_section()
            for name, value, detail in section:
                table.add_row(name, _cell(value, detail))
        return table
    table.add_column(labels[1], justify="right")
    table.add_column(f"Δ ({labels[1]} − {labels[0]})", justify="right")
    for i, (mine, theirs) in enumerate(zip(sections, _metric_sections(other), strict=True)):
        if i:
            table.add_section()
        for (name, a, detail_a), (_, b, detail_b) in zip(mine, theirs, strict=True):
            delta = "n/a" if a is None or b is None else f"{b - a:+.3f}"
            table.add_row(name, _cell(a, detail_a), _cell(b, detail_b), delta)
    return table


def render_articles(report: EvalReport) -> Table:
    """One row per gold article, narrow enough for 80 columns: F1 of quotes (exact), events and stances
    (strict); accuracy of speakers, event types, dates and polarities; invented dates (a count). An
    article whose result is missing or an error says so after its id."""
    table = Table(
        title="Per article",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        caption="quotes, events, stances: F1; spkr, type, date, pol: accuracy; inv: invented dates",
    )
    columns = ("article", "quotes", "spkr", "events", "type", "date", "inv", "stances", "pol")
    for i, name in enumerate(columns):
        table.add_column(name, justify="right" if i else "left", no_wrap=True)
    for row in report.articles:
        table.add_row(
            row.article_id if row.status == "ok" else f"{row.article_id} ({row.status})",
            _fmt(row.quotes.exact.f1),
            _fmt(row.quotes.speaker.value),
            _fmt(row.events.matched.f1),
            _fmt(row.events.event_type.value),
            _fmt(row.events.date.accuracy.value),
            str(row.events.date.invented),
            _fmt(row.stances.strict.f1),
            _fmt(row.stances.polarity.value),
        )
    return table
