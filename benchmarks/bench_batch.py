"""Benchmark run_batch end to end against the local fake OpenAI server (benchmarks/fake_server.py).

    .venv/bin/python benchmarks/bench_batch.py [--quick] [--only NAMES] [--profile] [--keep]

(--quick: about 2 min, small sizes; the full run takes about 13 min. --only: some of the scenarios
throughput, sustained, tpm_bound, short_window, rerun, faults (e.g. ``--only short_window``, about 40 s).
--profile: also cProfile the warm re-run into benchmarks/out/bench_batch_warm_profile.txt. The exit status
is 1 when an article was lost or duplicated, or the warm re-run made an HTTP call; speed never fails the
run.)

One run measures, side by side, and prints a markdown table (also written, with every raw figure, to
benchmarks/out/bench_batch.json):

1. throughput: N articles through ``run_batch`` at 1.5 s server latency and a 600 RPM server limit
   (client ``rpm=600``, ``concurrency=32``), against the ceiling min(RPM/60, concurrency/latency) (no
   TPM limit on either side); 429s counted by the server. Next to it a naive sequential instructor loop
   over the same articles, measured on a few and projected to N. The full run adds a sustained run
   longer than the server's 60-s window, where a token bucket that starts full can overrun it.
   A third run adds a 600,000 tokens/min limit on both sides, so the TPM term of the ceiling
   min(RPM/60, TPM/60/tokens-per-article, concurrency/latency) binds.
2. a cold fill of the cache at 0 latency, then a warm re-run of the same articles into a new folder with
   the server stopped (so every answer must come from the cache), a skip re-run into the same folder,
   and 10 new articles dropped on top of the ones done (must cost exactly 10 HTTP calls).
3. peak RSS growth (and tracemalloc peak) of the warm path for a small and a large drop, each in a fresh
   process: results stream to disk, so the ratio should be near 1, not near the size ratio.
4. short windows: the server enforces 600 RPM as 60 requests in any 6 s (``--window-s 6``), 0.5 s latency,
   client ``rpm=600``, ``concurrency=16``: server-side ratio to the 10/s ceiling (articles over the
   server's span from the first request in to the last answer out), the client's time outside that span
   (start-up and the final write), and the share of 429s.
5. faults: the server fails 30 % of first attempts (429 with Retry-After, 500, 503, a timeout, malformed
   and truncated JSON), client timeout 2 s; every article must end with exactly one result line. HTTP
   calls and tokens are compared with a fault-free run of the same articles.

The fake server runs as a separate process (its own GIL), bound to 127.0.0.1; nothing else is contacted.
Timings depend on what else the machine runs: the table's first line gives the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import io
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from extractor.articles import load_articles  # noqa: E402
from extractor.batch import RunSummary, run_batch  # noqa: E402
from extractor.cli.progress import LogReporter  # noqa: E402
from extractor.config import Settings  # noqa: E402
from extractor.models import Article, ArticleExtraction  # noqa: E402
from extractor.pipeline import Extractor  # noqa: E402
from extractor.prompts import load_prompts  # noqa: E402
from extractor.ratelimit import RateLimiter  # noqa: E402
from extractor.transport import RetryingTransport  # noqa: E402

FAKE_SERVER = ROOT / "benchmarks" / "fake_server.py"
OUT_DIR = ROOT / "benchmarks" / "out"
HOST = "127.0.0.1"
MODEL = "bench-model"
FAULTS = "429,500,503,timeout,malformed,truncated"


@dataclass(frozen=True)
class Sizes:
    throughput: int  # articles through run_batch at 600 RPM / 1.5 s
    naive: int  # articles of the naive sequential loop (projected to ``throughput``)
    sustained: int  # articles of the longer-than-60-s run (0: skipped)
    warm: int  # articles filled, then re-run warm and skipped
    memory_small: int  # the small drop of the memory comparison (the large one is ``warm``)
    memory_mid: int  # a middle point, to show where the curve flattens
    faults: int  # articles of the fault run and of its fault-free twin
    tpm_bound: int  # articles of the run where the tokens/min limit binds
    short_window: int  # articles of the run against a server enforcing RPM over 6-s windows


# throughput, naive, sustained, warm, memory_small, memory_mid, faults, tpm_bound, short_window
FULL = Sizes(500, 20, 1200, 10_000, 1_000, 4_000, 200, 300, 240)
QUICK = Sizes(100, 5, 0, 1_000, 100, 400, 50, 60, 120)
NEW_ON_TOP = 10  # new articles dropped on top of the ``warm`` ones already done

LATENCY_S = 1.5
RPM = 600
TPM = 600_000  # the tokens/min-bound run: ~2,900 tokens/article makes this ~3.4 articles/s, below RPM/60
CONCURRENCY = 32
FILL_CONCURRENCY = 64
FAULT_RATE = 0.3
FAULT_TIMEOUT_S = 2.0
FAULT_HOLD_S = 5.0
FAULT_LATENCY_S = 0.1
FAULT_CONCURRENCY = 16
SHORT_WINDOW_S = 6.0  # the server allows RPM * 6 / 60 = 60 requests in any 6 s
SHORT_LATENCY_S = 0.5
SHORT_CONCURRENCY = 16


# --------------------------------------------------------------------------- synthetic articles

_FIRST = ("Anna", "Marco", "Sofia", "Lukas", "Elena", "Pierre", "Ingrid", "Tomas", "Aisha", "Kenji", "Maria")
_LAST = (
    "Novak",
    "Rossi",
    "Dubois",
    "Schmidt",
    "Kowalska",
    "Okafor",
    "Lindqvist",
    "Tanaka",
    "Silva",
    "Moreau",
)
_ROLES = (
    "foreign minister",
    "prime minister",
    "union leader",
    "central bank governor",
    "mayor",
    "spokesperson",
)
_CITIES = ("Paris", "Rome", "Berlin", "Warsaw", "Madrid", "Lisbon", "Vienna", "Prague", "Oslo", "Athens")
_TOPICS = (
    "grain exports",
    "a ceasefire proposal",
    "energy prices",
    "the port strike",
    "border controls",
    "a new trade agreement",
    "pension reform",
    "sanctions on steel imports",
)
_VERBS = ("met", "held talks with", "agreed with", "rejected a plan by", "protested against")
_PROSE = (
    "the government said its officials would review the figures before the vote while analysts "
    "expected a narrow margin in parliament after weeks of negotiations between regional leaders "
    "business groups warned that delays could raise costs for households and small firms across "
    "the country as inflation stayed above target for a third quarter and unions demanded higher "
    "wages opposition parties called for an independent inquiry into the contracts signed last year "
    "diplomats described the meeting as constructive but cautioned that several questions remained "
    "open including the timetable for implementation and the role of international observers"
)
_WORDS = tuple(_PROSE.split())


def _name(rng: random.Random) -> str:
    return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(9, 22))]
    return " ".join(words).capitalize() + "."


def make_text(i: int, rng: random.Random) -> str:
    """A unique news-like article of 2-4 KB: a first sentence reporting an event, a quoted sentence."""
    target = rng.randint(2_000, 4_000)
    a, b = _name(rng), _name(rng)
    city, topic = rng.choice(_CITIES), rng.choice(_TOPICS)
    date = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    paragraphs = [
        f"{a} {rng.choice(_VERBS)} {b} in {city} on {date} to discuss {topic} (report {i}).",
        " ".join(_sentence(rng) for _ in range(rng.randint(2, 4))),
        f"“{_sentence(rng)[:-1]},” {b}, the {rng.choice(_ROLES)}, told reporters after the talks.",
    ]
    size = sum(len(p) + 2 for p in paragraphs)
    while size < target:
        paragraph = " ".join(_sentence(rng) for _ in range(rng.randint(2, 5)))
        paragraphs.append(paragraph)
        size += len(paragraph) + 2
    return "\n\n".join(paragraphs) + "\n"


def write_articles(folder: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` .txt articles ``a00000.txt`` ... in ``folder`` (deterministic)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for i in range(n):
        path = folder / f"a{i:05d}.txt"
        path.write_text(make_text(i, rng), encoding="utf-8")
        paths.append(path)
    return paths


def link_subset(paths: Sequence[Path], folder: Path) -> Path:
    """A folder of hard links to ``paths`` (same names, same texts, so the same cache keys)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        os.link(path, folder / path.name)
    return folder


