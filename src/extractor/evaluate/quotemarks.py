"""Where an article's text is inside quotation marks: the evaluator's test for "a direct quote".

``quoted_regions`` scans each line (paragraph) left to right. An opening mark starts a region that ends
at the first closing mark of its kind after it: “…”, „…“ or „…”, «…», »…«, ‹…›, ›…‹, ‚…‘ or ‚…’,
「…」, 『…』, "…", ‘…’ and '…'. Marks inside a region (a nested quote) belong to it. An opening mark with no
closing mark in its paragraph quotes to the end of the paragraph (a quote running over several
paragraphs). An apostrophe between two letters (doesn’t, O’Neill) is neither an opening nor a closing
mark; ‘ and ' open only after a non-letter, and ’ and ' close only before a non-letter.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["inside_quotes", "quoted_regions"]

_CLOSERS: dict[str, str] = {
    "“": "”",
    "„": "“”",
    "«": "»",
    "»": "«",
    "‹": "›",
    "›": "‹",
    "‚": "‘’",
    "「": "」",
    "『": "』",
    '"': '"',
    "‘": "’",
    "'": "'",
}
_APOSTROPHES = frozenset("'’‘")


def _letter(text: str, i: int) -> bool:
    return 0 <= i < len(text) and text[i].isalnum()


def _opens(text: str, i: int) -> bool:
    return text[i] not in _APOSTROPHES or not _letter(text, i - 1)


def _closes(text: str, i: int) -> bool:
    return text[i] not in _APOSTROPHES or not _letter(text, i + 1)


def quoted_regions(text: str) -> list[tuple[int, int]]:
    """(start, end) of every quoted passage, marks included (see the module docstring)."""
    regions: list[tuple[int, int]] = []
    i = 0
    while i < len(text):
        closers = _CLOSERS.get(text[i])
        if closers is None or not _opens(text, i):
            i += 1
            continue
        line_end = text.find("\n", i)
        line_end = len(text) if line_end < 0 else line_end
        end = next(
            (j + 1 for j in range(i + 1, line_end) if text[j] in closers and _closes(text, j)), line_end
        )
        regions.append((i, end))
        i = end
    return regions


def inside_quotes(regions: Sequence[tuple[int, int]], start: int, end: int) -> bool:
    """Whether ``[start, end)`` lies within one quoted region."""
    return any(a <= start and end <= b for a, b in regions)
