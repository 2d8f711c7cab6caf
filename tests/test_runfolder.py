"""The life of a run folder: one writer at a time (the folder lock), SIGTERM, and the run history.

The process-level tests start real ``extractor`` processes against the project's fake OpenAI-compatible
server on 127.0.0.1 and count the requests it served, so "paid twice" is measured, not inferred.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from extractor import Extractor, Settings, cli
from extractor.batch import count_inputs, run_batch, watch
from extractor.cli.progress import LogReporter
from extractor.errors import TransportError
from extractor.store import LOCK_FILE, RESULTS_FILE, RUNS_FILE, lock_run_folder
from tests import wire
from tests.conftest import FakeModel

ROOT = Path(__file__).resolve().parents[1]


def body(n: int | str) -> str:
    return f"Report {n}. The minister said “we will act” on Monday. Leaders met in Paris on January 6.\n"


def drop(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"art{i:02d}.txt").write_text(body(i), encoding="utf-8")
    return folder


def complete_lines(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes() if path.exists() else b""
    return [json.loads(x) for x in raw.split(b"\n")[:-1] if x.strip()]


def run_json(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "run.json").read_text(encoding="utf-8"))
    return data


def fake_server(latency: float) -> Any:
    """The project's fake server (benchmarks/fake_server.py) in a thread, ``latency`` seconds a request."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        fs: Any = importlib.import_module("fake_server")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return fs.run_in_thread(fs.ServerConfig(latency=latency))


@pytest.fixture
def server() -> Iterator[str]:
    """1 s a request: a run of 40 articles one at a time would last 40 s; the tests end it early with
    Ctrl-C (SIGINT), so a second process, however slow to start on a busy machine, meets it running."""
    with fake_server(1.0) as url:
        yield url


def served(url: str) -> int:
    """How many chat completions the fake server has answered (each one a paid call)."""
    count: int = httpx.get(f"{url}/stats", timeout=5).json()["requests"]
    return count


def env_for(tmp_path: Path, url: str) -> dict[str, str]:
    return dict(
        os.environ, OPENAI_API_KEY="test", OPENAI_BASE_URL=url, EXTRACTOR_CACHE_DIR=str(tmp_path / "cache")
    )


def extractor_run(src: Path, out: Path, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "extractor", "run", str(src), "--out", str(out)]
    return [*command, "--concurrency", "1", "--no-cache", "--quiet", *extra]


