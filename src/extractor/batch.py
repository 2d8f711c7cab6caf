"""Many articles into one output folder: concurrency, incremental skips, crash safety, progress.

``run_batch(paths, out_dir, extractor)`` loads articles lazily, extracts up to ``concurrency`` at once
(the extractor's rate limiter paces live calls), appends one flushed JSON line per article to
results.jsonl and writes run.json at the end. Nothing is held per article beyond what is in flight.

- Incremental: an article whose text was already extracted ``ok`` into this folder with the same model
  and prompt version is skipped (the manifest is results.jsonl itself: every line names its sha256, model
  and prompt version). A line's ``model`` is the configured model name (``Settings.model``), not the
  snapshot name an API may report, so that the key matches on the next run. ``force=True`` redoes
  everything. Earlier error results are retried.
- Crash-safe: a torn last line left by a kill is cut off on the next run, which then does the rest.
  Lines superseded by a later result for the same input (a retried error) are compacted away at the end,
  so the file ends with one line per input source.
- Failure isolation: a load error or a failed article (even an unexpected exception) becomes an error
  result; the batch goes on. Only a ConfigError stops it.
- The same text twice (in this drop or an earlier one) is extracted once; later copies get a result with
  ``duplicate_of`` = the first article's id (an error result if that extraction failed, so they are
  retried with it). Copies that come while the first is in flight wait in the scratch index on disk.
- The output folder is never read as input, even when it lies inside an input folder (the default
  ``--out out`` with ``extractor run .``).
- Ids are unique within the folder: an article whose id is held by another input (different source and
  text) of an earlier run gets ``-2``, ``-3``, … appended, stably from run to run.
- One writer: a run (or watch) holds the folder's lock throughout (``store.lock_run_folder``).
- Stopping: a first Ctrl-C or SIGTERM lets the articles in flight finish, a second leaves them to the
  next run; run.json and the run's line in runs.jsonl are written either way.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import datetime
import itertools
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from extractor.articles import MAX_ID_LENGTH, iter_input_files, load_articles
from extractor.config import Settings
from extractor.errors import ConfigError
from extractor.models import Article, ArticleResult, ErrorInfo, LoadError
from extractor.pipeline import Extractor, load_error_id, load_error_result
from extractor.store import (
    LOCK_FILE,
    RESULTS_FILE,
    RUN_FILE,
    RUNS_FILE,
    ResultsWriter,
    append_run,
    lock_run_folder,
    write_article_text,
    write_json_atomic,
)

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "BatchReporter",
    "LogReporter",
    "RichReporter",
    "RunSummary",
    "arun_batch",
    "count_inputs",
    "run_batch",
    "watch",
]


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
    quotes_unattributed: int = 0  # kept quotes whose speaker the article does not name (speaker null)
    partial: int = 0  # ok articles with a failed chunk (ArticleResult.chunk_errors); redone next run
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
    stopped_by: str | None = None  # "SIGINT" (Ctrl-C) or "SIGTERM" when a signal stopped the run
    error_types: dict[str, int] = field(default_factory=dict)
    rate_limiter: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None  # UTC, ISO 8601
    finished_at: str | None = None
    # The folder's totals after this run (results.jsonl, one result per input, and the runs so far),
    # as opposed to the counters above, which are this run's alone.
    folder: dict[str, int] = field(default_factory=dict)

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
            if quote.speaker is None:
                self.quotes_unattributed += 1
        if result.chunk_errors:
            self.partial += 1
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
            if result.chunk_errors:
                failed = ", ".join(f"{c.chunk} ({c.type})" for c in result.chunk_errors)
                detail += f"; partial: chunk {failed} of {result.chunks} failed"
        print(f"[{outcome}] {result.article_id}: {detail}", file=self.stream, flush=True)

    def finish(self, summary: RunSummary) -> None:
        print(render_summary_text(summary), file=self.stream, flush=True)


class RichReporter:
    """A rich progress bar (done / failed / cached, tokens, ETA) and a summary table."""

    def __init__(self, total: int | None = None, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console or Console(stderr=True)
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
            from rich.markup import escape

            message = escape(result.error.message)  # "[...]" in a message is text, not markup
            self.progress.console.print(f"[red]failed[/] {result.article_id}: {message}")

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
            f"elided, {summary.rejected_quotes} rejected, {summary.quotes_unattributed} unattributed",
        ),
        (
            "partial articles",
            f"{summary.partial}" + (" (a chunk failed: redone next run)" if summary.partial else ""),
        ),
        ("events / stances", f"{summary.events} / {summary.stances}"),
        ("rejected items", str(summary.rejected)),
        ("tokens", f"{summary.prompt_tokens} prompt + {summary.completion_tokens} completion"),
        ("http calls / cache hits", f"{summary.http_calls} / {summary.cache_hits}"),
        ("estimated cost", cost),
        ("wall time", f"{summary.wall_s:.2f} s ({summary.articles_per_min:.1f} articles/min)"),
        *_run_and_folder_rows(summary),
    ]


def _run_and_folder_rows(summary: RunSummary) -> list[tuple[str, str]]:
    """The bottom line, labelled: what this run did, and what the folder holds after it."""
    rows = [
        (
            "last run",
            f"{summary.articles} articles: {summary.ok} ok, {summary.failed} failed, "
            f"{summary.skipped} skipped as done",
        )
    ]
    folder = summary.folder
    if folder:
        runs = folder.get("runs")
        rows.append(
            (
                "this folder",
                f"{folder.get('articles', 0)} articles: {folder.get('ok', 0)} ok, {folder.get('failed', 0)} "
                f"failed, {folder.get('duplicates', 0)} duplicates"
                + (f" (results of {runs} run{'' if runs == 1 else 's'})" if runs else ""),
            )
        )
    return rows


def render_summary_text(summary: RunSummary) -> str:
    width = max(len(k) for k, _ in summary_rows(summary))
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in summary_rows(summary))


_Key = tuple[bytes, str, str]  # (sha256 digest prefix, model, prompt version)


def _digest(sha256: str) -> bytes:
    """A compact key for a text: the first 16 bytes of its sha256 (the index holds one per article)."""
    return bytes.fromhex(sha256[:32]) if sha256 else b""


def _key(sha256: str, model: str | None, version: str | None) -> _Key:
    return (_digest(sha256), model or "", version or "")


class _Index:
    """What results.jsonl already holds (done texts, first extractions, who owns each id), what this
    run has extracted so far, and the copies waiting on a text in flight. It holds an entry per
    article, so it lives in a scratch sqlite file in the output folder (``.index.sqlite``, removed at
    the end) with a small page cache: memory does not grow with the drop. It is rebuilt from
    results.jsonl every run."""

    def __init__(self, path: Path) -> None:
        self._path = path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a killed run: the index is always rebuilt
        # Built in a worker thread (``_read_index``), then used on the event loop: one thread at a time.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -2048;
            CREATE TABLE done (text BLOB, model TEXT, version TEXT, id TEXT,
                               PRIMARY KEY (text, model, version, id)) WITHOUT ROWID;
            CREATE TABLE first (text BLOB, model TEXT, version TEXT, id TEXT,
                                PRIMARY KEY (text, model, version)) WITHOUT ROWID;
            CREATE TABLE owners (id TEXT PRIMARY KEY, source INTEGER, text BLOB, earlier INTEGER)
                                 WITHOUT ROWID;
            CREATE TABLE run (text BLOB PRIMARY KEY, id TEXT, finished INTEGER,
                              error_type TEXT, error_message TEXT) WITHOUT ROWID;
            CREATE TABLE waiting (text BLOB, seq INTEGER, article TEXT, PRIMARY KEY (text, seq))
                                  WITHOUT ROWID;
            BEGIN;
            """
        )
        self.lines = 0
        self._parked = 0  # copies parked so far (their order), and still parked
        self._waiting = 0

    def close(self) -> None:
        self._db.close()
        with contextlib.suppress(OSError):
            os.unlink(self._path)

    def _one(self, sql: str, *args: Any) -> Any:
        row = self._db.execute(sql, args).fetchone()
        return None if row is None else row[0]

    def add(self, data: dict[str, Any]) -> None:
        """Index one result line of results.jsonl (an earlier run's)."""
        article_id = str(data.get("article_id") or "")
        sha = str(data.get("sha256") or "")
        if article_id:
            self._db.execute(
                "INSERT OR REPLACE INTO owners VALUES (?, ?, ?, ?)",
                (article_id.lower(), hash(str(data.get("source") or "")), _digest(sha), 1),
            )
        if data.get("status") == "ok" and not data.get("chunk_errors") and sha and article_id:
            key = _key(sha, data.get("model"), data.get("prompt_version"))
            self._db.execute("INSERT OR IGNORE INTO done VALUES (?, ?, ?, ?)", (*key, article_id))
            if not data.get("duplicate_of"):
                self._db.execute("INSERT OR IGNORE INTO first VALUES (?, ?, ?, ?)", (*key, article_id))

    def is_done(self, key: _Key, article_id: str) -> bool:
        if not self.lines:
            return False
        sql = "SELECT 1 FROM done WHERE text = ? AND model = ? AND version = ? AND id = ?"
        return self._one(sql, *key, article_id) is not None

    def first_id(self, key: _Key) -> str | None:
        if not self.lines:
            return None
        first: str | None = self._one(
            "SELECT id FROM first WHERE text = ? AND model = ? AND version = ?", *key
        )
        return first

    def claim(self, wanted: str, source: str, sha: str) -> str:
        """An id for the input ``source`` that no other input of this folder uses (compared
        case-insensitively): ``wanted`` unless another source holds it, else ``wanted-2``, ``wanted-3``,
        … An input of an earlier run with the same text (a renamed file) hands its id over."""
        candidate, n = wanted, 1
        mine, text = hash(source), _digest(sha)
        while True:
            fresh = self._db.execute(
                "INSERT OR IGNORE INTO owners VALUES (?, ?, ?, 0)", (candidate.lower(), mine, text)
            )
            if fresh.rowcount == 1:
                return candidate
            owner = self._db.execute(
                "SELECT source, text, earlier FROM owners WHERE id = ?", (candidate.lower(),)
            )
            row = owner.fetchone()
            if row is None or row[0] == mine or (sha and row[1] == text and row[2]):
                self._db.execute(
                    "INSERT OR REPLACE INTO owners VALUES (?, ?, ?, 0)", (candidate.lower(), mine, text)
                )
                return candidate
            n += 1
            suffix = f"-{n}"
            candidate = wanted[: MAX_ID_LENGTH - len(suffix)] + suffix

    # this run: the id extracted for a text, and its outcome once done

    def started(self, text: bytes) -> str | None:
        started: str | None = self._one("SELECT id FROM run WHERE text = ?", text)
        return started

    def start(self, text: bytes, article_id: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO run VALUES (?, ?, 0, NULL, NULL)", (text, article_id))

    def finish(self, text: bytes, article_id: str, error: ErrorInfo | None) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO run VALUES (?, ?, 1, ?, ?)",
            (text, article_id, error.type if error else None, error.message if error else None),
        )

    def park(self, text: bytes, article: Article) -> None:
        """Keep a copy of a text whose extraction is in flight until ``release``: on disk, so that a
        run's memory does not grow with the number of copies waiting."""
        published = article.published.isoformat() if article.published else None
        fields = json.dumps([article.id, article.source, article.sha256, article.title, published])
        self._db.execute("INSERT INTO waiting VALUES (?, ?, ?)", (text, self._parked, fields))
        self._parked += 1
        self._waiting += 1

    def release(self, text: bytes) -> Iterator[Article]:
        """The copies parked for ``text``, in the order they came (without their text, which a copy's
        result does not carry), then forgotten."""
        if not self._waiting:
            return
        rows = self._db.execute("SELECT article FROM waiting WHERE text = ? ORDER BY seq", (text,))
        for (fields,) in rows:
            article_id, source, sha, title, published = json.loads(fields)
            yield Article(id=article_id, text="", source=source, sha256=sha, title=title, published=published)
        self._waiting -= self._db.execute("DELETE FROM waiting WHERE text = ?", (text,)).rowcount

    def outcome(self, text: bytes) -> tuple[str, ErrorInfo | None] | None:
        row = self._db.execute(
            "SELECT id, finished, error_type, error_message FROM run WHERE text = ?", (text,)
        )
        found = row.fetchone()
        if found is None or not found[1]:
            return None
        error = None if found[2] is None else ErrorInfo(type=found[2], message=found[3] or "")
        return found[0], error


