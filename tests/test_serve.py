"""``extractor serve``: the real server (uvicorn on 127.0.0.1, a random port) against a local fake endpoint.

Endpoints, limits and their errors, auth, logs, metrics, SIGTERM and the resume of unfinished jobs after a
restart, and that the API key shows up nowhere.
"""

from __future__ import annotations

import http.server
import json
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from extractor import cli
from extractor.errors import ConfigError
from extractor.models import ArticleResult
from extractor.serve import check_bind, openapi_document
from tests.service import API_KEY, RunningService, fake_server, start_service, wait_for, wait_job

TOKEN = "test-token-0123456789-abcdefghij"
ARTICLE = 'The minister said: "We will not sign this deal." Talks ended on 6 January 2026 in Paris.'


def texts(n: int, tag: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{tag}-{i}",
            "text": f'Article {tag} {i}. The mayor said: "Number {i} is final." Then it ended.',
        }
        for i in range(n)
    ]


def results_of(client: httpx.Client, job_id: str, after: int = 0) -> list[dict[str, Any]]:
    response = client.get(f"/v1/jobs/{job_id}/results", params={"after": after})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


# --------------------------------------------------------------------------- one article


def test_extract_one_article(service: RunningService) -> None:
    with service.client() as client:
        response = client.post("/v1/extract", json={"id": "a/1", "text": ARTICLE, "published": "2026-01-07"})
    assert response.status_code == 200, response.text
    result = ArticleResult.model_validate_json(response.content)
    assert result.status == "ok" and result.article_id == "a_1" and result.source == "api"
    assert str(result.published) == "2026-01-07"
    assert result.quotes and all(q.span.status == "exact" for q in result.quotes)
    quote = result.quotes[0]
    assert quote.span.start is not None and quote.span.end is not None
    assert ARTICLE[quote.span.start : quote.span.end] == quote.text
    line = wait_for(lambda: [e for e in service.events("request") if e["route"] == "/v1/extract"])[-1]
    assert line["status"] == 200 and line["method"] == "POST" and line["articles"] == 1
    assert isinstance(line["latency_ms"], float)


def test_health_readiness_and_metrics(service: RunningService) -> None:
    with service.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["ready"] is True
        client.post("/v1/extract", json={"text": 'Metrics article. She said: "Count me."'})
        text = client.get("/metrics").text
    assert 'extractor_http_requests_total{method="POST",route="/v1/extract",status="200"}' in text
    assert 'extractor_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/healthz"}' in text
    for name in (
        "extractor_llm_calls_total",
        'extractor_llm_tokens_total{kind="prompt"}',
        "extractor_cache_hits_total",
        'extractor_articles_total{status="ok"}',
        "extractor_llm_rate_limited_total",
        'extractor_queue_depth{queue="jobs_queued"}',
        'extractor_queue_depth{queue="extract_pending"}',
    ):
        assert name in text, name
    assert "_created" not in text


# --------------------------------------------------------------------------- jobs


def test_job_from_a_json_list_streams_results_and_reports(service: RunningService) -> None:
    articles = [*texts(3, "list"), {"text": texts(1, "list")[0]["text"]}]  # the last: a duplicate text
    with service.client() as client:
        response = client.post("/v1/jobs", json=articles)
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["state"] == "queued" and job["articles"] == 4
        assert response.headers["location"] == f"/v1/jobs/{job['id']}"
        streamed = results_of(client, job["id"])  # follows the job to its end
        status = wait_job(client, job["id"])
        assert status["state"] == "done" and status["done"] == 4 and status["ok"] == 4
        assert status["duplicates"] == 1 and status["results"] == 4 and status["progress"] == 1.0
        assert status["http_calls"] == 3 and status["prompt_tokens"] > 0 and status["cost_usd"] > 0
        assert len(streamed) == 4
        assert {r["article_id"] for r in streamed} == {"list-0", "list-1", "list-2", "input-4"}
        assert {r["source"] for r in streamed} == {f"input.jsonl:{n}" for n in range(1, 5)}
        assert results_of(client, job["id"], after=3) == streamed[3:]
        assert results_of(client, job["id"], after=99) == []
        page = client.get(f"/v1/jobs/{job['id']}/report")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "list-1" in page.text and "Content-Security-Policy" in page.text
        kept = client.delete(f"/v1/jobs/{job['id']}", params={"keep_finished": "true"})
        assert kept.json()["state"] == "done" and client.get(f"/v1/jobs/{job['id']}").status_code == 200
        assert client.delete(f"/v1/jobs/{job['id']}").json()["state"] == "done"  # finished: deleted
        assert client.get(f"/v1/jobs/{job['id']}").status_code == 404
    job_line = [
        e for e in service.events("request") if e["route"] == "/v1/jobs" and e.get("job") == job["id"]
    ]
    assert job_line and job_line[0]["articles"] == 4 and job_line[0]["status"] == 202


