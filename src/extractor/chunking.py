"""Long articles: plan the chunks, place each chunk's items in the article, merge the overlaps.

An article longer than ``Settings.chunk_chars`` is cut into overlapping windows at paragraph breaks
(``split_chunks``); each window is its own request. Every item an answer gives is grounded against the
WHOLE article, at its first free occurrence in its own chunk (``ground_extraction``), and an item two
overlapping chunks both tell is kept once, in its fuller wording. Pure: no model, no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import BaseModel

from extractor.grounding import Grounding, SourceIndex
from extractor.matching import names_match, target_similarity
from extractor.models import (
    ArticleExtraction,
    Event,
    GroundedEvent,
    GroundedQuote,
    GroundedStance,
    Rejected,
    Span,
    Stance,
)

__all__ = ["Chunk", "ground_extraction", "split_chunks", "with_schema_rejects"]

_Item = TypeVar("_Item", GroundedEvent, GroundedQuote, GroundedStance)


@dataclass(frozen=True, slots=True)
class Chunk:
    """One window of an article's text: ``index`` counts from 1 (the prompt's "part i of n",
    ``ChunkError.chunk``); ``start`` and ``end`` are offsets in ``Article.text``, end-exclusive."""

    index: int
    start: int
    end: int


def split_chunks(text: str, max_chars: int, overlap: int) -> list[Chunk]:
    """Windows of at most ``max_chars``, cut at paragraph (else line, else sentence, else space) breaks
    in the second half of the window, else hard at ``max_chars``; each starts ``overlap`` characters or
    less before the previous one's end, and at least half a window (rounded up) after the previous one's
    start, whatever the overlap and the text."""
    if len(text) <= max_chars:
        return [Chunk(1, 0, len(text))]
    chunks: list[Chunk] = []
    step = (max_chars + 1) // 2  # end - start > max_chars // 2 >= step - 1, so no gap
    start = 0
    while start < len(text):
        limit = start + max_chars
        if limit >= len(text):
            chunks.append(Chunk(len(chunks) + 1, start, len(text)))
            break
        end = -1
        for sep in ("\n\n", "\n", ". ", " "):
            cut = text.rfind(sep, start + max_chars // 2, limit)
            if cut != -1:
                end = cut + len(sep)
                break
        if end == -1:
            end = limit
        chunks.append(Chunk(len(chunks) + 1, start, end))
        next_start = max(end - overlap, start + step)
        para = text.find("\n", next_start, end)
        start = para + 1 if para != -1 and para + 1 < end else next_start
    return chunks


# --------------------------------------------------------------------------- placing


def _span(g: Grounding) -> Span:
    pieces = [tuple(p) for p in g.pieces] if g.status == "elided" else None
    return Span(status=g.status, start=g.start, end=g.end, pieces=pieces, occurrences=g.occurrences)


def _ground_at(index: SourceIndex, candidate: str, start_at: int, taken: set[tuple[int, int]]) -> Grounding:
    """Ground ``candidate``: the first occurrence at or after ``start_at`` (its chunk) that no item with
    the same text has taken yet, so a statement quoted twice gets both places; else the first.
    ``occurrences`` stays the count in the whole article. Each step searches the one index from an
    offset, so placing many repeats costs one pass each, not an index per earlier occurrence."""
    first = index.ground(candidate)
    if first.status not in ("exact", "normalized") or (first.occurrences < 2 and start_at == 0):
        return first
    found = first if start_at == 0 else index.ground(candidate, start=start_at)
    while found.status in ("exact", "normalized") and found.start is not None and found.end is not None:
        if (found.start, found.end) not in taken:
            return dataclasses.replace(found, occurrences=first.occurrences)
        found = index.ground(candidate, start=found.end)  # occurrences never overlap
    return first


# --------------------------------------------------------------------------- merging


@dataclass(slots=True)
class _Kept:
    """An item kept at a span: the chunk that told it, its place in its list, and whether it has
    absorbed a later chunk's telling yet (each absorbs at most one)."""

    chunk: int
    position: int
    merged: bool = False


def _same_item(a: BaseModel, b: BaseModel) -> bool:
    """Two items at one span from two chunks say the same thing: a quote has one speaker; events
    need the same type and no conflicting date or place; stances the same polarity, holder and a
    similar target (half their words shared)."""
    if isinstance(a, Event) and isinstance(b, Event):
        return a.event_type == b.event_type and all(
            x is None or y is None or x.casefold() == y.casefold()
            for x, y in ((a.date, b.date), (a.location, b.location))
        )
    if isinstance(a, Stance) and isinstance(b, Stance):
        similar = target_similarity(a.target, b.target) >= 0.5
        return a.polarity == b.polarity and names_match(a.holder, b.holder) and similar
    return True


def _fullness(item: BaseModel) -> tuple[int, int]:
    """Which of two wordings of one item says more: non-empty fields, then characters."""
    values = [v for k, v in item.model_dump().items() if k != "span"]
    filled = [v for v in values if v not in (None, "", [])]
    return len(filled), sum(len(str(v)) for v in filled)


