"""The output folder of a run. ``RunFolder`` names every file in it (no other module spells them):

    DIR/results.jsonl          one ArticleResult per line, appended and flushed per article
    DIR/run.json               the last run's summary, with the folder's totals (written atomically)
    DIR/runs.jsonl             the run history: one line per run (or watch), appended at its end
    DIR/articles/<sha256>.txt  each article's exact text, so offsets can be shown and checked
    DIR/.run.lock              the writer's lock: one run (or watch) at a time writes the folder
    DIR/report.html            the review page (``extractor report``, ``run --html``)
    DIR/digest.json            the cross-article digest (``extractor digest``)
    DIR/.index.sqlite          a run's scratch index (.compact.sqlite: its compaction's), removed at its end
    DIR/.ray-results.sqlite    the Ray engine's scratch store
    DIR/batch_api/             the Batch API's state (``--batch-api``)
    DIR/job.json, input.jsonl  a service job's record and submitted articles (``extractor serve``)

A process killed mid-write can leave a torn last line in results.jsonl; ``ResultsWriter`` cuts it off
(and reports it) before appending, so every line in the file is always one complete result.
"""

from __future__ import annotations

import collections
import contextlib
import contextvars
import hashlib
import json
import os
import re
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, overload

from pydantic import ValidationError

from extractor.closing import Closing
from extractor.errors import FolderBusyError, StoreError
from extractor.models import ArticleResult, describe_validation_error

__all__ = [
    "ARTICLES_DIR",
    "BATCH_API_DIR",
    "COMPACT_FILE",
    "DIGEST_FILE",
    "INDEX_FILE",
    "INPUT_FILE",
    "JOB_FILE",
    "LOCK_FILE",
    "RAY_SCRATCH_FILE",
    "REPORT_FILE",
    "RESULTS_FILE",
    "RUNS_FILE",
    "RUN_FILE",
    "ResultsWriter",
    "RunFolder",
    "append_run",
    "article_text_path",
    "iter_results",
    "lock_run_folder",
    "read_article_text",
    "read_runs",
    "repair_results",
    "write_article_text",
    "write_json_atomic",
]

RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
LOCK_FILE = ".run.lock"
RUNS_FILE = "runs.jsonl"
REPORT_FILE = "report.html"
DIGEST_FILE = "digest.json"
ARTICLES_DIR = "articles"
INDEX_FILE = ".index.sqlite"
COMPACT_FILE = ".compact.sqlite"  # hidden, as the index: a folder walk never reads it
RAY_SCRATCH_FILE = ".ray-results.sqlite"
BATCH_API_DIR = "batch_api"
JOB_FILE = "job.json"
INPUT_FILE = "input.jsonl"


def _results_path(out_dir: Path | str) -> Path:
    path = Path(out_dir)
    return path / RESULTS_FILE if path.is_dir() or not path.suffix else path


def repair_results(path: Path) -> int:
    """Cut a torn (unterminated) last line off ``path``; return the number of bytes removed."""
    try:
        return _repair(path)
    except OSError as exc:
        raise StoreError(f"cannot repair results {path}: {exc.strerror or exc}") from exc


