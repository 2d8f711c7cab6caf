"""Score models of ``extractor eval``: every figure is a ``Figure`` declared once, with its label.

A figure is a pydantic model whose fields add up (``a + b`` sums every field, so totals are
micro-averaged) and which says how it reads in the table (``rows``). Three kinds cover every score:
``Counts`` (tp/fp/fn: precision, recall, F1), ``Accuracy`` (correct of total) and ``Outcomes`` (named
counts of one whole, each shown as a share of it). A group of figures (``QuoteScores``, ...) declares each
with ``figure(kind, "label")``: adding a score is one such line, and the total, the JSON and the table
follow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal, Self, TypeVar, cast

from pydantic import BaseModel, Field, computed_field

from extractor.models import Summable

QUOTE_IOU = 0.5
EVIDENCE_OVERLAP = 0.5
EVIDENCE_MIN_SHARE = 0.25
TARGET_JACCARD = 0.5

GROUNDING_STATUSES: tuple[str, ...] = ("exact", "normalized", "elided", "not_found", "rejected")
DateOutcome = Literal["correct", "compatible", "missing", "invented", "wrong"]
DATE_OUTCOMES: tuple[DateOutcome, ...] = ("correct", "compatible", "missing", "invented", "wrong")

# One line of the table: (label, value or None for n/a, detail such as "3/4").
Metric = tuple[str, float | None, str]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


class Figure(Summable):
    """A summable score (``a + b`` adds every field, numbers and nested figures alike); ``rows`` are its
    lines in the table -- by default the rows of its nested figures, each under its declared label."""

    def rows(self, label: str = "") -> list[Metric]:
        out: list[Metric] = []
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, Figure):
                out.extend(value.rows(info.title or name))
        return out


F = TypeVar("F", bound=Figure)
T = TypeVar("T")


def figure(kind: Callable[[], F], label: str) -> Any:
    """Declare a nested figure of a group: ``exact: Counts = figure(Counts, "quotes exact")``."""
    return Field(default_factory=kind, title=label)


def derived(method: Callable[[Any], T]) -> T:
    """A read-only figure worked out from the fields, written to the JSON too (a pydantic computed field)."""
    return cast(T, computed_field(property(method)))


def _ratio(numerator: int, denominator: int, *, other_side_empty: bool) -> float:
    if denominator:
        return numerator / denominator
    return 1.0 if other_side_empty else 0.0


class Counts(Figure):
    """True/false positives and false negatives, with precision, recall and F1."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @derived
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp, other_side_empty=self.fn == 0)

    @derived
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn, other_side_empty=self.fp == 0)

    @derived
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def rows(self, label: str = "") -> list[Metric]:
        return [
            (f"{label} P", self.precision, f"{self.tp}/{self.tp + self.fp}"),
            (f"{label} R", self.recall, f"{self.tp}/{self.tp + self.fn}"),
            (f"{label} F1", self.f1, ""),
        ]


class Accuracy(Figure):
    """``correct`` of ``total`` matched items; ``value`` is None when nothing was matched."""

    correct: int = 0
    total: int = 0

    @derived
    def value(self) -> float | None:
        return _share(self.correct, self.total)

    @classmethod
    def over(cls, pairs: Sequence[tuple[int, int]], agrees: Callable[[int, int], bool]) -> Self:
        """The share of matched (gold, prediction) index ``pairs`` on which ``agrees`` holds."""
        return cls(correct=sum(agrees(gi, pi) for gi, pi in pairs), total=len(pairs))

    def rows(self, label: str = "") -> list[Metric]:
        return [(label, self.value, f"{self.correct}/{self.total}")]


class Outcomes(Figure):
    """Named counts of one whole (each item has exactly one outcome); each row is a share of the whole.
    Declare an outcome as an ``int`` field, with ``Field(0, title=...)`` for a label other than its name."""

    @derived
    def total(self) -> int:
        return sum(int(getattr(self, name)) for name in type(self).model_fields)

    def count(self, outcome: str) -> int:
        value: int = getattr(self, outcome)
        return value

    def rows(self, label: str = "") -> list[Metric]:
        return [
            (
                f"{label} {info.title or name}",
                _share(self.count(name), self.total),
                f"{self.count(name)}/{self.total}",
            )
            for name, info in type(self).model_fields.items()
        ]


