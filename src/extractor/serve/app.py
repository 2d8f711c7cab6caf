"""The service's routes (FastAPI): the app over one ``Service``, and its OpenAPI document."""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from extractor import __version__
from extractor.errors import ConfigError, StoreError
from extractor.models import ArticleResult
from extractor.serve.bodies import (
    ARTICLE,
    ARTICLES,
    NDJSON,
    article_of,
    error,
    json_body,
    ndjson_articles,
    validation_errors,
)
from extractor.serve.jobs import QueueFullError, UnknownJobError
from extractor.serve.middleware import AccessLog, BodyLimit, Scope
from extractor.serve.service import Service
from extractor.serve_models import (
    ArticleIn,
    ErrorBody,
    Health,
    JobList,
    JobPaths,
    JobState,
    JobStatus,
    Readiness,
)

__all__ = ["create_app", "openapi_document"]


def _service(request: Request) -> Service:
    service: Service | None = getattr(request.app.state, "service", None)
    if service is None:  # pragma: no cover - an app built for its OpenAPI document only
        raise HTTPException(503, "the service is not running")
    return service


_bearer = HTTPBearer(auto_error=False, description="EXTRACTOR_API_TOKEN, when the server has one")


def _authorized(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    token = _service(request).config.api_token
    if token is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token.encode("utf-8")):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def _note(request: Request, **fields: Any) -> None:
    """Fields for this request's log line (job id, article counts)."""
    request.scope.setdefault("state", {}).setdefault("log", {}).update(fields)


# --------------------------------------------------------------------------- the app


def _content(media_type: str, schema: str | None = None) -> dict[str, Any]:
    """An OpenAPI ``content`` map: one media type, of the component ``schema`` (None: a string)."""
    return {
        media_type: {"schema": {"$ref": f"#/components/schemas/{schema}"} if schema else {"type": "string"}}
    }


def _ok(description: str, media_type: str, schema: str | None = None) -> dict[int | str, dict[str, Any]]:
    """The 200 response of a route that does not answer JSON."""
    return {200: {"description": description, "content": _content(media_type, schema)}}


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "missing or wrong bearer token (when the server has one)"},
}
_JOB_404: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody, "description": "no job with this id"}}
_VALIDATION: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "malformed JSON, or a field that is wrong (``loc`` names it)",
        "content": _content("application/json", "HTTPValidationError"),
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

MAX_PAGE = 500

