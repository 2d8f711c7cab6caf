"""Settings: model, endpoint, mode, limits and cache dir (``Settings``), and how ``extractor serve``
listens and what it accepts (``ServiceSettings``) — from defaults < config file < env < flags.

Both classes (pydantic-settings, ``SettingsBase``) declare each setting once: its type, default, help
text, the environment variable it is read from (``OPENAI_API_KEY``, ``EXTRACTOR_MODEL``,
``EXTRACTOR_PORT``, ...: ``env_name``) and its command-line flag (``flag_name``; the CLI generates its
flags from these). ``load()`` reads, each over the one before: the defaults, the config file, the
environment variables (an empty one counts as unset), the flags. ``EXTRACTOR_CONFIG`` names a TOML
config file (default ``./extractor.toml`` when present). It holds ``Settings``' keys under
``[extractor]`` (then nothing but ``[serve]`` may be outside it) or all at top level (then ``[serve]``
is the one table allowed beside them), and ``ServiceSettings``' keys under ``[serve]``. Every value is
checked when the settings are made: a bad one is one ConfigError line naming it (and the file, and the
byte for a file that is not UTF-8 text); a secret (``api_key``, ``api_token``) is never shown.
"""

from __future__ import annotations

import codecs
import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from pathlib import Path
from types import UnionType
from typing import Any, ClassVar, Literal, Self, Union, get_args, get_origin
from urllib.parse import unquote, urlsplit, urlunsplit

import platformdirs
from pydantic import Field, JsonValue, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from extractor.durations import parse_duration
from extractor.errors import ConfigError, redact

__all__ = [
    "DEFAULT_MAX_INPUT_BYTES",
    "DEFAULT_PRICES",
    "Mode",
    "ServiceSettings",
    "Settings",
    "SettingsBase",
    "answer_settings",
    "env_name",
    "field_type",
    "flag_name",
    "scrub_url",
]

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


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("extractor")) / "service"


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


def _setting(
    default: Any = PydanticUndefined,
    help: str | None = None,
    *,
    env: str | None = None,
    flag: str | bool = False,
    default_factory: Callable[[], Any] | None = None,
    repr: bool = True,
    metavar: str | None = None,
) -> Any:
    """A field of a settings class: its default, its help text, the environment variable it is read from
    (``env``), its command-line flag (``flag``: True for ``--field-name``, or the flag itself) and the
    flag's placeholder in the help (``metavar``; default the field's name in capitals)."""
    extra: dict[str, JsonValue] = {"env": env, "flag": flag, "metavar": metavar}
    if default_factory is not None:
        return Field(default_factory=default_factory, description=help, json_schema_extra=extra, repr=repr)
    return Field(default, description=help, json_schema_extra=extra, repr=repr)