class _Placer:
    """Grounds the items of successive chunk answers into one article's kept and rejected lists."""

    def __init__(self, index: SourceIndex) -> None:
        self.index = index
        self.events: list[GroundedEvent] = []
        self.quotes: list[GroundedQuote] = []
        self.stances: list[GroundedStance] = []
        self.rejected: list[Rejected] = []
        self._rejected_seen: set[str] = set()
        self._placed: set[tuple[str, int, int]] = set()
        self._by_span: dict[tuple[str, int, int], list[_Kept]] = {}
        # the chunk being placed: its number, start, and the places its items took, by (kind, text)
        self._chunk = 0
        self._start_at = 0
        self._taken: dict[tuple[str, str], set[tuple[int, int]]] = {}

    def add(self, chunk: int, extraction: ArticleExtraction, start_at: int) -> None:
        """Place one chunk's answer; ``start_at`` is where the chunk starts in the article."""
        self._chunk, self._start_at, self._taken = chunk, start_at, {}
        for event in extraction.events:
            also = ("date_text", event.date_text)
            self._place("event", "evidence", event, event.evidence, self.events, GroundedEvent, also)
        for quote in extraction.quotes:
            self._place("quote", "text", quote, quote.text, self.quotes, GroundedQuote, ("cue", quote.cue))
        for stance in extraction.stances:
            self._place("stance", "evidence", stance, stance.evidence, self.stances, GroundedStance)

    def _reject(self, kind: str, field: str, item: BaseModel, reason: str) -> None:
        fingerprint = kind + item.model_dump_json()
        if fingerprint not in self._rejected_seen:
            self._rejected_seen.add(fingerprint)
            self.rejected.append(
                Rejected.model_validate(
                    {"kind": kind, "field": field, "item": item.model_dump(), "reason": reason}
                )
            )

    def _place(
        self,
        kind: str,
        field: str,
        item: BaseModel,
        candidate: str,
        out: list[_Item],
        cls: type[_Item],
        also: tuple[str, str | None] | None = None,
    ) -> None:
        """Ground ``candidate`` (the item's ``field``) and keep the item at its place; ``also``: a second
        field whose words, when given, must be in the article too (a quote's cue, an event's date_text:
        the prompt says a program checks them), else the item is rejected naming that field."""
        fingerprint = kind + item.model_dump_json()
        used = self._taken.setdefault((kind, candidate), set())
        g = _ground_at(self.index, candidate, self._start_at, used)
        if not g.found or g.start is None or g.end is None:
            self._reject(kind, field, item, g.reason or "not in the article")
            return
        if also is not None and also[1] is not None and not (words := self.index.ground(also[1])).found:
            self._reject(kind, also[0], item, f"{also[0]} not in the article: {words.reason or 'not found'}")
            return
        used.add((g.start, g.end))
        if (fingerprint, g.start, g.end) in self._placed:
            return  # the same item at the same place: an overlap duplicate
        self._placed.add((fingerprint, g.start, g.end))
        grounded = cls(**item.model_dump(), span=_span(g))
        kept = self._by_span.setdefault((kind, g.start, g.end), [])
        for entry in kept:  # the same item told by an earlier, overlapping chunk: merge once
            if entry.chunk != self._chunk and not entry.merged and _same_item(out[entry.position], grounded):
                entry.merged = True
                if _fullness(grounded) > _fullness(out[entry.position]):
                    out[entry.position] = grounded
                return
        kept.append(_Kept(self._chunk, len(out)))
        out.append(grounded)


def ground_extraction(
    extractions: Iterable[ArticleExtraction],
    source: str,
    index: SourceIndex | None = None,
    chunks: Sequence[Chunk] | None = None,
) -> tuple[list[GroundedEvent], list[GroundedQuote], list[GroundedStance], list[Rejected]]:
    """Ground every quote text and event/stance evidence in ``source``; split kept from rejected.

    ``chunks`` gives the chunk each extraction came from, so an item is placed in its own chunk. Items
    from two overlapping chunks at the same span are one item, kept once in its fuller wording (see
    ``_same_item``); each earlier item absorbs at most one later one."""
    placer = _Placer(index or SourceIndex(source))
    for i, extraction in enumerate(extractions):
        placer.add(i, extraction, chunks[i].start if chunks is not None else 0)
    return placer.events, placer.quotes, placer.stances, placer.rejected


def with_schema_rejects(rejected: list[Rejected], extractions: Iterable[ArticleExtraction]) -> list[Rejected]:
    """The grounding rejects, then each extraction's schema rejects (the same item told by two
    overlapping chunks once)."""
    seen: set[str] = set()
    out = list(rejected)
    for extraction in extractions:
        for reject in extraction.schema_rejects:
            fingerprint = reject.model_dump_json()
            if fingerprint not in seen:
                seen.add(fingerprint)
                out.append(reject)
    return out
