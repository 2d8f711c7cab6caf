"""The service's jobs against the real server: the results cursor across a SIGTERM and a restart, the job
listing, DELETE, retention, symlinks under --allow-paths, and an event loop never held up by a scan of
a job's files."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from extractor.batch import arun_batch, runner
from extractor.client import ServiceClient
from extractor.config import Settings
from extractor.pipeline import Extractor
from extractor.serve import Service, ServiceSettings
from extractor.serve import jobs as jobs_module
from extractor.serve.server import listen, server
from tests.service import API_KEY, RunningService, fake_server, start_service, wait_for, wait_job


def _articles(folder: Path, n: int) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        text = f'Article {i:02d}. The mayor said: "Number {i} is final." Then it ended.\n'
        (folder / f"a{i:02d}.txt").write_text(text, encoding="utf-8")


def _lines(client: httpx.Client, job_id: str, after: int = 0) -> list[dict[str, Any]]:
    response = client.get(f"/v1/jobs/{job_id}/results", params={"after": after})
    assert response.status_code == 200, response.text
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


# --------------------------------------------------------------------------- the results cursor


def test_after_is_a_cursor_that_survives_sigterm_restart_and_a_retried_article(tmp_path: Path) -> None:
    """A client reads part of a job's results; the server is stopped mid-job (SIGTERM) and restarted;
    the resumed pass writes a retried article's line again (a file that cannot be loaded is retried on
    every pass). The client resumes with the ``after`` it had, once the job is done: every line exactly
    once, in the order of the job's results, and every article in them."""
    allowed = tmp_path / "allowed"
    _articles(allowed / "drop", 24)
    (allowed / "drop" / "0-broken.txt").write_bytes(b"\x00\x01 not text")  # first in the walk: line 1
    data = tmp_path / "data"
    with fake_server.run_in_thread(fake_server.ServerConfig(latency=0.3)) as slow:
        args = ("--allow-paths", str(allowed), "--concurrency", "2", "--no-cache", "--shutdown-timeout", "10")
        first = start_service(data, slow, *args)
        with first.client() as client:
            job = client.post("/v1/jobs", json={"paths": ["drop"]}).json()
            seen: list[dict[str, Any]] = []
            with client.stream("GET", f"/v1/jobs/{job['id']}/results") as response:
                for line in response.iter_lines():
                    if line.strip():
                        seen.append(json.loads(line))
                    if len(seen) == 4:
                        break
        assert first.stop(signal.SIGTERM)[0] == 0, "\n".join(first.lines)
        record = json.loads((data / "jobs" / job["id"] / "job.json").read_text())
        assert record["status"]["state"] == "queued"  # stopped mid-job
        assert seen[0]["status"] == "error" and seen[0]["source"] == "drop/0-broken.txt"

        second = start_service(data, slow, *args)
        try:
            with second.client() as client:
                status = wait_job(client, job["id"])
                assert status["state"] == "done" and status["resumed"] == 1
                everything = _lines(client, job["id"])
            with ServiceClient(second.url, poll_s=0.1) as api:
                rest = [r.model_dump(mode="json") for r in api.results(job["id"], after=len(seen))]
        finally:
            second.stop()
    streamed = [(r["source"], r["article_id"], r["status"]) for r in seen + rest]
    assert streamed == [(r["source"], r["article_id"], r["status"]) for r in everything]  # in order, once
    assert status["results"] == len(everything)
    ok = sorted(article_id for _, article_id, state in streamed if state == "ok")
    assert ok == [f"a{i:02d}" for i in range(24)]  # every article once
    broken = [i for i, line in enumerate(streamed) if line[0] == "drop/0-broken.txt"]
    assert broken[0] == 0 and len(broken) == 2 and broken[1] >= len(seen)  # retried: a later line


# --------------------------------------------------------------------------- listing, DELETE, retention