class DateScores(Outcomes):
    """Outcomes of ``classify_date`` over matched events."""

    correct: int = 0
    compatible: int = 0
    missing: int = 0
    invented: int = 0
    wrong: int = 0

    @derived
    def accuracy(self) -> Accuracy:
        return Accuracy(correct=self.correct, total=self.total)

    @derived
    def compatible_accuracy(self) -> Accuracy:
        return Accuracy(correct=self.correct + self.compatible, total=self.total)

    def rows(self, label: str = "") -> list[Metric]:
        # "events date acc", "events date compatible acc", then "events dates correct", ...
        return [
            *self.accuracy.rows(f"{label} acc"),
            *self.compatible_accuracy.rows(f"{label} compatible acc"),
            *super().rows(f"{label}s"),
        ]


class QuotePredictions(Outcomes):
    """What became of each predicted quote in the overlap matching (see ``match.quote_outcome``)."""

    matched: int = 0
    not_a_quote: int = Field(0, title="not a direct quote")
    wrong_span: int = Field(0, title="wrong span")
    duplicate: int = 0
    not_in_gold: int = Field(0, title="not in gold")
    unchecked: int = Field(0, title="unchecked (article text unknown)")


class QuoteScores(Figure):
    exact: Counts = figure(Counts, "quotes exact")
    overlap: Counts = figure(Counts, "quotes overlap")
    # Of the overlap-matched quotes: the same person (``matching.same_person``) / the same name as written.
    speaker: Accuracy = figure(Accuracy, "quotes speaker same-person acc")
    speaker_exact: Accuracy = figure(Accuracy, "quotes speaker exact-name acc")
    predicted: QuotePredictions = figure(QuotePredictions, "quotes predicted:")


class EventScores(Figure):
    matched: Counts = figure(Counts, "events")
    event_type: Accuracy = figure(Accuracy, "events type acc")
    date: DateScores = figure(DateScores, "events date")


class StanceScores(Figure):
    strict: Counts = figure(Counts, "stances")
    holder_target: Counts = figure(Counts, "stances holder+target")
    polarity: Accuracy = figure(Accuracy, "stances polarity acc")


class Scores(Figure):
    """One table section per kind of item."""

    quotes: QuoteScores = Field(default_factory=QuoteScores)
    events: EventScores = Field(default_factory=EventScores)
    stances: StanceScores = Field(default_factory=StanceScores)

    def sections(self) -> list[list[Metric]]:
        return [self.quotes.rows(), self.events.rows(), self.stances.rows()]


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

    @derived
    def total(self) -> int:
        return sum(self.counts.values())

    @derived
    def shares(self) -> dict[str, float | None]:
        total = self.total
        return {k: (v / total if total else None) for k, v in self.counts.items()}

    def add(self, kind: str, status: str) -> None:
        self.counts[status] = self.counts.get(status, 0) + 1
        per_kind = self.by_kind.setdefault(kind, dict.fromkeys(GROUNDING_STATUSES, 0))
        per_kind[status] = per_kind.get(status, 0) + 1

    def rows(self) -> list[Metric]:
        return [
            (f"grounding {status}", self.shares[status], f"{self.counts[status]}/{self.total}")
            for status in GROUNDING_STATUSES
        ]


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


def metric_sections(report: EvalReport) -> list[list[Metric]]:
    """The headline figures of ``report`` in table order: quotes, events, stances, grounding."""
    return [*report.totals.sections(), report.grounding.rows()]


def flat_metrics(report: EvalReport) -> dict[str, float | None]:
    """Every headline metric of ``report`` by display name (the rows of ``render_table``)."""
    return {name: value for section in metric_sections(report) for name, value, _ in section}