def _read_index(path: Path) -> _Index:
    index = _Index(path.parent / INDEX_FILE)
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
            if isinstance(data, dict):
                index.add(data)
    return index


_FOLDER_KEYS = ("articles", "ok", "failed", "duplicates", "quotes", "events", "stances", "rejected")


def _tally(data: dict[str, Any]) -> tuple[int, ...]:
    """One result line's share of the folder totals (in the order of _FOLDER_KEYS)."""

    def count(key: str) -> int:
        items = data.get(key)
        return len(items) if isinstance(items, list) else 0

    ok = data.get("status") == "ok"
    kinds = (count("quotes"), count("events"), count("stances"), count("rejected"))
    return (1, int(ok), int(not ok), int(bool(data.get("duplicate_of"))), *kinds)


def _folder_of(summary: RunSummary) -> dict[str, int]:
    """The folder totals when every line of results.jsonl is this run's."""
    quotes = summary.quotes_exact + summary.quotes_normalized + summary.quotes_elided
    return {
        "articles": summary.ok + summary.failed,
        "ok": summary.ok,
        "failed": summary.failed,
        "duplicates": summary.duplicates,
        "quotes": quotes,
        "events": summary.events,
        "stances": summary.stances,
        "rejected": summary.rejected,
    }


def _compact(path: Path, rewrite: bool = True) -> tuple[int, dict[str, int]]:
    """Keep only the last line per input source (and drop unreadable lines); return how many lines
    were dropped, and the folder totals over the lines kept. The file is replaced atomically; with
    ``rewrite=False`` it is left as it is (append-only: 0 lines dropped) and only the totals are worked
    out. Which line is the last of its source is worked out in a scratch sqlite file next to it, so
    memory does not grow with the number of lines."""
    scratch = path.with_name(COMPACT_FILE)
    with contextlib.suppress(FileNotFoundError):
        scratch.unlink()  # left by a killed run
    db = sqlite3.connect(scratch, isolation_level=None)
    columns = ", ".join(f"t{i} INTEGER" for i in range(len(_FOLDER_KEYS)))
    try:
        db.executescript(
            f"""
            PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -2048;
            CREATE TABLE last (line INTEGER PRIMARY KEY, source TEXT UNIQUE, {columns});
            BEGIN;
            """
        )
        marks = ", ".join("?" * (len(_FOLDER_KEYS) + 2))
        total = 0
        with path.open("rb") as fh:
            for number, raw in enumerate(fh):
                total += 1
                with contextlib.suppress(ValueError):
                    data = json.loads(raw)
                    if isinstance(data, dict):
                        source = str(data.get("source", f"#{number}"))
                        row = (number, source, *_tally(data))
                        db.execute(f"INSERT OR REPLACE INTO last VALUES ({marks})", row)  # noqa: S608
        totals = ", ".join(f"coalesce(sum(t{i}), 0)" for i in range(len(_FOLDER_KEYS)))
        sums = db.execute(f"SELECT {totals} FROM last").fetchone()  # noqa: S608
        folder = dict(zip(_FOLDER_KEYS, (int(v) for v in sums), strict=True))
        dropped = total - int(db.execute("SELECT count(*) FROM last").fetchone()[0])
        if not dropped or not rewrite:
            return 0, folder
        keep = (row[0] for row in db.execute("SELECT line FROM last ORDER BY line"))
        wanted = next(keep, None)
        tmp = path.with_name(f".{path.name}.compact")
        with path.open("rb") as fh, tmp.open("wb") as out:
            for number, raw in enumerate(fh):
                if number == wanted:
                    out.write(raw)
                    wanted = next(keep, None)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        return dropped, folder
    finally:
        db.close()
        with contextlib.suppress(OSError):
            scratch.unlink()


