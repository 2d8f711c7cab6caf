"""``extractor serve``: the HTTP API (FastAPI + uvicorn, the ``serve`` extra) over one shared Extractor.

One process, one ``Extractor`` (response cache, rate limiter, in-flight bound) behind every request:

    POST   /v1/extract               one article -> its ArticleResult, synchronously
    POST   /v1/jobs                  many articles (JSON list, NDJSON, or server-side paths) -> 202 + job
    GET    /v1/jobs/{id}             status, counts, tokens, cost, progress
    GET    /v1/jobs/{id}/results     NDJSON of the results as they finish (?after=N to resume)
    GET    /v1/jobs/{id}/report      the job's review page
    DELETE /v1/jobs/{id}             cancel (the articles in flight finish)
    GET    /healthz, /readyz         liveness; readiness (endpoint reachable, or replaying)
    GET    /metrics                  Prometheus text

Jobs are run folders under ``--data-dir`` (``extractor.serve_jobs``): a restarted server resumes them.
With ``EXTRACTOR_API_TOKEN`` set every ``/v1`` route and ``/metrics`` need ``Authorization: Bearer
TOKEN`` (compared in constant time); without one the server listens on a loopback address only. Limits
answer 413 (body, article length), 422 (the field that is wrong), 429 + Retry-After (queue full), 404
(unknown job). SIGTERM: stop accepting, let the articles in flight finish until ``--shutdown-timeout``,
hand the rest back to the job (resumed on the next start), exit. One JSON line per request on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import ipaddress
import json
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TextIO
from urllib.parse import urlsplit

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from extractor import __version__
from extractor.articles import normalize_text, sanitize_id
from extractor.config import Settings
from extractor.errors import ConfigError, StoreError, redact
from extractor.models import Article, ArticleResult, text_sha256
from extractor.pipeline import Extractor
from extractor.serve_jobs import JobManager, QueueFullError, UnknownJobError
from extractor.serve_models import ArticleIn, ErrorBody, Health, JobPaths, JobStatus, Readiness

__all__ = ["ServiceConfig", "check_bind", "create_app", "openapi_document", "run"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

NDJSON = "application/x-ndjson"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class ServiceConfig:
    """How the service listens and what it accepts (the model settings are ``Settings``)."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    allow_paths: Path | None = None
    max_body_bytes: int = 32 * 1024 * 1024
    max_article_chars: int = 1_000_000
    max_queued_jobs: int = 64
    max_pending: int = 256  # /v1/extract requests in flight or waiting for a slot
    job_workers: int = 1
    shutdown_timeout_s: float = 20.0


# --------------------------------------------------------------------------- request bodies


def _article(item: ArticleIn) -> Article:
    """The Article the pipeline extracts (text normalised as the file loader does)."""
    text = normalize_text(item.text)
    sha = text_sha256(text)
    article_id = sanitize_id(str(item.id), sha) if item.id is not None else sha[:16]
    title, url = (item.title or "").strip() or None, (item.url or "").strip() or None
    return Article(
        id=article_id, text=text, title=title, url=url, published=item.published, source="api", sha256=sha
    )


_ARTICLES = TypeAdapter(list[ArticleIn])
_ONE = TypeAdapter(ArticleIn)


