"""The typographic normal form of rule 2 and the maps from normalised offsets back to the source."""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterator
from itertools import pairwise

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
# A non-ASCII run with the ASCII character before it (which may be a base for combining marks).
# ASCII characters never compose with what precedes them, so NFC can be applied run by run.
_NON_ASCII = re.compile(r"[\x00-\x7f]?[^\x00-\x7f]+")


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
        j, inside = _across(k, self.outs, self.oute, self.ins, self.ine)
        return None if inside else j

    def to_output(self, k: int) -> int:
        """Output boundary for input boundary ``k``, rounded up to the end of a segment it falls in."""
        return _across(k, self.ins, self.ine, self.outs, self.oute)[0]

    def inside_input(self, k: int) -> bool:
        """Whether input boundary ``k`` falls strictly inside a segment."""
        return _across(k, self.ins, self.ine, self.outs, self.oute)[1]


def _across(
    k: int, starts: list[int], ends: list[int], to_starts: list[int], to_ends: list[int]
) -> tuple[int, bool]:
    """Boundary ``k`` of one side of a ``_Map`` (its segments ``starts``/``ends``) carried to the other
    side, and whether it fell strictly inside a segment (then: that segment's end on the other side)."""
    i = bisect_right(starts, k) - 1
    if i < 0:
        return k, False
    if k == starts[i]:
        return to_starts[i], False
    if k < ends[i]:
        return to_ends[i], True
    return to_ends[i] + k - ends[i], False


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
