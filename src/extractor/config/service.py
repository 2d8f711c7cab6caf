"""``ServiceSettings``: how ``extractor serve`` listens and what it accepts (``[serve]`` in the config
file)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import platformdirs

from extractor.config.base import SettingsBase, _check_name, _check_positive, _check_secret, _setting
from extractor.durations import parse_duration
from extractor.errors import ConfigError


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir("extractor")) / "service"


class ServiceSettings(SettingsBase):
    """How ``extractor serve`` listens and what it accepts (the model settings are ``Settings``),
    declared like them; in the config file under ``[serve]``."""

    config_table: ClassVar[str] = "serve"
    flags_title: ClassVar[str] = "service (flags override env vars and the config file's [serve])"

    data_dir: Path = _setting(
        help="where jobs live, by default extractor/service in the user data folder",
        env=True,
        flag=True,
        default_factory=_default_data_dir,
        metavar="DIR",
    )
    host: str = _setting("127.0.0.1", "address to listen on", env=True, flag=True)
    port: int = _setting(8000, "port (0 = any free port)", env=True, flag=True)
    # Every /v1 route and /metrics then need `Authorization: Bearer TOKEN`; without one the service
    # listens on a loopback address only. No flag: a flag's value shows in the process list.
    api_token: str | None = _setting(None, "bearer token clients must send", env=True, repr=False)
    allow_paths: Path | None = _setting(
        None, "let jobs name files and folders under DIR", env=True, flag=True, metavar="DIR"
    )
    max_body_mb: float = _setting(32.0, "request body limit in MB", env=True, flag=True)
    max_article_chars: int = _setting(1_000_000, "characters per article", env=True, flag=True)
    max_queued_jobs: int = _setting(64, "jobs waiting, then 429", env=True, flag=True)
    max_pending: int = _setting(
        256, "/v1/extract requests in flight or waiting, then 429", env=True, flag=True
    )
    job_workers: int = _setting(1, "jobs run at once", env=True, flag=True)
    shutdown_timeout_s: float = _setting(
        20.0,
        "seconds SIGTERM waits for work in flight",
        env=True,
        flag="--shutdown-timeout",
        metavar="SECONDS",
    )
    job_retention: str | None = _setting(
        None,
        "delete finished jobs this long after they finished: 7d, 12h, 90m or seconds; unset: never",
        env=True,
        flag=True,
        metavar="DURATION",
    )

    def _check(self) -> None:
        super()._check()
        _check_name("host", self.host)
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be between 0 and 65535 (0 = any free port), got {self.port}")
        _check_secret(self, "api_token")
        limits = ("max_body_mb", "max_article_chars", "max_queued_jobs", "max_pending", "job_workers")
        _check_positive(self, *limits, "shutdown_timeout_s")
        _retention_s(self.job_retention)

    @property
    def max_body_bytes(self) -> int:
        """``max_body_mb`` in bytes."""
        return int(self.max_body_mb * 1024 * 1024)

    @property
    def job_retention_s(self) -> float | None:
        """``job_retention`` in seconds; None keeps finished jobs forever."""
        return _retention_s(self.job_retention)


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