def _repair(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb+") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        keep = 0
        block = 65536
        pos = size
        while pos > 0:
            start = max(0, pos - block)
            fh.seek(start)
            chunk = fh.read(pos - start)
            idx = chunk.rfind(b"\n")
            if idx >= 0:
                keep = start + idx + 1
                break
            pos = start
        fh.truncate(keep)
        fh.flush()
        os.fsync(fh.fileno())
        return size - keep


def iter_results(out_dir: Path | str) -> Iterator[ArticleResult]:
    """Stream the results of a run folder (or of a results.jsonl path) as ``RunFolder.results`` lists
    them: a torn last line left out, and of several lines of one source only the last."""
    return _iter_latest(_results_path(out_dir))


def _iter_results(path: Path, seen: Callable[[bytes], None] | None = None) -> Iterator[ArticleResult]:
    """The results in ``path``; each complete line is also handed to ``seen``."""
    with _open_results(path) as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.endswith(b"\n"):
                return
            if seen is not None:
                seen(raw)
            if raw.strip():
                yield _parse_result(path, number, raw)


def _iter_latest(path: Path) -> Iterator[ArticleResult]:
    """``_latest`` streamed, in memory that does not grow with the file (``LastLines``), up to where the
    first pass stopped (a line appended meanwhile waits for the next read)."""
    with (
        tempfile.TemporaryDirectory(prefix="extractor-") as scratch,
        LastLines.of(path, Path(scratch) / "last.sqlite", _result_key) as last,
        _open_results(path) as fh,
    ):
        for number, raw in last.kept_lines(fh):
            if raw.strip():
                yield _parse_result(path, number, raw)


def _open_results(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except OSError as exc:
        raise StoreError(f"cannot read results {path}: {exc.strerror or exc}") from exc


def _parse_result(path: Path, number: int, raw: bytes) -> ArticleResult:
    try:
        return ArticleResult.model_validate_json(raw)
    except ValidationError as exc:
        raise StoreError(
            f"{path}:{number}: not an ArticleResult: {describe_validation_error(exc, 5, 'the line')}"
        ) from exc


def _result_key(number: int, raw: bytes) -> tuple[str]:
    source = _source_of(raw)  # not a result: a key of its own, so that the parse names the line
    return (f"#{number}" if source is None else f"={source}",)


class LastLines:
    """Which line of each key is the last in a JSON-lines file, worked out in a scratch sqlite file so
    that memory does not grow with the file: what the compaction of results.jsonl keeps, and what a
    streamed read of a service job's append-only results gives (``iter_results``)."""

    def __init__(self, db: sqlite3.Connection, values: int, lines: int, torn: bool) -> None:
        self._db = db
        self._values = values
        self.lines = lines  # complete lines read (numbered from 1)
        self.torn = torn  # an incomplete line followed them (a writer killed, or one still writing)

    @classmethod
    @contextlib.contextmanager
    def of(
        cls, path: Path, scratch: Path, row: Callable[[int, bytes], tuple[Any, ...] | None], values: int = 0
    ) -> Iterator[LastLines]:
        """Read ``path``'s complete lines: ``row(number, line)`` gives a line's key and ``values`` numbers
        to sum over the lines kept, or None to leave the line out. ``scratch`` (a file left by a killed
        process is replaced) is removed at the end."""
        with contextlib.suppress(FileNotFoundError):
            scratch.unlink()
        db = sqlite3.connect(scratch, isolation_level=None)
        columns = "".join(f", v{i} INTEGER" for i in range(values))
        marks = ", ".join("?" * (values + 2))
        try:
            db.executescript(
                f"""
                PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -2048;
                CREATE TABLE last (line INTEGER PRIMARY KEY, key TEXT UNIQUE{columns});
                BEGIN;
                """
            )
            lines, torn = 0, False
            try:
                with path.open("rb") as fh:
                    for number, raw in enumerate(fh, start=1):
                        if not raw.endswith(b"\n"):
                            torn = True
                            break
                        lines = number
                        found = row(number, raw)
                        if found is not None:
                            db.execute(f"INSERT OR REPLACE INTO last VALUES ({marks})", (number, *found))  # noqa: S608
            except OSError as exc:
                raise StoreError(f"cannot read results {path}: {exc.strerror or exc}") from exc
            yield cls(db, values, lines, torn)
        finally:
            db.close()
            with contextlib.suppress(OSError):
                scratch.unlink()

    def kept_lines(self, fh: BinaryIO) -> Iterator[tuple[int, bytes]]:
        """The lines kept, with their numbers, from ``fh`` (the file, open at its start); it is not read
        past the last of them."""
        keep = (int(row[0]) for row in self._db.execute("SELECT line FROM last ORDER BY line"))
        wanted = next(keep, None)
        for number, raw in enumerate(fh, start=1):
            if wanted is None:
                return
            if number == wanted:
                yield number, raw
                wanted = next(keep, None)

    def count(self) -> int:
        """How many lines are kept."""
        return int(self._db.execute("SELECT count(*) FROM last").fetchone()[0])

    def sums(self) -> tuple[int, ...]:
        """The sums of each of the ``values`` numbers over the lines kept."""
        if not self._values:
            return ()
        columns = ", ".join(f"coalesce(sum(v{i}), 0)" for i in range(self._values))
        return tuple(int(v) for v in self._db.execute(f"SELECT {columns} FROM last").fetchone())  # noqa: S608


# The start of a line as ArticleResult.model_dump_json writes it: its first two keys.
_HEAD = re.compile(rb'\{"article_id":"(?:[^"\\]|\\.)*","source":("(?:[^"\\]|\\.)*")')


def _source_of(raw: bytes) -> str | None:
    """The ``source`` of a results line, None for a line that is not a result (the parse names it).
    A line as this package writes it gives its source without parsing the rest of it."""
    head = _HEAD.match(raw)
    try:
        data = json.loads(head.group(1) if head else raw)
    except ValueError:
        return None
    if head is None:
        data = data.get("source") if isinstance(data, dict) else None
    return data if isinstance(data, str) else None


def _latest(results: list[ArticleResult]) -> list[ArticleResult]:
    last = {result.source: i for i, result in enumerate(results)}
    if len(last) == len(results):
        return results
    return [result for i, result in enumerate(results) if last[result.source] == i]


class _File:
    """A name in a run folder: on a RunFolder, the path of that file (``folder.report``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, folder: None, owner: type[RunFolder]) -> _File: ...
    @overload
    def __get__(self, folder: RunFolder, owner: type[RunFolder]) -> Path: ...
    def __get__(self, folder: RunFolder | None, owner: type[RunFolder]) -> Path | _File:
        return self if folder is None else folder.path / self.name


class RunFolder:
    """A run folder: the path of every file the project keeps in it, and its results read once.

    ``RunFolder(path)`` takes a folder, or a results.jsonl path (its folder is then the file's). One
    command makes one RunFolder and hands it to every reader (review page, digest, evaluation), so
    results.jsonl is read once: ``results()`` parses it on first use, with its ``fingerprint()``
    taken from the same bytes.
    """

    # What the project writes into a run folder: a folder walk never reads these as input.
    OWN_FILES = (RESULTS_FILE, RUN_FILE, RUNS_FILE, INDEX_FILE, LOCK_FILE, REPORT_FILE, DIGEST_FILE)

    run_json = _File(RUN_FILE)
    runs_jsonl = _File(RUNS_FILE)
    report = _File(REPORT_FILE)
    digest = _File(DIGEST_FILE)
    articles = _File(ARTICLES_DIR)
    index = _File(INDEX_FILE)
    compact_scratch = _File(COMPACT_FILE)
    ray_scratch = _File(RAY_SCRATCH_FILE)
    batch_api = _File(BATCH_API_DIR)

    def __init__(self, path: Path | str) -> None:
        given = Path(path)
        self.results_path = _results_path(given)
        self.path = given if self.results_path != given else given.parent
        self._results: list[ArticleResult] | None = None
        self._fingerprint: tuple[str, int] | None = None

    @classmethod
    def of(cls, where: RunFolder | Path | str) -> RunFolder:
        """``where`` itself when it is a RunFolder (keeping what it has read), else a new one."""
        return where if isinstance(where, RunFolder) else cls(where)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def iter_results(self) -> Iterator[ArticleResult]:
        """Stream the results as ``results()`` lists them, for a reader that needs them once and not all
        at once (export)."""
        if self._results is not None:
            return iter(self._results)
        return _iter_latest(self.results_path)

    def results(self) -> list[ArticleResult]:
        """The results, read and parsed on first use (a torn last line is left out); of several lines of
        one source only the last, where it stands, as the batch runner's compaction keeps it (a service
        job's results.jsonl is append-only, so a retried article has two lines there)."""
        if self._results is None:
            sha, size = hashlib.sha256(), 0

            def seen(line: bytes) -> None:
                nonlocal size
                sha.update(line)
                size += len(line)

            self._results = _latest(list(_iter_results(self.results_path, seen)))
            self._fingerprint = (sha.hexdigest(), size)
        return self._results

    def fingerprint(self) -> tuple[str, int]:
        """(sha256, size) of results.jsonl up to its last complete line, from the bytes ``results()`` read."""
        self.results()
        assert self._fingerprint is not None
        return self._fingerprint

    def article_text(self, sha256: str) -> str | None:
        """The exact text of an article of the run, or None when the run did not store it."""
        return read_article_text(self.path, sha256)


_SHA256 = re.compile(r"[0-9a-f]{64}")


def article_text_path(out_dir: Path | str, sha256: str) -> Path:
    """Where an article's text is stored; ``sha256`` must be 64 lowercase hex digits (no path tricks)."""
    if _SHA256.fullmatch(sha256) is None:
        raise StoreError(f"not a sha256: {sha256!r}")
    return Path(out_dir) / ARTICLES_DIR / f"{sha256}.txt"


def read_article_text(out_dir: Path | str, sha256: str) -> str | None:
    """The exact text of an article of the run, or None when the run did not store it."""
    path = article_text_path(out_dir, sha256)
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read article text {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise StoreError(f"article text {path} is not UTF-8 (byte {exc.start})") from exc


def write_article_text(out_dir: Path | str, sha256: str, text: str) -> None:
    """Store an article's text once (content-addressed by its sha256)."""
    path = os.fspath(article_text_path(out_dir, sha256))
    if os.path.exists(path):
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    data = text.encode("utf-8")
    try:
        try:
            fh = open(tmp, "wb")  # noqa: SIM115 - the folder is created only when missing
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fh = open(tmp, "wb")  # noqa: SIM115
        with fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"cannot write article text {path}: {exc.strerror or exc}") from exc


def append_run(out_dir: Path | str, record: dict[str, Any]) -> int:
    """Append one run's summary to ``DIR/runs.jsonl`` as one line (one write, then fsync; a torn last
    line left by a kill is cut off first) and return how many runs the file now holds."""
    path = Path(out_dir) / RUNS_FILE
    line = json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":")).encode("utf-8")
    try:
        _repair(path)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        with path.open("rb") as fh:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 16), b""))
    except OSError as exc:
        raise StoreError(f"cannot append to {path}: {exc.strerror or exc}") from exc


