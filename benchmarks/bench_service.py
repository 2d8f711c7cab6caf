"""Benchmark ``extractor serve`` against the library, on the same local fake endpoint.

    .venv/bin/python benchmarks/bench_service.py [--quick]

(--quick: small sizes, a few minutes; the full run takes 10 minutes or more on a busy 2-core machine.)
It prints a markdown table and writes every raw figure to benchmarks/out/bench_service.json. Speed never
fails the run; a request that does not answer 200 with an ``ok`` result does (exit 1).

1. Rate-limited throughput: N concurrent clients, each sending its share of the articles one after the
   other, through the service (``POST /v1/extract``, one ``extractor serve`` process) and through the
   library in process (``Extractor.aextract``, N tasks), against one fake endpoint with 1 s latency and a
   300 requests/min limit, client ``--rpm 300 --concurrency N`` on both sides: the limit binds (5/s, well
   under what the CPU of a shared 2-core machine allows), as it does for a real API. The ratio
   service / library is the issue's target (>= 0.95).
2. Added latency: for each service request, the latency the client saw minus the extraction time the
   result reports (``latency_s``, measured inside the extractor): p50 / p99 of that overhead (HTTP,
   JSON both ways, validation, the in-flight gate, logging, metrics).
3. Unlimited throughput: the same at 0.2 s latency and no rate limit, where CPU, not the endpoint, may
   bind: what the HTTP layer costs on this machine.
4. Server memory: 10,000 requests through one service process; its RSS sampled along the way (after a
   warm-up of 500 requests) should stay flat.

The fake endpoints (benchmarks/fake_server.py) and the service run as their own processes on 127.0.0.1;
nothing else is contacted. Timings depend on what else the machine runs: the table gives the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from extractor.config import Settings  # noqa: E402
from extractor.models import Article  # noqa: E402
from extractor.pipeline import Extractor  # noqa: E402

FAKE_SERVER = ROOT / "benchmarks" / "fake_server.py"
OUT_DIR = ROOT / "benchmarks" / "out"
HOST = "127.0.0.1"
KEY = "bench-key"


@dataclass(frozen=True)
class Sizes:
    clients: int
    limited: int  # articles per side at the rate limit
    unlimited: int  # articles per side without a limit
    rss: int  # requests of the memory run


FULL = Sizes(clients=32, limited=300, unlimited=1_000, rss=10_000)
QUICK = Sizes(clients=32, limited=100, unlimited=300, rss=2_000)
RPM = 300
LIMITED_LATENCY = 1.0
UNLIMITED_LATENCY = 0.2

_PROSE = (
    "the minister said talks would resume after the vote in parliament while officials in the capital "
    "warned that the agreement could still collapse if the coalition failed to agree on the budget and "
    "diplomats described the meeting as constructive"
)
_WORDS = tuple(_PROSE.split(" "))


def make_text(i: int, rng: random.Random) -> str:
    """A unique news-like article of about 2 KB with one quote."""
    sentences = [f"Report {i}: delegations met in Geneva on 2026-03-{1 + i % 28:02d} to discuss the budget."]
    while sum(len(s) for s in sentences) < 2_000:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(9, 22))]
        sentences.append(" ".join(words).capitalize() + ".")
    sentences.insert(2, f'"We will decide by Friday, case {i}," the spokesperson said.')
    return " ".join(sentences) + "\n"


def texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [make_text(seed * 1_000_000 + i, rng) for i in range(n)]


# --------------------------------------------------------------------------- processes


@contextlib.contextmanager
def fake_endpoint(*args: str) -> Iterator[str]:
    """benchmarks/fake_server.py in its own process; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_SERVER), "--port", "0", *args], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(rf"listening on http://{re.escape(HOST)}:(\d+)", line)
        if match is None:
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield f"http://{HOST}:{match.group(1)}/v1"
    finally:
        _stop(proc)


@dataclass
class Service:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def rss_mb(self) -> float:
        return float(psutil.Process(self.proc.pid).memory_info().rss) / 2**20


