"""Many articles into one output folder: concurrency, incremental skips, crash safety, progress.

``run_batch(paths, out_dir, extractor)`` loads articles lazily, extracts up to ``concurrency`` at once
(the extractor's rate limiter paces live calls), appends one flushed JSON line per article to
results.jsonl and writes run.json at the end. Nothing is held per article beyond what is in flight.

- Incremental: an article whose text was already extracted ``ok`` into this folder with the same model
  and prompt version is skipped (the manifest is results.jsonl itself: every line names its sha256, model
  and prompt version). ``force=True`` redoes everything. Earlier error results are retried.
- Crash-safe: a torn last line left by a kill is cut off on the next run, which then does the rest.
  Lines superseded by a later result for the same input (a retried error) are compacted away at the end.
- Failure isolation: a load error or a failed article becomes an error result; the batch goes on.
- The same text twice (in this drop or an earlier one) is extracted once; later copies get a result with
  ``duplicate_of`` = the first article's id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from extractor.articles import load_articles
from extractor.models import Article, ArticleResult, ErrorInfo, LoadError
from extractor.pipeline import Extractor
from extractor.store import (
    RUN_FILE,
    ResultsWriter,
    write_article_text,
    write_json_atomic,
)

__all__ = ["BatchReporter", "LogReporter", "RichReporter", "RunSummary", "run_batch", "watch"]


@dataclass
class RunSummary:
    """The counters written to run.json."""

    articles: int = 0
    ok: int = 0
    errors: int = 0
    load_errors: int = 0
    skipped: int = 0
    duplicates: int = 0
    cache_hits: int = 0
    quotes_exact: int = 0
    quotes_normalized: int = 0
    quotes_elided: int = 0
    rejected: int = 0
    rejected_quotes: int = 0
    events: int = 0
    stances: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    http_calls: int = 0
    cost_usd: float | None = 0.0
    wall_s: float = 0.0
    articles_per_min: float = 0.0
    model: str | None = None
    prompt_version: str | None = None
    repaired_bytes: int = 0
    compacted_lines: int = 0
    interrupted: bool = False
    error_types: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.errors + self.load_errors

    def add(self, result: ArticleResult, price: tuple[float, float] | None) -> None:
        if result.status == "ok":
            self.ok += 1
        else:
            self.errors += 1
            kind = result.error.type if result.error else "Error"
            self.error_types[kind] = self.error_types.get(kind, 0) + 1
        if result.duplicate_of:
            self.duplicates += 1
        if result.cache_hit:
            self.cache_hits += 1
        for quote in result.quotes:
            status = quote.span.status
            if status == "exact":
                self.quotes_exact += 1
            elif status == "normalized":
                self.quotes_normalized += 1
            elif status == "elided":
                self.quotes_elided += 1
        self.rejected += len(result.rejected)
        self.rejected_quotes += sum(1 for r in result.rejected if r.kind == "quote")
        self.events += len(result.events)
        self.stances += len(result.stances)
        self.prompt_tokens += result.usage.prompt_tokens
        self.completion_tokens += result.usage.completion_tokens
        self.http_calls += result.usage.http_calls
        if price is None:
            self.cost_usd = None
        elif self.cost_usd is not None:
            self.cost_usd += (
                result.usage.prompt_tokens * price[0] + result.usage.completion_tokens * price[1]
            ) / 1e6

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["tokens"] = self.prompt_tokens + self.completion_tokens
        data["failed"] = self.failed
        if self.cost_usd is not None:
            data["cost_usd"] = round(self.cost_usd, 6)
        return data


class BatchReporter(Protocol):
    def start(self, out_dir: Path) -> None: ...
    def article(self, result: ArticleResult, outcome: str, summary: RunSummary) -> None: ...
    def finish(self, summary: RunSummary) -> None: ...


class LogReporter:
    """Plain log lines (for pipes, CI and --quiet), then a summary."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet

    def start(self, out_dir: Path) -> None:
        if not self.quiet:
            print(f"extracting into {out_dir}", file=self.stream, flush=True)

    def article(self, result: ArticleResult, outcome: str, summary: RunSummary) -> None:
        if self.quiet:
            return
        if result.status == "error" and result.error is not None:
            detail = f"{result.error.type}: {result.error.message}"
        elif outcome in ("skipped", "duplicate"):
            detail = f"duplicate of {result.duplicate_of}" if result.duplicate_of else "already done"
        else:
            detail = (
                f"{len(result.events)} events, {len(result.quotes)} quotes, {len(result.stances)} stances, "
                f"{len(result.rejected)} rejected{' (cached)' if result.cache_hit else ''}"
            )
        print(f"[{outcome}] {result.article_id}: {detail}", file=self.stream, flush=True)

    def finish(self, summary: RunSummary) -> None:
        print(render_summary_text(summary), file=self.stream, flush=True)


