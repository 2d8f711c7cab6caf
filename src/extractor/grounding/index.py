"""``SourceIndex``: a source normalised once, its word indexes, and the search by rules 1-4."""

from __future__ import annotations

import operator
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

from extractor.grounding.normalize import (
    _DASHES,
    _STRIP,
    _ZWJ,
    _collapse,
    _is_extender,
    _is_regional,
    _nfc,
    _normalize,
    _replace,
)
from extractor.grounding.quotes import _QuoteMarks

_ELLIPSIS = re.compile(r"\[\s*(?:\.\.\.|\u2026)\s*\]|\(\s*(?:\.\.\.|\u2026)\s*\)|\.{3,}|\u2026")
_BLANK_LINES = (re.compile(r"\n[^\S\n]*\n"), re.compile("\u2029"))
# Block size (characters of the normalised source) of the word index.
_BLOCK = 1 << 16
_HINT_STEPS = 4
# Characters of the normalised source scanned for occurrences, in source lengths, after which every
# word's positions are indexed (about what building that index costs; only repeated text gets there).
_SCAN_BUDGET = 64
# Normalised sources at least this long get the position index instead of the block one at once: it
# costs about the same to build there, and searches that use it never scan.
_POSITIONS_FROM = 1 << 22


@dataclass(frozen=True, slots=True)
class Grounding:
    """Where a candidate string sits in the source (see the module docstring for the rules)."""

    status: Literal["exact", "normalized", "elided", "not_found"]
    start: int | None
    end: int | None
    pieces: tuple[tuple[int, int], ...]
    occurrences: int
    reason: str | None

    @property
    def found(self) -> bool:
        """True unless the status is ``not_found``."""
        return self.status != "not_found"


def _missing(reason: str) -> Grounding:
    return Grounding("not_found", None, None, (), 0, reason)