def test_listing_is_newest_first_paged_and_filtered_and_delete_removes_a_finished_job(tmp_path: Path) -> None:
    with fake_server.run_in_thread(fake_server.ServerConfig()) as endpoint:
        running = start_service(tmp_path / "data", endpoint, "--no-cache")
        try:
            with running.client() as client:
                ids = []
                for i in range(3):
                    job = client.post("/v1/jobs", json=[{"id": f"l{i}", "text": f"Listing {i}. It rained."}])
                    ids.append(job.json()["id"])
                    wait_job(client, ids[-1])
                listed = client.get("/v1/jobs").json()
                assert [j["id"] for j in listed["jobs"]] == ids[::-1] and listed["next_cursor"] is None
                page = client.get("/v1/jobs", params={"limit": 2}).json()
                assert [j["id"] for j in page["jobs"]] == ids[:0:-1] and page["next_cursor"]
                last = client.get("/v1/jobs", params={"limit": 2, "cursor": page["next_cursor"]}).json()
                assert [j["id"] for j in last["jobs"]] == ids[:1] and last["next_cursor"] is None
                assert len(client.get("/v1/jobs", params={"state": "done"}).json()["jobs"]) == 3
                none = client.get("/v1/jobs", params={"state": ["queued", "running"]}).json()
                assert none == {"jobs": [], "next_cursor": None}
                bad = client.get("/v1/jobs", params={"cursor": "not-a-cursor"})
                assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "cursor"]
                assert client.get("/v1/jobs", params={"state": "lost"}).status_code == 422

                kept = client.delete(f"/v1/jobs/{ids[0]}", params={"keep_finished": "true"})
                assert kept.status_code == 200 and kept.json()["state"] == "done"
                assert client.get(f"/v1/jobs/{ids[0]}").status_code == 200
                deleted = client.delete(f"/v1/jobs/{ids[0]}")
                assert deleted.status_code == 200 and deleted.json()["state"] == "done"
                assert client.get(f"/v1/jobs/{ids[0]}").status_code == 404
                assert client.get(f"/v1/jobs/{ids[0]}/results").status_code == 404
                assert client.delete(f"/v1/jobs/{ids[0]}").status_code == 404
                assert not (running.data_dir / "jobs" / ids[0]).exists()
                assert [j["id"] for j in client.get("/v1/jobs").json()["jobs"]] == ids[:0:-1]
        finally:
            running.stop()


