"""What the page shows of one article: its heading, state, text pieces, item list and rejected items."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from extractor.models import ArticleResult, ChunkError, GroundedQuote
from extractor.review.marks import (
    UNATTRIBUTED,
    Item,
    Piece,
    item_marks,
    items_of,
    label,
    shorten,
    text_pieces,
)

__all__ = ["ArticleView", "Counts", "article_view", "counts_of"]


@dataclass(slots=True)
class Counts:
    """Items of one article: per kind, grounded (found in the text), rejected, and inexact matches."""

    events: int
    quotes: int
    stances: int
    grounded: int
    rejected: int
    fuzzy: int


def counts_of(result: ArticleResult) -> Counts:
    """The item counts of one result."""
    statuses = [x.span.status for _, _, x in items_of(result)]
    return Counts(
        events=len(result.events),
        quotes=len(result.quotes),
        stances=len(result.stances),
        grounded=sum(s != "not_found" for s in statuses),
        rejected=len(result.rejected),
        fuzzy=sum(s in ("normalized", "elided") for s in statuses),
    )


@dataclass(frozen=True, slots=True)
class ItemView:
    """One entry of an article's item list; ``href`` is None when the item is not highlighted."""

    kind: str
    label: str
    href: str | None
    item: Item
    shown: bool
    broken: bool
    quote_text: str  # a quote's text, shortened (the full quote is highlighted in the text)
    evidence: str  # the evidence of an item not highlighted, shortened


@dataclass(frozen=True, slots=True)
class RejectedView:
    """One rejected item: who or what it was, the offending value, other details and the reason."""

    kind: str
    field: str
    who: str
    what: str
    quoted: bool  # ``what`` is the offending text itself (not the item as JSON)
    extra: list[str]
    reason: str


@dataclass(frozen=True, slots=True)
class ArticleView:
    """One article's section of the page."""

    pos: int
    total: int
    anchor: str
    result: ArticleResult
    search: str
    flags: str
    meta: str
    state: str  # "error", "duplicate", "partial" or ""
    error: tuple[str, str] | None
    chunk_errors: list[ChunkError]
    duplicate_target: int | None  # the position of the article this one duplicates, when on the page
    has_body: bool
    pieces: list[Piece] | None  # None: the text is not stored
    items: list[ItemView]
    counts: Counts
    open_body: bool
    rejected: list[RejectedView]


def _search_key(result: ArticleResult) -> str:
    words = [result.article_id, result.title or "", result.source, result.status]
    if result.error:
        words += [result.error.type, result.error.message]
    if result.duplicate_of:
        words += ["duplicate", result.duplicate_of]
    if result.chunk_errors:
        words += ["partial", *(f"{c.type} {c.message}" for c in result.chunk_errors)]
    # The page's filter also searches the article text (read from the DOM); this adds what is not in it.
    words += [q.speaker or UNATTRIBUTED for q in result.quotes]
    words += [x for s in result.stances for x in (s.holder, s.polarity, s.target)]
    for e in result.events:
        words += [e.event_type, *e.actors, e.location or "", e.date or ""]
    if result.rejected:
        words.append("rejected")
    return " ".join(words).lower()


def _flags(result: ArticleResult, counts: Counts) -> str:
    return (
        ("r" if counts.rejected else "")
        + ("e" if result.status == "error" else "")
        + ("d" if result.duplicate_of else "")
        + ("n" if counts.fuzzy else "")
    )


def _meta(result: ArticleResult) -> str:
    bits = [f"source: {result.source}"]
    if result.published:
        bits.append(f"published {result.published.isoformat()}")
    if result.model:
        bits.append(f"model {result.model}")
    if result.prompt_version:
        bits.append(f"prompt {result.prompt_version}")
    if result.usage.total_tokens:
        bits.append(f"{result.usage.total_tokens:,} tokens")
    if result.latency_s:
        bits.append(f"{result.latency_s:.2f} s")
    if result.cache_hit:
        bits.append("cache hit")
    if result.chunks > 1:
        bits.append(f"{result.chunks} chunks")
    bits.append(f"sha256 {result.sha256[:12]}")
    return " · ".join(bits)


def _rejected(result: ArticleResult) -> list[RejectedView]:
    rows = []
    for rej in result.rejected:
        item = rej.item
        who = next(
            (str(item[k]) for k in ("speaker", "holder", "event_type") if isinstance(item.get(k), str)), ""
        )
        what = item.get(rej.field)
        extra = []
        if isinstance(item.get("polarity"), str):
            extra.append(f"{item['polarity']} — {item.get('target', '')}")
        if isinstance(item.get("summary"), str):
            extra.append(item["summary"])
        quoted = isinstance(what, str)
        shown = what if isinstance(what, str) else json.dumps(item, default=str)
        rows.append(RejectedView(rej.kind, rej.field, who, shown, quoted, extra, rej.reason))
    return rows


def _state(result: ArticleResult) -> str:
    if result.status == "error":
        return "error"
    if result.duplicate_of:
        return "duplicate"
    return "partial" if result.chunk_errors else ""


def article_view(
    pos: int,
    total: int,
    result: ArticleResult,
    text: str | None,
    counts: Counts,
    targets: Mapping[str, int],
    open_body: bool,
) -> ArticleView:
    """The section of the article at ``pos`` (from 1) of ``total``; ``targets`` maps article ids and
    sha256s to the position of the article a duplicate links to."""
    anchor = f"a{pos}"
    error: tuple[str, str] | None = None
    if result.status == "error":
        err = result.error
        error = (err.type, err.message) if err else ("error", "(no error details recorded)")
    target = targets.get(result.duplicate_of) if result.duplicate_of else None
    items = items_of(result)
    has_body = bool(items) or (text is not None and not result.duplicate_of)
    pieces: list[Piece] | None = None
    views: list[ItemView] = []
    if has_body:
        marks, broken = item_marks(items, None if text is None else len(text))
        shown = {(m.kind, m.item) for m in marks}
        pieces = None if text is None else text_pieces(text, marks, anchor)
        views = [_item_view(k, i, x, anchor, (k, i) in shown, (k, i) in broken) for k, i, x in items]
    return ArticleView(
        pos=pos,
        total=total,
        anchor=anchor,
        result=result,
        search=_search_key(result),
        flags=_flags(result, counts),
        meta=_meta(result),
        state=_state(result),
        error=error,
        chunk_errors=list(result.chunk_errors),
        duplicate_target=target if target != pos else None,
        has_body=has_body,
        pieces=pieces,
        items=views,
        counts=counts,
        open_body=open_body,
        rejected=_rejected(result),
    )


def _item_view(kind: str, index: int, item: Item, anchor: str, shown: bool, broken: bool) -> ItemView:
    quote_text = shorten(item.text, 90 if shown else 400) if isinstance(item, GroundedQuote) else ""
    evidence = "" if shown or isinstance(item, GroundedQuote) else shorten(item.evidence, 400)
    href = f"#{anchor}-{kind[0]}{index}" if shown else None
    return ItemView(kind, label(kind, index), href, item, shown, broken, quote_text, evidence)
