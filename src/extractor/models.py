"""Data models: the article that goes in, what the model emits, and what the project stores.

Offsets everywhere are Python ``str`` indices (code points), end-exclusive, into ``Article.text`` — the
article's text after decoding as UTF-8, removing a leading BOM and turning ``\\r\\n`` (and lone ``\\r``)
into ``\\n``. Nothing else is changed.

What the model emits (``ArticleExtraction`` and its items) has no defaults: optional fields are
``T | None`` and required, so the same JSON Schema works with OpenAI strict structured outputs. Answers
are read leniently all the same (``ArticleExtraction`` validation): harmless drift is repaired first
(``repair_item``), then each item is validated on its own; an item that still fails is kept aside as a
schema reject (``ArticleExtraction.schema_rejects``) and every valid item is kept. Only an answer that is
not an object with the three lists fails as a whole.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Self, get_args, get_origin

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    model_validator,
)

from extractor.errors import redact

__all__ = [
    "EVENT_TYPES",
    "GROUNDING_ERROR_PREFIX",
    "SCHEMA_ERROR_PREFIX",
    "Article",
    "ArticleExtraction",
    "ArticleResult",
    "ChunkError",
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
    "Summable",
    "Usage",
    "describe_validation_error",
    "repair_item",
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

# Mark the validation errors raised (in a re-ask) because some items are not in the article, or some
# items do not fit the schema; an answer failing only these is still usable (its good items are kept).
GROUNDING_ERROR_PREFIX = "NOT IN ARTICLE:"
SCHEMA_ERROR_PREFIX = "INVALID ITEMS:"

ISO_DATE_PATTERN = r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$"


def text_sha256(text: str) -> str:
    """Hex sha256 of the UTF-8 encoding of ``text``."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _calendar_date(value: str) -> str:
    """A full ISO date must exist (the pattern alone lets 2025-02-30 through)."""
    if len(value) == 10:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value} is not a date in the calendar") from None
    return value


def _path(loc: tuple[int | str, ...]) -> str:
    return ".".join(map(str, loc)) or "(root)"