@contextlib.contextmanager
def service(base_url: str, work: Path, *flags: str) -> Iterator[Service]:
    """``extractor serve`` in its own process (log lines to a file, so a full pipe never stalls it)."""
    work.mkdir(parents=True, exist_ok=True)
    log = work / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "EXTRACTOR_"))}
    env.update(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=base_url, EXTRACTOR_CACHE_DIR=str(work / "cache"))
    command = [sys.executable, "-m", "extractor", "serve", "--port", "0", "--data-dir", str(work / "data")]
    with log.open("wb") as sink:
        proc = subprocess.Popen([*command, *flags], stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=work)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            for line in log.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if event.get("event") == "listening":
                        yield Service(url=event["url"], proc=proc, log=log)
                        return
            if proc.poll() is not None:
                raise RuntimeError(f"extractor serve exited:\n{log.read_text()}")
            time.sleep(0.1)
        raise RuntimeError("extractor serve did not start")
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def reset(base_url: str) -> None:
    httpx.post(base_url + "/stats/reset", timeout=10).raise_for_status()


def endpoint_stats(base_url: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(base_url + "/stats", timeout=10).json()
    return data


# --------------------------------------------------------------------------- the two sides


def _split(items: Sequence[str], parts: int) -> list[list[str]]:
    return [list(items[i::parts]) for i in range(parts)]


async def through_library(
    base_url: str, articles: Sequence[str], clients: int, rpm: int | None
) -> dict[str, Any]:
    settings = Settings(
        api_key=KEY, base_url=base_url, use_cache=False, concurrency=clients, rpm=rpm, timeout_s=120.0
    )
    extractor = Extractor(settings)
    latencies: list[float] = []
    failures = 0

    async def client(share: list[str], n: int) -> None:
        nonlocal failures
        for j, text in enumerate(share):
            started = time.perf_counter()
            result = await extractor.aextract(Article.from_text(text, id=f"lib-{n}-{j}"))
            latencies.append(time.perf_counter() - started)
            failures += result.status != "ok"

    await extractor.aextract(Article.from_text('Warm-up. She said: "ready."', id="warm"))  # client setup
    started = time.perf_counter()
    await asyncio.gather(*(client(share, n) for n, share in enumerate(_split(articles, clients))))
    wall = time.perf_counter() - started
    await extractor.aclose()
    extractor.close()
    return _figures(len(articles), wall, latencies, [], failures)


async def through_service(url: str, articles: Sequence[str], clients: int) -> dict[str, Any]:
    latencies: list[float] = []
    added: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300.0) as http:

        async def client(share: list[str], n: int) -> None:
            nonlocal failures
            for j, text in enumerate(share):
                started = time.perf_counter()
                response = await http.post("/v1/extract", json={"id": f"svc-{n}-{j}", "text": text})
                elapsed = time.perf_counter() - started
                latencies.append(elapsed)
                if response.status_code != 200:
                    failures += 1
                    continue
                result = response.json()
                failures += result["status"] != "ok"
                added.append(elapsed - float(result["latency_s"]))

        await http.post("/v1/extract", json={"text": 'Warm-up. She said: "ready."'})
        started = time.perf_counter()
        await asyncio.gather(*(client(share, n) for n, share in enumerate(_split(articles, clients))))
        wall = time.perf_counter() - started
    return _figures(len(articles), wall, latencies, added, failures)


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _figures(
    n: int, wall: float, latencies: list[float], added: list[float], failures: int
) -> dict[str, Any]:
    figures = {
        "articles": n,
        "wall_s": round(wall, 3),
        "per_s": round(n / wall, 3),
        "latency_p50_s": round(_pct(latencies, 0.5), 4),
        "latency_p99_s": round(_pct(latencies, 0.99), 4),
        "failures": failures,
    }
    if added:
        figures.update(
            added_p50_ms=round(_pct(added, 0.5) * 1000, 2),
            added_p99_ms=round(_pct(added, 0.99) * 1000, 2),
            added_mean_ms=round(statistics.fmean(added) * 1000, 2),
        )
    return figures