def _common_prefix(text: str, pos: int, needle: str, known: int) -> int:
    """Length of the common prefix of ``text[pos:]`` and ``needle``, knowing it is at least ``known``."""
    lo, hi = known, min(len(needle), len(text) - pos)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if text.startswith(needle[:mid], pos):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _first_non_overlapping(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    kept: list[tuple[int, int]] = []
    for s, e in spans:
        if not kept or s >= kept[-1][1]:
            kept.append((s, e))
    return kept


# (start, end) in the normalised source, then (start, end) in the original source.
_Occurrence = tuple[int, int, int, int]


class SourceIndex:
    """A source normalised once, for grounding many candidates against it.

    From the second candidate on (or when a ``not_found`` reason needs it), searches are narrowed by a
    word index: for each block of the normalised source, each word in it with its first and last
    position, built with C-speed passes. For a long source (4 Mi characters), or once searches have
    scanned the source many times over anyway (text repeated so often that every block holds every
    word), every word's positions are indexed instead, and a search visits only the places of the
    candidate's rarest inner word. Results never depend on which index exists, or whether one does.
    """

    __slots__ = (
        "_blocks",
        "_break_ends",
        "_break_starts",
        "_collapse",
        "_last",
        "_nfc",
        "_norm",
        "_positions",
        "_queries",
        "_quotes",
        "_scanned",
        "_source",
        "_spans",
    )

    def __init__(self, source: str) -> None:
        self._source = source
        composed, self._nfc = _nfc(source)
        self._norm, self._collapse = _collapse(_replace(composed))
        breaks = sorted(m.span() for pattern in _BLANK_LINES for m in pattern.finditer(source))
        self._break_starts = [s for s, _ in breaks]
        self._break_ends = [e for _, e in breaks]
        self._blocks: list[tuple[dict[str, int], dict[str, int]]] | None = None
        self._spans: dict[str, tuple[int, tuple[tuple[int, int], ...]]] = {}
        self._queries = 0
        self._positions: dict[str, array[int]] | None = None
        self._scanned = 0
        # The last needle searched, from where, and its occurrences: grounding one candidate again from a
        # later offset (the pipeline placing repeats) filters them instead of searching again.
        self._last: tuple[str, int, list[_Occurrence]] = ("", 0, [])
        self._quotes = _QuoteMarks(source, self._break_starts, self._break_ends)

    def ground(self, candidate: str, start: int = 0) -> Grounding:
        """Ground one candidate by the rules in the module docstring.

        With ``start``, only occurrences that start at or after that offset of the source count (the
        rules applied to the rest of the article, with its offsets and the characters around them):
        the first of them is reported and ``occurrences`` counts them. Raises ``ValueError`` for a
        negative ``start``.
        """
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        self._queries += 1
        if self._queries == 2 and len(self._norm) > _BLOCK:
            self._words()  # pays off only once the source spans several blocks
        if self._positions is None and self._scanned > _SCAN_BUDGET * max(len(self._norm), _BLOCK):
            self._position_index()
        core = candidate.strip(_STRIP)
        if not core:
            return _missing("empty candidate")
        start = min(start, len(self._source))
        frm = self._to_norm(start)
        needle = _normalize(core)
        occurrences = self._occurrences(needle, frm)
        if core[0] in _DASHES or core[-1] in _DASHES:
            # A dash run in the source may straddle the edge of a literal match.
            exact = self._literal(core, start)
        else:
            exact = _first_non_overlapping([(o[2], o[3]) for o in occurrences if self._is_literal(o, core)])
        if exact:
            ((s, e),) = self._quotes.balance(exact[:1], self._cut_ok)
            return Grounding("exact", s, e, ((s, e),), len(exact), None)
        if occurrences:
            normalized = _first_non_overlapping([(o[2], o[3]) for o in occurrences])
            ((s, e),) = self._quotes.balance(normalized[:1], self._cut_ok)
            return Grounding("normalized", s, e, ((s, e),), len(normalized), None)
        elided = self._elided(core, frm)
        if elided is not None and elided.found:
            pieces = self._quotes.balance(list(elided.pieces), self._cut_ok)
            return Grounding("elided", pieces[0][0], pieces[-1][1], pieces, elided.occurrences, None)
        if elided is not None and not start:
            return elided
        if start:
            anywhere = self.ground(candidate)
            if anywhere.found:
                return _missing(f"not at or after offset {start} (first occurrence at {anywhere.start})")
            return anywhere
        return _missing(self._absent(needle))

    # ----------------------------------------------------------------------- matching

    def _to_source(self, k: int) -> int | None:
        """Original boundary for normalised boundary ``k``; None if it would split a unit."""
        j = self._collapse.to_input(k)
        if j is not None and self._nfc is not None:
            j = self._nfc.to_input(j)
        return j

    def _to_norm(self, k: int) -> int:
        """Normalised boundary for original boundary ``k`` (rounded up out of a unit)."""
        if self._nfc is not None:
            k = self._nfc.to_output(k)
        return self._collapse.to_output(k)

    def _cut_ok(self, k: int) -> bool:
        """Whether a match may start or end at original boundary ``k``."""
        src = self._source
        if k <= 0 or k >= len(src):
            return True
        if src[k] < "\u0300":  # no extender or regional indicator is below the combining marks
            return src[k - 1] != _ZWJ
        if _is_extender(src[k]) or src[k - 1] == _ZWJ:
            return False
        if _is_regional(src[k]) and _is_regional(src[k - 1]):
            # Flags are pairs of regional indicators: k splits one after an odd number of them.
            i = k - 1
            while i > 0 and _is_regional(src[i - 1]):
                i -= 1
            return (k - i) % 2 == 0
        return True

    def _word_index(self) -> list[tuple[dict[str, int], dict[str, int]]]:
        """Per block of the normalised source: each word starting in it with its first and last position."""
        if self._blocks is None:
            words = self._norm.split(" ")
            starts = list(map(operator.add, accumulate(map(len, words), initial=0), range(len(words))))
            self._blocks = []
            i = 0
            while i < len(words):
                j = bisect_left(starts, starts[i] + _BLOCK, i + 1)
                block, where = words[i:j], starts[i:j]
                first = dict(zip(reversed(block), reversed(where), strict=False))
                self._blocks.append((first, dict(zip(block, where, strict=False))))
                i = j
        return self._blocks

    def _words(self) -> None:
        """Build the word index: the position index for a long source, else the block index."""
        if len(self._norm) >= _POSITIONS_FROM:
            self._position_index()
        else:
            self._word_index()

    def _is_word(self, token: str) -> bool:
        """Whether ``token`` occurs as a whole word of the normalised source."""
        if self._positions is not None:
            return token in self._positions
        return bool(self._word_spans(token)[1])

    def _position_index(self) -> dict[str, array[int]]:
        """Every word of the normalised source with the positions where it starts, in order."""
        if self._positions is None:
            words = self._norm.split(" ")
            starts = map(operator.add, accumulate(map(len, words), initial=0), range(len(words)))
            positions: dict[str, array[int]] = {}
            for word, at in zip(words, starts, strict=False):
                where = positions.get(word)
                if where is None:
                    positions[word] = array("q", (at,))
                else:
                    where.append(at)
            self._positions = positions
        return self._positions

    def _word_spans(self, word: str) -> tuple[int, tuple[tuple[int, int], ...]]:
        """Where ``word`` occurs as a whole word: ``(first, last)`` per block holding it, and their total
        width; ``()`` if it never does."""
        hit = self._spans.get(word)
        if hit is None:
            spans = tuple(
                (at, last[word]) for first, last in self._word_index() if (at := first.get(word)) is not None
            )
            hit = sum(e - s for s, e in spans), spans
            self._spans[word] = hit
        return hit

    def _windows(self, needle: str) -> list[tuple[int, int]]:
        """Disjoint parts ``[lo, hi)`` of the normalised source, in order, that can hold ``needle``.

        Every space-delimited inner word of ``needle`` is a whole word of the normalised source wherever
        ``needle`` occurs; the inner word whose occurrences are least spread out bounds the search.
        """
        size, total = len(needle), len(self._norm)
        if (self._blocks is None and self._positions is None) or needle.count(" ") < 2:
            return [(0, total)]
        tokens = needle.split(" ")
        if self._positions is not None:
            return self._places(tokens, size)
        best: tuple[int, tuple[tuple[int, int], ...]] | None = None
        offset = best_offset = len(tokens[0]) + 1
        for token in tokens[1:-1]:
            width, spans = self._word_spans(token)
            if not spans:
                return []
            if best is None or width < best[0]:
                best, best_offset = (width, spans), offset
                if width == 0 and len(spans) == 1:
                    break  # a word that occurs in one place: no other word can narrow the search more
            offset += len(token) + 1
        assert best is not None
        windows: list[tuple[int, int]] = []
        for first, last in best[1]:
            lo, hi = max(0, first - best_offset), min(total, last - best_offset + size)
            if windows and lo <= windows[-1][1]:
                windows[-1] = windows[-1][0], max(windows[-1][1], hi)
            else:
                windows.append((lo, hi))
        return windows

    def _places(self, tokens: list[str], size: int) -> list[tuple[int, int]]:
        """``_windows`` from the position index: one window per place of the rarest inner word."""
        positions = self._position_index()
        best: array[int] | None = None
        offset = best_offset = len(tokens[0]) + 1
        for token in tokens[1:-1]:
            where = positions.get(token)
            if where is None:
                return []
            if best is None or len(where) < len(best):
                best, best_offset = where, offset
            offset += len(token) + 1
        assert best is not None
        total = len(self._norm)
        windows: list[tuple[int, int]] = []
        for at in best:
            lo = at - best_offset
            if lo < 0:
                continue
            hi = lo + size
            if hi > total:
                break
            if windows and lo <= windows[-1][1]:
                windows[-1] = windows[-1][0], hi
            else:
                windows.append((lo, hi))
        return windows

    def _find_first(self, needle: str, frm: int) -> int:
        """First occurrence of ``needle`` in the normalised source at or after ``frm`` (valid or not)."""
        for lo, hi in self._windows(needle):
            if hi > frm:
                p = self._norm.find(needle, max(lo, frm), hi)
                if p >= 0:
                    return p
        return -1

    def _find_all(self, needle: str, frm: int) -> Iterator[_Occurrence]:
        """Valid occurrences of ``needle`` in the normalised source from ``frm``, overlapping allowed."""
        norm, size, cut_ok = self._norm, len(needle), self._cut_ok
        to_source = self._collapse.to_input if self._nfc is None else self._to_source
        for lo, hi in self._windows(needle):
            if hi <= frm:
                continue
            lo = max(lo, frm)
            self._scanned += hi - lo
            p = norm.find(needle, lo, hi)
            while p >= 0:
                s = to_source(p)
                e = to_source(p + size)
                if s is not None and e is not None and cut_ok(s) and cut_ok(e):
                    yield p, p + size, s, e
                p = norm.find(needle, p + 1, hi)

    def _occurrences(self, needle: str, frm: int) -> list[_Occurrence]:
        """``list(self._find_all(needle, frm))``, from the last search when it covers ``frm``."""
        last, since, found = self._last
        if last == needle and since <= frm:
            return found[bisect_left(found, frm, key=operator.itemgetter(0)) :]
        found = list(self._find_all(needle, frm))
        self._last = needle, frm, found
        return found

    def _is_literal(self, occ: _Occurrence, core: str) -> bool:
        s, e = occ[2], occ[3]
        return e - s == len(core) and self._source.startswith(core, s)

    def _literal(self, core: str, start: int) -> list[tuple[int, int]]:
        src, size, nfc = self._source, len(core), self._nfc
        spans: list[tuple[int, int]] = []
        p = src.find(core, start)
        while p >= 0:
            e = p + size
            if (
                self._cut_ok(p)
                and self._cut_ok(e)
                and (nfc is None or not (nfc.inside_input(p) or nfc.inside_input(e)))
            ):
                spans.append((p, e))
            p = src.find(core, p + 1)
        return _first_non_overlapping(spans)

    def _break_in(self, start: int, end: int) -> int | None:
        """End of the last blank line starting in ``[start, end)`` of the original source, if any."""
        i = bisect_left(self._break_starts, end) - 1
        if i >= 0 and self._break_starts[i] >= start:
            return self._break_ends[i]
        return None

    # ----------------------------------------------------------------------- rule 3

    def _elided(self, core: str, frm: int) -> Grounding | None:
        parts = _ELLIPSIS.split(core)
        if len(parts) == 1:
            return None
        pieces = [p.strip(_STRIP) for p in parts]
        while pieces and not pieces[0]:
            pieces.pop(0)
        while pieces and not pieces[-1]:
            pieces.pop()
        if not pieces:
            return _missing("empty candidate (only ellipses)")
        n = len(pieces)
        for k, piece in enumerate(pieces, 1):
            if not piece:
                return _missing(f"piece {k} of {n} is empty (ellipses with nothing between them)")
        needles = [_normalize(p) for p in pieces]
        placement, reason = self._place(needles, frm)
        if placement is None:
            if not reason:  # the first piece is nowhere
                reason = self._absent(needles[0])
                reason = reason if n == 1 else f"piece 1 of {n} {reason}"
            return _missing(reason)
        count = 1
        again, _ = self._place(needles, placement[-1][1])
        while again is not None:
            count += 1
            again, _ = self._place(needles, again[-1][1])
        spans = tuple((o[2], o[3]) for o in placement)
        return Grounding("elided", spans[0][0], spans[-1][1], spans, count, None)

    def _place(self, needles: list[str], frm: int) -> tuple[list[_Occurrence] | None, str]:
        """Earliest in-order, non-overlapping placement of the pieces within one paragraph.

        On failure the reason, or "" when the first piece does not occur at all.
        """
        n = len(needles)
        crossed = False
        while True:
            for first in self._find_all(needles[0], frm):
                chain = [first]
                for k in range(1, n):
                    nxt = next(self._find_all(needles[k], chain[-1][1]), None)
                    if nxt is None:
                        if crossed:
                            return None, "pieces span a paragraph break"
                        return None, f"piece {k + 1} of {n} not found after piece {k}"
                    chain.append(nxt)
                brk = self._break_in(chain[0][2], chain[-1][3])
                if brk is None:
                    return chain, ""
                crossed = True
                # Any valid placement must start after this blank line.
                frm = self._to_norm(brk)
                break
            else:
                return None, "pieces span a paragraph break" if crossed else ""

    # ----------------------------------------------------------------------- reasons

    def _absent(self, needle: str) -> str:
        """Why ``needle``, which has no valid occurrence, is not in the article."""
        self._words()
        for token in needle.split(" ")[1:-1]:
            if not self._is_word(token):
                return f"not in the article ('{token}' never occurs in it as a separate word)"
        found, complete = self._longest_prefix(needle)
        if found == len(needle):
            return "only found cutting through a unit of the article (e.g. a letter and its combining mark)"
        if not complete:
            return f"not in the article (a prefix of {found} of {len(needle)} characters occurs)"
        return f"not in the article (longest prefix found: {found} of {len(needle)} characters)"

    def _longest_prefix(self, needle: str) -> tuple[int, bool]:
        """Length of a long prefix of ``needle`` in the normalised source, and whether it is the longest.

        The hint only explains a rejection, so its search is bounded (``_HINT_STEPS`` finds, about one
        pass over the source) to keep rejections as cheap as matches. Invariant: ``needle[:best + 1]``
        does not occur before ``pos``.
        """
        norm = self._norm
        best, pos = self._prefix_jump(needle)
        for _ in range(_HINT_STEPS):
            if best >= len(needle):
                return best, True
            p = self._find_first(needle[: best + 1], pos)
            if p < 0:
                return best, True
            best = _common_prefix(norm, p, needle, best + 1)
            pos = p + 1
        return best, best >= len(needle)

    def _prefix_jump(self, needle: str) -> tuple[int, int]:
        """A head start for ``_longest_prefix``: ``(best, pos)`` from the longest prefix that ends at a
        space and occurs, found by bisection over word boundaries with the word index; else ``(0, 0)``.
        """
        self._words()
        tokens = needle.split(" ")
        ends = []  # ends[j]: length of the prefix through tokens[j + 1] and the space after it
        end = len(tokens[0]) + 1
        for token in tokens[1:-1]:
            if not self._is_word(token):
                break
            end += len(token) + 1
            ends.append(end)
        norm = self._norm
        found = 0, 0
        lo, hi = 0, len(ends) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            p = self._find_first(needle[: ends[mid]], 0)
            if p < 0:
                hi = mid - 1
            else:
                found = _common_prefix(norm, p, needle, ends[mid]), p + 1
                lo = mid + 1
        return found


def ground(candidate: str, source: str) -> Grounding:
    """Ground one candidate against one source; use ``SourceIndex`` for many candidates."""
    return SourceIndex(source).ground(candidate)
