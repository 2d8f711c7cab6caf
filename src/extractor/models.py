"""Data models: the article that goes in, what the model emits, and what the project stores.

Offsets everywhere are Python ``str`` indices (code points), end-exclusive, into ``Article.text`` — the
article's text after decoding as UTF-8, removing a leading BOM and turning ``\\r\\n`` (and lone ``\\r``)
into ``\\n``. Nothing else is changed.

What the model emits (``ArticleExtraction`` and its items) has no defaults: optional fields are
``T | None`` and required, so the same JSON Schema works with OpenAI strict structured outputs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from extractor.errors import redact

__all__ = [
    "EVENT_TYPES",
    "GROUNDING_ERROR_PREFIX",
    "Article",
    "ArticleExtraction",
    "ArticleResult",
    "ErrorInfo",
    "Event",
    "EventType",
    "GroundedEvent",
    "GroundedQuote",
    "GroundedStance",
    "LoadError",
    "Polarity",
    "Quote",
    "Rejected",
    "Span",
    "SpanStatus",
    "Stance",
    "Usage",
    "text_sha256",
]

EventType = Literal[
    "AGREE",
    "CONSULT",
    "SUPPORT",
    "CONCEDE",
    "COOPERATE",
    "AID",
    "RETREAT",
    "REQUEST",
    "ACCUSE",
    "REJECT",
    "THREATEN",
    "PROTEST",
    "SANCTION",
    "MOBILIZE",
    "COERCE",
    "ASSAULT",
    "OTHER",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
Polarity = Literal["support", "oppose", "neutral", "mixed"]
SpanStatus = Literal["exact", "normalized", "elided", "not_found"]

# Marks a validation error raised because items are not in the article (vs. a schema error).
GROUNDING_ERROR_PREFIX = "NOT IN ARTICLE:"

ISO_DATE_PATTERN = r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$"


def text_sha256(text: str) -> str:
    """Hex sha256 of the UTF-8 encoding of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- input


class Article(BaseModel):
    """One article. ``text`` is normalised as the module docstring says; all offsets refer to it."""

    model_config = ConfigDict(frozen=True)

    id: str
    text: str
    title: str | None = None
    url: str | None = None
    published: dt.date | None = None
    source: str = "<memory>"
    sha256: str = ""

    def model_post_init(self, __context: Any) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", text_sha256(self.text))

    @classmethod
    def from_text(cls, text: str, id: str | None = None, **fields: Any) -> Article:
        """Build an article from raw text, normalising line endings and a BOM like the loader does."""
        text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
        sha = text_sha256(text)
        return cls(id=id or sha[:16], text=text, sha256=sha, **fields)