INDEX_FILE = ".index.sqlite"
COMPACT_FILE = ".compact.sqlite"  # hidden, as the index: a folder walk never reads it

# What the project writes into a run folder (extractor.report.REPORT_FILE, extractor.digest.DIGEST_FILE).
_OWN_FILES = (RESULTS_FILE, RUN_FILE, RUNS_FILE, INDEX_FILE, LOCK_FILE, "report.html", "digest.json")


def _excluder(out_dir: Path) -> Callable[[str, str], bool]:
    """Which walked files are the output folder's (see ``iter_input_files``): the run's own files and
    stored texts always; anything under ``out_dir`` unless the walked folder is itself inside it. So a
    run never reads its results back as articles; files named explicitly are always kept."""
    out = os.path.realpath(out_dir)
    own = {os.path.join(out, name) for name in _OWN_FILES}
    texts = os.path.join(out, "articles", "")
    inside = os.path.join(out, "")

    def exclude(real: str, folder: str) -> bool:
        if real in own or real.startswith(texts):
            return True
        return real.startswith(inside) and not (folder == out or folder.startswith(inside))

    return exclude


def _input_files(paths: Iterable[str | Path], out_dir: Path) -> Iterator[Path]:
    """The input files under ``paths`` without the output folder's; an entry that cannot be listed is
    passed on as its path, for ``load_articles`` to report."""
    for item in iter_input_files(paths, exclude=_excluder(out_dir)):
        yield Path(item.path) if isinstance(item, LoadError) else item