def test_job_from_ndjson(service: RunningService) -> None:
    body = "\n".join(json.dumps(a) for a in texts(2, "nd")) + "\n\n"
    with service.client() as client:
        response = client.post("/v1/jobs", content=body, headers={"content-type": "application/x-ndjson"})
        assert response.status_code == 202, response.text
        status = wait_job(client, response.json()["id"])
        assert status["state"] == "done" and status["ok"] == 2
        assert [r["article_id"] for r in results_of(client, status["id"])] in (
            ["nd-0", "nd-1"],
            ["nd-1", "nd-0"],
        )


def test_job_from_server_side_paths(service: RunningService) -> None:
    with service.client() as client:
        response = client.post("/v1/jobs", json={"paths": ["one.txt", "sub"]})
        assert response.status_code == 202, response.text
        status = wait_job(client, response.json()["id"])
        assert status["state"] == "done" and status["articles"] == 2 and status["ok"] == 2
        sources = sorted(r["source"] for r in results_of(client, status["id"]))
        assert sources == ["one.txt", "sub/two.txt"]  # relative to the allowed folder
        for paths, where in (
            (["../outside.txt"], ["body", "paths", 0]),
            (["/etc/passwd"], ["body", "paths", 0]),
            (["one.txt", "missing.txt"], ["body", "paths", 1]),
        ):
            response = client.post("/v1/jobs", json={"paths": paths})
            assert response.status_code == 422, response.text
            assert response.json()["detail"][0]["loc"] == where


def test_cancel_then_sigterm_mid_job_then_restart_resumes_with_nothing_paid_twice(tmp_path: Path) -> None:
    """Job A is cancelled (what it did stays); job B is running when SIGTERM comes: the articles in
    flight finish, the server exits in time, and the next start resumes B and not A."""
    config = fake_server.ServerConfig(latency=0.4)
    with fake_server.run_in_thread(config) as slow:
        stats = slow.removesuffix("/v1") + "/stats"
        data = tmp_path / "data"
        first = start_service(data, slow, "--concurrency", "3", "--no-cache", "--shutdown-timeout", "10")
        with first.client() as client:
            a = client.post("/v1/jobs", json=texts(30, "cancel")).json()
            b = client.post("/v1/jobs", json=texts(24, "resume")).json()
            assert client.get(f"/v1/jobs/{b['id']}").json()["state"] == "queued"
            wait_for(lambda: client.get(f"/v1/jobs/{a['id']}").json()["done"] >= 2)
            cancelled = client.delete(f"/v1/jobs/{a['id']}")
            assert cancelled.status_code == 200 and cancelled.json()["state"] in ("cancelling", "cancelled")
            a_status = wait_job(client, a["id"])
            assert a_status["state"] == "cancelled" and 2 <= a_status["done"] < 30
            assert len(results_of(client, a["id"])) == a_status["results"] == a_status["done"]
            wait_for(lambda: client.get(f"/v1/jobs/{b['id']}").json()["done"] >= 4)
        code, took = first.stop(signal.SIGTERM)
        assert code == 0, "\n".join(first.lines)
        assert took < 10, f"SIGTERM took {took:.1f} s"
        assert first.events("stopping") and first.events("stopped")
        record = json.loads((data / "jobs" / b["id"] / "job.json").read_text())
        assert record["status"]["state"] == "queued"  # handed back: the next start resumes it
        b_before = len((data / "jobs" / b["id"] / "results.jsonl").read_text().splitlines())
        assert 4 <= b_before < 24
        paid_before = httpx.get(stats).json()["requests"]
        assert paid_before == a_status["http_calls"] + b_before  # the articles in flight finished

        second = start_service(data, slow, "--concurrency", "3", "--no-cache")
        try:
            assert second.events("jobs_resumed")[0]["jobs"] == 1  # B, not the cancelled A
            with second.client() as client:
                assert client.get(f"/v1/jobs/{a['id']}").json() == a_status
                status = wait_job(client, b["id"])
                assert status["state"] == "done" and status["resumed"] == 1
                assert status["done"] == 24 and status["ok"] == 24 and status["results"] == 24
                lines = results_of(client, b["id"])
            assert sorted(r["article_id"] for r in lines) == sorted(f"resume-{i}" for i in range(24))
            assert httpx.get(stats).json()["requests"] == paid_before + 24 - b_before  # nothing paid twice
            assert status["http_calls"] == 24
        finally:
            second.stop()


