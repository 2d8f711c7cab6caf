"""Peak memory of a run over a drop of duplicates: must not grow with the number of copies.

    .venv/bin/python benchmarks/bench_duplicates.py [--sizes 10000 100000 1000000] [--keep]

For each size N: a JSONL file of N identical one-line articles (the first is extracted, the other N - 1
are duplicates of it) goes through ``extractor run FILE --out DIR --quiet`` in a fresh child process,
against a local endpoint on 127.0.0.1 that answers with the fake server's synthetic extraction
(benchmarks/fake_server.py) but holds its answer until the child has read its whole input (the parent
watches the child's open files in /proc). So every duplicate is still waiting on the first article when
the answer comes: the worst case for the memory a run holds per waiting copy.

Then the same command runs again into the same folder (every line skipped as done; ``--no-rerun`` to
leave it out), in a fresh child too.

Reported per size: each child's peak RSS (``ru_maxrss`` from ``wait4``) and wall time, and the checks
that the behaviour is kept: N result lines, exactly one extracted, N - 1 with ``duplicate_of`` = the first
article's id, all ``ok``, one HTTP request; on the re-run N skipped, still N lines and no request. The
exit status is 1 when a check fails (memory never fails the run; read the table). Linux only (/proc,
``ru_maxrss`` in KiB).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from fake_server import HOST, FakeServer, ServerConfig  # noqa: E402

TEXT = "The mayor said “we will reopen the bridge in May” at a meeting on Monday in Springfield."
SIZES = (10_000, 100_000, 1_000_000)


class GatedServer(FakeServer):
    """The fake server, but every answer waits until ``gate`` is set."""

    def __init__(self, config: ServerConfig, gate: threading.Event) -> None:
        super().__init__(config)
        self.gate = gate
        self.asked = threading.Event()

    async def _chat_completions(self, request: web.Request) -> web.Response:
        self.asked.set()
        while not self.gate.is_set():
            await asyncio.sleep(0.02)
        return await super()._chat_completions(request)


@contextlib.contextmanager
def gated_server(gate: threading.Event) -> Iterator[tuple[str, GatedServer]]:
    """Serve a ``GatedServer`` on 127.0.0.1 from a thread; yield its base URL and the server."""
    server = GatedServer(ServerConfig(), gate)
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        runner = web.AppRunner(server.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, 0)
        await site.start()
        stop = asyncio.Event()
        state.update(loop=asyncio.get_running_loop(), stop=stop, port=runner.addresses[0][1])
        ready.set()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    thread = threading.Thread(target=lambda: asyncio.run(serve()), daemon=True)
    thread.start()
    if not ready.wait(30):
        raise RuntimeError("the gated server did not start")
    try:
        yield f"http://{HOST}:{state['port']}/v1", server
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)


def _has_open(pid: int, path: Path) -> bool:
    """Whether process ``pid`` has ``path`` open (False once it has exited)."""
    target = str(path)
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
    return False


def _open_gate_when_read(pid: int, path: Path, server: GatedServer, gate: threading.Event) -> float:
    """Set ``gate`` once the first request has come and the child no longer has ``path`` open (it has
    read the whole file); return the seconds the answer was held."""
    server.asked.wait()
    asked = time.monotonic()
    while _has_open(pid, path):
        time.sleep(0.01)
    gate.set()
    return time.monotonic() - asked


@dataclass
class Measurement:
    copies: int
    peak_rss_mb: float
    wall_s: float
    held_s: float
    results: int
    extracted: int
    duplicates_of_first: int
    all_ok: bool
    http_requests: int
    exit_code: int
    rerun_rss_mb: float = float("nan")
    rerun_wall_s: float = float("nan")
    rerun_skipped: int = -1
    rerun_results: int = -1
    reran: bool = False

    @property
    def checks_pass(self) -> bool:
        return (
            self.exit_code == 0
            and self.results == self.copies
            and self.extracted == 1
            and self.duplicates_of_first == self.copies - 1
            and self.all_ok
            and self.http_requests == 1
            and (not self.reran or self.rerun_skipped == self.rerun_results == self.copies)
        )


def _run_child(source: Path, out: Path, url: str, watch: Any = None) -> tuple[int, float, float, bytes]:
    """``extractor run SOURCE --out OUT`` in a child process: (exit code, peak RSS MB, wall s, stderr).
    ``watch(pid)`` runs in a thread while the child runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "EXTRACTOR_"))}
    env["OPENAI_API_KEY"] = "bench-not-a-key"
    argv = [sys.executable, "-m", "extractor", "run", str(source), "--out", str(out), "--quiet"]
    # The answer is held while the child reads its input (minutes for 10^6 lines on a busy machine):
    # a long client timeout, so that no retry adds a request.
    argv += ["--base-url", url, "--no-cache", "--timeout", "3600"]
    started = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    watcher = None
    if watch is not None:
        watcher = threading.Thread(target=watch, args=(child.pid,), daemon=True)
        watcher.start()
    assert child.stderr is not None
    stderr = child.stderr.read()  # until the child closes it (exits)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if child.returncode != 0:
        print(stderr.decode(errors="replace")[-2000:], file=sys.stderr)
    return child.returncode, usage.ru_maxrss / 1024, wall, stderr


