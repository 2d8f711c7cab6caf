"""Ids, text normalisation and the one-line reasons of the loader."""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import TypeGuard

from extractor.models import Article, text_sha256

MAX_ID_LENGTH = 200

_ID_BAD_CHARS = re.compile(r"[^A-Za-z0-9._-]")
# A scheme of two characters or more, so that a Windows drive (C:/) is never taken for one.
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+://")


def is_uri(path: str | os.PathLike[str]) -> TypeGuard[str]:
    """Whether ``path`` is a ``scheme://`` URI (read through pyarrow); a ``Path`` is always local."""
    return isinstance(path, str) and _URI.match(path) is not None


def normalize_text(text: str) -> str:
    """Remove a leading BOM and turn ``\\r\\n`` and lone ``\\r`` into ``\\n``; nothing else changes."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def sanitize_id(raw: str, text_sha: str) -> str:
    """Make ``raw`` safe as a file or folder name: only ``[A-Za-z0-9._-]`` (others become ``_``), no
    ``..``, no leading or trailing dots, underscores or dashes, at most 200 characters. An id that
    ends up empty falls back to the first 16 hex digits of ``text_sha``."""
    safe = _ID_BAD_CHARS.sub("_", raw)
    safe = re.sub(r"\.{2,}", ".", safe).strip("._-")
    safe = safe[:MAX_ID_LENGTH].rstrip("._-")
    return safe or text_sha[:16]


class _UniqueIds:
    """Hands out ids unique within one load, case-insensitively (``-2``, ``-3``, … on a clash)."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def claim(self, wanted: str) -> str:
        candidate, n = wanted, 1
        while candidate.lower() in self._taken:
            n += 1
            suffix = f"-{n}"
            candidate = wanted[: MAX_ID_LENGTH - len(suffix)] + suffix
        self._taken.add(candidate.lower())
        return candidate


def _article(
    raw_id: str,
    text: str,
    *,
    source: str,
    title: str | None = None,
    url: str | None = None,
    published: dt.date | None = None,
) -> Article:
    sha = text_sha256(text)
    return Article(
        id=sanitize_id(raw_id, sha),
        text=text,
        title=title,
        url=url,
        published=published,
        source=source,
        sha256=sha,
    )


def _parse_date(value: object) -> dt.date | None:
    """An ISO date, or the date of an ISO datetime; None if ``value`` is neither."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(value).date()
    except ValueError:
        return None


def _clean_str(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = normalize_text(value).strip()
    return value or None


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _over_cap(what: str, cap: int) -> str:
    return f"{what}, over the input cap of {cap:,} bytes (max_input_bytes; raise it with --max-input-bytes)"


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    if isinstance(exc, FileNotFoundError):
        return "no such file or directory"
    return _one_line(exc.strerror or str(exc) or type(exc).__name__)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:300] or "unknown error"