# --------------------------------------------------------------------------- limits and errors


def test_bad_input_answers_4xx_naming_the_field(service: RunningService) -> None:
    with service.client() as client:
        cases: list[tuple[str, dict[str, Any], int, list[Any] | None]] = [
            ("/v1/extract", {"json": {"id": "x"}}, 422, ["body", "text"]),
            ("/v1/extract", {"json": {"text": "   \n"}}, 422, ["body", "text"]),
            ("/v1/extract", {"json": {"text": "x", "published": "soon"}}, 422, ["body", "published"]),
            ("/v1/extract", {"json": {"text": "x", "id": True}}, 422, ["body", "id"]),
            (
                "/v1/extract",
                {"content": '{"text": "\\ud800"}', "headers": {"content-type": "application/json"}},
                422,
                ["body", "text"],
            ),
            (
                "/v1/extract",
                {"content": "{not json", "headers": {"content-type": "application/json"}},
                422,
                None,
            ),
            ("/v1/jobs", {"json": []}, 422, ["body"]),
            ("/v1/jobs", {"json": [{"text": "ok"}, {"title": "no text"}]}, 422, ["body", 1, "text"]),
            ("/v1/jobs", {"json": {"pathz": ["x"]}}, 422, None),
            ("/v1/jobs", {"content": "{oops", "headers": {"content-type": "application/json"}}, 422, None),
            (
                "/v1/jobs",
                {
                    "content": '{"text": "fine"}\n{"text": 3}\n',
                    "headers": {"content-type": "application/x-ndjson"},
                },
                422,
                ["body", "line 2", "text"],
            ),
            ("/v1/jobs", {"content": "hello", "headers": {"content-type": "text/plain"}}, 415, None),
            # a body that is not UTF-8 (FastAPI's own parsing would answer 400)
            (
                "/v1/extract",
                {"content": b"\x15X\xff", "headers": {"content-type": "application/json"}},
                422,
                None,
            ),
            ("/v1/jobs", {"content": b"[\xff]", "headers": {"content-type": "application/json"}}, 422, None),
            (
                "/v1/jobs",
                {"content": b'{"text": "\xff"}\n', "headers": {"content-type": "application/x-ndjson"}},
                422,
                ["body", "line 1"],
            ),
        ]
        for path, kwargs, status, loc in cases:
            response = client.post(path, **kwargs)
            assert response.status_code == status, (path, kwargs, response.text)
            if loc is not None:
                assert response.json()["detail"][0]["loc"] == loc, response.text
        for path in (
            "/v1/jobs/0123456789abcdef",
            "/v1/jobs/nope",
            "/v1/jobs/../../etc",
            "/v1/jobs/abc/results",
        ):
            assert client.get(path).status_code == 404, path
        assert client.get("/v1/jobs/0123456789abcdef/report").status_code == 404
        assert client.delete("/v1/jobs/0123456789abcdef").status_code == 404
        assert client.get("/v1/jobs/0123456789abcdef/results", params={"after": -1}).status_code == 422


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """A server with a token and small limits, against a slow endpoint (1 s per answer)."""
    with fake_server.run_in_thread(fake_server.ServerConfig(latency=1.0)) as slow:
        root = tmp_path_factory.mktemp("guarded")
        running = start_service(
            root / "data",
            slow,
            "--max-article-chars", "2000", "--max-body-mb", "0.01", "--max-queued-jobs", "1",
            "--max-pending", "1", "--concurrency", "1", "--no-cache",
            token=TOKEN,
        )  # fmt: skip
        yield running
        running.stop()


