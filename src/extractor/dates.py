"""Date phrases and partial dates: the one home of month names and date-phrase reading.

- ``parse_date_text`` reads the year, month and day a phrase names ("on January 6", "6 Jan. 2026");
  with ``parse_iso``, ``event_date`` and ``date_value`` it gives the digest's partial dates, which
  ``dates_conflict`` / ``date_agreement`` compare and ``date_label`` shows ("6 January (year not stated)").
- ``date_text_tokens`` / ``date_texts_agree`` compare two phrases loosely, for the evaluator
  ("January 6" = "on January 6" = "the 6th of January").

Both fold text with ``extractor.matching.fold``. Standard library only.
"""

from __future__ import annotations

import re

from extractor.matching import fold, word_tokens

MONTHS: dict[str, int] = {
    "january": 1,
    "jan": 1,
    "february": 2,
    "feb": 2,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "june": 6,
    "jun": 6,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sep": 9,
    "sept": 9,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}

PartialDate = tuple[int | None, int | None, int | None]
MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))


def parse_iso(value: str | None) -> PartialDate:
    if not value:
        return (None, None, None)
    m = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?", value.strip())
    if not m:
        return (None, None, None)
    return (int(m.group(1)), int(m.group(2)) if m.group(2) else None, int(m.group(3)) if m.group(3) else None)


def parse_date_text(text: str | None) -> PartialDate:
    """Month/day/year named in a date phrase ("on January 6", "6 Jan. 2026", "in March 2025")."""
    if not text:
        return (None, None, None)
    t = fold(text, straight_apostrophes=True)
    iso = re.search(r"\b(\d{4})-(\d{2})(?:-(\d{2}))?\b", t)
    if iso:
        return parse_iso(iso.group(0))
    year_m = re.search(r"\b(1[89]\d{2}|20\d{2})\b", t)
    year = int(year_m.group(1)) if year_m else None
    md = re.search(rf"\b({MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?!\d)", t)
    dm = re.search(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({MONTH_RE})\b", t)
    month: int | None = None
    day: int | None = None
    if md:
        month, day = MONTHS[md.group(1)], int(md.group(2))
    elif dm:
        month, day = MONTHS[dm.group(2)], int(dm.group(1))
    elif (bare := re.search(rf"\b({MONTH_RE})\b", t)) and (
        # A bare month name counts when spelled out, or next to a year: "may" and "mar" are usually words.
        year is not None or (len(bare.group(1)) > 3 and bare.group(1) != "may")
    ):
        month = MONTHS[bare.group(1)]
    if day is not None and not 1 <= day <= 31:
        day = None
    return (year, month, day)


def event_date(date: str | None, date_text: str | None) -> PartialDate:
    """``date`` completed from ``date_text`` when the two agree; ``date`` alone when they disagree."""
    base = parse_iso(date)
    extra = parse_date_text(date_text)
    if dates_conflict(base, extra):
        return base
    year, month, day = (x if x is not None else y for x, y in zip(base, extra, strict=True))
    return (year, month, day if month is not None else None)


def date_value(d: PartialDate) -> tuple[str, str]:
    year, month, day = d
    if year is not None:
        if month is None:
            return f"{year:04d}", "year"
        if day is None:
            return f"{year:04d}-{month:02d}", "month"
        return f"{year:04d}-{month:02d}-{day:02d}", "day"
    if month is not None:
        if day is None:
            return f"--{month:02d}", "month (no year)"
        return f"--{month:02d}-{day:02d}", "day (no year)"
    return "unknown", "unknown"


MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def date_label(value: str) -> str:
    """A ``date_value`` for people: "6 January 2026", "January 2026", "6 January (year not stated)"."""
    m = re.fullmatch(r"(\d{4}|-)-?(\d{2})?(?:-(\d{2}))?", value)
    if value == "unknown" or not m or (m.group(1) == "-" and not m.group(2)):
        return "date not stated" if value == "unknown" else value
    year = None if m.group(1) == "-" else m.group(1)
    month = int(m.group(2)) if m.group(2) else None
    day = int(m.group(3)) if m.group(3) else None
    if month is None or not 1 <= month <= 12:
        return year or value
    when = f"{day} {MONTH_NAMES[month - 1]}" if day is not None else MONTH_NAMES[month - 1]
    return f"{when} {year}" if year else f"{when} (year not stated)"


_PRECISION_LABELS = {
    "day (no year)": "day, year not stated",
    "month (no year)": "month, year not stated",
    "unknown": "not stated",
}


def precision_label(precision: str) -> str:
    return _PRECISION_LABELS.get(precision, precision)


def dates_conflict(a: PartialDate, b: PartialDate) -> bool:
    return any(x is not None and y is not None and x != y for x, y in zip(a, b, strict=True))


def date_agreement(a: PartialDate, b: PartialDate) -> str:
    """'day' when month and day are both known and equal, 'partial' for a shared year/month, else 'none'."""
    if a[1] is not None and a[2] is not None and b[1] is not None and b[2] is not None:
        return "day"
    if any(x is not None and y is not None for x, y in zip(a, b, strict=True)):
        return "partial"
    return "none"


# --------------------------------------------------------------------------- loose comparison

_DATE_FILLERS = frozenset(
    {"on", "in", "at", "by", "during", "since", "from", "until", "till", "of", "the", "a", "an"}
)  # fmt: skip
_ORDINAL = re.compile(r"^(\d+)(?:st|nd|rd|th)$")


def date_text_tokens(date_text: str | None) -> tuple[str, ...]:
    """A date phrase for loose comparison: accents removed, casefolded, punctuation, prepositions and
    articles dropped, ordinals to numbers ("On the 6th of January," -> 6 january)."""
    if date_text is None:
        return ()
    return tuple(_ORDINAL.sub(r"\1", t) for t in word_tokens(date_text) if t not in _DATE_FILLERS)


def date_texts_agree(predicted: str | None, gold: str | None) -> bool:
    """``date_text_tokens`` equal in any order: "January 6" = "on January 6" = "the 6th of January"; both
    null (or empty) agree."""
    return sorted(date_text_tokens(predicted)) == sorted(date_text_tokens(gold))
