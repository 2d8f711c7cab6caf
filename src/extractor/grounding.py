"""Deterministic verbatim validator: where exactly does a quote or an evidence string occur in its article?

A candidate string is checked against the article text (the *source*) by these rules, in order:

0. Whitespace and quotation marks at the very start and end of the candidate are stripped; the rules
   below place the remaining core. An empty core is ``not_found`` ("empty candidate"). The reported
   span is the core's place grown over each quotation mark next to it in the article (inline spaces
   between allowed: space, tab, NBSP, thin space, narrow NBSP) that pairs with a mark inside it,
   whether or not the candidate has that mark, passing on the way only marks that pair with nothing
   (apostrophes): the ’ that closes an inner quotation opened inside the candidate (``said, ‘We can’t
   close the shelter before spring,’``), the ‘ that opens one closed inside it. The quotation's own
   marks, which pair with each other outside the span, stay out, as do marks the article does not
   have there. Status and ``occurrences`` are the core's.
1. **exact** — the core is a substring of the source.
2. **normalized** — the core equals part of the source under these typographic equivalences only:
   all quotation marks and apostrophes alike (``' " ` ‘ ’ ‚ ‛ “ ” „ ‟ « » ‹ ›``, also ``ʼ ＂ ＇ 「 」
   『 』``); any run of dashes alike — hyphen-minus, U+2010 hyphen, U+2011 non-breaking hyphen, figure
   dash, en dash, em dash, horizontal bar, minus sign (and small/full-width hyphen-minus, small em
   dash) — so ``--`` equals ``—``; any run of whitespace alike (space, tab, line breaks, NBSP U+00A0,
   thin space U+2009, narrow NBSP U+202F and every other character ``str.isspace`` accepts); ``…`` and
   ``...`` alike; Unicode NFC. Offsets are mapped back to the original characters.
3. **elided** — otherwise, if the core contains ellipses (``...``, ``…``, ``[...]``, ``[…]``, ``(...)``,
   ``(…)``; a run of more than three dots counts as one), the pieces between them (stripped as in
   rule 0) must each be found by rules 1-2, non-empty, in order, without overlapping, and within one
   paragraph: no blank line (a ``\\n``, optional whitespace, another ``\\n``; or U+2029) between the
   start of the first piece and the end of the last. The earliest placement wins: each piece is
   searched after the end of the previous one; when that placement crosses a blank line, later
   occurrences of the first piece are tried. An ellipsis at the very start or end of the core only
   marks omitted context and is dropped (so ``…ruled out deploying`` is one elided piece); two
   ellipses with nothing between them are ``not_found``.
4. **not_found** — everything else, with a one-line ``reason``. There is no case folding, fuzzy or
   edit-distance matching, word reordering, stemming or translation: one changed letter, a capital
   where the article has a small letter, a dropped or added word without an ellipsis, or a piece
   stitched from two places without an ellipsis is ``not_found``. Reasons: "empty candidate";
   "not in the article (...)", naming an inner word that never occurs as a separate word, else giving
   the longest prefix found; "piece k of n not found after piece k-1"; "pieces span a paragraph break";
   "piece k of n is empty (...)"; "only found cutting through a unit of the article (...)".

Offsets are Python ``str`` indices (code points) into the original source, end-exclusive. For
``normalized`` and ``elided`` they cover whole original units: a collapsed whitespace or dash run, an
``…`` matched by ``...``, a base letter with its combining marks. A match never starts or ends inside a
character sequence: not before a combining mark or emoji modifier, not after a zero-width joiner, not
inside a flag (a pair of regional indicators), and not inside a sequence that NFC composes (``e`` is not
found in ``e\\u0301``).

When the text occurs more than once, the first occurrence is reported and ``occurrences`` counts the
non-overlapping occurrences under the rule that matched (literal ones for ``exact``, typographically
equal ones for ``normalized``, complete non-overlapping placements for ``elided``).

Quotation marks pair within a paragraph and a family (single ``' ‘ ’ ‚ ‛ ‹ ›``, double ``" “ ” „ ‟ « »``,
``「 」``, ``『 』``); a closing mark closes the innermost open mark of its family. Whether a mark opens
or closes is read from its neighbours (past adjacent marks): after a space or punctuation and before
a word it opens, after a word and before a space or punctuation it closes; a single mark between two
letters is an apostrophe (``can’t``); between two punctuation marks it opens after an opening bracket
or dash, else closes; otherwise the glyph decides (“ opens, ” closes). ’ never opens and „ ‚ never
close. A closing ’ or ' (maybe an apostrophe) closes only when the innermost open mark is of its
family; after an s it may be a plural possessive: before another closing ’ (``workers’,’``) it is one,
and before another word (``students’ union``) it closes only until a later closing mark does.

``SourceIndex`` normalises the source once (linear time) and keeps a map from normalised to original
offsets; candidates are then found with C-speed ``str.find`` on the normalised text, narrowed by a
word index. ``SourceIndex.ground(candidate, start=N)`` grounds in the article from offset ``N`` on.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Literal

__all__ = ["Grounding", "SourceIndex", "ground"]

_QUOTES = (
    "'\"`\u2018\u2019\u201a\u201b\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a"
    "\u02bc\uff02\uff07\u300c\u300d\u300e\u300f"
)
_DASHES = "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
# Exactly the characters for which str.isspace() is true.
_SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
_STRIP = _SPACES + _QUOTES
# Quotation marks that can pair, by family: single, double, CJK corner, CJK white corner (U+02BC, the
# modifier letter apostrophe, never pairs). Which way a mark turns is read from its neighbours; the
# glyph decides when they do not tell, and rules out what it never does (’ never opens: it is also the
# apostrophe; „ ‚ never close).
_FAMILY = {
    **dict.fromkeys("'`\u2018\u2019\u201a\u201b\u2039\u203a\uff07", 1),
    **dict.fromkeys('"\u201c\u201d\u201e\u201f\u00ab\u00bb\uff02', 2),
    **dict.fromkeys("\u300c\u300d", 3),
    **dict.fromkeys("\u300e\u300f", 4),
}
_PAIRING = re.compile("[" + re.escape("".join(_FAMILY)) + "]")
_OPENS = "`\u2018\u201a\u201b\u201c\u201e\u201f\u00ab\u2039\u300c\u300e"
_CLOSES = "\u2019\u201d\u00bb\u203a\u300d\u300f"
_NEVER_OPENS = "\u2019\u300d\u300f"
_NEVER_CLOSES = "`\u201a\u201b\u201e\u201f\u300c\u300e"
# Spaces that may stand between a quotation mark and the words it encloses (French « Oui »).
_INLINE_SPACES = " \t\u00a0\u2009\u202f"
_REPLACEMENTS: tuple[tuple[str, str], ...] = (
    *((c, '"') for c in _QUOTES if c != '"'),
    *((c, "-") for c in _DASHES if c != "-"),
    *((c, " ") for c in _SPACES if c != " "),
)
_ZWJ = "\u200d"
# What changes length under normalisation, after the one-to-one replacements above. Separate patterns
# with a literal prefix scan far faster than one alternation.
_RUNS = (re.compile("  +"), re.compile("--+"), re.compile("\u2026"))
_RUNS_ANY = re.compile(r" {2,}|-{2,}|\u2026")
_ELLIPSIS = re.compile(r"\[\s*(?:\.\.\.|\u2026)\s*\]|\(\s*(?:\.\.\.|\u2026)\s*\)|\.{3,}|\u2026")
_BLANK_LINES = (re.compile(r"\n[^\S\n]*\n"), re.compile("\u2029"))
# A non-ASCII run with the ASCII character before it (which may be a base for combining marks).
# ASCII characters never compose with what precedes them, so NFC can be applied run by run.
_NON_ASCII = re.compile(r"[\x00-\x7f]?[^\x00-\x7f]+")
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


class _Map:
    """Piecewise map between an output string and the input it was made from.

    Outside the listed segments the two strings agree character for character; segment ``i`` turns
    ``input[ins[i]:ine[i]]`` into ``output[outs[i]:oute[i]]`` as one unit.
    """

    __slots__ = ("ine", "ins", "oute", "outs")

    def __init__(self) -> None:
        self.outs: list[int] = []
        self.oute: list[int] = []
        self.ins: list[int] = []
        self.ine: list[int] = []

    def add(self, out_start: int, out_end: int, in_start: int, in_end: int) -> None:
        self.outs.append(out_start)
        self.oute.append(out_end)
        self.ins.append(in_start)
        self.ine.append(in_end)

    def to_input(self, k: int) -> int | None:
        """Input boundary for output boundary ``k``; None when ``k`` falls inside a segment."""
        i = bisect_right(self.outs, k) - 1
        if i < 0:
            return k
        if k == self.outs[i]:
            return self.ins[i]
        if k < self.oute[i]:
            return None
        return self.ine[i] + k - self.oute[i]

    def to_output(self, k: int) -> int:
        """Output boundary for input boundary ``k``, rounded up to the end of a segment it falls in."""
        i = bisect_right(self.ins, k) - 1
        if i < 0:
            return k
        if k == self.ins[i]:
            return self.outs[i]
        if k < self.ine[i]:
            return self.oute[i]
        return self.oute[i] + k - self.ine[i]

    def inside_input(self, k: int) -> bool:
        """Whether input boundary ``k`` falls strictly inside a segment."""
        i = bisect_right(self.ins, k) - 1
        return i >= 0 and k < self.ine[i] and k != self.ins[i]


def _nfc_clusters(chunk: str) -> Iterator[tuple[int, int]]:
    """Split ``chunk`` into the smallest pieces that NFC normalises independently."""
    starts = [0, *(i for i in range(1, len(chunk)) if not unicodedata.combining(chunk[i]))]
    starts.append(len(chunk))
    nfc = unicodedata.normalize
    cur_s, cur_e = starts[0], starts[1]
    for s, e in pairwise(starts[1:]):
        a, b = chunk[cur_s:cur_e], chunk[s:e]
        if nfc("NFC", a + b) == nfc("NFC", a) + nfc("NFC", b):
            yield cur_s, cur_e
            cur_s = s
        cur_e = e
    yield cur_s, cur_e


def _nfc(text: str) -> tuple[str, _Map | None]:
    """NFC of ``text`` and the map back to ``text`` (None when ``text`` is already NFC)."""
    if unicodedata.is_normalized("NFC", text):
        return text, None
    parts: list[str] = []
    seg = _Map()
    prev = 0
    delta = 0  # len(output so far) - len(input so far)
    for m in _NON_ASCII.finditer(text):
        chunk = m.group()
        if unicodedata.is_normalized("NFC", chunk):
            continue
        base = m.start()
        for cs, ce in _nfc_clusters(chunk):
            cluster = chunk[cs:ce]
            composed = unicodedata.normalize("NFC", cluster)
            if composed == cluster:
                continue
            s, e = base + cs, base + ce
            parts.append(text[prev:s])
            parts.append(composed)
            seg.add(s + delta, s + delta + len(composed), s, e)
            delta += len(composed) - len(cluster)
            prev = e
    parts.append(text[prev:])
    return "".join(parts), seg


def _replace(text: str) -> str:
    for old, new in _REPLACEMENTS:
        if old in text:
            text = text.replace(old, new)
    return text


def _collapse(text: str) -> tuple[str, _Map]:
    """Collapse space and dash runs to one character and expand ``…`` to ``...``, with the map back."""
    parts: list[str] = []
    seg = _Map()
    prev = 0
    out = 0
    for s, e in sorted(m.span() for pattern in _RUNS for m in pattern.finditer(text)):
        first = text[s]
        unit = "..." if first == "\u2026" else first
        parts.append(text[prev:s])
        out += s - prev
        parts.append(unit)
        seg.add(out, out + len(unit), s, e)
        out += len(unit)
        prev = e
    parts.append(text[prev:])
    return "".join(parts), seg


def _normalize(text: str) -> str:
    """The typographic normal form of rule 2 (no stripping)."""
    text = _replace(unicodedata.normalize("NFC", text))
    return _RUNS_ANY.sub(lambda m: "..." if m.group() == "\u2026" else m.group()[0], text)


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


def _is_extender(c: str) -> bool:
    """Characters that continue the character before them (marks, joiner, emoji modifiers, tags)."""
    return (
        unicodedata.category(c) in ("Mn", "Mc", "Me")
        or c == _ZWJ
        or "\U0001f3fb" <= c <= "\U0001f3ff"
        or "\U000e0020" <= c <= "\U000e007f"
    )


def _is_regional(c: str) -> bool:
    return "\U0001f1e6" <= c <= "\U0001f1ff"


def _is_punctuation(c: str) -> bool:
    return unicodedata.category(c)[0] in "PS"


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
        "_pairs",
        "_paragraphs",
        "_positions",
        "_queries",
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
        # Paragraph start -> the pairs of quotation marks in that paragraph (both ways), built on demand.
        self._pairs: dict[int, dict[int, int]] = {}
        self._paragraphs: tuple[list[int], list[int]] | None = None  # (starts, ends), on demand

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
            ((s, e),) = self._balance(exact[:1])
            return Grounding("exact", s, e, ((s, e),), len(exact), None)
        if occurrences:
            normalized = _first_non_overlapping([(o[2], o[3]) for o in occurrences])
            ((s, e),) = self._balance(normalized[:1])
            return Grounding("normalized", s, e, ((s, e),), len(normalized), None)
        elided = self._elided(core, frm)
        if elided is not None and elided.found:
            pieces = self._balance(list(elided.pieces))
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

    # ----------------------------------------------------------------------- quotation marks (rule 0)

    def _balance(self, pieces: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
        """The span grown over each quotation mark next to it (inline spaces between allowed) that pairs
        with a mark inside one of its pieces, and over the apostrophes (marks paired with nothing) on
        the way to one."""
        src = self._source

        def pairs_inside(k: int) -> bool | None:
            """True if the mark at ``k`` pairs inside, None if it pairs with nothing."""
            partner = self._partner(k)
            return None if partner < 0 else any(a <= partner < b for a, b in pieces)

        grown = True
        while grown:
            grown = False
            k = pieces[-1][1]
            while k < len(src) and src[k] in _INLINE_SPACES:
                k += 1
            while k < len(src) and src[k] in _FAMILY and (inside := pairs_inside(k)) is not False:
                k += 1
                if inside and self._cut_ok(k):
                    pieces[-1], grown = (pieces[-1][0], k), True
            k = pieces[0][0]
            while k > 0 and src[k - 1] in _INLINE_SPACES:
                k -= 1
            while k > 0 and src[k - 1] in _FAMILY and (inside := pairs_inside(k - 1)) is not False:
                k -= 1
                if inside and self._cut_ok(k):
                    pieces[0], grown = (k, pieces[0][1]), True
        return tuple(pieces)

    def _partner(self, k: int) -> int:
        """Position of the quotation mark that pairs with the one at ``k`` in its paragraph, else -1."""
        if self._paragraphs is None:
            starts, ends = [0], []
            for s, e in zip(self._break_starts, self._break_ends, strict=True):
                if s < starts[-1]:  # a blank line around a U+2029: one break
                    starts[-1] = max(starts[-1], e)
                else:
                    ends.append(s)
                    starts.append(e)
            ends.append(len(self._source))
            self._paragraphs = starts, ends
        starts, ends = self._paragraphs
        i = bisect_right(starts, k) - 1  # a mark is never inside a blank line
        lo, hi = starts[i], ends[i]
        pairs = self._pairs.get(lo)
        if pairs is None:
            pairs = self._pairs[lo] = self._pair_marks(lo, hi)
        return pairs.get(k, -1)

    def _pair_marks(self, lo: int, hi: int) -> dict[int, int]:
        """Pair the quotation marks of ``source[lo:hi]`` (one paragraph), each with its partner.

        A closing mark closes the innermost open mark of its family (marks of other families opened
        after it stay unpaired), except that a closing ’ or ' (maybe an apostrophe) closes only when
        the innermost open mark is of its family. After an s it may be a plural possessive: before
        another closing ’ (``workers’,’``) it is one; before another word (``students’ union``) it
        closes only until a later closing mark of the family does (the last such ’ if none does) or
        the family opens again.
        """
        src = self._source
        pairs: dict[int, int] = {}
        stack: list[tuple[int, int]] = []  # (family, position) of each open mark
        possessive: dict[int, int] = {}  # open mark -> the ’ after an s that closes it for now
        for m in _PAIRING.finditer(src, lo, hi):
            k = m.start()
            family = _FAMILY[src[k]]
            role = self._role(k)
            if role > 0:
                if stack and stack[-1][0] == family and stack[-1][1] in possessive:
                    stack.pop()  # that ’ did close it
                stack.append((family, k))
                continue
            if role == 0:
                continue
            if src[k] in "'\u2019":  # maybe an apostrophe: closes only its own family's innermost mark
                if not stack or stack[-1][0] != family or self._possessive_then_closed(k):
                    continue
                if (
                    src[k - 1] in "sS"
                    and src[k + 1 : k + 2] in _INLINE_SPACES
                    and src[k + 2 : k + 3].isalnum()
                ):
                    opening = stack[-1][1]
                    pairs.pop(possessive.get(opening, -1), None)
                    possessive[opening] = k
                    pairs[opening], pairs[k] = k, opening
                    continue
            d = len(stack) - 1
            while d >= 0 and stack[d][0] != family:
                d -= 1
            if d >= 0:
                opening = stack[d][1]
                pairs.pop(possessive.pop(opening, -1), None)
                del stack[d:]
                pairs[opening], pairs[k] = k, opening
        return pairs

    def _possessive_then_closed(self, k: int) -> bool:
        """Whether the ’ or ' at ``k`` follows an s and, before any space or word, another single
        closing mark follows it (``workers’,’``): a possessive, and the quotation's end after it."""
        src = self._source
        if src[k - 1] not in "sS":
            return False
        j = k + 1
        while j < len(src) and _is_punctuation(src[j]):
            if _FAMILY.get(src[j]) == 1 and src[j] not in _NEVER_CLOSES:
                return True
            j += 1
        return False

    def _role(self, k: int) -> int:
        """1 if the quotation mark at ``k`` opens, -1 if it closes, 0 if neither (an apostrophe).

        Its neighbours (past adjacent marks) decide, as in typesetting: a mark with a space or
        punctuation before it and a word after it opens; one with a word before it and a space or
        punctuation after it closes. Between two letters a single mark is an apostrophe and the glyph
        decides for the others (“ opens, ” closes, straight marks do neither), as between two spaces;
        between two punctuation marks a mark opens after an opening bracket or dash, else closes.
        """
        src = self._source
        c = src[k]
        if _FAMILY[c] > 2:
            return 1 if c in _OPENS else -1
        i = k - 1
        while i >= 0 and src[i] in _FAMILY:
            i -= 1
        j = k + 1
        while j < len(src) and src[j] in _FAMILY:
            j += 1
        before = src[i] if i >= 0 else " "
        after = src[j] if j < len(src) else " "
        before_p, after_p = _is_punctuation(before), _is_punctuation(after)
        opens = not after.isspace() and (not after_p or before.isspace() or before_p)
        closes = not before.isspace() and (not before_p or after.isspace() or after_p)
        if opens != closes:
            role = 1 if opens else -1
        elif opens and not (before_p or after_p):  # inside a word
            if _FAMILY[c] == 1:
                return 0
            role = 1 if c in _OPENS else -1 if c in _CLOSES else 0
        elif opens:  # between punctuation: ,”. or (“(
            role = 1 if unicodedata.category(before) in ("Ps", "Pi", "Pd") else -1
        else:  # between spaces
            role = 1 if c in _OPENS else -1 if c in _CLOSES else 0
        if (role > 0 and c in _NEVER_OPENS) or (role < 0 and c in _NEVER_CLOSES):
            return 0
        return role

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