def _msg(error: Any) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def describe_validation_error(exc: ValidationError, max_listed: int = 10, root: str = "(root)") -> str:
    """One line naming each failing field path and pydantic's message, at most ``max_listed`` of them
    ("stances: Field required; ... (and 3 more)"): what a user reads, never "1 validation error for
    ArticleExtraction". ``root`` names an error of the whole value."""
    errors = exc.errors(include_url=False, include_input=False)
    listed = max(1, max_listed)
    parts = [f"{_path(e['loc']) if e['loc'] else root}: {_msg(e)}"[:200] for e in errors[:listed]]
    more = f" (and {len(errors) - listed} more)" if len(errors) > listed else ""
    return "; ".join(" ".join(p.split()) for p in parts) + more


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
    date: Annotated[str, Field(pattern=ISO_DATE_PATTERN), AfterValidator(_calendar_date)] | None = Field(
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
    speaker: str | None = Field(
        description="Who said it, as named in the article (e.g. 'the Italian government'); null if the "
        "article does not say."
    )
    cue: str | None = Field(description="The attribution phrase (e.g. 'the statement reads'), or null.")


class Stance(BaseModel):
    """A position an actor takes on a proposition."""

    model_config = _STRICT

    holder: str = Field(description="Who holds the position, as named in the article.")
    target: str = Field(description="The proposition, short, e.g. 'deploying Italian troops to Ukraine'.")
    polarity: Polarity
    evidence: str = Field(description="A verbatim sentence or clause of the article showing the stance.")


_MISSING = object()
_LISTS: dict[str, tuple[str, type[BaseModel]]] = {
    "events": ("event", Event),
    "quotes": ("quote", Quote),
    "stances": ("stance", Stance),
}


_STRIPPED = frozenset({"date"})  # a format-checked value: surrounding whitespace is never meant


def _repair_rules(cls: type[BaseModel]) -> tuple[tuple[str, bool, dict[str, str] | None, bool], ...]:
    """Per field of an item model: its name, whether it is nullable, its enum values (casefolded ->
    canonical) if it is an enum, and whether surrounding whitespace is dropped."""
    rules = []
    for name, info in cls.model_fields.items():
        nullable = type(None) in get_args(info.annotation)
        enum = None
        if get_origin(info.annotation) is Literal:
            enum = {str(v).casefold(): str(v) for v in get_args(info.annotation)}
        rules.append((name, nullable, enum, name in _STRIPPED))
    return tuple(rules)


_RULES = {cls: _repair_rules(cls) for _, cls in _LISTS.values()}
_NULLS = frozenset({"", "null"})


def repair_item(cls: type[BaseModel], item: Any) -> Any:
    """``item`` (an answer's raw dict for an Event, Quote or Stance) with harmless drift repaired: keys the
    schema does not have dropped; a nullable key missing, or ``""`` / ``"null"``, as null; an enum value
    matched ignoring case and surrounding whitespace (``" reject"`` -> ``"REJECT"``); surrounding whitespace
    of a date dropped. Anything else is left for validation to reject. Not a dict: returned unchanged."""
    if not isinstance(item, Mapping):
        return item
    out: dict[str, Any] = {}
    for name, nullable, enum, strip in _RULES[cls]:
        value = item.get(name, _MISSING)
        if value is _MISSING:
            if nullable:
                out[name] = None
            continue
        if value.__class__ is str:
            if nullable and value.strip().casefold() in _NULLS:
                value = None
            elif enum is not None:
                value = enum.get(value.strip().casefold(), value)
            elif strip:
                value = value.strip()
        out[name] = value
    return out


def _is_json(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_is_json(v) for v in value)
    return value is None or isinstance(value, str | int | float | bool)


def _label(item: Any) -> str:
    """A short handle on a raw item for a re-ask line: its text or evidence."""
    if isinstance(item, Mapping):
        for key in ("text", "evidence", "summary"):
            if isinstance(item.get(key), str):
                return f" ({json.dumps(item[key][:60], ensure_ascii=False)})"
    return ""


def _schema_reject(kind: str, raw: Any, exc: ValidationError) -> Rejected:
    """The reject of an item that failed validation: its first failing field, every failure (capped)."""
    loc = exc.errors(include_url=False)[0]["loc"]
    item = dict(raw) if isinstance(raw, Mapping) else {"value": raw}
    reason = SCHEMA_REASON + describe_validation_error(exc, root="(item)")
    return Rejected.model_validate(
        {"kind": kind, "field": _path(loc) if loc else "(item)", "item": item, "reason": reason}
    )


def _reask_line(exc: ValidationError) -> str:
    """An item's failures for the model: path, message and (when there is one) the value it sent."""
    return "; ".join(
        f"{_path(e['loc']) if e['loc'] else 'item'}: {_msg(e)}"
        + ("" if e["type"] == "missing" else f" (got {json.dumps(e['input'], default=str)[:80]})")
        for e in exc.errors(include_url=False)[:3]
    )


class ArticleExtraction(BaseModel):
    """Everything the model extracts from one article in one call. Each list may be empty.

    Validation is per item (see the module docstring): items that fail after ``repair_item`` are not in the
    lists but in ``schema_rejects``; ``answer`` is the answer as received, so it can be validated again."""

    model_config = _STRICT

    events: list[Event]
    quotes: list[Quote]
    stances: list[Stance]

    _schema_rejects: list[Rejected] = PrivateAttr(default_factory=list)
    _answer: Mapping[str, Any] | None = PrivateAttr(default=None)

    @property
    def schema_rejects(self) -> list[Rejected]:
        """The answer's items that failed validation, each with its field path and pydantic's message."""
        return list(self._schema_rejects)

    @property
    def answer(self) -> dict[str, Any]:
        """The answer as the model sent it (JSON data; what the cache keeps), else this extraction's dump
        (when it was built from model instances)."""
        if self._answer is not None and _is_json(self._answer):
            return dict(self._answer)
        return self.model_dump(mode="json")

    @model_validator(mode="wrap")
    @classmethod
    def _per_item(
        cls, data: Any, handler: ModelWrapValidatorHandler[ArticleExtraction], info: ValidationInfo
    ) -> ArticleExtraction:
        """Repair, then validate (item by item once any item fails). With a ``grounding_check`` or
        ``reask_items`` in the validation context (a request that may be re-asked), fail with the items to
        fix, schema failures (``SCHEMA_ERROR_PREFIX``) and items not in the article
        (``GROUNDING_ERROR_PREFIX``), listing at most ``max_listed``."""
        if not isinstance(data, Mapping) or any(not isinstance(data.get(k), list) for k in _LISTS):
            if isinstance(data, Mapping):  # report only what is wrong at the top
                data = {k: ([] if isinstance(data.get(k), list) else data[k]) for k in _LISTS if k in data}
            return handler(data)
        repaired = {
            key: [repair_item(item_cls, raw) for raw in data[key]] for key, (_, item_cls) in _LISTS.items()
        }
        rejects: list[Rejected] = []
        failures: list[str] = []
        try:
            extraction = handler(repaired)  # the usual case: every item valid, validated in one go
        except ValidationError:
            kept: dict[str, list[Any]] = {}
            for key, (kind, item_cls) in _LISTS.items():
                kept[key] = []
                for i, (raw, item) in enumerate(zip(data[key], repaired[key], strict=True)):
                    try:
                        kept[key].append(item_cls.model_validate(item))
                    except ValidationError as exc:
                        rejects.append(_schema_reject(kind, raw, exc))
                        failures.append(f"- {key}.{i}{_label(raw)}: {_reask_line(exc)}")
            extraction = handler(kept)
        extraction._schema_rejects = rejects
        extraction._answer = data
        context = info.context if isinstance(info.context, Mapping) else {}
        check: Callable[[ArticleExtraction], list[str]] | None = context.get("grounding_check")
        ungrounded = check(extraction) if check is not None else []
        if not context.get("reask_items") and check is None:
            return extraction
        if failures or ungrounded:
            raise ValueError(_items_to_fix(failures, ungrounded, int(context.get("max_listed", 10))))
        return extraction


def _items_to_fix(schema: list[str], ungrounded: list[str], listed: int) -> str:
    """The re-ask text: schema failures first, then items not in the article, ``listed`` lines at most."""
    listed = max(1, listed)
    sections: list[str] = []
    budget = listed
    for lines, head in (
        (
            schema,
            f"{SCHEMA_ERROR_PREFIX} these items do not fit the schema. Fix the fields named (exact enum "
            "values, ISO dates that exist, null where the article does not say), or leave the item out:",
        ),
        (
            ungrounded,
            f"{GROUNDING_ERROR_PREFIX} these items are not verbatim in the article. Copy quote text and "
            "evidence character for character from the article, use ... where you skip words, or leave "
            "the item out:",
        ),
    ):
        if not lines:
            continue
        shown = lines[: max(budget, 1)]
        budget -= len(shown)
        more = f"\n(and {len(lines) - len(shown)} more)" if len(lines) > len(shown) else ""
        sections.append(head + "\n" + "\n".join(line[:200] for line in shown) + more)
    return "\n".join(sections)


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


SCHEMA_REASON = "schema: "
OVER_LIMIT_REASON = "over max_events"


class Rejected(BaseModel):
    """An item the model returned that is not kept: words of it are not in the article (``field``
    "text" / "evidence", or a quote's "cue" / an event's "date_text"; ``reason`` from the validator), it
    does not fit the schema even after repair (``field`` the failing field path, e.g. "date" or
    "actors.1"; ``reason`` "schema: <path>: <message>"), or it is an event over ``max_events`` (``reason``
    "over max_events (N)")."""

    kind: Literal["event", "quote", "stance"]
    field: str
    item: dict[str, Any]
    reason: str

    @property
    def not_in_article(self) -> bool:
        """Rejected because its ``field`` is not in the article (not for its schema or the event limit)."""
        return not self.reason.startswith((SCHEMA_REASON, OVER_LIMIT_REASON))


class Summable(BaseModel):
    """A record of counts that add up: ``a + b`` adds every field (numbers and nested records alike)."""

    def __add__(self, other: Self) -> Self:
        fields = type(self).model_fields
        return type(self)(**{name: getattr(self, name) + getattr(other, name) for name in fields})


class Usage(Summable):
    """What extracting this article spent: tokens summed over every attempt of every chunk (re-asks and
    retries included) and the HTTP calls made; all 0 when every chunk's answer came from the cache."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    http_calls: int = 0

    def cost(self, price: tuple[float, float] | None) -> float | None:
        """USD for these tokens at ``price`` (input, output per 1M tokens); None without a price."""
        if price is None:
            return None
        return (self.prompt_tokens * price[0] + self.completion_tokens * price[1]) / 1e6

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def add_cost(total: float | None, cost: float | None) -> float | None:
    """A running cost plus one more: unknown (None) once any part is unknown."""
    return None if total is None or cost is None else total + cost


def _scrubbed(message: str) -> str:
    return redact(message)


class ErrorInfo(BaseModel):
    type: str
    #: scrubbed of anything shaped like a credential (``extractor.errors.redact``) when made and when read
    #: back, so an older results file cannot show one either; the pipeline also takes out the configured key
    message: Annotated[str, AfterValidator(_scrubbed)]


class ChunkError(BaseModel):
    """A chunk of a long article whose request failed; the article's other chunks are kept."""

    chunk: int  # 1-based, of ``ArticleResult.chunks``
    start: int  # the chunk's window in Article.text (end-exclusive)
    end: int
    type: str
    message: str


def _identity(article: Article) -> dict[str, Any]:
    """What a result takes from its article: id, source, sha256, title and published date."""
    return {
        "article_id": article.id,
        "source": article.source,
        "sha256": article.sha256,
        "title": article.title,
        "published": article.published,
    }


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
    # Chunks whose request failed while others succeeded: the result is ``ok`` but partial (their items
    # are missing); a batch redoes such an article next run (the good chunks come from the cache).
    chunk_errors: list[ChunkError] = Field(default_factory=list)

    @classmethod
    def for_article(cls, article: Article, **fields: Any) -> ArticleResult:
        """The result of ``article``: its id, source, sha256, title and published date, and ``fields``
        (``status`` and whatever the outcome adds)."""
        return cls(**_identity(article), **fields)

    def retold(self, article: Article) -> ArticleResult:
        """This result as the result of ``article``, an article with the same text: its identity
        (as ``for_article`` takes it), the outcome unchanged."""
        return self.model_copy(update=_identity(article))

    @property
    def partial(self) -> bool:
        """An ``ok`` result with some chunks missing (see ``chunk_errors``)."""
        return bool(self.chunk_errors)