def _errors(exc: ValidationError, prefix: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Pydantic errors as FastAPI's 422 shows them (``loc`` from ``body``), without echoing the input."""
    return [
        {"type": e["type"], "loc": [*prefix, *e["loc"]], "msg": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


# --------------------------------------------------------------------------- metrics


class _Metrics:
    """The service's Prometheus registry (one per app, so tests can run several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "extractor_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "extractor_http_request_duration_seconds",
            "HTTP request latency by route (a results stream: until it ends)",
            ["route", "method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.articles = Counter(
            "extractor_articles", "Articles extracted (requests and jobs)", ["status"], registry=r
        )
        self.llm_calls = Counter("extractor_llm_calls", "HTTP calls to the LLM endpoint", registry=r)
        self.tokens = Counter("extractor_llm_tokens", "Tokens spent, by kind", ["kind"], registry=r)
        self.cache_hits = Counter(
            "extractor_cache_hits", "Articles answered from the response cache", registry=r
        )

    def result(self, result: ArticleResult) -> None:
        self.articles.labels(result.status).inc()
        self.llm_calls.inc(result.usage.http_calls)
        self.tokens.labels("prompt").inc(result.usage.prompt_tokens)
        self.tokens.labels("completion").inc(result.usage.completion_tokens)
        if result.cache_hit:
            self.cache_hits.inc()


class _LiveCollector(Collector):
    """Values read at scrape time: queue depths and the rate limiter's 429 count."""

    def __init__(self, service: _Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "extractor_queue_depth", "Work waiting or running, by queue", labels=["queue"]
        )
        depth.add_metric(["jobs_queued"], self.service.jobs.queued)
        depth.add_metric(["jobs_running"], self.service.jobs.running)
        depth.add_metric(["extract_pending"], self.service.pending)
        yield depth
        limited = CounterMetricFamily("extractor_llm_rate_limited", "429 answers from the LLM endpoint")
        limited.add_metric([], self.service.extractor.limiter.stats()["rate_limited"])
        yield limited


# --------------------------------------------------------------------------- the shared extractor


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


class _Service:
    """Everything the routes share: the extractor, the jobs, the metrics and the limits."""

    def __init__(self, settings: Settings, config: ServiceConfig, log: TextIO | None = None) -> None:
        self.settings = settings
        self.config = config
        self.log_stream = log or sys.stderr
        self.metrics = _Metrics()
        self.extractor = _SharedExtractor(settings, self.metrics.result)
        self.secrets = (settings.api_key, config.token)
        self.jobs = JobManager(
            config.data_dir,
            self.extractor,
            allow_paths=config.allow_paths,
            max_queued=config.max_queued_jobs,
            workers=config.job_workers,
            secrets=self.secrets,
        )
        self.metrics.registry.register(_LiveCollector(self))
        self.pending = 0
        self.stopping = False
        self.deadline: float | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready: tuple[float, bool, str] | None = None
        self.listening: dict[str, Any] = {}

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
        resumed = await self.jobs.start()
        if resumed:
            self.log("jobs_resumed", jobs=resumed, message=f"resuming {resumed} unfinished job(s)")
        if self.listening:
            self.log("listening", **self.listening)

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


def _service(request: Request) -> _Service:
    service: _Service | None = getattr(request.app.state, "service", None)
    if service is None:  # pragma: no cover - an app built for its OpenAPI document only
        raise HTTPException(503, "the service is not running")
    return service


_bearer = HTTPBearer(auto_error=False, description="EXTRACTOR_API_TOKEN, when the server has one")


def _authorized(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    token = _service(request).config.token
    if token is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode("utf-8")):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def _note(request: Request, **fields: Any) -> None:
    """Fields for this request's log line (job id, article counts)."""
    request.scope.setdefault("state", {}).setdefault("log", {}).update(fields)


# --------------------------------------------------------------------------- ASGI middleware


class _BodyLimit:
    """413 for a body over the limit: at once by Content-Length, else when the stream passes it."""

    def __init__(self, app: ASGIApp, limit: Callable[[Scope], int | None]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit(scope) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        detail = f"request body over the limit of {limit:,} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                response = JSONResponse({"detail": detail}, status_code=413)
                await response(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, limited, send)


class _AccessLog:
    """One JSON log line and the request metrics per HTTP request (after a stream, when it ends)."""

    def __init__(self, app: ASGIApp, service: Callable[[], _Service | None]) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self.service()
        if scope["type"] != "http" or service is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        sent = 0

        async def counting(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            if method not in _METHODS:  # label values stay a small set, whatever clients send
                method = "other"
            service.metrics.requests.labels(route, method, str(status)).inc()
            service.metrics.latency.labels(route, method).observe(elapsed)
            extra = dict(scope.get("state", {}).get("log", {}))
            job = extra.pop("job", None) or scope.get("path_params", {}).get("job_id")
            service.log(
                "request",
                method=method,
                route=route,
                status=status,
                latency_ms=round(elapsed * 1000, 2),
                bytes=sent,
                job=job,
                **extra,
            )


# --------------------------------------------------------------------------- the app

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or wrong bearer token (when the server has one)"},
}
_JOB_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "no job with this id"}}
_VALIDATION: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "malformed JSON, or a field that is wrong (``loc`` names it)",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}},
    }
}
_TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorBody, "description": "request body or an article's text over the server's limit"}
}
_BUSY: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorBody,
        "description": "the queue is full; retry after the Retry-After header's seconds",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
    }
}
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorBody,
        "description": "no usable model endpoint (no key, unreachable), or shutting down",
    }
}

_EXTRACT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ArticleIn"}}},
}
_JOBS_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {"type": "array", "items": {"$ref": "#/components/schemas/ArticleIn"}, "minItems": 1},
                    {"$ref": "#/components/schemas/JobPaths"},
                ]
            }
        },
        NDJSON: {
            "schema": {"type": "array", "items": {"$ref": "#/components/schemas/ArticleIn"}, "minItems": 1},
            "description": "one ArticleIn JSON object per line",
        },
    },
}


