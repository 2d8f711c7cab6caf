"""Benchmark ``extractor run --engine ray`` (2 actors) against the local engine on the same rate-limited
fake endpoint (benchmarks/fake_server.py, its own process on 127.0.0.1).

    .venv/bin/python benchmarks/bench_ray.py [--articles 2000] [--rpm 480] [--latency 0.5]
        [--budgets shared,split]

Both engines extract the same N fresh articles (each its own empty cache and run folder) with
``--rpm`` set to the server's limit, which binds: the ceiling is RPM/60 articles per second (one request
per article), far below what either engine could send (local: 32 in flight; Ray: 2 actors x 2 batches
x 16 in flight). Reported per engine: wall time, the server-side span (first request in to last answer
out) and its ratio to the ceiling (the pacing, without start-up), articles/s and its ratio to the
ceiling (wall time), 429s, results written; for Ray also the start-up cost
(``ray.init`` of a local instance, once) and, per budget (``--budgets``: one shared limiter actor, or
the limit split across actors), the cluster phase (actor pool start + extraction) against the time the
ceiling needs. A second Ray run over the same folder must send nothing. Figures go to stdout
as a markdown table and, raw, to benchmarks/out/bench_ray.json. The exit status is 1 when an article is
missing or duplicated, a result differs between the engines, or the re-run sent a request.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_batch import fake_server  # noqa: E402

from extractor.batch import run_batch  # noqa: E402
from extractor.cli.progress import LogReporter  # noqa: E402
from extractor.config import Settings  # noqa: E402
from extractor.pipeline import Extractor  # noqa: E402
from extractor.ray_engine import run_ray  # noqa: E402
from extractor.store import iter_results  # noqa: E402

NAMES = ["Maria Rossi", "John Okafor", "Ana Lima", "Kenji Sato", "Lea Weber", "Omar Haddad"]


def make_drop(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        name = NAMES[i % len(NAMES)]
        body = " ".join(f"Paragraph {j} of report {i} adds detail on the budget talks." for j in range(12))
        text = (
            f"{name} met the council in Lisbon on 2026-01-{1 + i % 28:02d} to agree on budget line {i}.\n\n"
            f'"We will not accept cut number {i}," {name} said after the meeting.\n\n{body}\n'
        )
        (folder / f"a{i:05d}.txt").write_text(text, encoding="utf-8")
    return folder


def items(out: Path) -> dict[str, Any]:
    return {
        r.article_id: [r.status, [q.model_dump() for q in r.quotes], [e.model_dump() for e in r.events]]
        for r in iter_results(out)
    }


def server_figures(stats: dict[str, Any], n: int, ceiling: float) -> dict[str, Any]:
    """What the server saw: requests, 429s, and its span from the first request in to the last answer out
    (without the engine's start-up: the Ray actor pool's, or loading the drop), as a ratio to the ceiling."""
    active = stats["active_s"]
    return {
        "requests": stats["requests"],
        "rate_limited_429": stats["rate_limited"],
        "server_active_s": active,
        "server_ratio_to_ceiling": round(n / active / ceiling, 3) if active else None,
    }


def main() -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--rpm", type=int, default=480)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--budgets", default="shared,split", help="Ray budgets to run, comma-separated")
    args = parser.parse_args()
    n, rpm = args.articles, args.rpm
    ceiling = rpm / 60.0
    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    drop = make_drop(work / "drop", n)
    report: dict[str, Any] = {
        "articles": n,
        "rpm": rpm,
        "latency_s": args.latency,
        "ceiling_articles_per_s": ceiling,
        "load_avg": os.getloadavg(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    failures: list[str] = []

    def settings(port_url: str, cache: Path, **changes: Any) -> Settings:
        fixed = {"api_key": "bench", "base_url": port_url, "model": "bench", "rpm": rpm}
        return Settings(cache_dir=cache, **fixed, **changes)

    try:
        with fake_server("--latency", str(args.latency), "--rpm", str(rpm)) as server:
            started = time.perf_counter()
            with Extractor(settings(server.base_url, work / "c-local", concurrency=32)) as local:
                summary = run_batch([drop], work / "local", local, reporter=LogReporter(quiet=True))
            wall = time.perf_counter() - started
            stats = server.stats()
            report["local"] = {
                "wall_s": round(wall, 2),
                "ok": summary.ok,
                "articles_per_s": round(n / wall, 2),
                "ratio_to_ceiling": round(n / wall / ceiling, 3),
                **server_figures(stats, n, ceiling),
            }
        import ray

        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
        init_s = time.perf_counter() - started
        report["ray_init_s"] = round(init_s, 2)
        for budget in args.budgets.split(","):
            # a fresh server (an empty 60-s window), so every engine starts from the same state
            with fake_server("--latency", str(args.latency), "--rpm", str(rpm)) as server:
                started = time.perf_counter()
                summary, plan = run_ray(
                    [drop],
                    work / f"ray-{budget}",
                    settings(server.base_url, work / f"c-ray-{budget}", concurrency=16),
                    actors=args.actors,
                    batch_size=64,
                    budget=budget,  # type: ignore[arg-type]
                    log=open(os.devnull, "w"),  # noqa: SIM115
                )
                wall = time.perf_counter() - started
                stats = server.stats()
                report[f"ray_{budget}"] = {
                    "wall_s": round(wall, 2),
                    "cluster_phase_s": plan.extract_s,
                    "folder_phase_s": summary.wall_s,
                    "ok": summary.ok,
                    "articles_per_s": round(n / wall, 2),
                    "ratio_to_ceiling": round(n / wall / ceiling, 3),
                    "ceiling_time_s": round(n / ceiling, 2),
                    "overhead_over_ceiling_s": round(wall - n / ceiling, 2),
                    **server_figures(stats, n, ceiling),
                }
                before = server.stats()["requests"]
                _, plan2 = run_ray(
                    [drop], work / f"ray-{budget}", settings(server.base_url, work / f"c-ray-{budget}")
                )
                report[f"ray_{budget}_rerun"] = {
                    "sent": plan2.sent,
                    "requests": server.stats()["requests"] - before,
                }
        ray.shutdown()
        report["load_avg_end"] = os.getloadavg()
        local_items = items(work / "local")
        if len(local_items) != n:
            failures.append(f"results: local {len(local_items)}, want {n}")
        for budget in args.budgets.split(","):
            ray_items = items(work / f"ray-{budget}")
            if len(ray_items) != n:
                failures.append(f"results: ray ({budget}) {len(ray_items)}, want {n}")
            if local_items != ray_items:
                failures.append(f"the engines' items differ (ray, {budget} budget)")
            if report[f"ray_{budget}_rerun"]["requests"]:
                failures.append(f"the re-run (ray, {budget} budget) sent requests")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "benchmarks" / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_ray.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    loc = report["local"]
    load = report["load_avg"][0], report["load_avg_end"][0]
    print(f"load average {load[0]:.1f} -> {load[1]:.1f} on {report['cpus']} CPUs; {n} articles, {rpm} RPM")
    print("| engine | wall s | articles/s | ratio to ceiling | server-side ratio | 429s | requests |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| local (32 in flight) | {loc['wall_s']} | {loc['articles_per_s']} | {loc['ratio_to_ceiling']} "
        f"| {loc['server_ratio_to_ceiling']} | {loc['rate_limited_429']} | {loc['requests']} |"
    )
    for budget in args.budgets.split(","):
        ray_ = report[f"ray_{budget}"]
        print(
            f"| ray, {args.actors} actors, {budget} budget (after ray.init) | {ray_['wall_s']} "
            f"| {ray_['articles_per_s']} | {ray_['ratio_to_ceiling']} | {ray_['server_ratio_to_ceiling']} "
            f"| {ray_['rate_limited_429']} | {ray_['requests']} |"
        )
        print(
            f"  {budget}: cluster phase {ray_['cluster_phase_s']} s; folder phase {ray_['folder_phase_s']} s;"
            f" the ceiling needs {ray_['ceiling_time_s']} s; re-run sent "
            f"{report[f'ray_{budget}_rerun']['requests']}"
        )
    print(f"ray.init {report['ray_init_s']} s")
    for failure in failures:
        print(f"FAIL: {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