def _count_results(out: Path) -> tuple[int, int, int, bool]:
    """(results, extracted, duplicate_of the extracted one, all ok), streaming results.jsonl."""
    results = extracted = 0
    all_ok = True
    first_id = None
    with (out / "results.jsonl").open("rb") as fh:
        for raw in fh:
            data = json.loads(raw)
            results += 1
            all_ok = all_ok and data["status"] == "ok"
            if data["duplicate_of"] is None:
                extracted += 1
                first_id = data["article_id"]
    with (out / "results.jsonl").open("rb") as fh:
        of_first = sum(1 for raw in fh if json.loads(raw)["duplicate_of"] == first_id)
    return results, extracted, of_first, all_ok


def measure(copies: int, work: Path, rerun: bool) -> Measurement:
    folder = work / f"n{copies}"
    folder.mkdir()
    source = folder / "dups.jsonl"
    line = (json.dumps({"text": TEXT}, ensure_ascii=False) + "\n").encode()
    with source.open("wb") as fh:
        for _ in range(copies):
            fh.write(line)
    out = folder / "out"
    gate = threading.Event()
    with gated_server(gate) as (url, server):
        held: list[float] = []

        def watch(pid: int) -> None:
            held.append(_open_gate_when_read(pid, source, server, gate))

        code, rss, wall, _ = _run_child(source, out, url, watch)
        gate.set()
        server.asked.set()
        requests = server.stats.requests
        row = Measurement(
            copies, rss, wall, held[0] if held else float("nan"), *_count_results(out), requests, code
        )
        if rerun:
            code, row.rerun_rss_mb, row.rerun_wall_s, _ = _run_child(source, out, url)
            summary = json.loads((out / "run.json").read_text(encoding="utf-8"))
            row.rerun_skipped = summary["skipped"] if code == 0 else -1
            row.rerun_results = _count_results(out)[0]
            row.http_requests = server.stats.requests
            row.reran = True
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="numbers of copies")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    parser.add_argument("--no-rerun", action="store_true", help="skip the second run (all skipped)")
    args = parser.parse_args(argv)
    if not sys.platform.startswith("linux"):
        print("bench_duplicates needs Linux (/proc, ru_maxrss in KiB)", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-duplicates-"))
    load = os.getloadavg()
    print(f"{platform.python_version()} on {os.cpu_count()} cores, load average {load[0]:.1f} at start")
    rows: list[Measurement] = []
    try:
        for copies in args.sizes:
            row = measure(copies, work, rerun=not args.no_rerun)
            rows.append(row)
            shutil.rmtree(work / f"n{copies}", ignore_errors=True)
            print(
                f"  {copies:>9,} copies: peak RSS {row.peak_rss_mb:6.1f} MB, {row.wall_s:6.1f} s "
                f"(answer held {row.held_s:.1f} s); re-run {row.rerun_rss_mb:6.1f} MB, "
                f"{row.rerun_wall_s:6.1f} s; checks {'pass' if row.checks_pass else 'FAIL'}",
                flush=True,
            )
    finally:
        if args.keep:
            print(f"work folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    base, rerun_base = rows[0].peak_rss_mb, rows[0].rerun_rss_mb
    print()
    print(
        "| duplicate lines | peak RSS (MB) | vs smallest | wall (s) | answer held (s) "
        "| re-run, all skipped: peak RSS (MB) | vs smallest | wall (s) | checks |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row in rows:
        checks = (
            f"{row.results:,} results, {row.extracted} extracted, "
            f"{row.duplicates_of_first:,} duplicate_of the first, {row.http_requests} request; "
            f"re-run {row.rerun_skipped:,} skipped"
            if row.checks_pass
            else f"FAIL: {row}"
        )
        print(
            f"| {row.copies:,} | {row.peak_rss_mb:.1f} | {row.peak_rss_mb - base:+.1f} | {row.wall_s:.1f} "
            f"| {row.held_s:.1f} | {row.rerun_rss_mb:.1f} | {row.rerun_rss_mb - rerun_base:+.1f} "
            f"| {row.rerun_wall_s:.1f} | {checks} |"
        )
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")
    return 0 if all(row.checks_pass for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