# --------------------------------------------------------------------------- the fake server


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[str]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(_http(f"{self.base_url}/stats"))
        return data

    def reset(self) -> None:
        _http(f"{self.base_url}/stats/reset", method="POST")


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def _http(url: str, method: str = "GET") -> bytes:
    assert url.startswith(f"http://{HOST}:")
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with _OPENER.open(request) as response:
        body: bytes = response.read()
        return body


@contextlib.contextmanager
def fake_server(*args: str) -> Iterator[Server]:
    """``benchmarks/fake_server.py`` in its own process on a free 127.0.0.1 port; stopped on exit."""
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_SERVER), "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(rf"listening on http://{re.escape(HOST)}:(\d+)", line)
        if match is None:
            raise RuntimeError(f"fake server did not start: {line!r}")
        yield Server(int(match.group(1)), proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- running batches


def settings(port: int, cache_dir: Path, **overrides: Any) -> Settings:
    return Settings(
        api_key="bench",
        base_url=f"http://{HOST}:{port}/v1",
        model=MODEL,
        cache_dir=cache_dir,
        **overrides,
    )


@dataclass
class Batch:
    summary: RunSummary
    wall_s: float
    check: dict[str, Any]

    @property
    def rate(self) -> float:
        return self.summary.articles / self.wall_s if self.wall_s else 0.0


def batch(
    paths: Sequence[Path], out_dir: Path, config: Settings, limiter: RateLimiter | None = None
) -> Batch:
    """``run_batch`` with a quiet reporter; wall time around the whole call; output checked."""
    extractor = Extractor(config, limiter=limiter)
    try:
        started = time.perf_counter()
        summary = run_batch(paths, out_dir, extractor, reporter=LogReporter(stream=io.StringIO(), quiet=True))
        wall = time.perf_counter() - started
    finally:
        extractor.close()
    return Batch(summary, wall, check_results(out_dir, paths))


def check_results(out_dir: Path, paths: Sequence[Path]) -> dict[str, Any]:
    """Lines of results.jsonl vs input articles: one line per article, nothing lost or duplicated."""
    expected = _expected_ids(paths)
    ids: list[str] = []
    statuses: Counter[str] = Counter()
    with (out_dir / "results.jsonl").open("rb") as fh:
        for raw in fh:
            data = json.loads(raw)
            ids.append(data["article_id"])
            statuses[data["status"]] += 1
    unique = set(ids)
    return {
        "inputs": len(expected),
        "lines": len(ids),
        "unique_ids": len(unique),
        "missing": len(expected - unique),
        "unexpected": len(unique - expected),
        "duplicated": len(ids) - len(unique),
        "ok": statuses["ok"],
        "error": statuses["error"],
        "intact": len(ids) == len(unique) == len(expected) and unique == expected,
    }


def _expected_ids(paths: Sequence[Path]) -> set[str]:
    if len(paths) == 1 and paths[0].is_dir():
        return {p.stem for p in paths[0].glob("*.txt")}
    return {p.stem for p in paths}


def naive_loop(articles: Sequence[Article], base_url: str) -> float:
    """The simplest instructor loop, one request after the other; returns seconds."""
    import httpx
    import instructor
    import openai

    http = httpx.Client(trust_env=False)  # 127.0.0.1 only, never through a proxy
    client = instructor.from_openai(openai.OpenAI(base_url=base_url, api_key="bench", http_client=http))
    prompts = load_prompts()
    started = time.perf_counter()
    for article in articles:
        answer = client.chat.completions.create(
            model=MODEL,
            response_model=ArticleExtraction,
            messages=prompts.render(article),  # type: ignore[arg-type]
            temperature=0.0,
            max_tokens=4096,
        )
        assert answer.events
    wall = time.perf_counter() - started
    http.close()
    return wall


# --------------------------------------------------------------------------- scenarios


def throughput(work: Path, paths: Sequence[Path], n_naive: int) -> dict[str, Any]:
    """run_batch at 600 RPM / 1.5 s latency, and the naive loop on the first ``n_naive`` articles."""
    with fake_server("--latency", str(LATENCY_S), "--rpm", str(RPM)) as server:
        naive_articles = [a for a in load_articles(paths[:n_naive]) if isinstance(a, Article)]
        naive_s = naive_loop(naive_articles, server.base_url)
        naive_stats = server.stats()
        server.reset()
        config = settings(server.port, work / "cache-throughput", concurrency=CONCURRENCY, rpm=RPM)
        limiter = RateLimiter(rpm=RPM, window_safe=True)  # what Extractor builds; kept for its stats
        run = batch(paths, work / "out-throughput", config, limiter=limiter)
        stats = server.stats()
    return _rate_figures(run, stats, len(paths)) | {
        "limiter": dict(limiter.stats()),
        "naive": {
            "measured_articles": n_naive,
            "wall_s": round(naive_s, 3),
            "articles_per_s": round(n_naive / naive_s, 4),
            "projected_articles": len(paths),
            "projected_wall_s": round(naive_s / n_naive * len(paths), 1),
            "server_requests": naive_stats["requests"],
            "server_429": naive_stats["by_status"].get("429", 0),
        },
    }


def sustained(work: Path, paths: Sequence[Path]) -> dict[str, Any]:
    """The same setup over more than 60 s: does the first burst overrun the server's sliding window?"""
    with fake_server("--latency", str(LATENCY_S), "--rpm", str(RPM)) as server:
        config = settings(server.port, work / "cache-sustained", concurrency=CONCURRENCY, rpm=RPM)
        limiter = RateLimiter(rpm=RPM, window_safe=True)
        run = batch(paths, work / "out-sustained", config, limiter=limiter)
        stats = server.stats()
    return _rate_figures(run, stats, len(paths)) | {"limiter": dict(limiter.stats())}


def tpm_bound(work: Path, paths: Sequence[Path]) -> dict[str, Any]:
    """The same setup with a tokens/min limit (server and client) that binds before the RPM one."""
    with fake_server("--latency", str(LATENCY_S), "--rpm", str(RPM), "--tpm", str(TPM)) as server:
        config = settings(server.port, work / "cache-tpm", concurrency=CONCURRENCY, rpm=RPM, tpm=TPM)
        limiter = RateLimiter(rpm=RPM, tpm=TPM, window_safe=True)
        run = batch(paths, work / "out-tpm", config, limiter=limiter)
        stats = server.stats()
    return _rate_figures(run, stats, len(paths), tpm=TPM) | {
        "limiter": dict(limiter.stats()),
        "server_tokens": stats["tokens"]["total"],
    }


def short_window(work: Path, paths: Sequence[Path]) -> dict[str, Any]:
    """600 RPM enforced by the server as 60 requests in any 6 s: does the client pace evenly enough?

    Measured twice against the same server: ``run_batch`` end to end, and the same requests sent through
    the rate limiter and transport alone (no parsing, grounding or writing on the event loop), which
    tells the pacing apart from the client's own stalls (GC pauses, a loaded machine)."""
    with fake_server(
        "--latency", str(SHORT_LATENCY_S), "--rpm", str(RPM), "--window-s", str(SHORT_WINDOW_S)
    ) as server:
        articles = [a for a in load_articles(paths) if isinstance(a, Article)]
        limiter = RateLimiter(rpm=RPM, window_safe=True)
        started = time.perf_counter()
        answered = asyncio.run(_paced_requests(server.base_url, articles, limiter))
        wall = time.perf_counter() - started
        paced = _short_window_figures(len(articles), wall, server.stats(), limiter)
        paced["ok"] = answered
        server.reset()  # counters and the server's window
        config = settings(server.port, work / "cache-short", concurrency=SHORT_CONCURRENCY, rpm=RPM)
        limiter = RateLimiter(rpm=RPM, window_safe=True)  # what Extractor builds; kept for its stats
        run = batch(paths, work / "out-short", config, limiter=limiter)
        figures = _short_window_figures(len(paths), run.wall_s, server.stats(), limiter)
    return figures | {"check": run.check, "limiter_and_transport_only": paced}


async def _paced_requests(base_url: str, articles: Sequence[Article], limiter: RateLimiter) -> int:
    """Each article's request sent once through ``RetryingTransport`` + ``limiter`` by
    ``SHORT_CONCURRENCY`` workers; how many were answered 200."""
    import httpx

    prompts = load_prompts()
    bodies = [{"model": MODEL, "messages": prompts.render(a), "temperature": 0.0} for a in articles]
    queue = list(reversed(bodies))
    answered = 0
    transport = RetryingTransport(httpx.AsyncHTTPTransport(), limiter)
    async with httpx.AsyncClient(transport=transport, timeout=60, trust_env=False) as client:

        async def worker() -> None:
            nonlocal answered
            while queue:
                response = await client.post(f"{base_url}/chat/completions", json=queue.pop())
                answered += response.status_code == 200

        await asyncio.gather(*(worker() for _ in range(SHORT_CONCURRENCY)))
    return answered


def _short_window_figures(n: int, wall: float, stats: dict[str, Any], limiter: RateLimiter) -> dict[str, Any]:
    ceiling = min(RPM / 60.0, SHORT_CONCURRENCY / SHORT_LATENCY_S)
    active = float(stats["active_s"] or wall)
    requests = int(stats["requests"])
    limited = int(stats["by_status"].get("429", 0))
    return {
        "articles": n,
        "window_s": SHORT_WINDOW_S,
        "window_limit": int(RPM * SHORT_WINDOW_S / 60),
        "latency_s": SHORT_LATENCY_S,
        "concurrency": SHORT_CONCURRENCY,
        "ceiling_per_s": ceiling,
        "wall_s": round(wall, 3),
        "server_active_s": round(active, 3),
        "outside_server_s": round(wall - active, 3),
        # the measure: articles over the server-side span, against the ceiling
        "server_ratio": round(n / active / ceiling, 4),
        "wall_ratio": round(n / wall / ceiling, 4),
        # what even pacing at the ceiling needs: n - 1 gaps of 1/ceiling, plus the last answer's latency
        "ideal_server_s": round((n - 1) / ceiling + SHORT_LATENCY_S, 3),
        "server_requests": requests,
        "server_429": limited,
        "server_429_pct": round(100.0 * limited / max(1, requests), 2),
        "limiter": dict(limiter.stats()),
    }


def _rate_figures(run: Batch, stats: dict[str, Any], n: int, tpm: int | None = None) -> dict[str, Any]:
    s = run.summary
    tokens = s.prompt_tokens + s.completion_tokens
    per_article = tokens / max(1, s.ok)
    terms = {
        "rpm": RPM / 60.0,
        "tpm": tpm / 60.0 / per_article if tpm else float("inf"),  # no TPM limit: that term is infinite
        "concurrency": CONCURRENCY / LATENCY_S,
    }
    ceiling = min(terms.values())
    # The Extractor's (window_safe) bucket holds one request + 20 ms of refill: what may go at t=0.
    burst = 1.0 + ceiling * 0.02
    return {
        "articles": n,
        "wall_s": round(run.wall_s, 3),
        "articles_per_s": round(run.rate, 3),
        "ceiling_per_s": round(ceiling, 3),
        "ceiling_terms_per_s": {k: (None if v == float("inf") else round(v, 3)) for k, v in terms.items()},
        "binding": min(terms, key=lambda k: terms[k]),
        "tpm": tpm,
        "ratio": round(run.rate / ceiling, 4),
        "finite_run_bound_s": round((n - burst) / ceiling + LATENCY_S, 2),
        "server_requests": stats["requests"],
        "server_429": stats["by_status"].get("429", 0),
        "server_max_in_flight": stats["max_in_flight"],
        "http_calls": s.http_calls,
        "tokens": tokens,
        "tokens_per_article": round(tokens / max(1, s.ok), 1),
        "tpm_needed_at_ceiling": round(tokens / max(1, s.ok) * ceiling * 60),
        "summary": s.as_dict(),
        "check": run.check,
    }


WARM_REPEATS = 3


def fill_and_rerun(
    work: Path,
    folder: Path,
    small: Path,
    mid: Path,
    sizes: Sizes,
    profile: Path | None,
    extra: Sequence[Path],
) -> dict[str, Any]:
    """Fill the cache cold at 0 latency, then warm re-runs (``WARM_REPEATS`` of them, each into a new
    folder: this machine's vCPUs are shared, so the median and the best are reported with the CPU time
    stolen by the hypervisor during each) and a skip re-run, server stopped, each in a fresh process;
    then the memory of the warm path at three sizes; last, ``extra`` new articles dropped on top of the
    ones done."""
    n = sizes.warm
    cache = work / "cache-warm"
    with fake_server("--latency", "0") as server:
        run = batch([folder], work / "out-fill", settings(server.port, cache, concurrency=FILL_CONCURRENCY))
        stats = server.stats()
        port = server.port
    fill = {
        "articles": n,
        "wall_s": round(run.wall_s, 3),
        "articles_per_s": round(run.rate, 1),
        "server_requests": stats["requests"],
        "http_calls": run.summary.http_calls,
        "check": run.check,
    }
    # The server is stopped from here on: a single request would fail and give an error result.
    runs = [_child(folder, work / f"out-warm-{i}", cache, port) for i in range(WARM_REPEATS)]
    by_rate = sorted(runs, key=lambda r: r["articles_per_s"])
    warm = dict(by_rate[len(by_rate) // 2])
    warm["best_articles_per_s"] = by_rate[-1]["articles_per_s"]
    warm["best_steal_s"] = by_rate[-1]["steal_s"]
    warm["repeats"] = runs
    skip = _child(folder, work / "out-warm-0", cache, port)
    points = [(small, sizes.memory_small), (mid, sizes.memory_mid), (folder, n)]
    memory: list[dict[str, Any]] = []
    for where, count in points:
        timed = runs[0] if where == folder else _child(where, work / f"out-rss-{count}", cache, port)
        traced = _child(where, work / f"out-traced-{count}", cache, port, mode="tracemalloc")
        memory.append(
            {
                "articles": count,
                "rss_growth_mb": timed["rss_growth_mb"],
                "tracemalloc_peak_mb": traced["tracemalloc_peak_mb"],
            }
        )
    if profile is not None:
        _child(folder, work / "out-profiled", cache, port, mode="profile", profile=profile)
    on_top = _new_on_top(folder, work / "out-warm-0", cache, extra)
    first, last = memory[0], memory[-1]
    return {
        "fill": fill,
        "warm": warm,
        "skip": skip,
        "new_on_top": on_top,
        "memory": {
            "points": memory,
            "rss_ratio": round(last["rss_growth_mb"] / first["rss_growth_mb"], 2)
            if first["rss_growth_mb"] > 0
            else None,
            "tracemalloc_ratio": round(last["tracemalloc_peak_mb"] / first["tracemalloc_peak_mb"], 2)
            if first["tracemalloc_peak_mb"]
            else None,
        },
    }


def _new_on_top(folder: Path, out_dir: Path, cache: Path, extra: Sequence[Path]) -> dict[str, Any]:
    """Drop ``extra`` new articles into ``folder`` (all done in ``out_dir``) and run again, live."""
    link_subset(extra, folder)
    with fake_server("--latency", "0") as server:
        run = batch([folder], out_dir, settings(server.port, cache, concurrency=CONCURRENCY))
        stats = server.stats()
    s = run.summary
    return {
        "new": len(extra),
        "done_before": s.skipped,
        "wall_s": round(run.wall_s, 3),
        "http_calls": s.http_calls,
        "server_requests": stats["requests"],
        "extracted": s.ok,
        "check": run.check,
    }


def _child(
    folder: Path, out_dir: Path, cache: Path, port: int, mode: str = "time", profile: Path | None = None
) -> dict[str, Any]:
    """``child_warm`` in a fresh interpreter; its JSON answer."""
    spec = {
        "folder": str(folder),
        "out": str(out_dir),
        "cache": str(cache),
        "port": port,
        "mode": mode,
        "profile": None if profile is None else str(profile),
    }
    done = subprocess.run(
        [sys.executable, __file__, "--child-warm", json.dumps(spec)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"warm re-run ({mode}) failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class _RssSampler:
    """The highest RSS of this process seen every ``interval`` seconds (on a daemon thread)."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak = self.now()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def now(self) -> int:
        rss: int = self._process.memory_info().rss
        return rss

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def _steal_s() -> float:
    """CPU time the hypervisor has stolen from this machine's vCPUs so far (Linux /proc/stat), in s."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def child_warm(spec: dict[str, Any]) -> dict[str, Any]:
    """In a fresh process: run_batch from the cache only. ``mode`` "time": wall and CPU time and RSS
    growth; "tracemalloc": the traced Python heap peak; "profile": cProfile into ``profile``."""
    import cProfile
    import pstats
    import tracemalloc

    folder, out_dir, mode = Path(spec["folder"]), Path(spec["out"]), spec["mode"]
    # One attempt, short timeout: a cache miss (the server is stopped) fails at once instead of backing off.
    # Neither setting enters the cache key.
    config = settings(
        int(spec["port"]), Path(spec["cache"]), concurrency=CONCURRENCY, transport_attempts=1, timeout_s=5.0
    )
    extractor = Extractor(config)
    first = next(a for a in load_articles([folder]) if isinstance(a, Article))
    cache = extractor.cache
    if cache is None or not all(key in cache for _, key in extractor.requests(first)):
        raise SystemExit(
            f"bench_batch: {first.id} is not in the cache filled moments ago: the cache key (prompts, "
            "pipeline or cache code) changed during the benchmark; run it again"
        )
    reporter = LogReporter(stream=io.StringIO(), quiet=True)
    profiler = cProfile.Profile()
    gc.collect()
    if mode == "tracemalloc":
        tracemalloc.start()
    with _RssSampler() as rss:
        before = rss.peak
        steal = _steal_s()
        started, cpu = time.perf_counter(), time.process_time()
        if mode == "profile":
            profiler.enable()
        try:
            summary = run_batch([folder], out_dir, extractor, reporter=reporter)
        finally:
            profiler.disable()
            extractor.close()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        steal = _steal_s() - steal
    traced_peak = tracemalloc.get_traced_memory()[1] if mode == "tracemalloc" else None
    tracemalloc.stop()
    if mode == "profile":
        path = Path(spec["profile"])
        profiler.dump_stats(path.with_suffix(".prof"))
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text).strip_dirs()
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
        path.write_text(text.getvalue(), encoding="utf-8")
    return {
        "mode": mode,
        "articles": summary.articles,
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "articles_per_s": round(summary.articles / wall, 1),
        "articles_per_cpu_s": round(summary.articles / cpu, 1),
        "steal_s": round(steal, 2),
        "ok": summary.ok,
        "skipped": summary.skipped,
        "cache_hits": summary.cache_hits,
        "http_calls": summary.http_calls,
        "errors": summary.failed,
        "rss_before_mb": round(before / 2**20, 1),
        "rss_peak_mb": round(rss.peak / 2**20, 1),
        "rss_growth_mb": round((rss.peak - before) / 2**20, 1),
        "tracemalloc_peak_mb": None if traced_peak is None else round(traced_peak / 2**20, 2),
        "check": check_results(out_dir, [folder]),
    }


def faults(work: Path, paths: Sequence[Path]) -> dict[str, Any]:
    """The same articles with 30 % of first attempts failing, and without faults."""
    out: dict[str, Any] = {}
    for name, args in (
        (
            "faulty",
            ("--fault-rate", str(FAULT_RATE), "--faults", FAULTS, "--timeout-hold", str(FAULT_HOLD_S)),
        ),
        ("clean", ()),
    ):
        with fake_server("--latency", str(FAULT_LATENCY_S), *args) as server:
            config = settings(
                server.port,
                work / f"cache-{name}",
                use_cache=False,
                timeout_s=FAULT_TIMEOUT_S,
                concurrency=FAULT_CONCURRENCY,
            )
            limiter = RateLimiter(window_safe=True)
            run = batch(paths, work / f"out-{name}", config, limiter=limiter)
            stats = server.stats()
        s = run.summary
        out[name] = {
            "articles": len(paths),
            "wall_s": round(run.wall_s, 3),
            "ok": s.ok,
            "errors": s.errors,
            "error_types": s.error_types,
            "http_calls": s.http_calls,
            "prompt_tokens": s.prompt_tokens,
            "completion_tokens": s.completion_tokens,
            "tokens": s.prompt_tokens + s.completion_tokens,
            "server_requests": stats["requests"],
            "server_by_status": stats["by_status"],
            "server_faults": stats["faults"],
            "server_tokens": stats["tokens"]["total"],
            "limiter": dict(limiter.stats()),
            "check": run.check,
        }
    clean, faulty = out["clean"], out["faulty"]
    out["extra_http_calls"] = faulty["http_calls"] - clean["http_calls"]
    out["extra_tokens"] = faulty["tokens"] - clean["tokens"]
    out["extra_tokens_pct"] = round(100.0 * out["extra_tokens"] / max(1, clean["tokens"]), 1)
    return out


# --------------------------------------------------------------------------- report


def _yes(flag: bool) -> str:
    return "yes" if flag else "**NO**"


Row = tuple[str, str, str, str]


def render(results: dict[str, Any]) -> str:
    """The markdown table of every scenario in ``results`` (``--only`` runs some of them)."""
    rows: list[Row] = []
    if "throughput" in results:
        rows += _throughput_rows(results["throughput"])
    if "sustained" in results:
        rows.append(_sustained_row(results["sustained"]))
    if "tpm_bound" in results:
        rows.append(_tpm_bound_row(results["tpm_bound"]))
    if "short_window" in results:
        rows += _short_window_rows(results["short_window"])
    if "rerun" in results:
        rows += _rerun_rows(results["rerun"])
    if "faults" in results:
        rows += _fault_rows(results["faults"])
    return _table(results, rows)


def _throughput_rows(t: dict[str, Any]) -> list[Row]:
    naive = t["naive"]
    return [
        (
            f"run_batch, {t['articles']} articles, {LATENCY_S:g} s latency, {RPM} RPM server + client, "
            f"concurrency {CONCURRENCY}",
            f"{t['articles_per_s']:.2f} articles/s ({t['wall_s']:.1f} s)",
            f"ceiling {t['ceiling_per_s']:.2f}/s = min(RPM {RPM}/60, TPM ∞ (no limit), "
            f"concurrency {CONCURRENCY}/{LATENCY_S:g})",
            f"ratio **{t['ratio']:.3f}** (target ≥ 0.95); {t['server_429']} × 429; "
            f"{t['tokens_per_article']:.0f} tokens/article (a TPM limit binds below "
            f"{t['tpm_needed_at_ceiling']:,}); intact {_yes(t['check']['intact'])}",
        ),
        (
            "naive sequential instructor loop, same server",
            f"{naive['articles_per_s']:.3f} articles/s",
            f"measured on {naive['measured_articles']} ({naive['wall_s']:.1f} s)",
            f"projected to {naive['projected_articles']}: {naive['projected_wall_s']:.0f} s; run_batch is "
            f"{t['articles_per_s'] / naive['articles_per_s']:.1f}× faster",
        ),
    ]


def _sustained_row(s: dict[str, Any]) -> Row:
    lim = s["limiter"]
    return (
        f"run_batch sustained, {s['articles']} articles (> 60-s window), same setup",
        f"{s['articles_per_s']:.2f} articles/s ({s['wall_s']:.1f} s)",
        f"ceiling {s['ceiling_per_s']:.2f}/s",
        f"ratio **{s['ratio']:.3f}**; {s['server_429']} × 429 from the server; limiter: "
        f"{lim['rate_decreases']} rate cuts, factor now {lim['rate_factor']:.2f}; "
        f"intact {_yes(s['check']['intact'])}",
    )


def _tpm_bound_row(tb: dict[str, Any]) -> Row:
    terms = tb["ceiling_terms_per_s"]
    return (
        f"run_batch, {tb['articles']} articles, same setup + {TPM:,} TPM server + client",
        f"{tb['articles_per_s']:.2f} articles/s ({tb['wall_s']:.1f} s)",
        f"ceiling {tb['ceiling_per_s']:.2f}/s = min(RPM {terms['rpm']:.2f}, TPM {TPM:,}/60/"
        f"{tb['tokens_per_article']:.0f} tokens = {terms['tpm']:.2f}, "
        f"concurrency {terms['concurrency']:.2f})",
        f"ratio **{tb['ratio']:.3f}** ({tb['binding']} binds); {tb['server_429']} × 429; intact "
        f"{_yes(tb['check']['intact'])}",
    )


def _rerun_rows(rerun: dict[str, Any]) -> list[Row]:
    fill, warm, skip, mem = (rerun[k] for k in ("fill", "warm", "skip", "memory"))
    on_top = rerun["new_on_top"]
    return [
        (
            f"cold fill, {fill['articles']:,} articles, 0 latency, no limit, concurrency {FILL_CONCURRENCY}",
            f"{fill['articles_per_s']:.1f} articles/s ({fill['wall_s']:.1f} s)",
            "client-side cost of a live request",
            f"{fill['http_calls']:,} HTTP calls; intact {_yes(fill['check']['intact'])}",
        ),
        (
            f"warm re-run, {warm['articles']:,} cached articles, new out dir, server stopped "
            f"(median of {len(warm['repeats'])})",
            f"**{warm['articles_per_s']:.0f} articles/s** ({warm['wall_s']:.1f} s); best "
            f"{warm['best_articles_per_s']:.0f}/s",
            f"target ≥ 1,000/s; {warm['articles_per_cpu_s']:.0f} articles per CPU-second",
            "runs: "
            + ", ".join(f"{r['articles_per_s']:.0f}/s ({r['steal_s']:.1f} s stolen)" for r in warm["repeats"])
            + f"; {warm['cache_hits']:,} cache hits, {warm['http_calls']} HTTP calls, {warm['errors']} "
            f"errors; intact {_yes(warm['check']['intact'])}",
        ),
        (
            f"skip re-run, {skip['articles']:,} articles, same out dir",
            f"{skip['articles_per_s']:.0f} articles/s ({skip['wall_s']:.2f} s)",
            "manifest skip",
            f"{skip['skipped']:,} skipped; results.jsonl still intact {_yes(skip['check']['intact'])}",
        ),
        (
            f"{on_top['new']} new articles dropped on top of {on_top['done_before']:,} done",
            f"{on_top['http_calls']} HTTP calls ({on_top['wall_s']:.2f} s)",
            f"want {on_top['new']} calls",
            f"{on_top['extracted']} extracted, {on_top['done_before']:,} skipped; intact "
            f"{_yes(on_top['check']['intact'])}",
        ),
        (
            "peak RSS growth over the warm path, "
            + " / ".join(f"{p['articles']:,}" for p in mem["points"])
            + " articles",
            " / ".join(f"{p['rss_growth_mb']:.1f}" for p in mem["points"]) + " MB",
            "should stay flat, not grow 10×",
            f"ratio last/first **{mem['rss_ratio']}**; Python heap (tracemalloc) peak "
            + " / ".join(f"{p['tracemalloc_peak_mb']:.2f}" for p in mem["points"])
            + f" MB (ratio {mem['tracemalloc_ratio']})",
        ),
    ]


def _fault_rows(f: dict[str, Any]) -> list[Row]:
    faulty, clean = f["faulty"], f["clean"]
    return [
        (
            f"faults, {faulty['articles']} articles, {FAULT_RATE:.0%} of first attempts fail ({FAULTS}), "
            f"client timeout {FAULT_TIMEOUT_S:g} s",
            f"{faulty['ok']} ok, {faulty['errors']} errors ({faulty['wall_s']:.1f} s)",
            "every article once",
            f"{faulty['check']['lines']} lines, {faulty['check']['unique_ids']} unique ids, "
            f"{faulty['check']['missing']} missing, {faulty['check']['duplicated']} duplicated; intact "
            f"{_yes(faulty['check']['intact'])}; injected {sum(faulty['server_faults'].values())} faults",
        ),
        (
            "cost of the faults vs a fault-free run of the same articles",
            f"{faulty['http_calls']} vs {clean['http_calls']} HTTP calls",
            f"{faulty['tokens']:,} vs {clean['tokens']:,} tokens",
            f"+{f['extra_http_calls']} calls, +{f['extra_tokens']:,} tokens (+{f['extra_tokens_pct']}%); "
            f"wall {faulty['wall_s']:.1f} s vs {clean['wall_s']:.1f} s",
        ),
    ]


def _short_window_rows(sw: dict[str, Any]) -> list[Row]:
    def row(what: str, f: dict[str, Any], notes: str) -> Row:
        return (
            what,
            f"{f['articles'] / f['server_active_s']:.2f} requests/s server-side "
            f"({f['server_active_s']:.1f} s) + {f['outside_server_s']:.1f} s outside it",
            f"ceiling {f['ceiling_per_s']:.2f}/s ({f['ideal_server_s']:.1f} s server-side at the ceiling)",
            f"server-side ratio **{f['server_ratio']:.3f}** (target ≥ 0.95; wall {f['wall_ratio']:.3f}); "
            f"{f['server_429']} × 429 of {f['server_requests']} requests ({f['server_429_pct']:.2f} %, "
            f"target < 1 %); limiter: {f['limiter']['rate_decreases']} rate cuts, "
            f"{f['limiter']['rate_limits_forgiven']} 429s only paused{notes}",
        )

    paced = sw["limiter_and_transport_only"]
    return [
        row(
            f"run_batch, {sw['articles']} articles, {sw['latency_s']:g} s latency, {RPM} RPM client, server "
            f"allows {sw['window_limit']} in any {sw['window_s']:g} s, concurrency {sw['concurrency']}",
            sw,
            f"; intact {_yes(sw['check']['intact'])}",
        ),
        row(
            "same requests through the limiter + transport alone (no parsing/grounding on the loop)",
            paced,
            f"; {paced['ok']} answered 200",
        ),
    ]


def _table(results: dict[str, Any], rows: list[Row]) -> str:
    m = results["machine"]
    lines = [
        f"Python {m['python']}, {m['cpus']} CPUs, load average {m['load_average_at_start'][0]:.1f} at start, "
        f"{m['load_average_at_end'][0]:.1f} at end; fake server in its own process on 127.0.0.1.",
        "",
        "| measurement | result | reference | notes |",
        "|---|---|---|---|",
        *(f"| {' | '.join(row)} |" for row in rows),
    ]
    return "\n".join(lines)


def correctness_problems(results: dict[str, Any]) -> list[str]:
    """What went wrong beyond speed: lost or duplicated articles, HTTP or errors on the warm path."""
    runs = {name: results[name]["check"] for name in RATE_SCENARIOS if name in results}
    if "faults" in results:
        runs["faulty"] = results["faults"]["faulty"]["check"]
        runs["clean"] = results["faults"]["clean"]["check"]
    problems = [
        f"{name}: results.jsonl does not match the inputs {c}" for name, c in runs.items() if not c["intact"]
    ]
    if "rerun" not in results:
        return problems
    runs = {name: results["rerun"][name]["check"] for name in ("fill", "warm", "skip", "new_on_top")}
    for i, repeat in enumerate(results["rerun"]["warm"]["repeats"]):
        runs[f"warm #{i + 1}"] = repeat["check"]
    problems += [
        f"{name}: results.jsonl does not match the inputs {c}" for name, c in runs.items() if not c["intact"]
    ]
    for name in ("warm", "skip"):
        child = results["rerun"][name]
        if child["http_calls"] or child["errors"]:
            problems.append(f"{name}: {child['http_calls']} HTTP calls, {child['errors']} errors (want 0)")
    on_top = results["rerun"]["new_on_top"]
    if on_top["http_calls"] != on_top["new"]:
        problems.append(f"new on top: {on_top['http_calls']} HTTP calls for {on_top['new']} new articles")
    warm = results["rerun"]["warm"]
    if warm["cache_hits"] != warm["articles"]:
        problems.append(f"warm: {warm['cache_hits']} cache hits for {warm['articles']} articles")
    return problems


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# --------------------------------------------------------------------------- main


RATE_SCENARIOS = ("throughput", "sustained", "tpm_bound", "short_window")
SCENARIOS = (*RATE_SCENARIOS, "rerun", "faults")


def run(
    sizes: Sizes, work: Path, profile: Path | None = None, only: Sequence[str] = SCENARIOS
) -> dict[str, Any]:
    """The scenarios in ``only`` (default: all) at ``sizes`` under ``work``; the results as one JSON-able
    dict."""
    step = time.perf_counter()

    def note(message: str) -> None:
        print(f"[{time.perf_counter() - step:7.1f} s] {message}", file=sys.stderr, flush=True)

    counts = {
        "throughput": sizes.throughput,
        "sustained": sizes.sustained,
        "tpm_bound": sizes.tpm_bound,
        "short_window": sizes.short_window,
        "rerun": sizes.warm + NEW_ON_TOP,
        "faults": sizes.faults,
    }
    n_articles = max(counts[name] for name in only)
    note(f"writing {n_articles:,} articles")
    paths = write_articles(work / "articles", n_articles)
    results: dict[str, Any] = {"sizes": sizes.__dict__, "machine": machine()}
    if "throughput" in only:
        note(f"throughput: {sizes.throughput} articles at {RPM} RPM, naive loop on {sizes.naive}")
        results["throughput"] = throughput(work, paths[: sizes.throughput], sizes.naive)
    if "sustained" in only and sizes.sustained:
        note(f"sustained: {sizes.sustained} articles at {RPM} RPM")
        results["sustained"] = sustained(work, paths[: sizes.sustained])
    if "tpm_bound" in only:
        note(f"tokens/min-bound: {sizes.tpm_bound} articles at {TPM:,} TPM")
        results["tpm_bound"] = tpm_bound(work, paths[: sizes.tpm_bound])
    if "short_window" in only:
        note(f"short windows: {sizes.short_window} articles, {RPM} RPM over {SHORT_WINDOW_S:g}-s windows")
        results["short_window"] = short_window(work, paths[: sizes.short_window])
    if "rerun" in only:
        note(f"cold fill + warm/skip re-runs + memory: {sizes.warm:,} and {sizes.memory_small:,} articles")
        warm_folder = link_subset(paths[: sizes.warm], work / "warm")
        small_folder = link_subset(paths[: sizes.memory_small], work / "warm-small")
        mid_folder = link_subset(paths[: sizes.memory_mid], work / "warm-mid")
        extra = paths[sizes.warm : sizes.warm + NEW_ON_TOP]
        results["rerun"] = fill_and_rerun(work, warm_folder, small_folder, mid_folder, sizes, profile, extra)
    if "faults" in only:
        note(f"faults: {sizes.faults} articles")
        results["faults"] = faults(work, paths[: sizes.faults])
    note("done")
    return results


def _scenarios(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run of about a minute")
    ap.add_argument("--keep", action="store_true", help="keep the temporary work folder and print it")
    ap.add_argument("--out", type=Path, default=OUT_DIR / "bench_batch.json", help="JSON results file")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="also profile the warm re-run (cProfile) into benchmarks/out/bench_batch_warm_profile.txt",
    )
    ap.add_argument(
        "--only",
        type=_scenarios,
        default=SCENARIOS,
        metavar="NAMES",
        help=f"comma-separated scenarios to run, from {','.join(SCENARIOS)} (default: all); raw figures go "
        "to bench_batch_only.json unless --out is given",
    )
    ap.add_argument("--child-warm", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_warm:
        print(json.dumps(child_warm(json.loads(args.child_warm))))
        return 0
    sizes = QUICK if args.quick else FULL
    work = Path(tempfile.mkdtemp(prefix="bench_batch-"))
    try:
        profile = OUT_DIR / "bench_batch_warm_profile.txt" if args.profile else None
        if profile is not None:
            profile.parent.mkdir(parents=True, exist_ok=True)
        partial = set(args.only) != set(SCENARIOS)
        if partial and args.out == ap.get_default("out"):
            args.out = OUT_DIR / "bench_batch_only.json"  # never overwrite a full run's figures
        results = run(sizes, work, profile, args.only)
    finally:
        if args.keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["mode"] = "quick" if args.quick else "full"
    results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    results["command"] = (
        "benchmarks/bench_batch.py"
        + (" --quick" if args.quick else "")
        + (f" --only {','.join(args.only)}" if partial else "")
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(render(results))
    problems = correctness_problems(results)
    for problem in problems:
        print(f"CORRECTNESS: {problem}", file=sys.stderr)
    print(f"\n(raw figures: {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