def json_objects(lines: Iterable[bytes]) -> Iterator[dict[str, Any] | None]:
    """Each complete (newline-ended), non-blank line of a JSON-lines file as the object it holds, or None
    for a line that is not a JSON object (a torn or foreign one): the caller counts or skips those."""
    for raw in lines:
        if not raw.endswith(b"\n") or not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except ValueError:
            yield None
            continue
        yield data if isinstance(data, dict) else None


def read_runs(out_dir: Path | str, last: int | None = None) -> list[dict[str, Any]]:
    """The run history of a folder (``runs.jsonl``), oldest first; with ``last``, only the last ones.
    A missing file is no history; an unreadable line (a torn one) is left out."""
    path = Path(out_dir) / RUNS_FILE
    runs: collections.deque[dict[str, Any]] = collections.deque(maxlen=last)
    try:
        with path.open("rb") as fh:
            runs.extend(data for data in json_objects(fh) if data is not None)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return list(runs)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temporary file and rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from exc


class ResultsWriter(Closing):
    """Append-only writer of results.jsonl: one complete, flushed line per result."""

    def __init__(self, out_dir: Path | str) -> None:
        self.dir = Path(out_dir)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create output folder {self.dir}: {exc.strerror or exc}") from exc
        self.path = self.dir / RESULTS_FILE
        self.repaired_bytes = repair_results(self.path)
        try:
            self._fh = self.path.open("ab")
        except OSError as exc:
            raise StoreError(f"cannot open {self.path}: {exc.strerror or exc}") from exc

    def write(self, result: ArticleResult) -> None:
        """Append one result as one line and flush it (``close`` fsyncs the file)."""
        try:
            self._fh.write(result.model_dump_json().encode("utf-8") + b"\n")
            self._fh.flush()
        except OSError as exc:
            raise StoreError(f"cannot append to {self.path}: {exc.strerror or exc}") from exc

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()


