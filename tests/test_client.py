"""``extractor.client.ServiceClient``: sync and async against the real server, and its retry, reconnect and
light-import behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
import pytest

from extractor.client import ServiceClient, ServiceError
from extractor.serve_models import ArticleIn
from tests.service import RunningService

ARTICLE = 'The minister said: "We will not sign this deal." Talks ended on 6 January 2026 in Paris.'


def test_sync_client_against_the_server(service: RunningService) -> None:
    with ServiceClient(service.url, poll_s=0.1) as api:
        assert api.health() and api.ready().ready
        result = api.extract(ARTICLE, id="c1", title="Talks", published="2026-01-07")
        assert result.status == "ok" and result.article_id == "c1" and result.title == "Talks"
        assert result.quotes[0].span.status == "exact"
        job = api.submit(
            [
                'Plain text one. She said: "First."',
                {"id": "c-two", "text": 'Dict two. He said: "Second."'},
                ArticleIn(id="c-three", text='Model three. They said: "Third."'),
            ]
        )
        assert job.state == "queued" and job.articles == 3
        results = list(api.results(job.id))  # follows the job to its end
        assert len(results) == 3 and {"c-two", "c-three"} <= {r.article_id for r in results}
        done = api.wait(job.id, timeout_s=60)
        assert done.state == "done" and done.ok == 3 and done.results == 3
        assert [r.article_id for r in api.results(job.id, after=2)] == [results[2].article_id]
        assert api.cancel(job.id).state == "done"
        assert "c-two" in api.report(job.id)
        assert "extractor_http_requests_total" in api.metrics()
        with pytest.raises(ServiceError) as missing:
            api.job("0123456789abcdef")
        assert missing.value.status_code == 404 and "no job" in str(missing.value.detail)
        with pytest.raises(ServiceError) as invalid:
            api.submit_paths(["../elsewhere"])
        assert invalid.value.status_code == 422 and invalid.value.detail[0]["loc"] == ["body", "paths", 0]
        paths_job = api.submit_paths(["one.txt"])
        assert api.wait(paths_job.id, timeout_s=60).ok == 1
        newest = api.jobs(limit=1)
        assert [j.id for j in newest.jobs] == [paths_job.id] and newest.next_cursor
        second = api.jobs(limit=1, cursor=newest.next_cursor).jobs[0]
        assert second.id == job.id and second.created <= paths_job.created
        done_ids = [j.id for j in api.iter_jobs(state="done", page=1)]
        assert done_ids[:2] == [paths_job.id, job.id] and len(done_ids) == len(set(done_ids))
        assert api.jobs(state=["queued", "running"]).jobs == []
        deleted = api.delete(paths_job.id)
        assert deleted.id == paths_job.id and deleted.state == "done"
        with pytest.raises(ServiceError) as gone:
            api.job(paths_job.id)
        assert gone.value.status_code == 404


async def test_async_client_against_the_server(service: RunningService) -> None:
    async with ServiceClient(service.url, poll_s=0.1) as api:
        result = await api.aextract('Async article. He said: "Soon."', id="async-1")
        assert result.status == "ok" and result.article_id == "async-1"
        job = await api.asubmit(
            [{"id": f"async-job-{i}", "text": f'Async {i}. She said: "N{i}."'} for i in range(3)]
        )
        seen = [r.article_id async for r in api.aresults(job.id)]
        assert sorted(seen) == ["async-job-0", "async-job-1", "async-job-2"]
        status = await api.await_job(job.id, timeout_s=60)
        assert status.state == "done" and status.ok == 3
        assert (await api.ajob(job.id)).results == 3
        assert "async-job-1" in await api.areport(job.id)
        assert (await api.ajobs(limit=1, state="done")).jobs[0].id == job.id
        assert job.id in [j.id async for j in api.aiter_jobs(state=["done"], page=2)]
        assert (await api.acancel(job.id)).state == "done"  # finished: left as it is
        assert (await api.adelete(job.id)).state == "done"
        with pytest.raises(ServiceError) as deleted:
            await api.ajob(job.id)
        assert deleted.value.status_code == 404
        with pytest.raises(ServiceError) as missing:
            await api.acancel("ffffffffffffffff")
        assert missing.value.status_code == 404


def _status(**fields: Any) -> dict[str, Any]:
    return {"id": "0123456789abcdef", "state": "done", "created": "2026-01-07T00:00:00Z", **fields}


def _line(article_id: str) -> str:
    from extractor.models import ArticleResult

    result = ArticleResult(article_id=article_id, source="api", sha256="", status="ok")
    return result.model_dump_json() + "\n"


def test_results_reconnect_from_where_the_stream_broke() -> None:
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        if request.url.path.endswith("/results"):
            after = int(request.url.params["after"])
            if after == 0:  # the first stream gives one line, then the server goes away
                return httpx.Response(200, stream=_BrokenStream(_line("r0")))
            return httpx.Response(200, text="".join(_line(f"r{i}") for i in range(after, 3)))
        return httpx.Response(200, json=_status(results=3))

    api = ServiceClient("http://service", poll_s=0, transport=httpx.MockTransport(handler))
    assert [r.article_id for r in api.results("0123456789abcdef")] == ["r0", "r1", "r2"]
    assert any("after=1" in url for url in calls)


class _BrokenStream(httpx.SyncByteStream):
    def __init__(self, first: str) -> None:
        self.first = first

    def __iter__(self) -> Any:
        yield self.first.encode()
        raise httpx.ReadError("connection reset")


def test_429_and_503_are_retried_after_retry_after_then_raised() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "0"}, json={"detail": "busy"}),
        httpx.Response(503, json={"detail": "shutting down"}),
        httpx.Response(200, json=_status(state="queued")),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers.pop(0)

    api = ServiceClient(
        "http://service", token="t0ken-0123456789abcdef", transport=httpx.MockTransport(handler)
    )
    api.retries = 2
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("time.sleep", lambda _s: None)
        assert api.submit(["one", "two"]).state == "queued"
    assert len(seen) == 3
    assert seen[0].headers["authorization"] == "Bearer t0ken-0123456789abcdef"
    assert seen[0].headers["content-type"] == "application/x-ndjson"
    assert [json.loads(line)["text"] for line in seen[0].content.decode().splitlines()] == ["one", "two"]

    api = ServiceClient(
        "http://service",
        retries=0,
        transport=httpx.MockTransport(
            lambda r: httpx.Response(429, headers={"Retry-After": "7"}, json={"detail": "x"})
        ),
    )
    with pytest.raises(ServiceError) as busy:
        api.extract("text")
    assert busy.value.status_code == 429 and busy.value.retry_after_s == 7.0


def test_importing_the_client_loads_no_server_or_model_dependency() -> None:
    code = (
        "import sys, extractor.client\n"
        "heavy = ('openai', 'instructor', 'fastapi', 'starlette', 'uvicorn', 'prometheus_client', "
        "'trafilatura', 'diskcache', 'jinja2', 'extractor.pipeline', 'extractor.serve')\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy or m in heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