def test_retention_deletes_finished_jobs_at_start_up_and_periodically(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with fake_server.run_in_thread(fake_server.ServerConfig()) as endpoint:
        first = start_service(data, endpoint, "--no-cache")
        with first.client() as client:
            old = client.post("/v1/jobs", json=[{"text": "Old job. It rained."}]).json()["id"]
            recent = client.post("/v1/jobs", json=[{"text": "Recent job. It snowed."}]).json()["id"]
            wait_job(client, old)
            wait_job(client, recent)
        first.stop()
        record_file = data / "jobs" / old / "job.json"
        record = json.loads(record_file.read_text())
        record["status"]["finished"] = "2020-01-01T00:00:00Z"
        record_file.write_text(json.dumps(record))

        second = start_service(data, endpoint, "--no-cache", env={"EXTRACTOR_JOB_RETENTION": "1h"})
        try:
            assert second.events("jobs_expired")[0]["jobs"] == 1
            assert second.events("listening")[0]["job_retention_s"] == 3600
            with second.client() as client:
                assert client.get(f"/v1/jobs/{old}").status_code == 404
                assert client.get(f"/v1/jobs/{recent}").json()["state"] == "done"
            assert not (data / "jobs" / old).exists()
        finally:
            second.stop()

        third = start_service(data, endpoint, "--no-cache", "--job-retention", "1s")
        try:
            assert third.events("jobs_expired")[0]["jobs"] == 1  # finished more than a second ago
            with third.client() as client:
                assert client.get(f"/v1/jobs/{recent}").status_code == 404
                new = client.post("/v1/jobs", json=[{"text": "New job. It hailed."}]).json()["id"]
                assert wait_job(client, new)["state"] == "done"
                wait_for(lambda: client.get(f"/v1/jobs/{new}").status_code == 404)  # by the periodic sweep
                assert client.get("/v1/jobs").json() == {"jobs": [], "next_cursor": None}
            wait_for(lambda: len(third.events("jobs_expired")) == 2)
            assert list((data / "jobs").iterdir()) == []
        finally:
            third.stop()


@pytest.mark.parametrize("value", ["0", "-1h", "soon"])
def test_a_bad_retention_is_refused(value: str, tmp_path: Path) -> None:
    from extractor.errors import ConfigError

    with pytest.raises(ConfigError, match="job_retention must be a positive duration"):
        ServiceSettings(job_retention=value)
    assert ServiceSettings(job_retention="forever").job_retention_s is None
    assert ServiceSettings(job_retention="7d").job_retention_s == 7 * 86400
    assert ServiceSettings(job_retention="1h30m").job_retention_s == 5400


# --------------------------------------------------------------------------- symlinks under --allow-paths


def test_symlinks_to_outside_the_allowed_folder_are_refused_by_name(
    service: RunningService, tmp_path: Path
) -> None:
    allowed = service.data_dir.parent / "allowed"
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = "Secret text outside the allowed folder. Nobody may read it."
    (outside / "secret.txt").write_text(secret, encoding="utf-8")
    links = allowed / "links"
    (links / "nested").mkdir(parents=True)
    (links / "nested" / "fine.txt").write_text("A fine article. It rained.\n", encoding="utf-8")
    os.symlink(outside / "secret.txt", links / "file.txt")
    os.symlink(outside, links / "folder")
    os.symlink(outside / "secret.txt", links / "nested" / "evil.txt")
    os.symlink(allowed / "one.txt", links / "inside.txt")
    with service.client() as client:
        for paths, named in (
            (["links/file.txt"], "links/file.txt is a symlink to outside the allowed folder"),
            (["links/folder"], "links/folder is a symlink to outside the allowed folder"),
            (["links/folder/secret.txt"], "links/folder is a symlink to outside the allowed folder"),
            (["links/nested"], "links/nested/evil.txt is a symlink to outside the allowed folder"),
        ):
            response = client.post("/v1/jobs", json={"paths": ["one.txt", *paths]})
            assert response.status_code == 422, response.text
            detail = response.json()["detail"]
            assert detail == [{"type": "value_error", "loc": ["body", "paths", 1], "msg": named}]
            assert secret not in response.text and str(outside) not in response.text
        accepted = client.post("/v1/jobs", json={"paths": ["links/inside.txt"]})
        assert accepted.status_code == 202, accepted.text
        assert wait_job(client, accepted.json()["id"])["ok"] == 1


def test_a_paths_job_never_reads_through_a_symlink_to_outside_even_with_follow_symlinks(
    fake_endpoint: str, tmp_path: Path
) -> None:
    """The load itself: the job's files are loaded with the allowed folder as the area every symlink
    must point into, whatever ``follow_symlinks`` says (a symlink made after the check is refused)."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    _articles(allowed, 1)
    outside.mkdir()
    (outside / "secret.txt").write_text("Outside secret. It must not be read.\n", encoding="utf-8")
    os.symlink(outside / "secret.txt", allowed / "late.txt")
    settings = Settings(api_key=API_KEY, base_url=fake_endpoint, use_cache=False, follow_symlinks=True)
    extractor = Extractor(settings)
    summary = asyncio.run(arun_batch([allowed], tmp_path / "out", extractor, within=[allowed]))
    assert summary.ok == 1 and summary.load_errors == 1
    results = (tmp_path / "out" / "results.jsonl").read_text()
    assert "symlink to outside the input" in results and "Outside secret" not in results


# --------------------------------------------------------------------------- the event loop stays free


@contextlib.contextmanager
def _serve_in_thread(service: Service) -> Iterator[str]:
    """The real server (uvicorn) of ``service`` in a thread of this process: its URL."""
    sock = listen("127.0.0.1", 0)
    uv = server(service)
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: uv.started)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        uv.should_exit = True
        thread.join(timeout=60)
        sock.close()


def test_healthz_answers_while_a_job_scans_its_results(
    fake_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resumed job reads its results file three times (the service's counters, the batch runner's
    index, its folder totals at the end): each is held until /healthz has answered, which it can only
    if the scan is off the event loop."""
    settings = Settings(api_key=API_KEY, base_url=fake_endpoint, use_cache=False)
    config = ServiceSettings(data_dir=tmp_path / "data")
    with (
        _serve_in_thread(Service(settings, config, log=io.StringIO())) as url,
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        texts = [{"text": f"Scan {i}. It rained."} for i in range(3)]
        job_id = client.post("/v1/jobs", json=texts).json()["id"]
        wait_job(client, job_id)
    record_file = config.data_dir / "jobs" / job_id / "job.json"
    record = json.loads(record_file.read_text())
    record["status"]["state"] = "running"  # as a killed server leaves it: the next start resumes it
    record_file.write_text(json.dumps(record))

    held: dict[str, tuple[threading.Event, threading.Event, threading.Event]] = {}

    def hold(module: Any, name: str) -> None:
        real: Callable[..., Any] = getattr(module, name)
        entered, release, left = threading.Event(), threading.Event(), threading.Event()
        held[name] = (entered, release, left)

        def holding(*args: Any) -> Any:
            entered.set()
            release.wait(timeout=120)  # only a scan that blocks the loop waits this long
            try:
                return real(*args)
            finally:
                left.set()

        monkeypatch.setattr(module, name, holding)

    hold(jobs_module, "_scan_results")
    hold(runner, "_new_index")
    hold(runner, "_compact")
    with (
        _serve_in_thread(Service(settings, config, log=io.StringIO())) as url,
        httpx.Client(base_url=url, timeout=300) as client,
    ):
        try:
            for name in ("_scan_results", "_new_index", "_compact"):
                entered, release, left = held[name]
                assert entered.wait(timeout=120), name
                assert client.get("/healthz").json() == {"status": "ok"}
                assert not left.is_set(), f"/healthz waited for {name}: it ran on the event loop"
                release.set()
            status = wait_job(client, job_id)
            assert status["state"] == "done" and status["resumed"] == 1 and status["results"] == 3
        finally:
            for _, release, _ in held.values():
                release.set()