def create_app(service: _Service | None) -> FastAPI:
    """The FastAPI app over ``service`` (None: an app for its OpenAPI document only)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if service is not None:
            await service.start()
        try:
            yield
        finally:
            if service is not None:
                await service.stop()

    app = FastAPI(
        title="extractor",
        version=__version__,
        description=(
            "News articles -> events, verbatim-grounded direct quotes and stances. Every quote and every "
            "piece of evidence in a result is proven verbatim in the article, with its character offsets."
        ),
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service

    auth = [Depends(_authorized)]

    @app.post(
        "/v1/extract",
        dependencies=auth,
        response_model=None,
        responses={
            200: {"model": ArticleResult, "description": "the article's result (``status`` ok or error)"},
            **_ERRORS,
            **_TOO_LARGE,
            **_VALIDATION,
            **_BUSY,
            **_UNAVAILABLE,
        },
        openapi_extra={"requestBody": _EXTRACT_BODY},
        summary="Extract one article, synchronously",
    )
    async def extract(request: Request) -> Response:
        svc = _service(request)
        # Parsed here, not by FastAPI, which answers 400 to a body that is not UTF-8.
        try:
            article = _ONE.validate_python(_json_body(await request.body()))
        except ValidationError as exc:
            raise RequestValidationError(_errors(exc, ("body",))) from None
        if len(article.text) > svc.config.max_article_chars:
            limit = svc.config.max_article_chars
            raise HTTPException(413, f"text has {len(article.text):,} characters; the limit is {limit:,}")
        if svc.stopping:
            raise HTTPException(503, "shutting down")
        if svc.pending >= svc.config.max_pending:
            raise HTTPException(
                429,
                f"{svc.pending} articles are in flight or waiting, the most this server holds",
                headers={"Retry-After": "1"},
            )
        _note(request, articles=1)
        svc.pending += 1
        try:
            result = await svc.extractor.aextract(_article(article))
        except ConfigError as exc:
            raise HTTPException(503, svc.redact(str(exc))) from None
        finally:
            svc.pending -= 1
        _note(request, status_of_article=result.status)
        body = svc.redact(result.model_dump_json())
        return Response(body, media_type="application/json")

    @app.post(
        "/v1/jobs",
        dependencies=auth,
        status_code=202,
        response_model=JobStatus,
        responses={
            202: {"description": "queued; poll GET /v1/jobs/{id}, stream GET /v1/jobs/{id}/results"},
            **_ERRORS,
            **_TOO_LARGE,
            415: {
                "model": ErrorBody,
                "description": "the body is neither application/json nor application/x-ndjson",
            },
            **_VALIDATION,
            **_BUSY,
            **_UNAVAILABLE,
        },
        openapi_extra={"requestBody": _JOBS_BODY},
        summary="Submit a job: a JSON list of articles, NDJSON, or server-side paths",
    )
    async def submit(request: Request, response: Response) -> JobStatus:
        svc = _service(request)
        if svc.stopping:
            raise HTTPException(503, "shutting down")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body = await request.body()
        if kind in (NDJSON, "application/jsonl", "application/ndjson"):
            articles = _ndjson_articles(body)
        elif kind == "application/json" or kind.endswith("+json"):
            parsed = _json_body(body)
            if isinstance(parsed, dict):
                return await _paths_job(svc, request, response, parsed)
            try:
                articles = _ARTICLES.validate_python(parsed)
            except ValidationError as exc:
                raise RequestValidationError(_errors(exc, ("body",))) from None
            if not articles:
                raise RequestValidationError([_error(("body",), "at least one article is needed")])
        else:
            raise HTTPException(
                415, 'send application/json (a list of articles, or {"paths": [...]}) or application/x-ndjson'
            )
        for i, item in enumerate(articles):
            if len(item.text) > svc.config.max_article_chars:
                raise HTTPException(
                    413,
                    f"article {i}: text has {len(item.text):,} characters; the limit is "
                    f"{svc.config.max_article_chars:,}",
                )
        try:
            status = await svc.jobs.submit_articles([a.to_line() for a in articles])
        except QueueFullError as exc:
            raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
        except (OSError, StoreError) as exc:  # the data dir is full or unwritable
            raise HTTPException(
                503, f"cannot store the job: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        _note(request, job=status.id, articles=len(articles))
        response.headers["Location"] = f"/v1/jobs/{status.id}"
        return status

    @app.get(
        "/v1/jobs/{job_id}", dependencies=auth, response_model=JobStatus, responses={**_ERRORS, **_JOB_404}
    )
    async def job_status(job_id: str, request: Request) -> JobStatus:
        try:
            return _service(request).jobs.status(job_id)
        except UnknownJobError:
            raise HTTPException(404, f"no job {job_id!r}") from None

    @app.get(
        "/v1/jobs/{job_id}/results",
        dependencies=auth,
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "one ArticleResult per line, streamed as they finish; ends when the job does",
                "content": {NDJSON: {"schema": {"$ref": "#/components/schemas/ArticleResult"}}},
            },
            **_ERRORS,
            **_JOB_404,
        },
    )
    async def job_results(
        job_id: str,
        request: Request,
        after: Annotated[int, Query(ge=0, description="skip the first N result lines (those you have)")] = 0,
    ) -> StreamingResponse:
        jobs = _service(request).jobs
        try:
            jobs.status(job_id)
        except UnknownJobError:
            raise HTTPException(404, f"no job {job_id!r}") from None
        return StreamingResponse(jobs.follow(job_id, after), media_type=NDJSON)

    @app.get(
        "/v1/jobs/{job_id}/report",
        dependencies=auth,
        response_class=FileResponse,
        responses={
            200: {
                "description": "the review page (self-contained HTML)",
                "content": {"text/html": {"schema": {"type": "string"}}},
            },
            **_ERRORS,
            **_JOB_404,
            409: {"model": ErrorBody, "description": "the job has no result yet"},
        },
    )
    async def job_report(job_id: str, request: Request) -> FileResponse:
        jobs = _service(request).jobs
        try:
            page = await jobs.report(job_id)
        except UnknownJobError:
            raise HTTPException(404, f"no job {job_id!r}") from None
        if page is None:
            raise HTTPException(409, "the job has no result yet")
        return FileResponse(page, media_type="text/html; charset=utf-8")

    @app.delete(
        "/v1/jobs/{job_id}", dependencies=auth, response_model=JobStatus, responses={**_ERRORS, **_JOB_404}
    )
    async def job_cancel(job_id: str, request: Request) -> JobStatus:
        try:
            return await _service(request).jobs.cancel(job_id)
        except UnknownJobError:
            raise HTTPException(404, f"no job {job_id!r}") from None

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "not ready"}}
    )
    async def readyz(request: Request) -> Response:
        ready, detail = await _service(request).readiness()
        return JSONResponse(
            Readiness(ready=ready, detail=detail).model_dump(), status_code=200 if ready else 503
        )

    @app.get(
        "/metrics",
        dependencies=auth,
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            **_ERRORS,
        },
    )
    async def metrics(request: Request) -> Response:
        data = generate_latest(_service(request).metrics.registry)
        return Response(data, media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's own handler echoes the input: huge for an article, and a lone surrogate in it
        # cannot even be encoded. The location and the message say what is wrong.
        errors = [
            {
                "type": str(e.get("type", "value_error")),
                "loc": list(e.get("loc", ())),
                "msg": str(e.get("msg", "")),
            }
            for e in exc.errors()
        ]
        body = json.dumps({"detail": errors}, ensure_ascii=True, default=str)
        return Response(body, status_code=422, media_type="application/json")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:  # a body that is not JSON at all (bad bytes): a malformed request
            detail = [{"type": "json_invalid", "loc": ["body"], "msg": str(exc.detail)}]
            return JSONResponse({"detail": detail}, status_code=422)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        svc: _Service | None = getattr(request.app.state, "service", None)
        if svc is not None:
            svc.log(
                "error", route=request.url.path, error=type(exc).__name__, message=svc.redact(str(exc))[:500]
            )
        return JSONResponse({"detail": "internal error"}, status_code=500)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for model in (ArticleIn, JobPaths):
                schemas[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.setdefault("HTTPValidationError", _validation_schema())
            schemas.setdefault("ValidationError", _validation_item_schema())
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    def body_limit(scope: Scope) -> int | None:
        if service is None or scope.get("method") not in ("POST", "PUT", "PATCH"):
            return None
        return service.config.max_body_bytes

    app.add_middleware(_BodyLimit, limit=body_limit)
    app.add_middleware(_AccessLog, service=lambda: service)
    return app


def _error(loc: tuple[Any, ...], msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"type": kind, "loc": list(loc), "msg": msg}


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        pos = getattr(exc, "pos", 0)
        raise RequestValidationError(
            [_error(("body", pos), f"JSON decode error: {exc}", "json_invalid")]
        ) from None


def _ndjson_articles(body: bytes) -> list[ArticleIn]:
    articles: list[ArticleIn] = []
    errors: list[dict[str, Any]] = []
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            articles.append(_ONE.validate_json(raw))
        except ValidationError as exc:
            errors.extend(_errors(exc, ("body", f"line {number}")))
        if len(errors) >= 50:
            break
    if errors:
        raise RequestValidationError(errors)
    if not articles:
        raise RequestValidationError([_error(("body",), "no article: the body has no non-blank line")])
    return articles


async def _paths_job(
    svc: _Service, request: Request, response: Response, parsed: dict[str, Any]
) -> JobStatus:
    try:
        spec = JobPaths.model_validate(parsed)
    except ValidationError as exc:
        raise RequestValidationError(_errors(exc, ("body",))) from None
    problems = svc.jobs.resolve_paths(spec.paths)
    if problems:
        raise RequestValidationError(
            [_error(("body", "paths", *([i] if i >= 0 else [])), reason) for i, reason in problems]
        )
    try:
        status = await svc.jobs.submit_paths(spec.paths)
    except QueueFullError as exc:
        raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
    except (OSError, StoreError) as exc:  # the data dir is full or unwritable
        raise HTTPException(503, f"cannot store the job: {getattr(exc, 'strerror', None) or exc}") from None
    _note(request, job=status.id, paths=len(spec.paths))
    response.headers["Location"] = f"/v1/jobs/{status.id}"
    return status


def _validation_item_schema() -> dict[str, Any]:
    return {
        "title": "ValidationError",
        "type": "object",
        "required": ["loc", "msg", "type"],
        "properties": {
            "loc": {
                "title": "Location",
                "type": "array",
                "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            },
            "msg": {"title": "Message", "type": "string"},
            "type": {"title": "Error Type", "type": "string"},
        },
    }


def _validation_schema() -> dict[str, Any]:
    return {
        "title": "HTTPValidationError",
        "type": "object",
        "properties": {
            "detail": {
                "title": "Detail",
                "type": "array",
                "items": {"$ref": "#/components/schemas/ValidationError"},
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    """The service's OpenAPI document (committed as schemas/openapi.json; ``extractor schemas``)."""
    return create_app(None).openapi()