async def memory_run(svc: Service, articles: Sequence[str], clients: int) -> dict[str, Any]:
    """Send ``articles`` through the service; sample its RSS after each fifth (after a 500 warm-up)."""
    points: list[tuple[int, float]] = []
    marks = {500, *(len(articles) * k // 5 for k in range(1, 6))}
    sent = 0
    failures = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in articles:
        queue.put_nowait(text)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=svc.url, limits=limits, timeout=300.0) as http:

        async def client() -> None:
            nonlocal sent, failures
            while not queue.empty():
                text = queue.get_nowait()
                response = await http.post("/v1/extract", json={"text": text})
                failures += response.status_code != 200 or response.json()["status"] != "ok"
                sent += 1
                if sent in marks:
                    points.append((sent, round(svc.rss_mb(), 1)))

        await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - started
    first = next(mb for count, mb in points if count == 500)
    last = points[-1][1]
    return {
        "requests": len(articles),
        "wall_s": round(wall, 1),
        "per_s": round(len(articles) / wall, 1),
        "rss_mb": points,
        "growth_after_warmup_mb": round(last - first, 1),
        "failures": failures,
    }


# --------------------------------------------------------------------------- main


def run(sizes: Sizes, work: Path) -> dict[str, Any]:
    step = time.perf_counter()

    def note(message: str) -> None:
        print(f"[{time.perf_counter() - step:7.1f} s] {message}", file=sys.stderr, flush=True)

    results: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "sizes": sizes.__dict__,
    }
    c = sizes.clients
    with fake_endpoint("--latency", str(LIMITED_LATENCY), "--rpm", str(RPM)) as limited:
        note(f"rate-limited: {sizes.limited} articles through the library ({c} tasks)")
        library = asyncio.run(through_library(limited, texts(sizes.limited, 1), c, RPM))
        library["endpoint_429"] = endpoint_stats(limited)["rate_limited"]
        reset(limited)
        with service(
            limited, work / "limited", "--no-cache", "--rpm", str(RPM), "--concurrency", str(c)
        ) as svc:
            note(f"rate-limited: {sizes.limited} articles through the service ({c} clients)")
            served = asyncio.run(through_service(svc.url, texts(sizes.limited, 2), c))
        served["endpoint_429"] = endpoint_stats(limited)["rate_limited"]
        results["limited"] = {
            "library": library,
            "service": served,
            "ceiling_per_s": min(RPM / 60, c / LIMITED_LATENCY),
            "ratio": round(served["per_s"] / library["per_s"], 3),
        }
    with fake_endpoint("--latency", str(UNLIMITED_LATENCY)) as fast:
        note(f"unlimited: {sizes.unlimited} articles through the library")
        library = asyncio.run(through_library(fast, texts(sizes.unlimited, 3), c, None))
        with service(
            fast, work / "fast", "--no-cache", "--concurrency", str(c), "--max-pending", "100000"
        ) as svc:
            note(f"unlimited: {sizes.unlimited} articles through the service")
            served = asyncio.run(through_service(svc.url, texts(sizes.unlimited, 4), c))
            results["unlimited"] = {
                "library": library,
                "service": served,
                "ceiling_per_s": c / UNLIMITED_LATENCY,
                "ratio": round(served["per_s"] / library["per_s"], 3),
            }
            note(f"memory: {sizes.rss} requests through the same service")
            results["memory"] = asyncio.run(memory_run(svc, texts(sizes.rss, 5), c))
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def render(r: dict[str, Any]) -> str:
    lim, unl, mem = r["limited"], r["unlimited"], r["memory"]
    start, end = r["machine"]["load_average_at_start"][0], r["machine"]["load_average_at_end"][0]
    load = f"{start} at start, {end} at end"
    rows = [
        "| measurement | library | service | ratio |",
        "|---|---:|---:|---:|",
        f"| {lim['library']['articles']} articles, {RPM} RPM limit, {LIMITED_LATENCY} s latency, "
        f"{r['sizes']['clients']} clients (ceiling {lim['ceiling_per_s']:.2f}/s) | "
        f"{lim['library']['per_s']:.2f}/s | {lim['service']['per_s']:.2f}/s | **{lim['ratio']}** |",
        f"| {unl['library']['articles']} articles, no limit, {UNLIMITED_LATENCY} s latency "
        f"(ceiling {unl['ceiling_per_s']:.0f}/s) | {unl['library']['per_s']:.1f}/s | "
        f"{unl['service']['per_s']:.1f}/s | {unl['ratio']} |",
        f"| added latency per request, rate-limited run: p50 / p99 | | "
        f"{lim['service']['added_p50_ms']:.1f} / {lim['service']['added_p99_ms']:.1f} ms | |",
        f"| added latency per request, unlimited run: p50 / p99 | | "
        f"{unl['service']['added_p50_ms']:.1f} / {unl['service']['added_p99_ms']:.1f} ms | |",
        f"| server RSS over {mem['requests']:,} requests ({mem['per_s']}/s) | | "
        + " → ".join(f"{mb:.0f}" for _, mb in mem["rss_mb"])
        + f" MB | growth after warm-up {mem['growth_after_warmup_mb']} MB |",
    ]
    return f"load average {load}\n\n" + "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        results = run(sizes, Path(tmp))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "bench_service.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(render(results))
    failures = sum(
        part[side]["failures"]
        for part in (results["limited"], results["unlimited"])
        for side in ("library", "service")
    )
    failures += results["memory"]["failures"]
    if failures:
        print(f"{failures} request(s) did not give an ok result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
