"""A typed client for ``extractor serve`` (httpx and pydantic only: no openai, no web framework).

    from extractor.client import ServiceClient

    with ServiceClient("http://127.0.0.1:8000", token=None) as api:
        res = api.extract("Full text of an article ...", id="a1")      # ArticleResult
        job = api.submit([{"id": "a2", "text": "..."}, {"text": "..."}])   # JobStatus (queued)
        for res in api.results(job.id):                                  # as they finish, to the end
            print(res.article_id, len(res.quotes))
        print(api.wait(job.id).state)                                     # "done"

``jobs()`` lists the server's jobs newest first (a page; ``iter_jobs()`` all pages), ``cancel`` stops a
queued or running job and ``delete`` deletes a finished one (or cancels one still running). Every call
has an async twin with an ``a`` prefix (``aextract``, ``asubmit``, ``aresults``, ``ajob``, ``ajobs``,
``await_job``, ``acancel``, ``adelete``, ...), as ``Extractor`` has. A non-2xx answer raises
``ServiceError`` with its status and the server's ``detail``; 429 and 503 answers are retried
(``retries`` times, after the server's ``Retry-After``). ``results`` follows a job to its end,
reconnecting with ``?after=N`` when a stream breaks (a restarted server resumes the job; ``after`` is a
line number, which never changes).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import BaseModel

from extractor.closing import Closing
from extractor.models import ArticleResult
from extractor.serve_models import ArticleIn, JobList, JobStatus, Readiness

__all__ = ["ArticleInput", "ServiceClient", "ServiceError"]

ArticleInput = ArticleIn | Mapping[str, Any] | str
_NDJSON = "application/x-ndjson"


class ServiceError(Exception):
    """The service answered with an error status."""

    def __init__(self, status_code: int, detail: Any, retry_after_s: float | None = None) -> None:
        self.status_code = status_code
        self.detail = detail
        self.retry_after_s = retry_after_s
        super().__init__(f"HTTP {status_code}: {detail if isinstance(detail, str) else json.dumps(detail)}")


def _line(article: ArticleInput) -> bytes:
    if isinstance(article, str):
        article = ArticleIn(text=article)
    elif not isinstance(article, BaseModel):
        article = ArticleIn.model_validate(dict(article))
    return article.to_line()


def _listing(state: str | Iterable[str] | None, limit: int, cursor: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit}
    if state is not None:
        params["state"] = [state] if isinstance(state, str) else list(state)
    if cursor is not None:
        params["cursor"] = cursor
    return params


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail: Any = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text
    raise ServiceError(response.status_code, detail, _retry_after(response))


class ServiceClient(Closing):
    """Sync and async access to one ``extractor serve`` (see the module docstring).

    ``timeout`` bounds each request (an extraction can take as long as the model does); ``transport``
    is for tests (an ``httpx`` transport)."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        token: str | None = None,
        timeout: float = 600.0,
        retries: int = 3,
        poll_s: float = 1.0,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.poll_s = poll_s
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._options: dict[str, Any] = {"base_url": self.base_url, "headers": headers, "timeout": timeout}
        self._transport = transport
        self._async_transport = async_transport
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ plumbing

    @property
    def http(self) -> httpx.Client:
        if self._sync is None:
            self._sync = httpx.Client(transport=self._transport, **self._options)
        return self._sync

    @property
    def ahttp(self) -> httpx.AsyncClient:
        if self._async is None:
            self._async = httpx.AsyncClient(transport=self._async_transport, **self._options)
        return self._async

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retries + 1):
            response = self.http.request(method, path, **kwargs)
            if response.status_code in (429, 503) and attempt < self.retries:
                time.sleep(_retry_after(response) or 1.0)
                continue
            _raise_for(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    async def _arequest(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retries + 1):
            response = await self.ahttp.request(method, path, **kwargs)
            if response.status_code in (429, 503) and attempt < self.retries:
                await asyncio.sleep(_retry_after(response) or 1.0)
                continue
            _raise_for(response)
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _extract_body(text: str, fields: dict[str, Any]) -> bytes:
        return ArticleIn.model_validate(
            {"text": text, **{k: v for k, v in fields.items() if v is not None}}
        ).to_line()

    # ------------------------------------------------------------------ sync

    def extract(self, text: str, **fields: Any) -> ArticleResult:
        """One article (``id``, ``title``, ``url``, ``published`` optional) -> its result."""
        body = self._extract_body(text, fields)
        response = self._request(
            "POST", "/v1/extract", content=body, headers={"Content-Type": "application/json"}
        )
        return ArticleResult.model_validate_json(response.content)

    def submit(self, articles: Iterable[ArticleInput]) -> JobStatus:
        """A job over ``articles`` (texts, dicts or ``ArticleIn``), sent as NDJSON."""
        body = b"".join(_line(a) + b"\n" for a in articles)
        response = self._request("POST", "/v1/jobs", content=body, headers={"Content-Type": _NDJSON})
        return JobStatus.model_validate_json(response.content)

    def submit_paths(self, paths: Iterable[str]) -> JobStatus:
        """A job over files and folders on the server (under its ``--allow-paths`` folder)."""
        response = self._request("POST", "/v1/jobs", json={"paths": list(paths)})
        return JobStatus.model_validate_json(response.content)

    def job(self, job_id: str) -> JobStatus:
        return JobStatus.model_validate_json(self._request("GET", f"/v1/jobs/{job_id}").content)

    def jobs(
        self, *, state: str | Iterable[str] | None = None, limit: int = 50, cursor: str | None = None
    ) -> JobList:
        """One page of the server's jobs, newest first (only those in ``state``, one or several);
        pass its ``next_cursor`` as ``cursor`` for the next page."""
        response = self._request("GET", "/v1/jobs", params=_listing(state, limit, cursor))
        return JobList.model_validate_json(response.content)

    def iter_jobs(self, *, state: str | Iterable[str] | None = None, page: int = 100) -> Iterator[JobStatus]:
        """Every job, newest first, a page of ``page`` at a time."""
        cursor = None
        while True:
            listing = self.jobs(state=state, limit=page, cursor=cursor)
            yield from listing.jobs
            if listing.next_cursor is None:
                return
            cursor = listing.next_cursor

    def cancel(self, job_id: str) -> JobStatus:
        """Cancel a queued or running job (the articles in flight finish); a finished job is left as
        it is."""
        response = self._request("DELETE", f"/v1/jobs/{job_id}", params={"keep_finished": "true"})
        return JobStatus.model_validate_json(response.content)

    def delete(self, job_id: str) -> JobStatus:
        """Delete a finished job (its folder and results; then it is unknown: 404), returning its last
        status; a queued or running job is cancelled instead (delete it once it has finished)."""
        return JobStatus.model_validate_json(self._request("DELETE", f"/v1/jobs/{job_id}").content)

    def wait(self, job_id: str, *, timeout_s: float | None = None) -> JobStatus:
        """Poll until the job is done, cancelled or failed (TimeoutError after ``timeout_s``)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            status = self.job(job_id)
            if status.finished_state:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {status.state} after {timeout_s} s")
            time.sleep(self.poll_s)

    def results(self, job_id: str, *, after: int = 0) -> Iterator[ArticleResult]:
        """The job's results from line ``after`` on, as they finish, until the job is finished."""
        seen = after
        while True:
            try:
                with self.http.stream(
                    "GET", f"/v1/jobs/{job_id}/results", params={"after": seen}
                ) as response:
                    if not response.is_success:
                        response.read()
                        _raise_for(response)
                    for line in response.iter_lines():
                        if line.strip():
                            seen += 1
                            yield ArticleResult.model_validate_json(line)
            except httpx.TransportError:
                time.sleep(self.poll_s)  # the server went away mid-stream: reconnect from where we are
                continue
            try:
                status = self.job(job_id)
            except httpx.TransportError:
                time.sleep(self.poll_s)
                continue
            if status.finished_state and status.results <= seen:
                return
            time.sleep(0 if status.finished_state else self.poll_s)

    def report(self, job_id: str) -> str:
        """The job's review page (HTML)."""
        return self._request("GET", f"/v1/jobs/{job_id}/report").text

    def health(self) -> bool:
        return self.http.get("/healthz").is_success

    def ready(self) -> Readiness:
        return Readiness.model_validate_json(self.http.get("/readyz").content)

    def metrics(self) -> str:
        return self._request("GET", "/metrics").text

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()

    # ------------------------------------------------------------------ async

    async def aextract(self, text: str, **fields: Any) -> ArticleResult:
        body = self._extract_body(text, fields)
        response = await self._arequest(
            "POST", "/v1/extract", content=body, headers={"Content-Type": "application/json"}
        )
        return ArticleResult.model_validate_json(response.content)

    async def asubmit(self, articles: Iterable[ArticleInput]) -> JobStatus:
        body = b"".join(_line(a) + b"\n" for a in articles)
        response = await self._arequest("POST", "/v1/jobs", content=body, headers={"Content-Type": _NDJSON})
        return JobStatus.model_validate_json(response.content)

    async def asubmit_paths(self, paths: Iterable[str]) -> JobStatus:
        response = await self._arequest("POST", "/v1/jobs", json={"paths": list(paths)})
        return JobStatus.model_validate_json(response.content)

    async def ajob(self, job_id: str) -> JobStatus:
        return JobStatus.model_validate_json((await self._arequest("GET", f"/v1/jobs/{job_id}")).content)

    async def ajobs(
        self, *, state: str | Iterable[str] | None = None, limit: int = 50, cursor: str | None = None
    ) -> JobList:
        response = await self._arequest("GET", "/v1/jobs", params=_listing(state, limit, cursor))
        return JobList.model_validate_json(response.content)

    async def aiter_jobs(
        self, *, state: str | Iterable[str] | None = None, page: int = 100
    ) -> AsyncIterator[JobStatus]:
        cursor = None
        while True:
            listing = await self.ajobs(state=state, limit=page, cursor=cursor)
            for status in listing.jobs:
                yield status
            if listing.next_cursor is None:
                return
            cursor = listing.next_cursor

    async def acancel(self, job_id: str) -> JobStatus:
        response = await self._arequest("DELETE", f"/v1/jobs/{job_id}", params={"keep_finished": "true"})
        return JobStatus.model_validate_json(response.content)

    async def adelete(self, job_id: str) -> JobStatus:
        return JobStatus.model_validate_json((await self._arequest("DELETE", f"/v1/jobs/{job_id}")).content)

    async def await_job(self, job_id: str, *, timeout_s: float | None = None) -> JobStatus:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            status = await self.ajob(job_id)
            if status.finished_state:
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} is still {status.state} after {timeout_s} s")
            await asyncio.sleep(self.poll_s)

    async def aresults(self, job_id: str, *, after: int = 0) -> AsyncIterator[ArticleResult]:
        seen = after
        while True:
            try:
                async with self.ahttp.stream(
                    "GET", f"/v1/jobs/{job_id}/results", params={"after": seen}
                ) as response:
                    if not response.is_success:
                        await response.aread()
                        _raise_for(response)
                    async for line in response.aiter_lines():
                        if line.strip():
                            seen += 1
                            yield ArticleResult.model_validate_json(line)
            except httpx.TransportError:
                await asyncio.sleep(self.poll_s)
                continue
            try:
                status = await self.ajob(job_id)
            except httpx.TransportError:
                await asyncio.sleep(self.poll_s)
                continue
            if status.finished_state and status.results <= seen:
                return
            await asyncio.sleep(0 if status.finished_state else self.poll_s)

    async def areport(self, job_id: str) -> str:
        return (await self._arequest("GET", f"/v1/jobs/{job_id}/report")).text

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