# --------------------------------------------------------------------------- running it


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token, and a token too short to be one."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"EXTRACTOR_API_TOKEN has {len(token)} characters; use at least {MIN_TOKEN_CHARS} "
            "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if token is None and not _is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without authentication: set EXTRACTOR_API_TOKEN (clients then "
            "send `Authorization: Bearer TOKEN`), or keep --host 127.0.0.1"
        )


class _Server(uvicorn.Server):
    """uvicorn's server, telling the service at the first SIGTERM / Ctrl-C so running jobs begin to
    stop while uvicorn drains the connections."""

    def __init__(self, config: uvicorn.Config, service: _Service) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = self.service.loop
        if not self.should_exit and loop is not None:
            loop.call_soon_threadsafe(self.service.begin_shutdown)
        super().handle_exit(sig, frame)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def run(settings: Settings, config: ServiceConfig, log: TextIO | None = None) -> int:
    """Serve until SIGTERM / Ctrl-C; returns the exit code (0 after a clean stop)."""
    check_bind(config.host, config.token)
    if config.allow_paths is not None:
        allowed, data = config.allow_paths.resolve(), config.data_dir.resolve()
        if not allowed.is_dir():
            raise ConfigError(f"--allow-paths {config.allow_paths}: not a folder")
        if data == allowed or allowed in data.parents or data in allowed.parents:
            raise ConfigError("--data-dir and --allow-paths must not contain one another")
    try:
        (config.data_dir / "jobs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the data dir {config.data_dir}: {exc.strerror or exc}") from exc
    # No *_created series: they double the scrape for nothing a dashboard uses.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    service = _Service(settings, config, log)
    service.extractor.check_ready()
    sock = _listen(config.host, config.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    auth = "bearer token" if config.token else "none"
    message = f"listening on http://{shown}:{port}"
    if config.token is None:
        message += " (no EXTRACTOR_API_TOKEN: no authentication, so loopback only)"
    service.listening = {
        "url": f"http://{shown}:{port}",
        "auth": auth,
        "model": settings.model,
        "endpoint": settings.public_endpoint
        if settings.replay_dir is None
        else f"replay {settings.replay_dir}",
        "data_dir": str(config.data_dir),
        "message": message,
    }
    uv_config = uvicorn.Config(
        create_app(service),
        log_level="warning",
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=max(1, int(config.shutdown_timeout_s)),
    )
    server = _Server(uv_config, service)
    # uvicorn re-raises the signal it caught once it has stopped; a no-op handler makes that a clean exit.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    return 0 if server.started else 1
