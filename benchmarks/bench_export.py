"""Time and peak memory of ``extractor export`` over a large run folder.

    .venv/bin/python benchmarks/bench_export.py [--articles 20000] [--retried 0.05] [--rounds 3]

Writes a synthetic results.jsonl of N ok articles (3 quotes, 5 events, 4 stances, 1 rejected item each,
the shape of a seed article), then appends a retried second line for a share of them (``--retried``),
as a service job's append-only folder holds after a restart. Each round exports it to parquet and to
csv, each in a fresh child process, and reports per format the wall time (best of the rounds), the
child's peak RSS (``ru_maxrss``) and the rows written: one row per article, however many lines it has.
The exit status is 1 when the row counts are wrong. Linux only (``ru_maxrss`` in KiB).

To compare two checkouts, run the script of one with ``PYTHONPATH=<other checkout>/src``: the child
processes import ``extractor`` from the same place as this script does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from extractor.models import ArticleResult

QUOTE = {"text": "we will reopen the bridge", "speaker": "The mayor", "cue": "said"}
EVENT = {
    "summary": "The mayor announced the bridge would reopen.",
    "event_type": "AGREE",
    "date": None,
    "date_text": "in May",
    "location": "Springfield",
    "actors": ["The mayor", "The council"],
    "evidence": "The mayor said the bridge would reopen in May at a meeting on Monday in Springfield.",
}
STANCE = {"holder": "The mayor", "target": "reopening the bridge", "polarity": "support"}


def _line(i: int, attempt: int) -> str:
    span = {"status": "exact", "start": 10, "end": 60, "occurrences": 1}
    result = {
        "article_id": f"a{i:07d}",
        "source": f"drop/{i:07d}.txt",
        "sha256": f"{i:064x}",
        "status": "ok",
        "title": f"Article {i}",
        "quotes": [{**QUOTE, "span": span}] * 3,
        "events": [{**EVENT, "span": span}] * 5,
        "stances": [{**STANCE, "evidence": EVENT["evidence"], "span": span}] * 4,
        "rejected": [{"kind": "quote", "field": "text", "item": QUOTE, "reason": "not in the article"}],
        "usage": {"prompt_tokens": 4000 + attempt, "completion_tokens": 1200, "http_calls": 1 + attempt},
        "model": "gpt-4o-mini",
        "prompt_version": "bench",
    }
    return ArticleResult.model_validate(result).model_dump_json()  # as the batch runner writes it


def write_run(run: Path, articles: int, retried: float) -> int:
    """The run folder; returns the number of lines written."""
    run.mkdir(parents=True)
    every = round(1 / retried) if retried > 0 else 0
    lines = 0
    with (run / "results.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(articles):
            fh.write(_line(i, 0) + "\n")
            lines += 1
        for i in range(0, articles, every or articles + 1):
            fh.write(_line(i, 1) + "\n")
            lines += 1
    return lines


CHILD = """
import json, resource, sys, time
from extractor.export import export_run
started = time.perf_counter()
summary = export_run(sys.argv[1], sys.argv[2], sys.argv[3])
wall = time.perf_counter() - started
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"wall_s": wall, "peak_kib": peak, "rows": summary.rows}))
"""


def export_once(run: Path, out: Path, fmt: str) -> dict[str, object]:
    shutil.rmtree(out, ignore_errors=True)
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(run), str(out), fmt], capture_output=True, text=True, check=True
    )
    data: dict[str, object] = json.loads(done.stdout)
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=20_000)
    parser.add_argument("--retried", type=float, default=0.05, help="share of articles with a second line")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import extractor

    where = Path(extractor.__file__).resolve().parents[1]
    print(f"python {platform.python_version()}, extractor from {where.name}/, cpus {os.cpu_count()}")
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        lines = write_run(run, args.articles, args.retried)
        size = (run / "results.jsonl").stat().st_size
        print(f"{args.articles:,} articles, {lines:,} lines, {size / 1e6:.1f} MB of results.jsonl")
        print(f"{'format':<8} {'best wall s':>11} {'peak RSS MiB':>13} {'article rows':>13}")
        for fmt in ("parquet", "csv"):
            rounds = [export_once(run, Path(tmp) / f"t-{fmt}", fmt) for _ in range(args.rounds)]
            best = min(float(str(r["wall_s"])) for r in rounds)
            peak = max(int(str(r["peak_kib"])) for r in rounds) / 1024
            rows = rounds[0]["rows"]
            assert isinstance(rows, dict)
            print(f"{fmt:<8} {best:>11.2f} {peak:>13.1f} {rows['articles']:>13,}")
            if rows["articles"] != args.articles:
                print(f"  wrong: {rows['articles']:,} article rows for {args.articles:,} articles")
                failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - started:.0f} s)")
    sys.exit(code)