def wait_for_results(proc: subprocess.Popen[bytes], out: Path, count: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while len(complete_lines(out / RESULTS_FILE)) < count:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "the run wrote no results in time"
        time.sleep(0.02)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------- one writer per folder


@pytest.mark.slow
def test_a_second_run_on_a_busy_folder_exits_2_naming_the_holder(tmp_path: Path, server: str) -> None:
    src, out = drop(tmp_path / "in", 40), tmp_path / "out"
    env = env_for(tmp_path, server)
    log = tmp_path / "first.log"
    with log.open("wb") as fh:
        first = subprocess.Popen(extractor_run(src, out), env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_for_results(first, out, 1, log)
        second = subprocess.run(
            extractor_run(src, out), env=env, capture_output=True, timeout=60, check=False
        )
        err = second.stderr.decode()
        assert second.returncode == 2, (err, served(server))
        assert first.poll() is None, "the first run ended before the second started: the test proves nothing"
        assert f"pid {first.pid}" in err and str(out) in err and "--wait-lock" in err
        assert "Traceback" not in err
        first.send_signal(signal.SIGINT)  # end it early: the article in flight finishes
        assert first.wait(timeout=60) == 130, log.read_text()
    finally:
        stop(first)
    lines = complete_lines(out / RESULTS_FILE)
    assert len({r["article_id"] for r in lines}) == len(lines) < 40
    assert served(server) == len(lines)  # the refused run paid for nothing
    assert run_json(out)["ok"] == len(lines)  # and did not overwrite the first run's summary


@pytest.mark.slow
def test_wait_lock_runs_after_the_holder_and_pays_nothing_twice(tmp_path: Path, server: str) -> None:
    src, out = drop(tmp_path / "in", 40), tmp_path / "out"
    env = env_for(tmp_path, server)
    log, log2 = tmp_path / "first.log", tmp_path / "second.log"
    with log.open("wb") as fh:
        first = subprocess.Popen(extractor_run(src, out), env=env, stdout=fh, stderr=subprocess.STDOUT)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_for_results(first, out, 1, log)  # it holds the lock
        with log2.open("wb") as fh:
            second = subprocess.Popen(
                extractor_run(src, out, "--wait-lock"), env=env, stdout=fh, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while f"waiting for pid {first.pid}" not in log2.read_text():
            assert second.poll() is None, log2.read_text()
            assert time.monotonic() < deadline, "the second run did not wait"
            time.sleep(0.05)
        assert first.poll() is None and second.poll() is None
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=60) == 130, log.read_text()
        done_by_first = len(complete_lines(out / RESULTS_FILE))
        assert second.wait(timeout=120) == 0, log2.read_text()
    finally:
        stop(first)
        if second is not None:
            stop(second)
    assert served(server) == 40  # every article paid for once
    lines = complete_lines(out / RESULTS_FILE)
    assert Counter(r["article_id"] for r in lines) == Counter({f"art{i:02d}": 1 for i in range(40)})
    last = run_json(out)
    assert (last["skipped"], last["ok"], last["http_calls"]) == (
        done_by_first,
        40 - done_by_first,
        40 - done_by_first,
    )


def test_writers_take_the_lock_and_readers_do_not(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """In one process: the lock is per open file, so a held lock refuses run and watch here too."""
    out = tmp_path / "out"
    seeds = ROOT / "seeds"
    assert cli.main(["run", str(seeds), "--out", str(out), "-q"]) == 0
    capsys.readouterr()
    with lock_run_folder(out):
        assert json.loads((out / LOCK_FILE).read_text(encoding="utf-8"))["pid"] == os.getpid()
        assert cli.main(["run", str(seeds), "--out", str(out), "-q"]) == 2
        err = capsys.readouterr().err
        assert (
            f"\nextractor: {out} is in use" in err and f"pid {os.getpid()}" in err and "Traceback" not in err
        )
        assert cli.main(["watch", str(seeds), "--out", str(out), "-q"]) == 2
        assert f"pid {os.getpid()}" in capsys.readouterr().err
        # readers: the review page, the digest and the scores need no lock
        assert cli.main(["report", str(out)]) == 0
        assert cli.main(["digest", str(out)]) == 0
        assert cli.main(["eval", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["run", str(seeds), "--out", str(out), "-q"]) == 0  # released
    assert run_json(out)["skipped"] == 5


# --------------------------------------------------------------------------- SIGTERM


@pytest.fixture
def busy_server() -> Iterator[str]:
    """0.5 s a request."""
    with fake_server(0.5) as url:
        yield url


@pytest.mark.slow
def test_sigterm_ends_a_run_like_ctrl_c_and_the_rerun_pays_only_for_the_rest(
    tmp_path: Path, busy_server: str
) -> None:
    src, out = drop(tmp_path / "in", 40), tmp_path / "out"
    env = env_for(tmp_path, busy_server)
    command = extractor_run(src, out)
    command[command.index("--concurrency") + 1] = "3"
    log = tmp_path / "first.log"
    with log.open("wb") as fh:
        proc = subprocess.Popen(command, env=env, stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_for_results(proc, out, 3, log)
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        stop(proc)
    text = log.read_text()
    assert code == 143, text
    assert "SIGTERM: stopping after the articles in flight" in text and "Traceback" not in text
    assert "stopped by SIGTERM; run the same command again to finish the rest" in text
    raw = (out / RESULTS_FILE).read_bytes()
    assert raw.endswith(b"\n")
    done = [json.loads(x) for x in raw.splitlines()]
    assert 3 <= len(done) < 40 and {r["status"] for r in done} == {"ok"}
    assert served(busy_server) == len(done)  # what was in flight finished and was written
    summary = run_json(out)
    assert summary["interrupted"] is True and summary["stopped_by"] == "SIGTERM"
    assert summary["ok"] == summary["http_calls"] == len(done)

    second = subprocess.run(command, env=env, capture_output=True, timeout=120, check=False)
    assert second.returncode == 0, second.stderr.decode()
    assert served(busy_server) == 40  # nothing paid twice
    lines = complete_lines(out / RESULTS_FILE)
    assert Counter(r["article_id"] for r in lines) == Counter({f"art{i:02d}": 1 for i in range(40)})
    final = run_json(out)
    assert (final["skipped"], final["ok"], final["interrupted"]) == (len(done), 40 - len(done), False)
    assert final["stopped_by"] is None


# --------------------------------------------------------------------------- run history


def quiet_log() -> tuple[LogReporter, io.StringIO]:
    stream = io.StringIO()
    return LogReporter(stream=stream, quiet=True), stream


def history(out: Path) -> list[dict[str, Any]]:
    raw = (out / RUNS_FILE).read_bytes()
    assert raw.endswith(b"\n")
    return [json.loads(x) for x in raw.splitlines()]


def extractor(tmp_path: Path, *answers: dict[str, Any] | Exception) -> Extractor:
    settings = Settings(cache_dir=tmp_path / "cache", use_cache=False, api_key=None)
    return Extractor(settings, provider=FakeModel().enqueue(*answers), cache=None)


def answer() -> dict[str, Any]:
    return wire.extraction(
        quotes=[("we will act", "the minister")], events=[wire.event("Leaders met in Paris on January 6.")]
    )


def test_a_rerun_that_skips_everything_says_the_folder_totals_and_its_own(tmp_path: Path) -> None:
    src, out = drop(tmp_path / "in", 5), tmp_path / "out"
    run_batch([src], out, extractor(tmp_path, *[answer()] * 5), reporter=quiet_log()[0])
    reporter, stream = quiet_log()
    summary = run_batch([src], out, extractor(tmp_path), reporter=reporter)

    runs = history(out)
    assert [(r["ok"], r["skipped"], r["http_calls"]) for r in runs] == [(5, 0, 5), (0, 5, 0)]
    assert all(r["started_at"] <= r["finished_at"] and r["finished_at"].endswith("Z") for r in runs)
    assert "folder" not in runs[0]  # a line is that run's own figures
    last = run_json(out)
    assert (last["ok"], last["skipped"]) == (0, 5)  # run.json stays the last run's summary ...
    assert last["folder"] == {  # ... with the folder's totals, labelled
        "runs": 2,
        "articles": 5,
        "ok": 5,
        "failed": 0,
        "duplicates": 0,
        "quotes": 5,
        "events": 5,
        "stances": 0,
        "rejected": 0,
    }
    assert summary.as_dict() == last
    text = stream.getvalue()
    assert "last run                 5 articles: 0 ok, 0 failed, 5 skipped as done\n" in text
    assert "this folder              5 articles: 5 ok, 0 failed, 0 duplicates (results of 2 runs)" in text


def test_folder_totals_count_each_input_once_after_retries(tmp_path: Path) -> None:
    src, out = drop(tmp_path / "in", 4), tmp_path / "out"
    first = extractor(tmp_path, answer(), answer(), TransportError("HTTP 503"), answer())
    run_batch([src], out, first, concurrency=1, reporter=quiet_log()[0])
    folder = run_json(out)["folder"]
    assert (folder["runs"], folder["articles"], folder["ok"], folder["failed"]) == (1, 4, 3, 1)
    run_batch([src], out, extractor(tmp_path, answer()), reporter=quiet_log()[0])  # the failed one again
    folder = run_json(out)["folder"]
    assert (folder["runs"], folder["articles"], folder["ok"], folder["failed"]) == (2, 4, 4, 0)
    assert (folder["quotes"], folder["events"]) == (4, 4)
    assert [(r["ok"], r["errors"], r["skipped"]) for r in history(out)] == [(3, 1, 0), (1, 0, 3)]


def test_a_torn_history_line_is_repaired_and_the_history_is_never_input(tmp_path: Path) -> None:
    src, out = drop(tmp_path / "in", 2), tmp_path / "out"
    run_batch([src], out, extractor(tmp_path, answer(), answer()), reporter=quiet_log()[0])
    with (out / RUNS_FILE).open("ab") as fh:
        fh.write(b'{"articles": 2, "o')  # a kill in the middle of the append
    run_batch([src], out, extractor(tmp_path), reporter=quiet_log()[0])
    assert len(history(out)) == 2 and run_json(out)["folder"]["runs"] == 2
    # the folder's own files are never articles, even when the folder itself is given as input
    assert count_inputs([out], out) == 0
    assert {r["article_id"] for r in complete_lines(out / RESULTS_FILE)} == {"art00", "art01"}


def test_a_watch_is_one_run_of_the_history(tmp_path: Path) -> None:
    src, out = drop(tmp_path / "in", 3), tmp_path / "out"
    past = time.time() - 60
    for path in src.iterdir():
        os.utime(path, (past, past))
    ex = extractor(tmp_path, *[answer()] * 3)
    watch(src, out, ex, interval_s=0.01, settle_s=0.0, reporter=quiet_log()[0], max_rounds=3)
    runs = history(out)
    assert len(runs) == 1 and runs[0]["ok"] == 3
    assert run_json(out)["folder"] | {"runs": 0} == {
        "runs": 0,
        "articles": 3,
        "ok": 3,
        "failed": 0,
        "duplicates": 0,
        "quotes": 3,
        "events": 3,
        "stances": 0,
        "rejected": 0,
    }