def _load(
    paths: Iterable[str | Path],
    out_dir: Path,
    settings: Settings,
    within: Iterable[str | Path] | None = None,
    follow_symlinks: bool | None = None,
) -> Iterator[Article | LoadError]:
    """The articles under ``paths`` without the output folder's; ids are made unique by the index.
    Symlinks must point inside ``within`` (default: ``paths``) unless ``follow_symlinks`` (default:
    ``settings.follow_symlinks``)."""
    return load_articles(
        paths,
        exclude=_excluder(out_dir),
        unique_ids=False,
        follow_symlinks=settings.follow_symlinks if follow_symlinks is None else follow_symlinks,
        max_input_bytes=settings.max_input_bytes,
        within=within,
    )


def count_inputs(paths: Iterable[str | Path], out_dir: str | Path) -> int:
    """How many articles ``paths`` hold (JSONL: its non-blank lines), for a progress bar's total/ETA."""
    total = 0
    for path in _input_files(paths, Path(out_dir)):
        total += _count_lines(path) if path.suffix.lower() == ".jsonl" else 1
    return total


def _count_lines(path: Path) -> int:
    """The non-blank lines of a JSONL file, read in blocks; 1 for what cannot be read as a regular file
    (the loader reports it). Never blocks on a FIFO, never holds a whole line."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return 1
    with open(fd, "rb") as fh:
        if not S_ISREG(os.fstat(fd).st_mode):
            return 1
        count, open_line = 0, False
        while block := fh.read(1 << 20):
            *ended, rest = block.split(b"\n")
            for part in ended:
                count += open_line or bool(part.strip())
                open_line = False
            open_line = open_line or bool(rest.strip())
        return count + open_line


class _Inputs:
    """Inputs loaded a block at a time, and each text stored in the run folder as it is loaded.

    Cheap blocks (plain text, JSON) load on the event loop: measured on 2 vCPUs, handing them to a
    thread made a warm run about twice as slow (the thread hand-off, and the two threads contending for
    the GIL). Once a block takes longer than ``slow_s`` (HTML pages through trafilatura), loading moves
    to a worker thread, the next block loading while this one is extracted, so that parsing never stalls
    the requests in flight for long. One thread of its own, always the same: blocks handed to the
    loop's default executor spread over up to six threads, each with its own malloc arena keeping
    freed memory, and a run's peak RSS grew by about 9 MB over a million short articles."""

    def __init__(
        self,
        items: Iterable[Article | LoadError],
        prepare: Callable[[Article], None],
        block: int = 16,
        slow_s: float = 0.02,
    ) -> None:
        self._items = iter(items)
        self._prepare = prepare
        self._block = block
        self._slow_s = slow_s
        self._buffer: collections.deque[Article | LoadError] = collections.deque()
        self._loading: asyncio.Future[list[Article | LoadError]] | None = None
        self._threaded = False
        self._done = False
        self._thread: concurrent.futures.ThreadPoolExecutor | None = None

    def _load(self) -> list[Article | LoadError]:
        chunk = list(itertools.islice(self._items, self._block))
        for item in chunk:
            if isinstance(item, Article):
                self._prepare(item)
        return chunk

    def _prefetch(self) -> None:
        if self._threaded and not self._done and self._loading is None:
            if self._thread is None:
                self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="extractor-load")
            self._loading = asyncio.get_running_loop().run_in_executor(self._thread, self._load)

    async def next(self) -> Article | LoadError | None:
        if not self._buffer and not self._done:
            if self._threaded:
                self._prefetch()
                assert self._loading is not None
                chunk = await self._loading
                self._loading = None
            else:
                started = time.monotonic()
                chunk = self._load()
                self._threaded = time.monotonic() - started > self._slow_s
                await asyncio.sleep(0)  # let the articles in flight move on
            self._done = len(chunk) < self._block
            self._buffer.extend(chunk)
        self._prefetch()
        return self._buffer.popleft() if self._buffer else None

    async def aclose(self) -> None:
        """Wait for a block still loading (its texts are stored; its articles are left for the next
        run)."""
        if self._loading is not None:
            with contextlib.suppress(Exception):
                await self._loading
            self._loading = None
        if self._thread is not None:
            self._thread.shutdown(wait=False)
            self._thread = None


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
    index = await asyncio.to_thread(_read_index, writer.path)
    article_of: dict[asyncio.Task[ArticleResult], Article] = {}
    pending: set[asyncio.Task[ArticleResult]] = set()

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

    def harvest(done: set[asyncio.Task[ArticleResult]]) -> None:
        """Write every finished result; then re-raise a ConfigError (which ends the run) if one came."""
        stopping: ConfigError | None = None
        for task in done:
            article = article_of.pop(task)
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
    aborted = asyncio.ensure_future(abort.wait()) if abort is not None else None
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
            task = asyncio.ensure_future(extractor.aextract(item))  # failures become error results
            article_of[task] = item
            pending.add(task)
            while len(pending) >= concurrency:
                done, pending = await _wait_some(pending, aborted)
                harvest(done)
        while pending:
            done, pending = await _wait_some(pending, aborted)
            harvest(done)
    except _Aborted:
        summary.interrupted = True
    finally:
        if aborted is not None:
            aborted.cancel()
        for task in pending:
            task.cancel()
        # Their outcome (cancelled, or the same ConfigError) is not needed, only collected.
        await asyncio.gather(*pending, return_exceptions=True)
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


