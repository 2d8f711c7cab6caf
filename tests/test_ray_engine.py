"""extractor run --engine ray: the same items as the local engine, incremental, a killed worker loses and
duplicates nothing, the account-wide budget (one limiter actor, or split across actors) holds, and the
run holds the folder's lock. One local Ray instance (2 CPUs,
no dashboard) is shared by the module; the endpoint is benchmarks/fake_server.py on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from extractor.batch import run_batch
from extractor.cli.progress import LogReporter
from extractor.config import Settings
from extractor.errors import FolderBusyError
from extractor.pipeline import Extractor
from extractor.store import RESULTS_FILE, iter_results

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from extractor.ray_engine import CLUSTER_PACE, SCRATCH_FILE, actor_settings, run_ray  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from fake_server import FakeServer, ServerConfig  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    # Ray's own deprecation notices (its internals calling its own older APIs) are not ours to fix
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray"),
    pytest.mark.filterwarnings("ignore::FutureWarning:ray"),
]

NAMES = ["Maria Rossi", "John Okafor", "Ana Lima", "Kenji Sato", "Lea Weber"]


def make_drop(folder: Path, n: int, start: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        name = NAMES[i % len(NAMES)]
        text = (
            f"{name} met the council in Lisbon on 2026-01-{1 + i % 28:02d} to agree on budget line {i}.\n\n"
            f'"We will not accept cut number {i}," {name} said after the meeting.\n\n'
            f'The council replied: "Talks continue for item {i}." Nothing else was decided.\n'
        )
        (folder / f"article-{i:03d}.txt").write_text(text, encoding="utf-8")
    return folder


@contextlib.contextmanager
def fake_endpoint(**config: Any) -> Iterator[tuple[str, list[float]]]:
    """The fake server in a thread; yields its base URL and the arrival time of every chat request."""
    server = FakeServer(ServerConfig(**config))
    arrivals: list[float] = []
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        from aiohttp import web

        @web.middleware
        async def stamp(request: web.Request, handler: Any) -> Any:
            if request.path.endswith("/chat/completions"):
                arrivals.append(time.monotonic())
            return await handler(request)

        app = server.app()
        app.middlewares.append(stamp)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        stop = asyncio.Event()
        state.update(loop=asyncio.get_running_loop(), stop=stop, port=runner.addresses[0][1])
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield f"http://127.0.0.1:{state['port']}/v1", arrivals
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    yield
    ray.shutdown()


def settings_for(url: str, cache: Path, **changes: Any) -> Settings:
    return Settings(base_url=url, api_key="sk-test", model="fake", cache_dir=cache, **changes)


def items(out: Path) -> dict[str, Any]:
    return {
        r.article_id: (
            r.status,
            r.sha256,
            [q.model_dump() for q in r.quotes],
            [e.model_dump() for e in r.events],
            [s.model_dump() for s in r.stances],
            [x.model_dump() for x in r.rejected],
        )
        for r in iter_results(out)
    }


def test_the_budget_is_split_across_actors() -> None:
    split = actor_settings(Settings(rpm=601, tpm=90_000), 3)
    assert (split.rpm, split.tpm) == (200, 30_000)
    assert actor_settings(Settings(rpm=1), 4).rpm == 1 and actor_settings(Settings(), 2).rpm is None


def test_ray_gives_the_local_items_at_the_same_offsets_and_a_second_run_sends_nothing(
    local_ray: None, tmp_path: Path
) -> None:
    drop = make_drop(tmp_path / "drop", 20)
    with fake_endpoint(latency=0.02) as (url, arrivals):
        with Extractor(settings_for(url, tmp_path / "c-local")) as local:
            run_batch([drop], tmp_path / "local", local, reporter=LogReporter(quiet=True))
        sent_local = len(arrivals)
        summary, plan = run_ray(
            [drop], tmp_path / "ray", settings_for(url, tmp_path / "c-ray"), actors=2, batch_size=4
        )
        assert len(arrivals) - sent_local == 20 and plan.sent == 20 and summary.ok == 20
        assert items(tmp_path / "ray") == items(tmp_path / "local")
        assert sum(len(v[2]) for v in items(tmp_path / "ray").values()) == 40  # two quotes each
        assert not (tmp_path / "ray" / SCRATCH_FILE).exists()
        assert (tmp_path / "ray" / "run.json").is_file()

        before = len(arrivals)
        summary, plan = run_ray([drop], tmp_path / "ray", settings_for(url, tmp_path / "c-ray2"))
        assert len(arrivals) == before and plan.sent == 0 and summary.skipped == 20
        make_drop(drop, 2, start=20)
        summary, plan = run_ray([drop], tmp_path / "ray", settings_for(url, tmp_path / "c-ray2"))
        assert len(arrivals) == before + 2 and plan.sent == 2
    lines = (tmp_path / "ray" / RESULTS_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 22 and len(items(tmp_path / "ray")) == 22


def _map_workers() -> list[Any]:
    """This test's Ray Data workers: descendants of this process (its local Ray instance), never those
    of another Ray run on the machine."""
    found = []
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(proc.cmdline())
            if "MapWorker" in cmdline and "_ExtractBatch" in cmdline:
                found.append(proc)
    return found


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(local_ray: None, tmp_path: Path) -> None:
    drop = make_drop(tmp_path / "drop", 40)
    killed: list[tuple[int, int]] = []  # (pid, requests the endpoint had seen when it was killed)
    arrivals: list[float] = []

    def kill_one() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            workers = _map_workers()
            if workers and len(arrivals) >= 6:  # the pool is extracting
                killed.append((workers[0].pid, len(arrivals)))
                os.kill(workers[0].pid, signal.SIGKILL)
            time.sleep(0.05)

    with fake_endpoint(latency=0.5) as (url, seen):
        arrivals = seen
        killer = threading.Thread(target=kill_one, daemon=True)
        killer.start()
        summary, _ = run_ray(
            [drop], tmp_path / "out", settings_for(url, tmp_path / "c", concurrency=2), actors=2, batch_size=4
        )
        killer.join()
    assert killed, "no Ray Data worker process was found to kill"
    assert killed[0][1] < 40, "the worker was killed after the work was done"
    results = list(iter_results(tmp_path / "out"))
    assert len(results) == 40 and summary.ok == 40
    assert sorted(r.article_id for r in results) == sorted(f"article-{i:03d}" for i in range(40))
    assert all(r.status == "ok" and len(r.quotes) == 2 for r in results)
    assert len(arrivals) >= 40


def test_the_shared_budget_keeps_the_endpoint_within_the_limit_over_its_sliding_window(
    local_ray: None, tmp_path: Path
) -> None:
    """rpm=240 for the whole cluster, one limiter actor: the fake server's sliding window (scaled to 6 s:
    24 requests in any 6 s) never refuses a request, and every request took its slot there."""
    rpm, n = 240, 60
    drop = make_drop(tmp_path / "drop", n)
    with fake_endpoint(latency=0.01, rpm=rpm, window_s=6.0) as (url, arrivals):
        summary, plan = run_ray(
            [drop], tmp_path / "out", settings_for(url, tmp_path / "c", rpm=rpm), actors=2, batch_size=8
        )
        stats = httpx.get(f"{url}/stats").json()
    assert summary.ok == n and stats["rate_limited"] == 0, stats
    # every request sent (a transport retry included) took a slot booked in the one budget (a slot its
    # worker reached too late is dropped, not sent: a busy worker may book more than it sends)
    assert n <= len(arrivals) <= plan.budget_stats["acquired"], stats
    assert plan.budget_stats["limit_rpm"] == pytest.approx(rpm * CLUSTER_PACE)
    stamps = sorted(arrivals)
    assert max(sum(1 for t in stamps if s <= t < s + 6.0) for s in stamps) <= 24


def test_a_ray_run_holds_the_folder_so_a_local_run_on_it_is_refused(local_ray: None, tmp_path: Path) -> None:
    drop = make_drop(tmp_path / "drop", 8)
    out = tmp_path / "out"
    refused: list[str] = []

    def local_run_while_ray_extracts() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not arrivals:
            time.sleep(0.02)
        try:
            with Extractor(settings_for(url, tmp_path / "c-local")) as local:
                run_batch([drop], out, local, reporter=LogReporter(quiet=True))
        except FolderBusyError as exc:
            refused.append(str(exc))

    with fake_endpoint(latency=0.5) as (url, arrivals):
        other = threading.Thread(target=local_run_while_ray_extracts, daemon=True)
        other.start()
        summary, plan = run_ray(
            [drop], out, settings_for(url, tmp_path / "c", concurrency=1), actors=1, batch_size=8
        )
        other.join(120)
        assert plan.sent == 8 and summary.ok == 8 and len(arrivals) == 8  # the local run sent nothing
    assert refused and "is in use by another extractor run or watch" in refused[0]
    assert f"pid {os.getpid()}" in refused[0]


def test_a_split_budget_keeps_the_endpoint_within_the_account_limit(local_ray: None, tmp_path: Path) -> None:
    """rpm=240 split across 2 actors: in any 5 s the server sees at most its 5-s share plus the two
    actors' bursts (2 s of refill each); with the whole budget per actor it would see twice the rate."""
    rpm, actors, window = 240, 2, 5.0
    drop = make_drop(tmp_path / "drop", 48)
    with fake_endpoint(latency=0.01, rpm=rpm) as (url, arrivals):
        summary, _ = run_ray(
            [drop],
            tmp_path / "out",
            settings_for(url, tmp_path / "c", rpm=rpm),
            actors=actors,
            batch_size=8,
            budget="split",
        )
    assert summary.ok == 48
    stamps = sorted(arrivals)
    busiest = max(sum(1 for t in stamps if s <= t < s + window) for s in stamps)
    burst = actors * max(1.0, rpm / actors / 62 * 2.0)
    assert busiest <= rpm * window / 60 + burst + 1, (busiest, stamps[-1] - stamps[0])
    span = stamps[-1] - stamps[0]
    assert len(stamps) <= rpm * span / 60 + burst + 1
