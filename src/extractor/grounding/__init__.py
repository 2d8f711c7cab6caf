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

The package: ``normalize`` (the typographic normal form of rule 2 and the offset maps back to the
source), ``quotes`` (quotation-mark pairing of rule 0), ``index`` (``SourceIndex``: the word indexes,
the search and rules 1-4). Standard library only.
"""

from __future__ import annotations

from extractor.grounding.index import Grounding, SourceIndex, ground

__all__ = ["Grounding", "SourceIndex", "ground"]