# The run folders (real paths) whose lock this flow of control holds reentrant: taking one again is a no-op.
_HELD: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar(
    "held_run_folders", default=frozenset()
)


def _holder(fd: int) -> str:
    """Who holds the lock, from what the holder wrote into the lock file (it writes right after locking,
    so an empty file is read again for a moment)."""
    for _ in range(20):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(os.pread(fd, 4096, 0))
            if isinstance(data, dict) and "pid" in data:
                since = f", since {data['since']}" if data.get("since") else ""
                return f"pid {data['pid']}{since}"
        time.sleep(0.025)
    return "pid unknown"


@contextlib.contextmanager
def lock_run_folder(
    out_dir: Path | str,
    *,
    wait: bool = False,
    notice: Callable[[str], None] | None = None,
    reentrant: bool = False,
) -> Iterator[Path]:
    """Hold the run folder's exclusive lock (``DIR/.run.lock``) for the block; yield the folder.

    Every writer of a folder (run, watch, record) holds it for its whole run, so two of them never
    extract the same articles twice or interleave their lines; readers (report, digest, eval) need not
    take it. It is an OS lock on an open file (``flock``): the end of the process releases it, even a
    kill -9, and a lock file left behind is no obstacle. The holder's pid is written into the file. A
    busy folder raises FolderBusyError naming that pid, or with ``wait`` is waited for (``notice`` is
    told once, default: a line on stderr). A held lock refuses a second taker in the same process too,
    unless the holder took it ``reentrant``: then the code its block runs (and the tasks it starts: a
    context variable) takes it again as a no-op, e.g. ``run_batch`` inside the Ray engine's or the Batch
    API's run; other threads and tasks are still refused.
    """
    import fcntl

    folder = Path(out_dir)
    key = os.path.realpath(folder)
    if key in _HELD.get():
        yield folder
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot lock the run folder {folder}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            if not wait:
                raise FolderBusyError(
                    f"{folder} is in use by another extractor run or watch ({holder}); wait for it to "
                    "finish, or wait for it with --wait-lock (from Python: wait_lock=True)"
                ) from None
            message = f"waiting for {holder} to finish with {folder}"
            if notice is None:
                print(message, file=sys.stderr, flush=True)
            else:
                notice(message)
            fcntl.flock(fd, fcntl.LOCK_EX)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        with contextlib.suppress(OSError):  # the pid is information for others, not the lock
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps({"pid": os.getpid(), "since": stamp}) + "\n").encode("utf-8"), 0)
        if not reentrant:
            yield folder
            return
        held = _HELD.set(_HELD.get() | {key})
        try:
            yield folder
        finally:
            _HELD.reset(held)
    finally:
        os.close(fd)  # releases the lock
