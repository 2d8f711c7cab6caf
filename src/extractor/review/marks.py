"""Highlights: an article's text split at every item boundary, each stretch with the marks covering it.

Each segment is wrapped in one nested ``<mark>`` per item covering it, so overlapping items (a quote
inside a stance's evidence, two items on the same span) render correctly. Only the innermost mark of a
segment is filled with its kind's colour; the marks around it (class ``o``) are drawn as solid
underlines in their own colours, so nested highlights never blend into a third colour. Each ``<mark>``
carries ``data-kind``, ``data-item``, ``data-start`` and ``data-end`` (the grounded range of the piece it
belongs to): concatenating the text of the marks of one piece gives back ``text[start:end]``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import NamedTuple

from extractor.models import ArticleResult, GroundedEvent, GroundedQuote, GroundedStance, Span

__all__ = ["KINDS", "UNATTRIBUTED", "Mark", "Segment", "build_segments"]

UNATTRIBUTED = "(unattributed)"  # a quote whose speaker the article does not name

KINDS: tuple[str, ...] = ("event", "quote", "stance")
_KIND_ORDER = {kind: i for i, kind in enumerate(KINDS)}
_KIND_LETTER = {"event": "E", "quote": "Q", "stance": "S"}
_STATUS_SIGN = {"normalized": "≈", "elided": "…"}

Item = GroundedEvent | GroundedQuote | GroundedStance


@dataclass(frozen=True, slots=True)
class Mark:
    """One highlighted range (a whole span, or one piece of an elided span) of one item."""

    kind: str
    item: int
    start: int
    end: int
    status: str
    title: str
    first: bool = True  # the item's first piece: carries the item's anchor and label


class Segment(NamedTuple):
    """A stretch of text between two consecutive boundaries, with the marks covering all of it."""

    start: int
    end: int
    marks: tuple[Mark, ...]


def _nesting_key(mark: Mark) -> tuple[int, int, int, int, int]:
    # Outermost first: earlier start, then longer range; ties broken by kind and item.
    return (mark.start, -mark.end, _KIND_ORDER.get(mark.kind, 99), mark.item, mark.end)


def build_segments(length: int, marks: Iterable[Mark]) -> list[Segment]:
    """Split ``[0, length)`` at every mark boundary; each segment lists its covering marks, outermost first.

    Raises ValueError for a mark outside ``[0, length]`` or with ``start > end``. Empty marks are ignored.
    """
    starts: dict[int, list[Mark]] = defaultdict(list)
    ends: dict[int, list[Mark]] = defaultdict(list)
    bounds = {0, length}
    for mark in marks:
        if not 0 <= mark.start <= mark.end <= length:
            raise ValueError(f"mark {mark.kind}#{mark.item} [{mark.start}, {mark.end}) outside [0, {length})")
        if mark.start == mark.end:
            continue
        starts[mark.start].append(mark)
        ends[mark.end].append(mark)
        bounds.update((mark.start, mark.end))
    active: list[Mark] = []
    segments: list[Segment] = []
    for a, b in pairwise(sorted(bounds)):
        if a in ends:
            gone = ends[a]
            active = [m for m in active if not any(m is g for g in gone)]
        if a in starts:
            active = sorted([*active, *starts[a]], key=_nesting_key)
        segments.append(Segment(a, b, tuple(active)))
    return segments


def shorten(value: str, limit: int = 200) -> str:
    """``value`` cut to ``limit`` characters, the last one an ellipsis when cut."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def label(kind: str, index: int) -> str:
    """An item's label on the page: ``E1``, ``Q2``, ``S3``."""
    return f"{_KIND_LETTER[kind]}{index + 1}"


def items_of(result: ArticleResult) -> list[tuple[str, int, Item]]:
    """Every grounded item of a result as (kind, index within its kind, item), events first."""
    out: list[tuple[str, int, Item]] = []
    out.extend(("event", i, x) for i, x in enumerate(result.events))
    out.extend(("quote", i, x) for i, x in enumerate(result.quotes))
    out.extend(("stance", i, x) for i, x in enumerate(result.stances))
    return out


