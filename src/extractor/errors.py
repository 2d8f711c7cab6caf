"""The extractor exception family.

Every error the library raises on purpose is an ``ExtractorError``; its message is one actionable line.

    ExtractorError
    ├── ConfigError           bad settings, missing API key, unknown mode, unreadable config file
    │   └── FolderBusyError   the run folder is locked by another run (its pid in the message)
    ├── LoadError*            (not raised: a value, see extractor.models.LoadError)
    ├── LLMError              the model could not give a usable answer
    │   ├── TransportError    network / HTTP failure after every transport retry (429, 5xx, timeouts)
    │   ├── TruncatedOutputError  finish_reason == "length" even after the larger-max_tokens retry
    │   └── ParseError        output still not valid JSON / schema after every re-ask
    ├── ReplayError           no recorded response for a request, or a stale recording
    ├── CacheError            the response cache cannot be opened, written or recovered
    └── StoreError            an output folder cannot be written or its results file is unreadable

Inside a batch these become error results (``ArticleResult.status == "error"``), never crashes.
"""

from __future__ import annotations

__all__ = [
    "CacheError",
    "ConfigError",
    "ExtractorError",
    "FolderBusyError",
    "LLMError",
    "ParseError",
    "ReplayError",
    "StoreError",
    "TransportError",
    "TruncatedOutputError",
]


class ExtractorError(Exception):
    """Base class of every error raised by extractor."""

    #: tokens and HTTP calls spent before the failure (an extractor.models.Usage), when known
    usage: object | None = None


class ConfigError(ExtractorError):
    """Settings are missing or invalid (e.g. no API key for a live model)."""


class FolderBusyError(ConfigError):
    """Another process holds the run folder's lock (another run or watch writes into it)."""


class LLMError(ExtractorError):
    """The model call failed after all retries and re-asks."""


class TransportError(LLMError):
    """HTTP-level failure (429, 5xx, timeout, connection) after every transport retry."""


class TruncatedOutputError(LLMError):
    """The model stopped at max_tokens, also on the retry with a larger budget."""


class ParseError(LLMError):
    """The output was not valid JSON for the schema after every re-ask."""


class ReplayError(ExtractorError):
    """Replay found no recording for a request, or the recording no longer matches it."""


class CacheError(ExtractorError):
    """The response cache is unusable (a damaged one is set aside and replaced; this is what cannot be)."""


class StoreError(ExtractorError):
    """An output folder or results file cannot be written or read."""
