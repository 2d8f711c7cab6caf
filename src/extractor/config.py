"""Settings: model, endpoint, mode, limits and cache dir — from defaults < config file < env < flags.

Environment variables: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``EXTRACTOR_MODEL``, ``EXTRACTOR_MODE``,
``EXTRACTOR_CACHE_DIR``, ``EXTRACTOR_CONCURRENCY``, ``EXTRACTOR_RPM``, ``EXTRACTOR_TPM``,
``EXTRACTOR_MAX_EVENTS``, ``EXTRACTOR_OUTPUT_LANGUAGE``, ``EXTRACTOR_BATCH_POLL_S``,
``EXTRACTOR_BATCH_POLL_MAX_S``, ``EXTRACTOR_BATCH_POLL_BACKOFF``, ``EXTRACTOR_BATCH_POLL_TIMEOUT_S``,
``EXTRACTOR_CONFIG`` (path of a TOML config file; default ``./extractor.toml`` when present).
A config file holds the same keys as ``Settings`` fields, under ``[extractor]`` (then nothing may be
outside it) or all at top level. Every value is checked when the settings are made: a bad one is one
ConfigError line naming it (and the file, and the byte for a file that is not UTF-8 text).
"""

from __future__ import annotations

import codecs
import dataclasses
import difflib
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import unquote, urlsplit, urlunsplit

import platformdirs

from extractor.errors import ConfigError, redact

__all__ = ["DEFAULT_MAX_INPUT_BYTES", "DEFAULT_PRICES", "Mode", "Settings", "answer_settings", "scrub_url"]

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

_ENV: dict[str, str] = {
    "api_key": "OPENAI_API_KEY",
    "base_url": "OPENAI_BASE_URL",
    "model": "EXTRACTOR_MODEL",
    "mode": "EXTRACTOR_MODE",
    "cache_dir": "EXTRACTOR_CACHE_DIR",
    "cache_url": "EXTRACTOR_CACHE_URL",
    "concurrency": "EXTRACTOR_CONCURRENCY",
    "rpm": "EXTRACTOR_RPM",
    "tpm": "EXTRACTOR_TPM",
    "max_events": "EXTRACTOR_MAX_EVENTS",
    "output_language": "EXTRACTOR_OUTPUT_LANGUAGE",
    "batch_poll_s": "EXTRACTOR_BATCH_POLL_S",
    "batch_poll_max_s": "EXTRACTOR_BATCH_POLL_MAX_S",
    "batch_poll_backoff": "EXTRACTOR_BATCH_POLL_BACKOFF",
    "batch_poll_timeout_s": "EXTRACTOR_BATCH_POLL_TIMEOUT_S",
}


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


