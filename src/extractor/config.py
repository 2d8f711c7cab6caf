"""Settings: model, endpoint, mode, limits and cache dir — from defaults < config file < env < flags.

Environment variables: ``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``EXTRACTOR_MODEL``, ``EXTRACTOR_MODE``,
``EXTRACTOR_CACHE_DIR``, ``EXTRACTOR_CONCURRENCY``, ``EXTRACTOR_RPM``, ``EXTRACTOR_TPM``,
``EXTRACTOR_CONFIG`` (path of a TOML config file; default ``./extractor.toml`` when present).
A config file holds the same keys as ``Settings`` fields, at top level or under ``[extractor]``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

import platformdirs

from extractor.errors import ConfigError

__all__ = ["DEFAULT_PRICES", "Mode", "Settings", "scrub_url"]

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

_ENV: dict[str, str] = {
    "api_key": "OPENAI_API_KEY",
    "base_url": "OPENAI_BASE_URL",
    "model": "EXTRACTOR_MODEL",
    "mode": "EXTRACTOR_MODE",
    "cache_dir": "EXTRACTOR_CACHE_DIR",
    "concurrency": "EXTRACTOR_CONCURRENCY",
    "rpm": "EXTRACTOR_RPM",
    "tpm": "EXTRACTOR_TPM",
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

    def __post_init__(self) -> None:
        if self.mode not in get_args(Mode):
            raise ConfigError(f"unknown mode {self.mode!r}; choose one of {', '.join(get_args(Mode))}")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"temperature must be between 0 and 2, got {self.temperature}")
        for name in ("max_tokens", "timeout_s", "transport_attempts", "chunk_chars", "concurrency"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
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

    @property
    def endpoint(self) -> str:
        """The base URL requests go to (OpenAI's when none is set)."""
        return (self.base_url or "https://api.openai.com/v1").rstrip("/")

    @property
    def public_endpoint(self) -> str:
        """``endpoint`` without credentials or secret query parameters: what keys, recordings and
        messages show."""
        return scrub_url(self.endpoint)

    def price(self) -> tuple[float, float] | None:
        """(input, output) USD per 1M tokens for this model, user overrides first."""
        table = {**DEFAULT_PRICES, **self.prices}
        if self.model in table:
            return table[self.model]
        matches = [name for name in table if self.model.startswith(name)]
        return table[max(matches, key=len)] if matches else None

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


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = data.get("extractor", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [extractor] must be a table")
    return dict(section)


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for name, value in values.items():
        kind = str(fields[name].type)
        try:
            if value is None:
                out[name] = None
            elif name in ("cache_dir", "replay_dir", "record_dir"):
                out[name] = Path(value).expanduser()
            elif name == "prices":
                out[name] = {str(k): (float(v[0]), float(v[1])) for k, v in dict(value).items()}
            elif kind.startswith("int"):
                out[name] = int(value)
            elif kind.startswith("float"):
                out[name] = float(value)
            elif kind == "bool":
                out[name] = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
            else:
                out[name] = value
        except (TypeError, ValueError, IndexError) as exc:
            raise ConfigError(f"setting {name}: cannot use {value!r} ({exc})") from exc
    return out