def _operations() -> list[tuple[str, str]]:
    """Every (method, path) of the service's OpenAPI document, a job id put in for ``{job_id}``."""
    paths = openapi_document()["paths"]
    found = [
        (method.upper(), path.replace("{job_id}", "0123456789abcdef"))
        for path, operations in paths.items()
        for method in operations
    ]
    assert len(found) >= 10 and ("GET", "/metrics") in found
    return found


def test_bearer_token_is_required_and_compared(guarded: RunningService) -> None:
    with guarded.client() as anonymous, guarded.client(token="x" * len(TOKEN)) as wrong:
        for client in (anonymous, wrong):
            for method, path in _operations():
                if path in ("/healthz", "/readyz"):
                    continue
                response = client.request(method, path, json={"text": "x"})
                assert response.status_code == 401, (method, path, response.text)
                assert response.headers["www-authenticate"] == "Bearer"
        assert anonymous.get("/healthz").status_code == 200 and anonymous.get("/readyz").status_code == 200
    with guarded.client(token=TOKEN) as client:
        assert client.get("/metrics").status_code == 200
        assert client.get("/v1/jobs/0123456789abcdef").status_code == 404
    assert guarded.events("listening")[0]["auth"] == "bearer token"


def test_size_limits_answer_413(guarded: RunningService) -> None:
    with guarded.client(token=TOKEN) as client:
        long_text = "word " * 600  # 3,000 characters > 2,000
        response = client.post("/v1/extract", json={"text": long_text})
        assert response.status_code == 413 and "3,000 characters" in response.json()["detail"]
        response = client.post("/v1/jobs", json=[{"text": "short"}, {"text": long_text}])
        assert response.status_code == 413 and response.json()["detail"].startswith("article 1:")
        big = json.dumps([{"text": "x" * 1000}] * 20)  # 20 kB > 0.01 MB
        response = client.post("/v1/jobs", content=big, headers={"content-type": "application/json"})
        assert response.status_code == 413 and "limit" in response.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit is counted as the body streams
            yield b"["
            for _ in range(20):
                yield json.dumps({"text": "x" * 1000}).encode() + b","
            yield b'{"text": "end"}]'

        response = client.post("/v1/jobs", content=chunks(), headers={"content-type": "application/json"})
        assert response.status_code == 413


def test_full_queues_answer_429_with_retry_after(guarded: RunningService) -> None:
    with guarded.client(token=TOKEN) as client:
        first = client.post("/v1/jobs", json=texts(3, "busy-a"))
        second = client.post("/v1/jobs", json=texts(1, "busy-b"))
        assert first.status_code == 202 and second.status_code in (202, 429)
        third = client.post("/v1/jobs", json=texts(1, "busy-c"))
        assert third.status_code == 429 and int(third.headers["retry-after"]) > 0
        assert "queued" in third.json()["detail"]

        def extract(i: int) -> httpx.Response:
            with guarded.client(token=TOKEN) as own:
                return own.post("/v1/extract", json={"text": f'Pending {i}. He said: "Wait."'})

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(extract, range(4)))
        codes = sorted(r.status_code for r in answers)
        assert codes[0] == 200 and 429 in codes, codes
        assert all(r.headers["retry-after"] == "1" for r in answers if r.status_code == 429)
        for job in (first, second):
            if job.status_code == 202:
                client.delete(f"/v1/jobs/{job.json()['id']}")


# --------------------------------------------------------------------------- binding, startup, secrets


def test_binding_beyond_loopback_needs_a_token() -> None:
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)
    check_bind("0.0.0.0", TOKEN)
    with pytest.raises(ConfigError, match=r"refusing to listen on 0\.0\.0\.0 without authentication"):
        check_bind("0.0.0.0", None)
    with pytest.raises(ConfigError, match="EXTRACTOR_API_TOKEN has 5 characters"):
        check_bind("127.0.0.1", "short")


