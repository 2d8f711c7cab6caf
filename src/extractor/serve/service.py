"""What every route shares: the one Extractor, the jobs, the metrics, the limits and the log."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO
from urllib.parse import urlsplit

from extractor.config import ServiceSettings, Settings
from extractor.errors import StoreError, redact
from extractor.models import Article, ArticleResult
from extractor.pipeline import Extractor
from extractor.serve.jobs import JobManager
from extractor.serve.metrics import Metrics

__all__ = ["Service"]


class _SharedExtractor(Extractor):
    """The server's one Extractor: every article, a request's or a job's, passes one in-flight bound
    (``Settings.concurrency``) and is counted. It stays open across jobs (a batch run closes its
    extractor at the end); ``shutdown`` closes it."""

    def __init__(self, settings: Settings, on_result: Callable[[ArticleResult], None]) -> None:
        super().__init__(settings)
        self._gate = asyncio.Semaphore(settings.concurrency)
        self._on_result = on_result

    async def aextract(self, article: Article | str) -> ArticleResult:
        async with self._gate:
            result = await super().aextract(article)
        self._on_result(result)
        return result

    async def aclose(self) -> None:
        return None

    def warm_up(self) -> None:
        """Build the HTTP client for the running loop now: its first creation imports most of openai
        (seconds), which would otherwise stall the first request and everything else on the loop."""
        if self.settings.api_key or self.settings.replay_dir is not None:
            self._provider()

    async def shutdown(self) -> None:
        await super().aclose()


class Service:
    """Everything the routes share: the extractor, the jobs, the metrics and the limits (``config``)."""

    def __init__(self, settings: Settings, config: ServiceSettings, log: TextIO | None = None) -> None:
        self.settings = settings
        self.config = config
        self.log_stream = log or sys.stderr
        self.metrics = Metrics()
        self.extractor = _SharedExtractor(settings, self.metrics.result)
        self.secrets = (*settings.secrets, *config.secrets)
        self.jobs = JobManager(config, self.extractor, secrets=self.secrets)
        self.metrics.read_live(self._depths, lambda: self.extractor.limiter.stats()["rate_limited"])
        self.pending = 0
        self.stopping = False
        self.deadline: float | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready: tuple[float, bool, str] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.listening: dict[str, Any] = {}

    def _depths(self) -> dict[str, int]:
        return {
            "jobs_queued": self.jobs.queued,
            "jobs_running": self.jobs.running,
            "extract_pending": self.pending,
        }

    def redact(self, text: str) -> str:
        return redact(text, *self.secrets)

    def log(self, event: str, **fields: Any) -> None:
        """One JSON line: never a header, a body or a secret."""
        line = {"ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"), "event": event, **fields}
        text = self.redact(json.dumps(line, ensure_ascii=False, default=str))
        with contextlib.suppress(OSError, ValueError):
            print(text, file=self.log_stream, flush=True)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.extractor.warm_up()
        resumed, expired = await self.jobs.start()
        if expired:
            self.log("jobs_expired", jobs=expired, message=f"deleted {expired} job(s) past --job-retention")
        if resumed:
            self.log("jobs_resumed", jobs=resumed, message=f"resuming {resumed} unfinished job(s)")
        period = self.jobs.sweep_period_s
        if period is not None:
            self._sweeper = asyncio.ensure_future(self._sweep(period))
        if self.listening:
            self.log("listening", **self.listening)

    async def _sweep(self, period_s: float) -> None:
        """Every ``period_s``: delete the finished jobs past ``--job-retention``."""
        while True:
            await asyncio.sleep(period_s)
            try:
                expired = await self.jobs.expire()
            except StoreError as exc:
                self.log("error", error="StoreError", message=self.redact(str(exc)))
                continue
            if expired:
                self.log(
                    "jobs_expired", jobs=expired, message=f"deleted {expired} job(s) past --job-retention"
                )

    def begin_shutdown(self) -> None:
        """SIGTERM / Ctrl-C: stop taking work; jobs let the articles in flight finish."""
        if self.stopping:
            return
        self.stopping = True
        self.deadline = time.monotonic() + self.config.shutdown_timeout_s
        self.jobs.begin_shutdown()
        self.log(
            "stopping",
            message=f"stopping: finishing the work in flight (at most {self.config.shutdown_timeout_s:g} s)",
        )

    async def stop(self) -> None:
        self.begin_shutdown()
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        remaining = max(0.0, (self.deadline or time.monotonic()) - time.monotonic())
        await self.jobs.shutdown(remaining)
        await self.extractor.shutdown()
        if self.extractor.cache is not None:
            self.extractor.cache.close()
        self.log("stopped", message="stopped")

    async def readiness(self) -> tuple[bool, str]:
        if self.stopping:
            return False, "shutting down"
        settings = self.settings
        if settings.replay_dir is not None:
            return True, f"replaying recordings from {settings.replay_dir}"
        if not settings.api_key:
            return False, "no API key (set OPENAI_API_KEY)"
        now = time.monotonic()
        if self._ready is not None and now - self._ready[0] < 5.0:
            return self._ready[1], self._ready[2]
        parts = urlsplit(settings.endpoint)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=2.0)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            state = (True, f"endpoint {settings.public_endpoint} reachable")
        except (OSError, TimeoutError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            state = (False, f"endpoint {settings.public_endpoint} unreachable ({reason})")
        self._ready = (now, *state)
        return state
