"""The extractor exception family.

Every error the library raises on purpose is an ``ExtractorError``; its message is one actionable line.

    ExtractorError
    ├── ConfigError           bad settings, missing API key, unknown mode, unreadable config file
    │   └── FolderBusyError   the run folder is locked by another run (its pid in the message)
    ├── LoadError*            (not raised: a value, see extractor.models.LoadError)
    ├── LLMError              the model could not give a usable answer
    │   ├── TransportError    network / HTTP failure after every transport retry (429, 5xx, timeouts)
    │   ├── TruncatedOutputError  finish_reason == "length" even after the larger-max_tokens retry
    │   └── ParseError        no usable answer (not JSON, or not an object with the three lists)
    │                         after every re-ask; names the failing field paths
    ├── ReplayError           no recorded response for a request, or a stale recording
    ├── CacheError            the response cache cannot be opened, written or recovered
    └── StoreError            an output folder cannot be written or its results file is unreadable

Inside a batch these become error results (``ArticleResult.status == "error"``), never crashes.

``redact(text, *secrets)`` takes credentials out of any text before it is printed, stored or rendered.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote, quote_plus

__all__ = [
    "REDACTED",
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
    "redact",
]

#: what a credential is replaced with (upper case: rich's console markup leaves it alone)
REDACTED = "[REDACTED]"

# Header, JSON-field or parameter names whose value is a credential; preceded by no letter or digit, so
# OPENAI_API_KEY=... counts but "check OPENAI_API_KEY" (no value) does not.
_NAMES = (
    r"(?:proxy-)?authorization|x-api-key|api[-_]?key|apikey|ocp-apim-subscription-key|x-goog-api-key"
    r"|(?:access|refresh|id|auth|bearer|session)[-_]?token|client[-_]?secret|secret[-_]?key|password|passwd"
)
_NOT_YET = r"(?!\[REDACTED\])"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Authorization: Bearer x / "api_key": "x" / {'api-key': 'x'} / api-key=x  (an auth scheme goes too)
    (
        re.compile(
            rf"(?<![A-Za-z0-9])((?:{_NAMES})[\"']?\s*[:=]\s*[\"']?)"
            rf"(?:(?:bearer|basic|token|digest|apikey)\s+)?{_NOT_YET}[^\s\"'&,;<>]+",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
    # a bare "Bearer <token>"
    (re.compile(rf"\b(bearer\s+){_NOT_YET}[A-Za-z0-9._~+/-]{{8,}}=*", re.IGNORECASE), rf"\1{REDACTED}"),
    # provider key shapes: OpenAI / Anthropic sk-..., Groq gsk_..., xAI xai-..., Google AIza..., Hugging Face
    # hf_..., GitHub tokens
    (
        re.compile(
            r"(?<![A-Za-z0-9_-])(?:sk-|gsk_|xai-|hf_|ghp_|github_pat_)[A-Za-z0-9_-]{16,}"
            r"|(?<![A-Za-z0-9_-])AIza[A-Za-z0-9_-]{30,}"
        ),
        REDACTED,
    ),
    # JSON Web Tokens (Azure AD and other OAuth bearer tokens)
    (re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"), REDACTED),
    # user:password@ in a URL
    (re.compile(rf"\b([a-z][a-z0-9+.-]*://){_NOT_YET}[^/\s@?#\"'<>]+@", re.IGNORECASE), rf"\1{REDACTED}@"),
    # secret-looking query parameters (the names config.scrub_url drops): ?api-key=x&sig=y
    (
        re.compile(
            r"([?&][A-Za-z0-9_.-]*(?:key|token|secret|signature|sig|password|auth)[A-Za-z0-9_.-]*=)"
            rf"{_NOT_YET}[^&\s\"'#<>]+",
            re.IGNORECASE,
        ),
        rf"\1{REDACTED}",
    ),
]
_MIN_SECRET = 4  # a shorter "key" (local servers take any) is no secret, and replacing it would garble text
_WHOLE_WORD_BELOW = 20  # a secret shorter than this is replaced only where it is not part of a longer word


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with each given secret (as is, URL-encoded, JSON-escaped) and anything shaped like a
    credential (``Authorization: ...``, ``Bearer ...``, ``api-key=...``, ``sk-...``, a JWT, a URL's
    ``user:password@``, secret query parameters) replaced by ``REDACTED``.

    Apply it to every message that may hold text from outside (an HTTP body, an exception's ``str``, a
    URL) before printing, storing or rendering it; it is idempotent.
    """
    for secret in sorted({s for s in secrets if s and len(s.strip()) >= _MIN_SECRET}, key=len, reverse=True):
        forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
        for form in sorted(forms, key=len, reverse=True):
            if form not in text:
                continue
            if len(form) >= _WHOLE_WORD_BELOW:
                text = text.replace(form, REDACTED)
            else:
                text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", REDACTED, text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


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
    """No usable answer after every re-ask: not JSON, or not an object with the three lists. (Single
    items that fail the schema do not raise: they are rejected and the rest is kept.)"""


class ReplayError(ExtractorError):
    """Replay found no recording for a request, or the recording no longer matches it."""


class CacheError(ExtractorError):
    """The response cache is unusable (a damaged one is set aside and replaced; this is what cannot be)."""


class StoreError(ExtractorError):
    """An output folder or results file cannot be written or read."""