class RichReporter:
    """A rich progress bar (done / failed / cached, tokens, ETA) and a summary table."""

    def __init__(self, total: int | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]extract"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("ok {task.fields[ok]} · failed {task.fields[failed]} · cached {task.fields[cached]}"),
            TextColumn("· {task.fields[tokens]} tok"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.total = total
        self.task: Any = None

    def start(self, out_dir: Path) -> None:
        self.progress.start()
        self.task = self.progress.add_task("extract", total=self.total, ok=0, failed=0, cached=0, tokens=0)

    def article(self, result: ArticleResult, outcome: str, summary: RunSummary) -> None:
        self.progress.update(
            self.task,
            advance=1,
            ok=summary.ok + summary.skipped,
            failed=summary.failed,
            cached=summary.cache_hits + summary.skipped,
            tokens=summary.prompt_tokens + summary.completion_tokens,
        )
        if result.status == "error" and result.error is not None:
            self.progress.console.print(f"[red]failed[/] {result.article_id}: {result.error.message}")

    def finish(self, summary: RunSummary) -> None:
        from rich.table import Table

        self.progress.stop()
        table = Table(title="extractor run", show_header=False)
        for key, value in summary_rows(summary):
            table.add_row(key, value)
        self.console.print(table)


def summary_rows(summary: RunSummary) -> list[tuple[str, str]]:
    cost = "n/a (no price for this model)" if summary.cost_usd is None else f"${summary.cost_usd:.4f}"
    return [
        (
            "articles",
            f"{summary.articles} ({summary.skipped} skipped as done, {summary.duplicates} duplicates)",
        ),
        ("ok / failed", f"{summary.ok} / {summary.failed} ({summary.load_errors} could not be loaded)"),
        (
            "quotes",
            f"{summary.quotes_exact} exact, {summary.quotes_normalized} normalized, {summary.quotes_elided} "
            f"elided, {summary.rejected_quotes} rejected",
        ),
        ("events / stances", f"{summary.events} / {summary.stances}"),
        ("rejected items", str(summary.rejected)),
        ("tokens", f"{summary.prompt_tokens} prompt + {summary.completion_tokens} completion"),
        ("http calls / cache hits", f"{summary.http_calls} / {summary.cache_hits}"),
        ("estimated cost", cost),
        ("wall time", f"{summary.wall_s:.2f} s ({summary.articles_per_min:.1f} articles/min)"),
    ]


def render_summary_text(summary: RunSummary) -> str:
    width = max(len(k) for k, _ in summary_rows(summary))
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in summary_rows(summary))


def _load_error_result(error: LoadError) -> ArticleResult:
    stem = Path(error.path).stem or "input"
    return ArticleResult(
        article_id=f"{stem}{f'-{error.line}' if error.line is not None else ''}",
        source=error.source,
        sha256="",
        status="error",
        error=ErrorInfo(type="LoadError", message=error.reason),
    )


