"""The gold format (fixtures/gold/<article_id>.json): schema, loading with clear errors, offset checks."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from extractor.errors import ExtractorError
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


class GoldError(ExtractorError):
    """A gold file or folder is missing or malformed."""


# --------------------------------------------------------------------------- gold format


class _GoldItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    note: str | None = None
    _spanned_field: ClassVar[str] = "evidence"

    @property
    def spanned(self) -> str:
        """The text that ``start``/``end`` locate (the field ``_spanned_field`` names)."""
        value: str = getattr(self, self._spanned_field)
        return value

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
    _spanned_field: ClassVar[str] = "text"


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


class GoldStance(_GoldItem):
    holder: str
    target: str
    polarity: Polarity
    evidence: str


class GoldArticle(BaseModel):
    """One fixtures/gold/<article_id>.json file (format in fixtures/README.md)."""

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