@dataclass(frozen=True)
class Settings:
    """Everything that configures an extraction run. Build with ``Settings.load()`` to read env/file."""

    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    mode: Mode = "tools"
    temperature: float = 0.0
    max_tokens: int = 4096
    max_tokens_retry: int = 16384
    timeout_s: float = 120.0
    transport_attempts: int = 6
    transport_max_wait_s: float = 300.0
    reasks: int = 1
    reask_max_listed: int = 10
    cache_dir: Path = field(default_factory=_default_cache_dir)
    use_cache: bool = True
    # The shared response cache (one JSON file per answer, extractor.fscache) at a folder or pyarrow URL
    # (s3://bucket/prefix): several hosts can share it; unset = diskcache in cache_dir (one host).
    cache_url: str | None = None
    replay_dir: Path | None = None
    record_dir: Path | None = None
    chunk_chars: int = 300_000
    chunk_overlap_chars: int = 2_000
    # Enough in flight for ~10 requests/s at 1.5 s latency; --rpm/--tpm and the server's 429s and
    # x-ratelimit-* headers then set the pace, so a high default does not mean a storm of 429s.
    concurrency: int = 16
    rpm: int | None = None
    tpm: int | None = None
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    # The Batch API (extractor run --batch-api): prices per model (default: batch_price_ratio x prices),
    # polling (first wait, x backoff per poll up to the max wait, and a give-up time: None waits for the
    # completion window), requests per batch (OpenAI's limit is 50,000) and the completion window.
    batch_prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    batch_price_ratio: float = 0.5
    batch_poll_s: float = 30.0
    batch_poll_max_s: float = 600.0
    batch_poll_backoff: float = 1.5
    batch_poll_timeout_s: float | None = None
    batch_max_requests: int = 50_000
    batch_window: str = "24h"
    # Inputs: follow symlinks that point outside the given paths; the size cap of one input.
    follow_symlinks: bool = False
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    # The prompt: at most this many events per article (per chunk), and the language of `summary` and
    # stance `target` (quotes, evidence, names and date_text always stay in the article's language).
    max_events: int = 10
    output_language: str = "English"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "float" and isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{f.name} must be a finite number, got {value}")
        _check_name("model", self.model)
        _check_base_url(self.base_url)
        if self.api_key is not None and (
            not isinstance(self.api_key, str) or any(c.isspace() or not c.isprintable() for c in self.api_key)
        ):
            raise ConfigError(
                "api_key has spaces or control characters (a trailing newline?); check OPENAI_API_KEY "
                "(the key itself is not shown)"
            )
        if self.transport_max_wait_s < 0:
            raise ConfigError(f"transport_max_wait_s must be >= 0, got {self.transport_max_wait_s}")
        for name, pair in [*self.prices.items(), *self.batch_prices.items()]:
            if not (
                isinstance(pair, tuple | list)
                and len(pair) == 2
                and all(isinstance(x, int | float) and math.isfinite(x) and x >= 0 for x in pair)
            ):
                raise ConfigError(
                    f"prices: {name} must be two finite numbers >= 0 (input, output), got {pair}"
                )
        if self.mode not in get_args(Mode):
            raise ConfigError(f"unknown mode {self.mode!r}; choose one of {', '.join(get_args(Mode))}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature must be between 0 and 2, got {self.temperature}")
        if self.batch_price_ratio < 0:
            raise ConfigError(f"batch_price_ratio must be >= 0, got {self.batch_price_ratio}")
        names = ("max_tokens", "timeout_s", "transport_attempts", "chunk_chars", "concurrency")
        for name in (*names, "batch_poll_s", "batch_poll_max_s", "batch_max_requests"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if not 1.0 <= self.batch_poll_backoff <= 10.0:
            raise ConfigError(f"batch_poll_backoff must be between 1 and 10, got {self.batch_poll_backoff}")
        if self.batch_poll_max_s < self.batch_poll_s:
            raise ConfigError(
                f"batch_poll_max_s ({self.batch_poll_max_s:g}) must be at least batch_poll_s "
                f"({self.batch_poll_s:g})"
            )
        if self.batch_poll_timeout_s is not None and not self.batch_poll_timeout_s > 0:
            raise ConfigError(f"batch_poll_timeout_s must be positive, got {self.batch_poll_timeout_s}")
        if self.reasks < 0 or self.reasks > 5:
            raise ConfigError(f"reasks must be between 0 and 5, got {self.reasks}")
        if self.chunk_overlap_chars < 0 or self.chunk_overlap_chars >= self.chunk_chars:
            raise ConfigError("chunk_overlap_chars must be >= 0 and smaller than chunk_chars")
        if 2 * self.chunk_overlap_chars > self.chunk_chars:
            raise ConfigError(
                f"chunk_overlap_chars ({self.chunk_overlap_chars:,}) must be at most half of chunk_chars "
                f"({self.chunk_chars:,}), so that each chunk advances by at least half its size; "
                "lower --chunk-overlap or raise --chunk-chars"
            )
        for name in ("rpm", "tpm"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        if self.max_input_bytes <= 0:
            raise ConfigError(f"max_input_bytes must be positive, got {self.max_input_bytes}")
        if not 1 <= self.max_events <= 200:
            raise ConfigError(f"max_events must be between 1 and 200, got {self.max_events}")
        _check_name("output_language", self.output_language)
        if len(self.output_language) > 40:
            raise ConfigError(
                f"output_language is a language name, at most 40 characters: {self.output_language!r}"
            )

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
        urls = (*url_secrets(self.base_url), *url_secrets(self.cache_url))
        return tuple(s for s in (self.api_key, *urls) if s)

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

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def load(
        cls, config_file: str | Path | None = None, env: dict[str, str] | None = None, **overrides: Any
    ) -> Settings:
        """Defaults, then the config file, then environment variables, then ``overrides`` (flags)."""
        env = dict(os.environ) if env is None else env
        values: dict[str, Any] = {}
        path = config_file or env.get("EXTRACTOR_CONFIG")
        if path is None and Path("extractor.toml").is_file():
            path = "extractor.toml"
        if path is not None:
            values.update(_read_config(Path(path)))
        for name, var in _ENV.items():
            if env.get(var):
                values[name] = env[var]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**_coerce(values))


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


def _check_name(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string, got {value!r}")
    if not value.strip():
        raise ConfigError(f"{name} must not be empty")
    if value != value.strip() or not value.isprintable():
        raise ConfigError(f"{name} has spaces or control characters at its ends or inside: {value!r}")


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


def _read_config(path: Path) -> dict[str, Any]:
    """The settings in a TOML file: under ``[extractor]`` (nothing else may be in the file then), or all
    at top level. Values are checked here, so an error names the file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    nul = raw.find(b"\x00")
    if nul != -1 and not raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ConfigError(f"config file {path} is a binary file (NUL byte at offset {nul}), not TOML")
    try:
        text = raw[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = skip + exc.start
        raise ConfigError(
            f"config file {path} is not UTF-8 text: byte 0x{raw[at]:02x} at offset {at} (save it as UTF-8)"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    where = ""
    section = data
    if "extractor" in data:
        section, where = data["extractor"], " in [extractor]"
        if not isinstance(section, dict):
            raise ConfigError(f"config file {path}: [extractor] must be a table")
        stray = sorted(k for k in data if k != "extractor")
        if stray:
            raise ConfigError(
                f"config file {path} has keys outside [extractor]: {', '.join(stray)} "
                "(move them into [extractor])"
            )
    names = [f.name for f in dataclasses.fields(Settings)]
    unknown = sorted(set(section) - set(names))
    if unknown:
        near = {close for key in unknown for close in difflib.get_close_matches(key, names, n=1)}
        hint = f"; did you mean {', '.join(sorted(near))}?" if near else ""
        raise ConfigError(f"config file {path}: unknown setting(s){where}: {', '.join(unknown)}{hint}")
    try:
        return _coerce(dict(section))
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    """Values from a file, the environment (strings) or flags, converted to the fields' types; a value
    of the wrong kind (a number for the model, 3.5 or true for a count) is a ConfigError."""
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for name, value in values.items():
        kind = str(fields[name].type)
        shown = "(not shown)" if name == "api_key" else repr(value)
        try:
            if value is None:
                out[name] = None
            elif name in ("cache_dir", "replay_dir", "record_dir"):
                if not isinstance(value, str | os.PathLike):
                    raise ConfigError(f"setting {name}: expected a path, got {shown}")
                out[name] = Path(value).expanduser()
            elif name in ("prices", "batch_prices"):
                out[name] = {str(k): (float(v[0]), float(v[1])) for k, v in dict(value).items()}
            elif kind.startswith("int"):
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ConfigError(f"setting {name}: expected a whole number, got {shown}")
                out[name] = int(value)
            elif kind.startswith("float"):
                if isinstance(value, bool):
                    raise ConfigError(f"setting {name}: expected a number, got {shown}")
                out[name] = float(value)
            elif kind == "bool":
                if isinstance(value, bool):
                    out[name] = value
                elif str(value).strip().lower() in _TRUE + _FALSE:
                    out[name] = str(value).strip().lower() in _TRUE
                else:
                    raise ConfigError(f"setting {name}: expected true or false, got {shown}")
            else:
                if not isinstance(value, str):
                    raise ConfigError(f"setting {name}: expected a string, got {shown}")
                out[name] = value
        except (TypeError, ValueError, IndexError) as exc:
            raise ConfigError(f"setting {name}: cannot use {shown} ({exc})") from exc
    return out