class _Aborted(Exception):
    """A second Ctrl-C or SIGTERM: the articles in flight are left for the next run."""


async def _wait_some(
    pending: set[asyncio.Task[ArticleResult]], aborted: asyncio.Future[Any] | None
) -> tuple[set[asyncio.Task[ArticleResult]], set[asyncio.Task[ArticleResult]]]:
    """``asyncio.wait(pending, FIRST_COMPLETED)``, ended early by ``aborted`` (raising _Aborted once
    no finished task is left to harvest)."""
    if aborted is None:
        return await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    done, rest = await asyncio.wait({*pending, aborted}, return_when=asyncio.FIRST_COMPLETED)
    done.discard(aborted)
    rest.discard(aborted)
    if not done:
        raise _Aborted
    return done, rest  # type: ignore[return-value]


def _utc(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _finish(out_dir: Path, summary: RunSummary, started: float, reporter: BatchReporter) -> RunSummary:
    """Set the wall time, append the run to runs.jsonl, write run.json (this run, and the folder's
    totals) and let the reporter print its summary."""
    wall = time.perf_counter() - started
    summary.wall_s = round(wall, 3)
    summary.articles_per_min = round(summary.articles / wall * 60, 1) if wall > 0 else 0.0
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


def _merge(total: RunSummary, part: RunSummary) -> None:
    """Add the counters of ``part`` (one watch round) to ``total``."""
    for key, value in part.__dict__.items():
        if isinstance(value, int) and not isinstance(value, bool):
            setattr(total, key, getattr(total, key) + value)
    for kind, count in part.error_types.items():
        total.error_types[kind] = total.error_types.get(kind, 0) + count
    if part.cost_usd is None or total.cost_usd is None:
        total.cost_usd = None
    else:
        total.cost_usd += part.cost_usd
    total.interrupted = total.interrupted or part.interrupted
    total.rate_limiter = part.rate_limiter
    total.folder = part.folder  # the folder's totals after the latest round


def _skip_result(article: Article, model: str, version: str, first: str | None = None) -> ArticleResult:
    """The result line of an article not extracted: done before, or (``first``) a duplicate of one."""
    fields = {"model": model, "prompt_version": version, "duplicate_of": first}
    return ArticleResult.for_article(article, status="ok", **fields)


def _duplicate_result(article: Article, first: str, model: str, version: str) -> ArticleResult:
    return _skip_result(article, model, version, first)


def run_batch(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    extractor: Extractor,
    *,
    force: bool = False,
    concurrency: int | None = None,
    reporter: BatchReporter | None = None,
    wait_lock: bool = False,
) -> RunSummary:
    """Extract every article under ``paths`` into ``out_dir``; see the module docstring.

    The folder's lock is held for the whole run (``store.lock_run_folder``): while another run or watch
    writes into ``out_dir`` this raises FolderBusyError naming its pid, or waits with ``wait_lock``."""
    out = Path(out_dir)
    limit = _limit(extractor, concurrency)
    report = reporter or LogReporter()

    async def once(stop: _Stop) -> RunSummary:
        return await _run_once(paths, out, extractor, force, limit, report, stop)

    with lock_run_folder(out, wait=wait_lock):
        return asyncio.run(_with_sigint(once))


async def arun_batch(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    extractor: Extractor,
    *,
    force: bool = False,
    concurrency: int | None = None,
    reporter: BatchReporter | None = None,
    stop: asyncio.Event | None = None,
    compact: bool = True,
    within: Iterable[str | Path] | None = None,
) -> RunSummary:
    """``run_batch`` on the running event loop, for a caller that owns the loop (``extractor serve``).
    Setting ``stop`` lets the articles in flight finish and starts no new one (``summary.interrupted``);
    cancelling the task drops the articles in flight, which the next run over ``out_dir`` does. The
    folder's lock is held as in ``run_batch`` (never waited for: FolderBusyError).

    ``compact=False``: results.jsonl stays append-only (a line superseded by a retried article's later
    line is kept), so a line's number never changes. ``within``: the area every symlink must point
    into, never followed beyond it (whatever ``settings.follow_symlinks`` says)."""
    out = Path(out_dir)
    limit = _limit(extractor, concurrency)
    with lock_run_folder(out, wait=False):
        signals = _Stop()
        if stop is not None:
            signals.finish = stop
        return await _run_once(
            paths, out, extractor, force, limit, reporter or LogReporter(), signals, compact, within
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
    started = time.perf_counter()
    report.start(out)
    follow = None if within is None else False
    inputs = _load(paths, out, extractor.settings, within, follow)
    summary = await _run(inputs, out, extractor, force, limit, report, stop.finish, stop.abort, compact)
    summary.stopped_by = stop.by if summary.interrupted else None
    return _finish(out, summary, started, report)


class _Stop:
    """What the signals asked for: ``finish`` (a first Ctrl-C or SIGTERM: the articles in flight finish,
    nothing new starts) and ``abort`` (a second one: they are left for the next run); ``by`` names the
    first signal."""

    def __init__(self) -> None:
        self.finish = asyncio.Event()
        self.abort = asyncio.Event()
        self.by: str | None = None


async def _with_sigint(make: Callable[[_Stop], Awaitable[RunSummary]]) -> RunSummary:
    """Run ``make(stop)`` with Ctrl-C (SIGINT) and SIGTERM handled alike: the first sets ``stop.finish``,
    a second sets ``stop.abort``; either way the run ends normally and writes run.json. After the second
    the process's own handlers are back, so a third one ends it at once (like a kill: the next run
    repairs and finishes). The handlers the process had before are restored at the end."""
    stop = _Stop()
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def restore() -> None:
        for signum, handler in previous.items():
            loop.remove_signal_handler(signum)
            signal.signal(signum, handler)
        previous.clear()

    def on_signal(signum: signal.Signals) -> None:
        key = "Ctrl-C" if signum == signal.SIGINT else signum.name
        if not stop.finish.is_set():
            stop.by = signum.name
            stop.finish.set()
            prefix = "" if signum == signal.SIGINT else f"{signum.name}: "
            print(
                f"{prefix}stopping after the articles in flight ({key} again to leave them to the next run)",
                file=sys.stderr,
                flush=True,
            )
            return
        stop.abort.set()
        restore()
        print("stopping now: the articles in flight are left for the next run", file=sys.stderr, flush=True)

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            handler = signal.getsignal(signum)
            loop.add_signal_handler(signum, on_signal, signum)
            previous[signum] = signal.SIG_DFL if handler is None else handler
    try:
        return await make(stop)
    finally:
        restore()


def _new_files(
    drop: Path, seen: dict[Path, tuple[int, float]], settle_s: float, out_dir: Path
) -> Iterator[Path]:
    """Input files under ``drop`` (not the output folder) that appeared or changed and have not changed
    for ``settle_s``."""
    now = time.time()
    for path in _input_files([drop], out_dir):
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
    wait_lock: bool = False,
) -> RunSummary:
    """Extract files as they appear in ``drop_dir`` (same incremental rules) until Ctrl-C, which lets
    the articles in flight finish. run.json holds the totals of the whole watch, rewritten each round.
    The folder's lock is held for the whole watch, as in ``run_batch``."""
    drop, out = Path(drop_dir), Path(out_dir)
    if interval_s <= 0:
        raise ConfigError(f"watch interval must be positive, got {interval_s}")
    if not drop.is_dir():
        raise ConfigError(f"cannot watch {drop}: not a folder")
    extractor.check_ready()
    report = reporter or LogReporter()

    async def loop(stop: _Stop) -> RunSummary:
        started = time.perf_counter()
        total = RunSummary(model=extractor.settings.model, prompt_version=extractor.prompts.version)
        seen: dict[Path, tuple[int, float]] = {}
        rounds = 0
        report.start(out)
        while not stop.finish.is_set() and (max_rounds is None or rounds < max_rounds):
            rounds += 1
            fresh = list(_new_files(drop, seen, settle_s, out))
            if fresh:
                part = await _run(
                    _load(fresh, out, extractor.settings, within=[drop]),
                    out,
                    extractor,
                    False,
                    extractor.settings.concurrency,
                    report,
                    stop.finish,
                    stop.abort,
                )
                _merge(total, part)
                _write_progress(out, total, started)
            if max_rounds is not None and rounds >= max_rounds:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.finish.wait(), timeout=interval_s)
        total.interrupted = total.interrupted or stop.finish.is_set()
        total.stopped_by = stop.by
        return _finish(out, total, started, report)

    with lock_run_folder(out, wait=wait_lock):
        return asyncio.run(_with_sigint(loop))


def _write_progress(out_dir: Path, summary: RunSummary, started: float) -> None:
    wall = time.perf_counter() - started
    summary.wall_s = round(wall, 3)
    summary.articles_per_min = round(summary.articles / wall * 60, 1) if wall > 0 else 0.0
    write_json_atomic(out_dir / RUN_FILE, summary.as_dict())