def _item_title(kind: str, index: int, item: Item) -> str:
    parts = [f"{kind.capitalize()} {index + 1}"]
    if isinstance(item, GroundedQuote):
        parts.append(f"speaker: {item.speaker or UNATTRIBUTED}")
        if item.cue:
            parts.append(f"cue: {item.cue}")
    elif isinstance(item, GroundedEvent):
        parts.append(item.event_type)
        parts.extend(x for x in (item.date or item.date_text, item.location) if x)
    else:
        parts.extend((item.holder, item.polarity, item.target))
    if item.span.status in ("normalized", "elided"):
        parts.append(f"{item.span.status} match")
    return " · ".join(parts)


def _ranges(span: Span) -> list[tuple[int, int]]:
    if span.status == "not_found":
        return []
    if span.status == "elided" and span.pieces:
        return [(int(a), int(b)) for a, b in span.pieces]
    if span.start is None or span.end is None:
        return []
    return [(span.start, span.end)]


def item_marks(
    items: list[tuple[str, int, Item]], length: int | None
) -> tuple[list[Mark], set[tuple[str, int]]]:
    """Marks for the items that can be shown, and the (kind, index) of items whose offsets are unusable."""
    marks: list[Mark] = []
    broken: set[tuple[str, int]] = set()
    for kind, index, item in items:
        ranges = _ranges(item.span)
        if length is None or not ranges:
            continue
        if any(not 0 <= a <= b <= length for a, b in ranges):
            broken.add((kind, index))
            continue
        title = _item_title(kind, index, item)
        marks.extend(
            Mark(kind, index, a, b, item.span.status, title, first=(n == 0))
            for n, (a, b) in enumerate(ranges)
        )
    return marks, broken


class OpenTag(NamedTuple):
    """The attributes of one ``<mark>`` opened at the start of a segment (None: attribute left out)."""

    cls: str
    kind: str
    item: int
    start: int
    end: int
    label: str | None
    id: str | None
    title: str | None


class Piece(NamedTuple):
    """A segment of the text as the page writes it: the marks around it (outermost first) and its text."""

    tags: tuple[OpenTag, ...]
    text: str


def text_pieces(text: str, marks: list[Mark], anchor: str) -> list[Piece]:
    """The article text as pieces to wrap in nested marks; ``anchor`` prefixes the items' element ids."""
    out: list[Piece] = []
    opened: set[tuple[str, int, int]] = set()
    anchored: set[tuple[str, int]] = set()
    for seg in build_segments(len(text), marks):
        chunk = text[seg.start : seg.end]
        if not seg.marks:
            out.append(Piece((), chunk))
            continue
        title = "\n".join(dict.fromkeys(m.title for m in reversed(seg.marks)))
        tags: list[OpenTag] = []
        for depth, m in enumerate(seg.marks):
            cls = f"k{m.kind[0]}"
            inside = len(seg.marks) - 1 - depth  # marks nested inside this one here
            if inside:
                # Only the innermost mark is filled, so a quote inside a stance keeps the quote's colour;
                # each mark around it is a solid underline in its own colour, outer ones lower.
                cls += " o" + (f" o{min(inside, 3)}" if inside > 1 else "")
            if m.status == "normalized":
                cls += " sn"
            elif m.status == "elided":
                cls += " sl"
            tag_label = tag_id = None
            key = (m.kind, m.item, m.start)
            if key not in opened:
                opened.add(key)
                cls += " f"
                tag_label = label(m.kind, m.item) + _STATUS_SIGN.get(m.status, "")
                if m.first and (m.kind, m.item) not in anchored:
                    anchored.add((m.kind, m.item))
                    tag_id = f"{anchor}-{m.kind[0]}{m.item}"
            last = depth == len(seg.marks) - 1
            tags.append(
                OpenTag(cls, m.kind, m.item, m.start, m.end, tag_label, tag_id, title if last else None)
            )
        out.append(Piece(tuple(tags), chunk))
    return out