class SettingsBase(BaseSettings):
    """What ``Settings`` and ``ServiceSettings`` share: fields declared with ``_setting``, every value
    checked when made (one ConfigError naming the first bad one), and ``load()``. ``Cls(...)`` takes
    keyword values only; ``Cls.load()`` reads defaults < config file < environment < keyword overrides
    (the command's flags)."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", validate_default=False)

    # The config file's table of these settings ("extractor": [extractor] or the top level), and the
    # title of their flags in a command's help.
    config_table: ClassVar[str] = "extractor"
    flags_title: ClassVar[str] = "settings"

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:  # what _coerce and _check leave to pydantic: one line, named
            error = exc.errors()[0]
            name = ".".join(str(part) for part in error["loc"]) or "settings"
            raise ConfigError(f"setting {name}: {error['msg']}") from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword values only, or within ``load()``: keyword values > environment > config file."""
        loading = _LOADING.get()
        if loading is None:
            return (init_settings,)
        env, path = loading
        return (init_settings, _EnvSource(cls, env), _FileSource(cls, path))

    @model_validator(mode="before")
    @classmethod
    def _coerce_values(cls, values: Any) -> Any:
        return _coerce(dict(values), cls)

    @model_validator(mode="after")
    def _check_values(self) -> Self:
        self._check()
        return self

    def _check(self) -> None:
        """Every value's range and shape, one ConfigError naming the first bad one (a subclass checks its
        own after these)."""
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if info.annotation is float and isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{name} must be a finite number, got {value}")

    @property
    def secrets(self) -> tuple[str, ...]:
        """The credentials these settings hold (the fields kept out of the repr): what
        ``extractor.errors.redact`` must take out of any message."""
        found = (getattr(self, name) for name, info in type(self).model_fields.items() if not info.repr)
        return tuple(secret for secret in found if secret)

    def replace(self, **changes: Any) -> Self:
        """A checked copy with some fields changed (None values are ignored; ``model_copy(update=...)``
        sets None too, unchecked)."""
        return type(self)(**{**dict(self), **{k: v for k, v in changes.items() if v is not None}})

    @classmethod
    def load(
        cls, config_file: str | Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any
    ) -> Self:
        """Defaults, then the config file, then environment variables, then ``overrides`` (flags; None
        values are ignored). The file is ``config_file``, else ``$EXTRACTOR_CONFIG``, else
        ``./extractor.toml`` when present."""
        env = os.environ if env is None else env
        path = config_file or env.get("EXTRACTOR_CONFIG") or None
        if path is None and Path("extractor.toml").is_file():
            path = "extractor.toml"
        token = _LOADING.set((env, None if path is None else Path(path)))
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        finally:
            _LOADING.reset(token)