@dataclass
class _Index:
    """What results.jsonl already holds: done texts and the line count per input source."""

    done: dict[tuple[str, str | None, str | None], str] = field(default_factory=dict)
    first_id: dict[str, str] = field(default_factory=dict)
    lines: int = 0


def _read_index(path: Path) -> _Index:
    index = _Index()
    if not path.exists():
        return index
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n") or not raw.strip():
                continue
            index.lines += 1
            try:
                data = json.loads(raw)
            except ValueError:
                continue
            sha = data.get("sha256") or ""
            if data.get("status") == "ok" and sha:
                index.done[(sha, data.get("model"), data.get("prompt_version"))] = data.get("article_id", "")
                if not data.get("duplicate_of"):
                    index.first_id.setdefault(sha, data.get("article_id", ""))
    return index


def _compact(path: Path) -> int:
    """Keep only the last line per input source; return how many lines were dropped."""
    last: dict[str, int] = {}
    with path.open("rb") as fh:
        for number, raw in enumerate(fh):
            with contextlib.suppress(ValueError):
                last[json.loads(raw).get("source", f"#{number}")] = number
    keep = set(last.values())
    with path.open("rb") as fh:
        total = 0
        tmp = path.with_name(f".{path.name}.compact")
        with tmp.open("wb") as out:
            for number, raw in enumerate(fh):
                total += 1
                if number in keep:
                    out.write(raw)
            out.flush()
            os.fsync(out.fileno())
    dropped = total - len(keep)
    if dropped:
        os.replace(tmp, path)
    else:
        tmp.unlink()
    return dropped


async def _run(
    items: Iterable[Article | LoadError],
    out_dir: Path,
    extractor: Extractor,
    force: bool,
    concurrency: int,
    reporter: BatchReporter,
    stop: asyncio.Event,
) -> RunSummary:
    summary = RunSummary(model=extractor.settings.model, prompt_version=extractor.prompts.version)
    price = extractor.settings.price()
    started = time.perf_counter()
    writer = ResultsWriter(out_dir)
    summary.repaired_bytes = writer.repaired_bytes
    index = _read_index(writer.path)
    sources_before = index.lines
    model, version = extractor.settings.model, extractor.prompts.version
    in_flight: dict[str, str] = {}  # sha256 -> article id, for duplicates within this drop
    pending: set[asyncio.Task[ArticleResult]] = set()
    outcome_of: dict[asyncio.Task[ArticleResult], str] = {}
    reporter.start(out_dir)

    def emit(result: ArticleResult, outcome: str) -> None:
        if outcome != "skipped":
            writer.write(result)
            summary.add(result, price)
        reporter.article(result, outcome, summary)

    def harvest(done: set[asyncio.Task[ArticleResult]]) -> None:
        for task in done:
            result = task.result()
            if result.status == "ok":
                index.first_id.setdefault(result.sha256, result.article_id)
                index.done[(result.sha256, result.model, result.prompt_version)] = result.article_id
            emit(result, outcome_of.pop(task))

    try:
        for item in items:
            if stop.is_set():
                summary.interrupted = True
                break
            summary.articles += 1
            if isinstance(item, LoadError):
                summary.load_errors += 1
                result = _load_error_result(item)
                writer.write(result)
                reporter.article(result, "failed", summary)
                continue
            write_article_text(out_dir, item.sha256, item.text)
            done_id = None if force else index.done.get((item.sha256, model, version))
            first = in_flight.get(item.sha256) or index.first_id.get(item.sha256)
            if done_id == item.id:
                summary.skipped += 1
                emit(_skip_result(item, model, version), "skipped")
                continue
            if first is not None and first != item.id:
                emit(_duplicate_result(item, first, model, version), "duplicate")
                continue
            in_flight[item.sha256] = item.id
            task = asyncio.ensure_future(extractor.aextract(item))
            outcome_of[task] = "extracted"
            pending.add(task)
            while len(pending) >= concurrency:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                harvest(done)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            harvest(done)
    finally:
        for task in pending:
            task.cancel()
        writer.close()
        await extractor.aclose()
    if sources_before:
        summary.compacted_lines = _compact(writer.path)
    summary.wall_s = round(time.perf_counter() - started, 3)
    summary.articles_per_min = round(summary.articles / summary.wall_s * 60, 1) if summary.wall_s else 0.0
    write_json_atomic(out_dir / RUN_FILE, summary.as_dict())
    reporter.finish(summary)
    return summary