def test_serve_refuses_bad_setups_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "data")
    assert cli.main(["serve", "--data-dir", data]) == 2
    assert "no API key: set OPENAI_API_KEY" in capsys.readouterr().err
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    assert cli.main(["serve", "--host", "0.0.0.0", "--data-dir", data]) == 2
    assert "refusing to listen on 0.0.0.0 without authentication" in capsys.readouterr().err
    assert cli.main(["serve", "--data-dir", data, "--allow-paths", str(tmp_path)]) == 2
    assert "must not contain one another" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert cli.main(["serve", "--data-dir", data, "--port", port]) == 2
        assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--max-body-mb", "0"], {}, "max_body_mb must be positive, got 0.0"),
        (["--job-workers", "-1"], {}, "job_workers must be positive, got -1"),
        (["--port", "65536"], {}, "port must be between 0 and 65535"),
        (["--job-retention", "soon"], {}, "job_retention must be a positive duration"),
        ([], {"EXTRACTOR_JOB_RETENTION": "0"}, "job_retention must be a positive duration"),
        ([], {"EXTRACTOR_MAX_QUEUED_JOBS": "many"}, "setting max_queued_jobs: cannot use 'many'"),
        ([], {"EXTRACTOR_API_TOKEN": "tok-0123456789abcdef "}, "api_token has spaces or control characters"),
    ],
)
def test_a_bad_service_setting_is_exit_2_naming_it(
    argv: list[str],
    env: dict[str, str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert cli.main(["serve", "--data-dir", str(tmp_path / "data"), *argv]) == 2
    err = capsys.readouterr().err
    assert f"configuration error: {message}" in err and "0123456789abcdef" not in err
    assert not (tmp_path / "data").exists()  # refused before anything was made


class _KeyEchoingEndpoint(http.server.BaseHTTPRequestHandler):
    """An endpoint that answers 400 and quotes the API key it was sent, as some servers do (a 400 is an
    error of that article; a 401 would stop the job as a configuration error)."""

    def do_POST(self) -> None:
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        body = json.dumps(
            {"error": {"message": f"Incorrect API key provided: {key}", "type": "auth"}}
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


def test_the_api_key_appears_in_no_log_line_and_no_response(tmp_path: Path) -> None:
    echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeyEchoingEndpoint)
    threading.Thread(target=echo.serve_forever, daemon=True).start()
    seen: list[str] = []
    try:
        server = start_service(
            tmp_path / "data", f"http://127.0.0.1:{echo.server_address[1]}/v1", "--no-cache"
        )
        try:
            with server.client() as client:
                for response in (
                    client.post("/v1/extract", json={"text": ARTICLE}),
                    client.post("/v1/extract", json={"text": "bad", "id": True}),
                    client.get("/readyz"),
                    client.get("/metrics"),
                ):
                    seen.append(response.text)
                job = client.post("/v1/jobs", json=texts(2, "secret")).json()
                status = wait_job(client, job["id"])
                seen.extend([json.dumps(status), client.get(f"/v1/jobs/{job['id']}/results").text])
                seen.append(client.get(f"/v1/jobs/{job['id']}/report").text)
        finally:
            server.stop()
        seen.extend(server.lines)
        seen.extend(p.read_text(errors="replace") for p in (tmp_path / "data").rglob("*") if p.is_file())
    finally:
        echo.shutdown()
        echo.server_close()
    joined = "\n".join(seen)
    assert '"status":"error"' in joined  # the echoed key became error results, not a crash
    assert API_KEY not in joined
    assert API_KEY[-12:] not in joined


async def test_an_unreachable_endpoint_is_503_and_not_ready(tmp_path: Path) -> None:
    import io

    from extractor.config import Settings
    from extractor.serve import Service, ServiceSettings, create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]  # nothing listens there once the probe is closed
    settings = Settings(api_key=API_KEY, base_url=f"http://127.0.0.1:{closed}/v1", use_cache=False)
    service = Service(settings, ServiceSettings(data_dir=tmp_path), log=io.StringIO())
    transport = httpx.ASGITransport(app=create_app(service))  # the routes, in process (no lifespan)
    async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
        response = await client.post("/v1/extract", json={"text": ARTICLE})
        assert response.status_code == 503 and API_KEY not in response.text
        assert str(closed) in response.json()["detail"]
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert "unreachable" in ready.json()["detail"]
    await service.extractor.shutdown()


def test_secrets_are_redacted_from_log_lines_and_served_results(tmp_path: Path) -> None:
    """Defence in depth: whatever text reaches a log line or a served result line loses the key."""
    import io

    from extractor.config import Settings
    from extractor.serve import Service, ServiceSettings

    stream = io.StringIO()
    service = Service(
        Settings(api_key=API_KEY, use_cache=False),
        ServiceSettings(data_dir=tmp_path, api_token=TOKEN),
        log=stream,
    )
    service.log("error", message=f"upstream said: bad key {API_KEY} and token {TOKEN}")
    assert API_KEY not in stream.getvalue() and TOKEN not in stream.getvalue()
    assert stream.getvalue().count("[REDACTED]") == 2
    line = json.dumps({"error": {"message": f"echo {API_KEY}"}}).encode() + b"\n"
    assert service.jobs._public(line, []) == b'{"error": {"message": "echo [REDACTED]"}}\n'


# --------------------------------------------------------------------------- the OpenAPI document


def test_the_committed_openapi_document_is_current() -> None:
    committed = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "openapi.json").read_text())
    assert committed == json.loads(json.dumps(openapi_document()))
    assert set(committed["paths"]) == {
        "/v1/extract",
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/results",
        "/v1/jobs/{job_id}/report",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    jobs = committed["paths"]["/v1/jobs"]["post"]
    assert set(jobs["requestBody"]["content"]) == {"application/json", "application/x-ndjson"}
    assert {"401", "413", "415", "422", "429"} <= set(jobs["responses"])


def test_openapi_drift_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schemas", "--out", str(tmp_path)]) == 0
    path = tmp_path / "openapi.json"
    doc = json.loads(path.read_text())
    del doc["paths"]["/healthz"]
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    capsys.readouterr()
    assert cli.main(["schemas", "--check", "--out", str(tmp_path)]) == 1
    assert "schemas out of date: openapi.json" in capsys.readouterr().out


def test_stdout_of_a_request_log_line_is_one_json_object(service: RunningService) -> None:
    with service.client() as client:
        client.get("/v1/jobs/ffffffffffffffff")
    time.sleep(0.2)
    lines = [line for line in service.lines if '"route": "/v1/jobs/{job_id}"' in line]
    assert lines
    for line in lines:
        data = json.loads(line)
        assert set(data) >= {"ts", "event", "method", "route", "status", "latency_ms", "job"}


# --------------------------------------------------------------------------- the README


def _readme_blocks(section: str, language: str) -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    body = text.split(f"\n## {section}", 1)[1].split("\n## ", 1)[0]
    return [block.split("```", 1)[0] for block in body.split(f"```{language}\n")[1:]]


def test_the_readme_curl_session_works_as_written(service: RunningService) -> None:
    serve, session = _readme_blocks("Service", "sh")
    assert "python3 dev.py serve" in serve
    assert session.count("curl") == 4 and "127.0.0.1:8000" in session
    script = session.replace("127.0.0.1:8000", service.url.removeprefix("http://"))
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    objects = [json.loads(part) for part in _json_values(run.stdout)]
    extracted, status, *results = objects
    assert extracted["article_id"] == "a1" and extracted["status"] == "ok" and extracted["quotes"]
    assert status["articles"] == 2 and status["state"] in ("queued", "running", "done")
    assert sorted(r["article_id"] for r in results) == ["b1", "b2"]
    assert all(r["status"] == "ok" for r in results)


def _json_values(text: str) -> list[str]:
    """The JSON documents printed one after another (curl prints no newline after a body)."""
    decoder = json.JSONDecoder()
    found, i = [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        _, end = decoder.raw_decode(text, i)
        found.append(text[i:end])
        i = end
    return found