_EXTRACT_BODY = {
    "required": True,
    "content": _content("application/json", "ArticleIn"),
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


def create_app(service: Service | None) -> FastAPI:
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

    # Every route of ``api`` needs the bearer token (when the server has one) and says so: a new route
    # there cannot forget it. Only the probes are open.
    api = APIRouter(dependencies=[Depends(_authorized)], responses=_ERRORS)

    @api.post(
        "/v1/extract",
        response_model=None,
        responses={
            200: {"model": ArticleResult, "description": "the article's result (``status`` ok or error)"},
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
            article = ARTICLE.validate_python(json_body(await request.body()))
        except ValidationError as exc:
            raise RequestValidationError(validation_errors(exc, ("body",))) from None
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
            result = await svc.extractor.aextract(article_of(article))
        except ConfigError as exc:
            raise HTTPException(503, svc.redact(str(exc))) from None
        finally:
            svc.pending -= 1
        _note(request, status_of_article=result.status)
        body = svc.redact(result.model_dump_json())
        return Response(body, media_type="application/json")

    @api.post(
        "/v1/jobs",
        status_code=202,
        response_model=JobStatus,
        responses={
            202: {"description": "queued; poll GET /v1/jobs/{id}, stream GET /v1/jobs/{id}/results"},
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
            articles = ndjson_articles(body)
        elif kind == "application/json" or kind.endswith("+json"):
            parsed = json_body(body)
            if isinstance(parsed, dict):
                return await _paths_job(svc, request, response, parsed)
            try:
                articles = ARTICLES.validate_python(parsed)
            except ValidationError as exc:
                raise RequestValidationError(validation_errors(exc, ("body",))) from None
            if not articles:
                raise RequestValidationError([error(("body",), "at least one article is needed")])
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

    @api.get(
        "/v1/jobs",
        response_model=JobList,
        responses=_VALIDATION,
        summary="List the jobs, newest first",
    )
    async def list_jobs(
        request: Request,
        state: Annotated[list[JobState] | None, Query(description="only jobs in these states")] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="at most this many jobs")] = 50,
        cursor: Annotated[
            str | None, Query(max_length=100, description="the next_cursor of the page before")
        ] = None,
    ) -> JobList:
        try:
            return _service(request).jobs.list_jobs(state, limit, cursor)
        except ValueError as exc:
            raise RequestValidationError([error(("query", "cursor"), str(exc))]) from None

    @api.get("/v1/jobs/{job_id}", response_model=JobStatus, responses=_JOB_404)
    async def job_status(job_id: str, request: Request) -> JobStatus:
        return _service(request).jobs.status(job_id)

    @api.get(
        "/v1/jobs/{job_id}/results",
        response_class=StreamingResponse,
        responses={
            **_ok(
                "one ArticleResult per line, streamed as they finish; ends when the job does",
                NDJSON,
                "ArticleResult",
            ),
            **_JOB_404,
        },
    )
    async def job_results(
        job_id: str,
        request: Request,
        after: Annotated[int, Query(ge=0, description="skip the first N result lines (those you have)")] = 0,
    ) -> StreamingResponse:
        jobs = _service(request).jobs
        jobs.status(job_id)  # a 404 before the stream starts
        return StreamingResponse(jobs.follow(job_id, after), media_type=NDJSON)

    @api.get(
        "/v1/jobs/{job_id}/report",
        response_class=FileResponse,
        responses={
            **_ok("the review page (self-contained HTML)", "text/html"),
            **_JOB_404,
            409: {"model": ErrorBody, "description": "the job has no result yet"},
        },
    )
    async def job_report(job_id: str, request: Request) -> FileResponse:
        page = await _service(request).jobs.report(job_id)
        if page is None:
            raise HTTPException(409, "the job has no result yet")
        return FileResponse(page, media_type="text/html; charset=utf-8")

    @api.delete(
        "/v1/jobs/{job_id}",
        response_model=JobStatus,
        responses={
            200: {
                "description": "a queued or running job: cancelled (its status: cancelled, or cancelling "
                "while the articles in flight finish); a finished job: deleted (its last status), or "
                "left as it is with ?keep_finished=true"
            },
            **_JOB_404,
            503: {"model": ErrorBody, "description": "the job's folder could not be deleted"},
        },
        summary="Cancel a queued or running job; delete a finished one",
    )
    async def job_delete(
        job_id: str,
        request: Request,
        keep_finished: Annotated[
            bool, Query(description="leave a finished job as it is (only cancel one still to finish)")
        ] = False,
    ) -> JobStatus:
        jobs = _service(request).jobs
        try:
            return await (jobs.cancel(job_id) if keep_finished else jobs.delete(job_id))
        except StoreError as exc:
            raise HTTPException(503, str(exc)) from None

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

    @api.get(
        "/metrics",
        response_class=Response,
        responses=_ok("Prometheus text format", "text/plain"),
    )
    async def metrics(request: Request) -> Response:
        data = generate_latest(_service(request).metrics.registry)
        return Response(data, media_type="text/plain; version=0.0.4; charset=utf-8")

    app.include_router(api)

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

    @app.exception_handler(UnknownJobError)
    async def unknown_job(request: Request, exc: UnknownJobError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        svc: Service | None = getattr(request.app.state, "service", None)
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

    app.add_middleware(BodyLimit, limit=body_limit)
    app.add_middleware(AccessLog, service=lambda: service)
    return app


async def _paths_job(svc: Service, request: Request, response: Response, parsed: dict[str, Any]) -> JobStatus:
    try:
        spec = JobPaths.model_validate(parsed)
    except ValidationError as exc:
        raise RequestValidationError(validation_errors(exc, ("body",))) from None
    problems = await svc.jobs.check_paths(spec.paths)
    if problems:
        raise RequestValidationError(
            [error(("body", "paths", *([i] if i >= 0 else [])), reason) for i, reason in problems]
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