class Settings(SettingsBase):
    """Everything that configures an extraction run, declared once: each field's default, help, env
    variable and flag."""

    flags_title: ClassVar[str] = "model and limits (flags override env vars and the config file)"

    model: str = _setting("gpt-4o-mini", "model name", env="EXTRACTOR_MODEL", flag=True)
    base_url: str | None = _setting(None, "OpenAI-compatible endpoint", env="OPENAI_BASE_URL", flag=True)
    api_key: str | None = _setting(None, "API key", env="OPENAI_API_KEY", repr=False)
    mode: Mode = _setting("tools", "instructor mode", env="EXTRACTOR_MODE", flag=True)
    temperature: float = _setting(0.0, "sampling temperature (0-2)", flag=True)
    max_tokens: int = _setting(4096, "completion tokens per request", flag=True)
    max_tokens_retry: int = _setting(16384, "completion tokens of the retry after a truncated answer")
    timeout_s: float = _setting(120.0, "request timeout in seconds", flag="--timeout")
    transport_attempts: int = _setting(6, "attempts per request on 429, 5xx and connection errors")
    transport_max_wait_s: float = _setting(300.0, "longest wait between attempts, in seconds")
    reasks: int = _setting(1, "re-asks on schema/grounding failure", flag=True)
    reask_max_listed: int = _setting(10, "failed items named in a re-ask")
    cache_dir: Path = _setting(
        help="response cache", env="EXTRACTOR_CACHE_DIR", flag=True, default_factory=_default_cache_dir
    )
    use_cache: bool = _setting(True, "use the response cache", flag="--no-cache")
    # The shared response cache (one JSON file per answer, extractor.fscache) at a folder or pyarrow URL
    # (s3://bucket/prefix): several hosts can share it; unset = diskcache in cache_dir (one host).
    cache_url: str | None = _setting(
        None, "shared JSON cache: folder or s3:// URL", env="EXTRACTOR_CACHE_URL", flag=True
    )
    replay_dir: Path | None = _setting(None, "answer from the recorded exchanges in this folder")
    record_dir: Path | None = _setting(None, "record every exchange into this folder")
    chunk_chars: int = _setting(300_000, "split articles longer than this", flag=True)
    chunk_overlap_chars: int = _setting(2_000, "characters shared by adjacent chunks", flag="--chunk-overlap")
    # Enough in flight for ~10 requests/s at 1.5 s latency; --rpm/--tpm and the server's 429s and
    # x-ratelimit-* headers then set the pace, so a high default does not mean a storm of 429s.
    concurrency: int = _setting(16, "articles in flight", env="EXTRACTOR_CONCURRENCY", flag=True)
    rpm: int | None = _setting(None, "requests/min limit", env="EXTRACTOR_RPM", flag=True)
    tpm: int | None = _setting(None, "tokens/min limit", env="EXTRACTOR_TPM", flag=True)
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
        env="EXTRACTOR_BATCH_POLL_S",
        flag="--batch-poll",
    )
    batch_poll_max_s: float = _setting(
        600.0,
        "longest wait between Batch API polls, in seconds",
        env="EXTRACTOR_BATCH_POLL_MAX_S",
        flag="--batch-poll-max",
    )
    batch_poll_backoff: float = _setting(
        1.5,
        "each wait between Batch API polls this many times the last, up to --batch-poll-max (1-10)",
        env="EXTRACTOR_BATCH_POLL_BACKOFF",
        flag="--batch-poll-backoff",
    )
    batch_poll_timeout_s: float | None = _setting(
        None,
        "give up polling after this many seconds of waits; the batches keep running and the next run "
        "resumes them (default: wait for the completion window)",
        env="EXTRACTOR_BATCH_POLL_TIMEOUT_S",
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
    max_events: int = _setting(10, "events per article, at most", env="EXTRACTOR_MAX_EVENTS", flag=True)
    output_language: str = _setting(
        "English", "language of summaries and stance targets", env="EXTRACTOR_OUTPUT_LANGUAGE", flag=True
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


class ServiceSettings(SettingsBase):
    """How ``extractor serve`` listens and what it accepts (the model settings are ``Settings``),
    declared like them; in the config file under ``[serve]``."""

    config_table: ClassVar[str] = "serve"
    flags_title: ClassVar[str] = "service (flags override env vars and the config file's [serve])"

    data_dir: Path = _setting(
        help="where jobs live, by default extractor/service in the user data folder",
        env="EXTRACTOR_DATA_DIR",
        flag=True,
        default_factory=_default_data_dir,
        metavar="DIR",
    )
    host: str = _setting("127.0.0.1", "address to listen on", env="EXTRACTOR_HOST", flag=True)
    port: int = _setting(8000, "port (0 = any free port)", env="EXTRACTOR_PORT", flag=True)
    # Every /v1 route and /metrics then need `Authorization: Bearer TOKEN`; without one the service
    # listens on a loopback address only. No flag: a flag's value shows in the process list.
    api_token: str | None = _setting(
        None, "bearer token clients must send", env="EXTRACTOR_API_TOKEN", repr=False
    )
    allow_paths: Path | None = _setting(
        None,
        "let jobs name files and folders under DIR",
        env="EXTRACTOR_ALLOW_PATHS",
        flag=True,
        metavar="DIR",
    )
    max_body_mb: float = _setting(32.0, "request body limit in MB", env="EXTRACTOR_MAX_BODY_MB", flag=True)
    max_article_chars: int = _setting(
        1_000_000, "characters per article", env="EXTRACTOR_MAX_ARTICLE_CHARS", flag=True
    )
    max_queued_jobs: int = _setting(64, "jobs waiting, then 429", env="EXTRACTOR_MAX_QUEUED_JOBS", flag=True)
    max_pending: int = _setting(
        256, "/v1/extract requests in flight or waiting, then 429", env="EXTRACTOR_MAX_PENDING", flag=True
    )
    job_workers: int = _setting(1, "jobs run at once", env="EXTRACTOR_JOB_WORKERS", flag=True)
    shutdown_timeout_s: float = _setting(
        20.0,
        "seconds SIGTERM waits for work in flight",
        env="EXTRACTOR_SHUTDOWN_TIMEOUT_S",
        flag="--shutdown-timeout",
        metavar="SECONDS",
    )
    job_retention: str | None = _setting(
        None,
        "delete finished jobs this long after they finished: 7d, 12h, 90m or seconds; unset: never",
        env="EXTRACTOR_JOB_RETENTION",
        flag=True,
        metavar="DURATION",
    )

    def _check(self) -> None:
        super()._check()
        _check_name("host", self.host)
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535 (0 = any free port), got {self.port}")
        _check_secret(self, "api_token")
        _check_positive(
            self, "max_body_mb", "max_article_chars", "max_queued_jobs", "max_pending", "job_workers"
        )
        _check_positive(self, "shutdown_timeout_s")
        _retention_s(self.job_retention)

    @property
    def max_body_bytes(self) -> int:
        """``max_body_mb`` in bytes."""
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def job_retention_s(self) -> float | None:
        """``job_retention`` in seconds; None keeps finished jobs forever."""
        return _retention_s(self.job_retention)


# The environment and config file of the load() in progress (None: keyword values only).
_LOADING: ContextVar[tuple[Mapping[str, str], Path | None] | None] = ContextVar("_LOADING", default=None)


def env_name(name: str, settings_cls: type[SettingsBase] = Settings) -> str | None:
    """The environment variable the setting ``name`` of ``settings_cls`` is read from, if any."""
    return _extra(name, settings_cls).get("env")


def flag_name(name: str, settings_cls: type[SettingsBase] = Settings) -> str | None:
    """The command-line flag of the setting ``name`` of ``settings_cls``, if it has one."""
    flag = _extra(name, settings_cls).get("flag")
    return f"--{name.replace('_', '-')}" if flag is True else flag or None


def metavar(name: str, settings_cls: type[SettingsBase] = Settings) -> str:
    """The placeholder of the setting's flag value in the help."""
    return _extra(name, settings_cls).get("metavar") or name.upper()


def field_type(name: str, settings_cls: type[SettingsBase] = Settings) -> Any:
    """The declared type of the setting ``name`` of ``settings_cls``, without its ``| None``."""
    annotation = settings_cls.model_fields[name].annotation
    if get_origin(annotation) in (Union, UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    return annotation


def _extra(name: str, settings_cls: type[SettingsBase]) -> dict[str, Any]:
    extra = settings_cls.model_fields[name].json_schema_extra
    return dict(extra) if isinstance(extra, dict) else {}


class _EnvSource(PydanticBaseSettingsSource):
    """The settings that name an environment variable (``env=``), from ``env`` (empty values unset)."""

    def __init__(self, settings_cls: type[SettingsBase], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.declared = settings_cls
        self.env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        var = env_name(field_name, self.declared)
        return (self.env.get(var) or None) if var else None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found = {name: self.get_field_value(f, name)[0] for name, f in self.settings_cls.model_fields.items()}
        return {name: value for name, value in found.items() if value is not None}


class _FileSource(PydanticBaseSettingsSource):
    """The settings in a TOML config file (``_read_config``), or none without a file."""

    def __init__(self, settings_cls: type[SettingsBase], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.declared = settings_cls
        self.path = path

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self().get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {} if self.path is None else _read_config(self.path, self.declared)


def _check_positive(settings: SettingsBase, *names: str) -> None:
    """Each of the settings ``names`` that is set is above 0, else one ConfigError naming it."""
    for name in names:
        value = getattr(settings, name)
        if value is not None and not value > 0:
            raise ConfigError(f"{name} must be positive, got {value}")


def _check_secret(settings: SettingsBase, name: str) -> None:
    """A credential has no spaces or control characters (the message never shows it)."""
    secret = getattr(settings, name)
    if secret is not None and (
        not isinstance(secret, str) or any(c.isspace() or not c.isprintable() for c in secret)
    ):
        raise ConfigError(
            f"{name} has spaces or control characters (a trailing newline?); check "
            f"{env_name(name, type(settings))} (the value itself is not shown)"
        )


def _retention_s(text: str | None) -> float | None:
    """Seconds of ``job_retention``: a duration such as ``7d``, ``12h``, ``90m``, ``1h30m`` or ``3600``
    (seconds); None for none given, ``forever`` or ``never``. ConfigError for anything else, or a duration
    that is not positive."""
    if text is None or text.strip().lower() in ("", "forever", "never"):
        return None
    try:
        seconds = parse_duration(text)
    except ValueError:
        seconds = math.nan
    if not 0 < seconds < math.inf:
        raise ConfigError(
            f"job_retention must be a positive duration such as 7d, 12h or 90m, or 'forever', got {text!r}"
        )
    return seconds


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


def _read_config(path: Path, settings_cls: type[SettingsBase]) -> dict[str, Any]:
    """The settings of ``settings_cls`` in a TOML file: its table (``_config_tables``). Values are checked
    here, so an error names the file."""
    section, where = _config_tables(path)[settings_cls.config_table]
    names = list(settings_cls.model_fields)
    unknown = sorted(set(section) - set(names))
    if unknown:
        near = {close for key in unknown for close in difflib.get_close_matches(key, names, n=1)}
        hint = f"; did you mean {', '.join(sorted(near))}?" if near else ""
        raise ConfigError(f"config file {path}: unknown setting(s){where}: {', '.join(unknown)}{hint}")
    try:
        return _coerce(dict(section), settings_cls)
    except ConfigError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None


def _config_tables(path: Path) -> dict[str, tuple[dict[str, Any], str]]:
    """The tables of a TOML config file, by ``config_table``, each with how an error names it:
    ``extractor`` is ``[extractor]`` (nothing but ``[serve]`` may be outside it then) or the top level
    (less ``[serve]``); ``serve`` is ``[serve]``."""
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
    tables = {"serve": (data.pop("serve", {}), " in [serve]"), "extractor": (data, "")}
    if "extractor" in data:
        tables["extractor"] = (data["extractor"], " in [extractor]")
        stray = sorted(k for k in data if k != "extractor")
        if stray:
            raise ConfigError(
                f"config file {path} has keys outside [extractor]: {', '.join(stray)} "
                "(move them into [extractor])"
            )
    for name, (table, _) in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"config file {path}: [{name}] must be a table")
    return tables


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _kind(name: str, settings_cls: type[SettingsBase]) -> type:
    """The type of the setting ``name``, without its ``| None`` (a Literal such as Mode is str)."""
    annotation = field_type(name, settings_cls)
    origin = get_origin(annotation)
    if origin is Literal:
        return str
    return origin if isinstance(origin, type) else annotation if isinstance(annotation, type) else str


def _coerce(values: dict[str, Any], settings_cls: type[SettingsBase]) -> dict[str, Any]:
    """Values from a file, the environment (strings) or flags, converted to the fields' types; a value
    of the wrong kind (a number for the model, 3.5 or true for a count, a mode not offered) is a
    ConfigError that shows no secret."""
    fields = settings_cls.model_fields
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
    out: dict[str, Any] = {}
    for name, value in values.items():
        kind = _kind(name, settings_cls)
        shown = repr(value) if fields[name].repr else "(not shown)"
        try:
            if value is None:
                out[name] = None
            elif kind is Path:
                if not isinstance(value, str | os.PathLike):
                    raise ConfigError(f"setting {name}: expected a path, got {shown}")
                out[name] = Path(value).expanduser()
            elif kind is dict:
                out[name] = {str(k): (float(v[0]), float(v[1])) for k, v in dict(value).items()}
            elif kind is bool:
                if isinstance(value, bool):
                    out[name] = value
                elif str(value).strip().lower() in _TRUE + _FALSE:
                    out[name] = str(value).strip().lower() in _TRUE
                else:
                    raise ConfigError(f"setting {name}: expected true or false, got {shown}")
            elif kind is int:
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ConfigError(f"setting {name}: expected a whole number, got {shown}")
                out[name] = int(value)
            elif kind is float:
                if isinstance(value, bool):
                    raise ConfigError(f"setting {name}: expected a number, got {shown}")
                out[name] = float(value)
            else:
                if not isinstance(value, str):
                    raise ConfigError(f"setting {name}: expected a string, got {shown}")
                choices = get_args(field_type(name, settings_cls))
                if choices and value not in choices:
                    raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(choices)}")
                out[name] = value
        except (TypeError, ValueError, IndexError) as exc:
            raise ConfigError(f"setting {name}: cannot use {shown} ({exc})") from exc
    return out
