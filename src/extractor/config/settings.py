"""``Settings``: the model, endpoint, mode, limits, prices and cache of an extraction run, their checks,
and ``answer_settings`` (what shapes a model's answer: the cache and recording key)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import platformdirs

from extractor.config.base import SettingsBase, _check_name, _check_positive, _check_secret, _setting
from extractor.errors import ConfigError, redact

Mode = Literal["tools", "json_schema", "json", "md_json"]


# USD per 1M tokens (input, output). Override with Settings.prices or [extractor.prices] in the config file.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "reference-fixture": (0.0, 0.0),
}


# The largest input file read (a JSONL file: the largest line); larger ones are that input's LoadError.
DEFAULT_MAX_INPUT_BYTES = 20_000_000


def _default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("extractor"))


_SECRET_PARAM = re.compile(r"(key|token|secret|signature|sig|password|auth)", re.IGNORECASE)


def scrub_url(url: str) -> str:
    """The URL without user:password or secret-looking query parameters (``?api-key=...``). A URL
    with neither comes back unchanged, character for character (it is part of every cache key)."""
    parts = urlsplit(url)
    pairs = [p for p in parts.query.split("&") if p] if parts.query else []
    kept = [p for p in pairs if not _SECRET_PARAM.search(p.split("=", 1)[0])]
    if "@" not in parts.netloc and len(kept) == len(pairs):
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(kept), parts.fragment))


def url_secrets(url: str | None) -> list[str]:
    """The credentials in ``url``: its password and the values of its secret-looking query parameters
    (what ``scrub_url`` drops), for ``extractor.errors.redact``."""
    if not url:
        return []
    parts = urlsplit(url)
    found = [unquote(parts.password)] if parts.password else []
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        if value and _SECRET_PARAM.search(name):
            found.append(unquote(value))
    return found


class Settings(SettingsBase):
    """Everything that configures an extraction run, declared once: each field's default, help, env
    variable and flag."""

    flags_title: ClassVar[str] = "model and limits (flags override env vars and the config file)"

    model: str = _setting("gpt-4o-mini", "model name", env=True, flag=True)
    base_url: str | None = _setting(None, "OpenAI-compatible endpoint", env="OPENAI_BASE_URL", flag=True)
    api_key: str | None = _setting(None, "API key", env="OPENAI_API_KEY", repr=False)
    mode: Mode = _setting("tools", "instructor mode", env=True, flag=True)
    temperature: float = _setting(0.0, "sampling temperature (0-2)", flag=True)
    max_tokens: int = _setting(4096, "completion tokens per request", flag=True)
    max_tokens_retry: int = _setting(16384, "completion tokens of the retry after a truncated answer")
    timeout_s: float = _setting(120.0, "request timeout in seconds", flag="--timeout")
    transport_attempts: int = _setting(6, "attempts per request on 429, 5xx and connection errors")
    transport_max_wait_s: float = _setting(300.0, "longest wait between attempts, in seconds")
    reasks: int = _setting(1, "re-asks on schema/grounding failure", flag=True)
    reask_max_listed: int = _setting(10, "failed items named in a re-ask")
    cache_dir: Path = _setting(help="response cache", env=True, flag=True, default_factory=_default_cache_dir)
    use_cache: bool = _setting(True, "use the response cache", flag="--no-cache")
    # The shared response cache (one JSON file per answer, extractor.fscache) at a folder or pyarrow URL
    # (s3://bucket/prefix): several hosts can share it; unset = diskcache in cache_dir (one host).
    cache_url: str | None = _setting(None, "shared JSON cache: folder or s3:// URL", env=True, flag=True)
    replay_dir: Path | None = _setting(None, "answer from the recorded exchanges in this folder")
    record_dir: Path | None = _setting(None, "record every exchange into this folder")
    chunk_chars: int = _setting(300_000, "split articles longer than this", flag=True)
    chunk_overlap_chars: int = _setting(2_000, "characters shared by adjacent chunks", flag="--chunk-overlap")
    # Enough in flight for ~10 requests/s at 1.5 s latency; --rpm/--tpm and the server's 429s and
    # x-ratelimit-* headers then set the pace, so a high default does not mean a storm of 429s.
    concurrency: int = _setting(16, "articles in flight", env=True, flag=True)
    rpm: int | None = _setting(None, "requests/min limit", env=True, flag=True)
    tpm: int | None = _setting(None, "tokens/min limit", env=True, flag=True)
    prices: dict[str, tuple[float, float]] = _setting(
        help="USD per 1M tokens (input, output) by model, over DEFAULT_PRICES", default_factory=dict
    )
    # The Batch API (extractor run --batch-api): prices per model (default: batch_price_ratio x prices),
    # polling (first wait, x backoff per poll up to the max wait, and a give-up time: None waits for the
    # completion window), requests per batch (OpenAI's limit is 50,000) and the completion window.
    batch_prices: dict[str, tuple[float, float]] = _setting(
        help="Batch API USD per 1M tokens by model", default_factory=dict
    )
    batch_price_ratio: float = _setting(0.5, "Batch API price as a share of the direct price")
    batch_poll_s: float = _setting(
        30.0,
        "first wait between Batch API polls, in seconds",
        env=True,
        flag="--batch-poll",
    )
    batch_poll_max_s: float = _setting(
        600.0,
        "longest wait between Batch API polls, in seconds",
        env=True,
        flag="--batch-poll-max",
    )
    batch_poll_backoff: float = _setting(
        1.5,
        "each wait between Batch API polls this many times the last, up to --batch-poll-max (1-10)",
        env=True,
        flag="--batch-poll-backoff",
    )
    batch_poll_timeout_s: float | None = _setting(
        None,
        "give up polling after this many seconds of waits; the batches keep running and the next run "
        "resumes them (default: wait for the completion window)",
        env=True,
        flag="--batch-poll-timeout",
    )
    batch_max_requests: int = _setting(50_000, "requests per batch")
    batch_window: str = _setting("24h", "Batch API completion window")
    # Inputs: follow symlinks that point outside the given paths; the size cap of one input.
    follow_symlinks: bool = _setting(
        False, "load symlinks that point outside the given paths (refused by default)", flag=True
    )
    max_input_bytes: int = _setting(
        DEFAULT_MAX_INPUT_BYTES, "size cap of one input file, of one line in JSONL", flag=True
    )
    # The prompt: at most this many events per article (per chunk), and the language of `summary` and
    # stance `target` (quotes, evidence, names and date_text always stay in the article's language).
    max_events: int = _setting(10, "events per article, at most", env=True, flag=True)
    output_language: str = _setting(
        "English", "language of summaries and stance targets", env=True, flag=True
    )

    def _check(self) -> None:
        super()._check()
        _check_settings(self)

    @property
    def endpoint(self) -> str:
        """The base URL requests go to (OpenAI's when none is set)."""
        return (self.base_url or "https://api.openai.com/v1").rstrip("/")

    @property
    def public_endpoint(self) -> str:
        """``endpoint`` without credentials or secret query parameters: what keys, recordings and
        messages show."""
        return scrub_url(self.endpoint)

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credentials these settings hold (API key, base URL password and secret query values):
        what ``extractor.errors.redact`` must take out of any message."""
        return (*super().secrets, *url_secrets(self.base_url), *url_secrets(self.cache_url))

    def price(self) -> tuple[float, float] | None:
        """(input, output) USD per 1M tokens for this model, user overrides first."""
        return _lookup({**DEFAULT_PRICES, **self.prices}, self.model)

    def batch_price(self) -> tuple[float, float] | None:
        """(input, output) USD per 1M tokens through the Batch API: ``batch_prices`` for this model, else
        ``batch_price_ratio`` times the direct price."""
        found = _lookup(self.batch_prices, self.model)
        if found is not None:
            return found
        direct = self.price()
        return (
            None
            if direct is None
            else (direct[0] * self.batch_price_ratio, direct[1] * self.batch_price_ratio)
        )


def _check_settings(settings: Settings) -> None:
    """``Settings``' ranges and shapes, one ConfigError naming the first bad one."""
    _check_name("model", settings.model)
    _check_base_url(settings.base_url)
    _check_secret(settings, "api_key")
    if settings.transport_max_wait_s < 0:
        raise ConfigError(f"transport_max_wait_s must be >= 0, got {settings.transport_max_wait_s}")
    for name, pair in [*settings.prices.items(), *settings.batch_prices.items()]:
        if not (
            isinstance(pair, tuple | list)
            and len(pair) == 2
            and all(isinstance(x, int | float) and math.isfinite(x) and x >= 0 for x in pair)
        ):
            raise ConfigError(f"prices: {name} must be two finite numbers >= 0 (input, output), got {pair}")
    if not 0.0 <= settings.temperature <= 2.0:
        raise ConfigError(f"temperature must be between 0 and 2, got {settings.temperature}")
    if settings.batch_price_ratio < 0:
        raise ConfigError(f"batch_price_ratio must be >= 0, got {settings.batch_price_ratio}")
    names = ("max_tokens", "timeout_s", "transport_attempts", "chunk_chars", "concurrency")
    _check_positive(settings, *names, "batch_poll_s", "batch_poll_max_s", "batch_max_requests")
    if not 1.0 <= settings.batch_poll_backoff <= 10.0:
        raise ConfigError(f"batch_poll_backoff must be between 1 and 10, got {settings.batch_poll_backoff}")
    if settings.batch_poll_max_s < settings.batch_poll_s:
        raise ConfigError(
            f"batch_poll_max_s ({settings.batch_poll_max_s:g}) must be at least batch_poll_s "
            f"({settings.batch_poll_s:g})"
        )
    _check_positive(settings, "batch_poll_timeout_s")
    if settings.reasks < 0 or settings.reasks > 5:
        raise ConfigError(f"reasks must be between 0 and 5, got {settings.reasks}")
    if settings.chunk_overlap_chars < 0 or settings.chunk_overlap_chars >= settings.chunk_chars:
        raise ConfigError("chunk_overlap_chars must be >= 0 and smaller than chunk_chars")
    if 2 * settings.chunk_overlap_chars > settings.chunk_chars:
        raise ConfigError(
            f"chunk_overlap_chars ({settings.chunk_overlap_chars:,}) must be at most half of chunk_chars "
            f"({settings.chunk_chars:,}), so that each chunk advances by at least half its size; "
            "lower --chunk-overlap or raise --chunk-chars"
        )
    _check_positive(settings, "rpm", "tpm", "max_input_bytes")
    if not 1 <= settings.max_events <= 200:
        raise ConfigError(f"max_events must be between 1 and 200, got {settings.max_events}")
    _check_name("output_language", settings.output_language)
    if len(settings.output_language) > 40:
        raise ConfigError(
            f"output_language is a language name, at most 40 characters: {settings.output_language!r}"
        )


def answer_settings(settings: Settings) -> dict[str, Any]:
    """The settings that shape a model's answer, by field name (the endpoint without credentials): what
    the cache and recording key covers, and what a recordings folder keeps so a replay computes it again."""
    return {
        "model": settings.model,
        "base_url": settings.public_endpoint,
        "mode": settings.mode,
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
        "max_events": settings.max_events,
        "output_language": settings.output_language,
    }


def _lookup(table: dict[str, tuple[float, float]], model: str) -> tuple[float, float] | None:
    """The prices of ``model``: its own entry, else the longest name it starts with."""
    if model in table:
        return table[model]
    matches = [name for name in table if model.startswith(name)]
    return table[max(matches, key=len)] if matches else None


_HOST_ONLY = re.compile(
    r"(?:localhost|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?::\d+)?(?:/\S*)?", re.IGNORECASE
)


def _check_base_url(url: object) -> None:
    """An http(s) URL with a host (and a valid port): anything else would fail every request later."""
    if url is None:
        return
    if not isinstance(url, str):
        raise ConfigError(f"base_url must be a string, got {type(url).__name__}")
    if not url.strip():
        raise ConfigError("base_url must not be empty (leave it unset for OpenAI's endpoint)")
    shown = redact(scrub_url(url) if "://" in url else url)
    if any(c.isspace() or not c.isprintable() for c in url):
        raise ConfigError(f"base_url has spaces or control characters: {shown!r}")
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port
    except ValueError as exc:
        raise ConfigError(f"base_url {shown!r} has an invalid host or port ({exc})") from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        hint = f"; did you mean http://{shown}?" if "://" not in url and _HOST_ONLY.fullmatch(url) else ""
        raise ConfigError(
            "base_url must be an http:// or https:// URL with a host, such as http://localhost:8000/v1, "
            f"got {shown!r}{hint}"
        )
