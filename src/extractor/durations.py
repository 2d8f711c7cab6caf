"""Durations written as text: ``parse_duration`` (standard library only, so that the settings and the
rate limiter can both read them)."""

from __future__ import annotations

import re

__all__ = ["parse_duration"]

_UNIT_SECONDS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_NUM = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_UNIT = r"(?:ns|us|µs|μs|ms|s|m|h|d)"
_DURATION = re.compile(rf"(?:{_NUM}{_UNIT})+")
_DURATION_PART = re.compile(rf"({_NUM})({_UNIT})")
_BARE_NUMBER = re.compile(_NUM)


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration (``"1m30.5s"`` -> 90.5, ``"120ms"``, ``"6m0s"``) or a bare number.

    Raises ``ValueError`` on anything else (negative, empty, unknown unit).
    """
    s = text.strip().lower()
    if _BARE_NUMBER.fullmatch(s):
        return float(s)
    if not _DURATION.fullmatch(s):
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in _DURATION_PART.findall(s))