def _skip_result(article: Article, model: str, version: str) -> ArticleResult:
    return ArticleResult(
        article_id=article.id,
        source=article.source,
        sha256=article.sha256,
        status="ok",
        model=model,
        prompt_version=version,
    )


def _duplicate_result(article: Article, first: str, model: str, version: str) -> ArticleResult:
    result = _skip_result(article, model, version)
    return result.model_copy(update={"duplicate_of": first})


def run_batch(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    extractor: Extractor,
    *,
    force: bool = False,
    concurrency: int | None = None,
    reporter: BatchReporter | None = None,
) -> RunSummary:
    """Extract every article under ``paths`` into ``out_dir``; see the module docstring."""
    out = Path(out_dir)
    extractor.check_ready()
    return asyncio.run(
        _with_sigint(
            lambda stop: _run(
                load_articles(paths),
                out,
                extractor,
                force,
                concurrency or extractor.settings.concurrency,
                reporter or LogReporter(),
                stop,
            )
        )
    )


async def _with_sigint(make: Any) -> RunSummary:
    """Run ``make(stop_event)``; the first Ctrl-C sets the event (finish what is in flight)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, stop.set)
        installed = True
    try:
        summary: RunSummary = await make(stop)
        return summary
    finally:
        if installed:
            loop.remove_signal_handler(signal.SIGINT)


def _new_files(drop: Path, seen: dict[Path, tuple[int, float]], settle_s: float) -> Iterator[Path]:
    """Files under ``drop`` that appeared or changed and have not changed for ``settle_s``."""
    from extractor.articles import iter_input_files

    now = time.time()
    for path in iter_input_files([drop]):
        if isinstance(path, LoadError):
            continue
        try:
            stat = path.stat()
        except OSError:
            continue
        sig = (stat.st_size, stat.st_mtime)
        if seen.get(path) == sig or now - stat.st_mtime < settle_s:
            continue
        seen[path] = sig
        yield path


def watch(
    drop_dir: str | Path,
    out_dir: str | Path,
    extractor: Extractor,
    *,
    interval_s: float = 2.0,
    settle_s: float = 1.0,
    reporter: BatchReporter | None = None,
    max_rounds: int | None = None,
) -> RunSummary:
    """Extract files as they appear in ``drop_dir`` (same incremental rules) until Ctrl-C, which lets
    the articles in flight finish."""
    drop, out = Path(drop_dir), Path(out_dir)
    extractor.check_ready()
    reporter = reporter or LogReporter()

    async def loop(stop: asyncio.Event) -> RunSummary:
        total = RunSummary(model=extractor.settings.model, prompt_version=extractor.prompts.version)
        seen: dict[Path, tuple[int, float]] = {}
        rounds = 0
        while not stop.is_set() and (max_rounds is None or rounds < max_rounds):
            rounds += 1
            fresh = list(_new_files(drop, seen, settle_s))
            if fresh:
                part = await _run(
                    load_articles(fresh),
                    out,
                    extractor,
                    False,
                    extractor.settings.concurrency,
                    reporter,
                    stop,
                )
                for key, value in part.__dict__.items():
                    if isinstance(value, int) and not isinstance(value, bool):
                        setattr(total, key, getattr(total, key) + value)
                total.interrupted = part.interrupted
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
        return total

    return asyncio.run(_with_sigint(loop))
