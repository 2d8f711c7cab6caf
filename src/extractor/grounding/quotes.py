"""Quotation marks (rule 0): which way each mark turns, which pairs with which, and growing a span
over the marks around it that pair inside it."""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable

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


def _is_punctuation(c: str) -> bool:
    return unicodedata.category(c)[0] in "PS"


class _QuoteMarks:
    """The quotation marks of one source, paired paragraph by paragraph on demand."""

    __slots__ = ("_break_ends", "_break_starts", "_pairs", "_paragraphs", "_source")

    def __init__(self, source: str, break_starts: list[int], break_ends: list[int]) -> None:
        self._source = source
        self._break_starts = break_starts  # the blank lines, as SourceIndex found them
        self._break_ends = break_ends
        # Paragraph start -> the pairs of quotation marks in that paragraph (both ways), built on demand.
        self._pairs: dict[int, dict[int, int]] = {}
        self._paragraphs: tuple[list[int], list[int]] | None = None  # (starts, ends), on demand

    def balance(
        self, pieces: list[tuple[int, int]], cut_ok: Callable[[int], bool]
    ) -> tuple[tuple[int, int], ...]:
        """The span grown over each quotation mark next to it (inline spaces between allowed) that pairs
        with a mark inside one of its pieces, and over the apostrophes (marks paired with nothing) on
        the way to one; ``cut_ok(k)`` tells whether a span may end at ``k``."""
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
                if inside and cut_ok(k):
                    pieces[-1], grown = (pieces[-1][0], k), True
            k = pieces[0][0]
            while k > 0 and src[k - 1] in _INLINE_SPACES:
                k -= 1
            while k > 0 and src[k - 1] in _FAMILY and (inside := pairs_inside(k - 1)) is not False:
                k -= 1
                if inside and cut_ok(k):
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