class LoadError(BaseModel):
    """An input that could not become an Article. Never raised: yielded in place of the article."""

    model_config = ConfigDict(frozen=True)

    path: str
    line: int | None = None
    reason: str

    @property
    def source(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


# --------------------------------------------------------------------------- what the model emits

_STRICT = ConfigDict(extra="forbid")


class Event(BaseModel):
    """Something that happened, as the article reports it."""

    model_config = _STRICT

    summary: str = Field(description="One sentence saying what happened.")
    event_type: EventType = Field(description="PLOVER category; OTHER when none fits.")
    date: Annotated[str, Field(pattern=ISO_DATE_PATTERN)] | None = Field(
        description="ISO 8601 YYYY-MM-DD, YYYY-MM or YYYY, no more precise than the text allows; else null."
    )
    date_text: str | None = Field(description="The article's own words for the date; null if none.")
    location: str | None = Field(description="Where it happened, as written; null if not stated.")
    actors: list[str] = Field(description="Who took part, names as written in the article.")
    evidence: str = Field(description="A verbatim sentence or clause of the article that reports the event.")


class Quote(BaseModel):
    """A direct quote: the words inside the quotation marks, exactly as printed."""

    model_config = _STRICT

    text: str = Field(description="The verbatim words inside the quotation marks, without the marks.")
    speaker: str = Field(description="Who said it, as named in the article (e.g. 'the Italian government').")
    cue: str | None = Field(description="The attribution phrase (e.g. 'the statement reads'), or null.")


class Stance(BaseModel):
    """A position an actor takes on a proposition."""

    model_config = _STRICT

    holder: str = Field(description="Who holds the position, as named in the article.")
    target: str = Field(description="The proposition, short, e.g. 'deploying Italian troops to Ukraine'.")
    polarity: Polarity
    evidence: str = Field(description="A verbatim sentence or clause of the article showing the stance.")


class ArticleExtraction(BaseModel):
    """Everything the model extracts from one article in one call. Each list may be empty."""

    model_config = _STRICT

    events: list[Event]
    quotes: list[Quote]
    stances: list[Stance]

    @model_validator(mode="wrap")
    @classmethod
    def _capped(
        cls, data: Any, handler: ModelWrapValidatorHandler[ArticleExtraction], info: ValidationInfo
    ) -> ArticleExtraction:
        """In a re-ask (``max_listed`` in the context), list at most ``max_listed`` schema errors so the
        error sent back to the model stays small however broken the answer was."""
        try:
            return handler(data)
        except ValidationError as exc:
            context = info.context if isinstance(info.context, dict) else {}
            listed = int(context.get("max_listed", 0))
            errors = exc.errors(include_url=False, include_input=False)
            if not listed or len(errors) <= listed:
                raise
            lines = [f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}"[:200] for e in errors[:listed]]
            raise ValueError(
                f"{len(errors)} schema errors; the first {listed}:\n"
                + "\n".join(lines)
                + f"\n(and {len(errors) - listed} more)"
            ) from None

    @model_validator(mode="after")
    def _grounded(self, info: ValidationInfo) -> ArticleExtraction:
        """With a ``grounding_check`` in the validation context, fail (so the model is re-asked) when
        items are not verbatim in the article. The check returns one line per failure."""
        context = info.context if isinstance(info.context, dict) else {}
        check = context.get("grounding_check")
        if check is None:
            return self
        failures: list[str] = check(self)
        if failures:
            listed = int(context.get("max_listed", 10))
            more = f"\n(and {len(failures) - listed} more)" if len(failures) > listed else ""
            raise ValueError(
                f"{GROUNDING_ERROR_PREFIX} these items are not verbatim in the article. Copy quote text "
                "and evidence character for character from the article, use ... where you skip words, "
                "or leave the item out:\n" + "\n".join(f[:200] for f in failures[:listed]) + more
            )
        return self


# --------------------------------------------------------------------------- what the project stores


class Span(BaseModel):
    """Where an item's text/evidence sits in ``Article.text`` (see extractor.grounding)."""

    status: SpanStatus
    start: int | None
    end: int | None
    pieces: list[tuple[int, int]] | None = None
    occurrences: int = 0


class GroundedEvent(Event):
    model_config = ConfigDict(extra="ignore")
    span: Span


class GroundedQuote(Quote):
    model_config = ConfigDict(extra="ignore")
    span: Span


class GroundedStance(Stance):
    model_config = ConfigDict(extra="ignore")
    span: Span


class Rejected(BaseModel):
    """An item the model returned whose text or evidence is not in the article."""

    kind: Literal["event", "quote", "stance"]
    field: Literal["text", "evidence"]
    item: dict[str, Any]
    reason: str


class Usage(BaseModel):
    """Tokens summed over every attempt (re-asks and retries included) and the HTTP calls made."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    http_calls: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            http_calls=self.http_calls + other.http_calls,
        )


def _scrubbed(message: str) -> str:
    return redact(message)


class ErrorInfo(BaseModel):
    type: str
    #: scrubbed of anything shaped like a credential (``extractor.errors.redact``) when made and when read
    #: back, so an older results file cannot show one either; the pipeline also takes out the configured key
    message: Annotated[str, AfterValidator(_scrubbed)]


class ArticleResult(BaseModel):
    """One line of results.jsonl: an article's grounded extraction, or its error."""

    article_id: str
    source: str
    sha256: str
    status: Literal["ok", "error"]
    error: ErrorInfo | None = None
    title: str | None = None
    published: dt.date | None = None
    events: list[GroundedEvent] = Field(default_factory=list)
    quotes: list[GroundedQuote] = Field(default_factory=list)
    stances: list[GroundedStance] = Field(default_factory=list)
    rejected: list[Rejected] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    cache_hit: bool = False
    model: str | None = None  # the configured model name (part of the incremental key)
    served_model: str | None = None  # the name the endpoint reported (e.g. a dated snapshot)
    prompt_version: str | None = None
    latency_s: float = 0.0
    duplicate_of: str | None = None
    chunks: int = 1
