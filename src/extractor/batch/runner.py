"""The run itself: one pass over the inputs into the run folder with N articles in flight (``_run``),
and the entry points ``run_batch`` / ``arun_batch`` that hold the folder's lock around it."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TypedDict, Unpack

from extractor.batch.index import _compact, _digest, _Index, _key
from extractor.batch.inputs import _Inputs, _load
from extractor.batch.signals import _Stop, _with_sigint
from extractor.batch.summary import BatchReporter, NullReporter, RunSummary, _folder_of
from extractor.errors import ConfigError
from extractor.inflight import Aborted, InFlight
from extractor.models import Article, ArticleResult, ErrorInfo, LoadError
from extractor.pipeline import Extractor, load_error_id, load_error_result
from extractor.store import (
    RUN_FILE,
    ResultsWriter,
    append_run,
    lock_run_folder,
    write_article_text,
    write_json_atomic,
)

__all__ = ["BatchOptions", "arun_batch", "run_batch"]


def _clock() -> float:
    return time.perf_counter()


def _new_index(results: Path) -> _Index:
    """The scratch index of a run, filled from ``results``."""
    return _Index.from_results(results)


async def _run(
    items: Iterable[Article | LoadError],
    out_dir: Path,
    extractor: Extractor,
    force: bool,
    concurrency: int,
    reporter: BatchReporter,
    stop: asyncio.Event,
    abort: asyncio.Event | None = None,
    compact: bool = True,
) -> RunSummary:
    """One pass over ``items`` into ``out_dir``; returns the counters (wall time not yet set).

    ``stop`` set: nothing new starts, the articles in flight finish. ``abort`` set: they are cancelled
    (not written: the next run does them) and the pass ends. ``compact=False`` leaves results.jsonl
    append-only (``_compact``). Reading the file (index, compaction, totals) is done in a worker thread,
    so that a loop serving other work (``extractor serve``) is not held up by a large folder."""
    model, version = extractor.settings.model, extractor.prompts.version
    summary = RunSummary(model=model, prompt_version=version)
    price = extractor.settings.price()
    writer = ResultsWriter(out_dir)
    summary.repaired_bytes = writer.repaired_bytes
    index = await asyncio.to_thread(_new_index, writer.path)
    flight = InFlight[Article, ArticleResult](concurrency, abort)

    def emit(result: ArticleResult, outcome: str) -> None:
        if outcome != "skipped":
            writer.write(result)
            summary.add(result, price)
        reporter.article(result, outcome, summary)

    def emit_copy(article: Article, first_id: str, error: ErrorInfo | None) -> None:
        copy = _duplicate_result(article, first_id, model, version)
        if error is None:
            emit(copy, "duplicate")
            return
        message = f"same text as {first_id}, which failed ({error.type}: {error.message})"
        update = {"status": "error", "error": ErrorInfo(type=error.type, message=message)}
        emit(copy.model_copy(update=update), "failed")

    def harvest(done: list[tuple[Article, asyncio.Future[ArticleResult]]]) -> None:
        """Write every finished result; then re-raise a ConfigError (which ends the run) if one came."""
        stopping: ConfigError | None = None
        for article, task in done:
            failure = task.exception()
            if failure is not None:
                if isinstance(failure, ConfigError):
                    stopping = stopping or failure
                    continue
                raise failure
            result = task.result()
            error = None if result.status == "ok" else result.error or ErrorInfo(type="Error", message="")
            index.finish(_digest(article.sha256), result.article_id, error)
            emit(result, "extracted" if result.status == "ok" else "failed")
            for copy in index.release(_digest(article.sha256)):
                emit_copy(copy, result.article_id, error)
        if stopping is not None:
            raise stopping

    source = _Inputs(items, lambda article: write_article_text(out_dir, article.sha256, article.text))
    try:
        while True:
            if stop.is_set():
                summary.interrupted = True
                break
            item = await source.next()
            if item is None:
                break
            summary.articles += 1
            if isinstance(item, LoadError):
                summary.load_errors += 1
                summary.error_types["LoadError"] = summary.error_types.get("LoadError", 0) + 1
                article_id = index.claim(load_error_id(item), item.source, "")
                result = load_error_result(item, article_id, model, version)
                writer.write(result)
                reporter.article(result, "failed", summary)
                continue
            article_id = index.claim(item.id, item.source, item.sha256)
            if article_id != item.id:
                item = item.model_copy(update={"id": article_id})
            key = _key(item.sha256, model, version)
            text = key[0]
            if not force and index.is_done(key, item.id):
                summary.skipped += 1
                emit(_skip_result(item, model, version), "skipped")
                continue
            started = index.started(text)
            first = started
            if first is None and not force:
                first = index.first_id(key)
            if first is not None and first != item.id:
                outcome = index.outcome(text)
                if outcome is not None:
                    emit_copy(item, *outcome)
                elif started is not None:
                    index.park(text, item)
                else:
                    emit(_duplicate_result(item, first, model, version), "duplicate")
                continue
            index.start(text, item.id)
            flight.add(extractor.aextract(item), item)  # failures become error results
            while flight.full:
                harvest(await flight.next_done())
        while flight:
            harvest(await flight.next_done())
    except Aborted:  # a second Ctrl-C or SIGTERM: the articles in flight are left for the next run
        summary.interrupted = True
    finally:
        # Their outcome (cancelled, or the same ConfigError) is not needed, only collected.
        await flight.aclose()
        await source.aclose()
        writer.close()
        index.close()
        await extractor.aclose()
    if index.lines:
        summary.compacted_lines, summary.folder = await asyncio.to_thread(_compact, writer.path, compact)
    else:  # every line of the file is this run's
        summary.folder = _folder_of(summary)
    summary.rate_limiter = dict(extractor.limiter.stats())
    return summary


def _utc(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finish(out_dir: Path, summary: RunSummary, started: float, reporter: BatchReporter) -> RunSummary:
    """Set the wall time, append the run to runs.jsonl, write run.json (this run, and the folder's
    totals) and let the reporter print its summary."""
    wall = _timed(summary, started)
    now = datetime.datetime.now(datetime.UTC)
    summary.finished_at = _utc(now)
    summary.started_at = _utc(now - datetime.timedelta(seconds=wall))
    out_dir.mkdir(parents=True, exist_ok=True)
    record = summary.as_dict()
    del record["folder"]
    runs = append_run(out_dir, record)
    summary.folder = {"runs": runs, **(summary.folder or _folder_of(summary))}
    write_json_atomic(out_dir / RUN_FILE, summary.as_dict())
    reporter.finish(summary)
    return summary


def _skip_result(article: Article, model: str, version: str, first: str | None = None) -> ArticleResult:
    """The result line of an article not extracted: done before, or (``first``) a duplicate of one."""
    fields = {"model": model, "prompt_version": version, "duplicate_of": first}
    return ArticleResult.for_article(article, status="ok", **fields)


def _duplicate_result(article: Article, first: str, model: str, version: str) -> ArticleResult:
    return _skip_result(article, model, version, first)


class BatchOptions(TypedDict, total=False):
    """The keyword options ``run_batch`` and ``arun_batch`` share: ``force`` extracts again what the
    folder already holds; ``concurrency`` is the articles in flight (default ``settings.concurrency``);
    ``reporter`` is told of each article (default: no one)."""

    force: bool
    concurrency: int | None
    reporter: BatchReporter | None


def run_batch(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    extractor: Extractor,
    *,
    wait_lock: bool = False,
    **options: Unpack[BatchOptions],
) -> RunSummary:
    """Extract every article under ``paths`` into ``out_dir``; see the module docstring.

    The folder's lock is held for the whole run (``store.lock_run_folder``): while another run or watch
    writes into ``out_dir`` this raises FolderBusyError naming its pid, or waits with ``wait_lock``."""
    out = Path(out_dir)
    force, limit, report = _options(extractor, options)

    async def once(stop: _Stop) -> RunSummary:
        return await _run_once(paths, out, extractor, force, limit, report, stop)

    with lock_run_folder(out, wait=wait_lock):
        return asyncio.run(_with_sigint(once))


async def arun_batch(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    extractor: Extractor,
    *,
    stop: asyncio.Event | None = None,
    compact: bool = True,
    within: Iterable[str | Path] | None = None,
    **options: Unpack[BatchOptions],
) -> RunSummary:
    """``run_batch`` on the running event loop, for a caller that owns the loop (``extractor serve``).
    Setting ``stop`` lets the articles in flight finish and starts no new one (``summary.interrupted``);
    cancelling the task drops the articles in flight, which the next run over ``out_dir`` does. The
    folder's lock is held as in ``run_batch`` (never waited for: FolderBusyError).

    ``compact=False``: results.jsonl stays append-only (a line superseded by a retried article's later
    line is kept), so a line's number never changes. ``within``: the area every symlink must point
    into, never followed beyond it (whatever ``settings.follow_symlinks`` says)."""
    out = Path(out_dir)
    force, limit, report = _options(extractor, options)
    with lock_run_folder(out, wait=False):
        signals = _Stop()
        if stop is not None:
            signals.finish = stop
        return await _run_once(paths, out, extractor, force, limit, report, signals, compact, within)


def _options(extractor: Extractor, options: BatchOptions) -> tuple[bool, int, BatchReporter]:
    """``force``, the in-flight limit (checked; the extractor checked ready) and the reporter."""
    return (
        options.get("force", False),
        _limit(extractor, options.get("concurrency")),
        options.get("reporter") or NullReporter(),
    )


def _limit(extractor: Extractor, concurrency: int | None) -> int:
    limit = extractor.settings.concurrency if concurrency is None else concurrency
    if limit < 1:
        raise ConfigError(f"concurrency must be positive, got {limit}")
    extractor.check_ready()
    return limit


async def _run_once(
    paths: Iterable[str | Path],
    out: Path,
    extractor: Extractor,
    force: bool,
    limit: int,
    report: BatchReporter,
    stop: _Stop,
    compact: bool = True,
    within: Iterable[str | Path] | None = None,
) -> RunSummary:
    started = _clock()
    report.start(out)
    follow = None if within is None else False
    inputs = _load(paths, out, extractor.settings, within, follow)
    summary = await _run(inputs, out, extractor, force, limit, report, stop.finish, stop.abort, compact)
    summary.stopped_by = stop.by if summary.interrupted else None
    return _finish(out, summary, started, report)


def _write_progress(out_dir: Path, summary: RunSummary, started: float) -> None:
    _timed(summary, started)
    write_json_atomic(out_dir / RUN_FILE, summary.as_dict())


def _timed(summary: RunSummary, started: float) -> float:
    """Set the summary's wall time and rate since ``started`` (``_clock``); return the wall time."""
    wall = _clock() - started
    summary.wall_s = round(wall, 3)
    summary.articles_per_min = round(summary.articles / wall * 60, 1) if wall > 0 else 0.0
    return wall
