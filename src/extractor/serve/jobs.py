"""The service's jobs: each job is a run folder under the data dir, run by ``batch.arun_batch``.

    DATA/jobs/<id>/job.json       the job: state, input, counters (written atomically at each change)
    DATA/jobs/<id>/input.jsonl    the articles of a job submitted as a body (one JSON object per line)
    DATA/jobs/<id>/results.jsonl  + run.json, articles/, report.html: a run folder, never compacted

Jobs run on the server's event loop with the server's one ``Extractor`` (cache, rate limiter, in-flight
bound), at most ``workers`` at a time, the rest queued. A job is the batch runner's incremental, crash-safe
run over its folder, so a server stopped mid-job (SIGTERM: the articles in flight finish or are dropped at
the deadline; killed: whatever was flushed) resumes it on its next start with every article already done
skipped: nothing is lost or paid twice, and the results stay readable. ``cancel`` lets the articles in
flight finish and starts no new one.

A job's results.jsonl is append-only: the batch runner's end-of-run compaction is off for job folders, so
no line is ever moved or removed and line N is line N across restarts (``follow(after=N)`` is a stable
cursor). An article a resumed pass does again (an earlier error result retried, an input that could not
be loaded) gets a later line that supersedes its earlier one (the same ``source``), as in a run folder
before compaction.

Finished jobs can be deleted (``delete``), and with ``retention_s`` those finished longer ago are deleted
at start-up and every ``sweep_period_s`` (by the service). Every job's job.json is kept in memory
(``extractor.serve.index``), read once at start-up, for the status and the listing.

Nothing here imports the web framework: ``extractor.serve.app`` maps these calls to HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from extractor.batch import RunSummary, arun_batch, count_inputs
from extractor.config import ServiceSettings
from extractor.errors import REDACTED, ExtractorError, StoreError, redact
from extractor.models import ArticleResult, Usage, add_cost
from extractor.pipeline import Extractor
from extractor.review import write_review_page
from extractor.serve.index import JobIndex, Record, UnknownJobError, now
from extractor.serve.paths import check_paths as _check_paths
from extractor.serve_models import JobList, JobState, JobStatus
from extractor.store import INPUT_FILE, REPORT_FILE, RESULTS_FILE, json_objects

__all__ = [
    "JobManager",
    "QueueFullError",
    "UnknownJobError",
]

JOBS_DIR = "jobs"


class QueueFullError(Exception):
    """Too many jobs are waiting; ``retry_after_s`` is a hint for the client."""

    def __init__(self, queued: int, retry_after_s: int) -> None:
        super().__init__(f"{queued} jobs are queued, the most this server holds; retry later")
        self.retry_after_s = retry_after_s


@dataclass
class _Base:
    """What the job's results file held when this pass started (earlier passes)."""

    lines: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = 0.0


@dataclass
class _Job:
    record: Record
    dir: Path
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    base: _Base = field(default_factory=_Base)
    summary: RunSummary | None = None
    written: int = 0  # result lines this pass has appended
    cancel_requested: bool = False

    @property
    def id(self) -> str:
        return self.record.status.id

    def notify(self) -> None:
        """Wake every follower of the results (they wait on ``changed``)."""
        old, self.changed = self.changed, asyncio.Event()
        old.set()


class _JobReporter:
    """The batch runner's reporter for a job: keeps the live counters and wakes the followers."""

    def __init__(self, job: _Job) -> None:
        self.job = job

    def start(self, out_dir: Path) -> None:
        return None

    def article(self, result: ArticleResult, outcome: str, summary: RunSummary) -> None:
        self.job.summary = summary
        if outcome != "skipped":
            self.job.written += 1
        self.job.notify()

    def finish(self, summary: RunSummary) -> None:
        self.job.summary = summary


def _scan_results(run_dir: Path, price: tuple[float, float] | None) -> _Base:
    """Lines and spending already in a job's results file (from passes before a restart)."""
    base = _Base(cost_usd=0.0 if price is not None else None)
    path = run_dir / RESULTS_FILE
    if not path.exists():
        return base
    with path.open("rb") as fh:
        for data in json_objects(fh):
            base.lines += 1
            try:
                usage = Usage.model_validate((data or {}).get("usage") or {})
            except ValidationError:
                continue
            base.usage += usage
            base.cost_usd = add_cost(base.cost_usd, usage.cost(price))
    return base


class JobManager:
    """Create, run, resume, follow and cancel jobs (see the module docstring), under ``config``'s data dir
    and within its limits (allowed paths, queued jobs, workers, retention).

    ``secrets`` (the API key, the service token) are redacted from every error message and result line
    served."""

    def __init__(
        self,
        config: ServiceSettings,
        extractor: Extractor,
        *,
        secrets: Sequence[str | None] = (),
        poll_s: float = 1.0,
    ) -> None:
        self.root = (config.data_dir / JOBS_DIR).resolve()
        self.extractor = extractor
        self.allow_paths = config.allow_paths.resolve() if config.allow_paths is not None else None
        self.max_queued = config.max_queued_jobs
        self.workers = config.job_workers
        self.secrets = tuple(s for s in secrets if s and len(s) >= 4)
        self.poll_s = poll_s
        self.retention_s = config.job_retention_s
        self.stopping = False
        self.index = JobIndex(self.root)
        self._active: dict[str, _Job] = {}
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._report_lock = asyncio.Lock()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> tuple[int, int]:
        """Create the data dir, read every job found there into the index (in a thread), queue the
        unfinished ones (a restart), delete those past the retention and start the workers; return
        (jobs resumed, jobs deleted)."""
        resume = await asyncio.to_thread(self.index.load)
        for record, folder in resume:
            job = _Job(record=record, dir=folder)
            self._active[job.id] = job
            self._queue.put_nowait(job)
        expired = await self.expire()
        self._workers = [asyncio.ensure_future(self._worker()) for _ in range(self.workers)]
        return len(resume), expired

    def begin_shutdown(self) -> None:
        """Stop taking jobs; the running ones finish the articles in flight and start no new one."""
        self.stopping = True
        for job in self._active.values():
            job.stop.set()
            job.notify()

    async def shutdown(self, timeout_s: float) -> None:
        """``begin_shutdown``, then wait up to ``timeout_s`` for the running jobs; drop what is still in
        flight after that (a restart does it). Unfinished jobs stay queued on disk."""
        self.begin_shutdown()
        running = [job.task for job in self._active.values() if job.task is not None and not job.task.done()]
        if running:
            await asyncio.wait(running, timeout=timeout_s)
        for task in [*running, *self._workers]:
            task.cancel()
        await asyncio.gather(*running, *self._workers, return_exceptions=True)

    # ------------------------------------------------------------------ submit

    @property
    def queued(self) -> int:
        """Jobs waiting for a worker."""
        return sum(1 for job in self._active.values() if job.record.status.state == "queued")

    @property
    def running(self) -> int:
        return sum(1 for job in self._active.values() if job.record.status.state in ("running", "cancelling"))

    def _admit(self) -> None:
        if self.queued >= self.max_queued:
            raise QueueFullError(self.queued, retry_after_s=30)

    def _new_job(self, articles: int | None, paths: list[str] | None) -> _Job:
        while True:
            job_id = secrets.token_hex(8)
            folder = self.root / job_id
            try:
                folder.mkdir(parents=True)
                break
            except FileExistsError:  # pragma: no cover - 64 random bits
                continue
        status = JobStatus(id=job_id, state="queued", created=now(), articles=articles)
        return _Job(record=Record(status=status, paths=paths), dir=folder)

    async def submit_articles(self, lines: Sequence[bytes]) -> JobStatus:
        """A job over ``lines`` (each one validated article as a JSON object, without newline)."""
        self._admit()
        job = self._new_job(len(lines), None)

        def write() -> None:
            tmp = job.dir / f".{INPUT_FILE}.tmp"
            with tmp.open("wb") as fh:
                for line in lines:
                    fh.write(line + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, job.dir / INPUT_FILE)
            self.index.write(job.dir, job.record)

        await asyncio.to_thread(write)
        return self._enqueue(job)

    async def check_paths(self, paths: Sequence[str]) -> list[tuple[int, str]]:
        """Problems with server-side ``paths`` as (index, reason); none means every path is allowed.

        A path must lie inside ``allow_paths`` once its symlinks are resolved, and so must every file a
        folder holds: a symlink to outside (the path itself, a folder on the way, or a file found in a
        folder) is named and refused, never read. The folders are walked in a thread."""
        if self.allow_paths is None:
            return [(-1, "server-side paths are disabled: start the server with --allow-paths DIR")]
        return await asyncio.to_thread(_check_paths, self.allow_paths, paths)

    async def submit_paths(self, paths: Sequence[str]) -> JobStatus:
        """A job over server-side files and folders under ``allow_paths`` (checked by
        ``check_paths`` first)."""
        assert self.allow_paths is not None
        self._admit()
        resolved = [str((self.allow_paths / raw).resolve()) for raw in paths]
        job = self._new_job(None, resolved)
        await asyncio.to_thread(self.index.write, job.dir, job.record)
        return self._enqueue(job)

    def _enqueue(self, job: _Job) -> JobStatus:
        self._active[job.id] = job
        self._queue.put_nowait(job)
        return self._status(job)

    # ------------------------------------------------------------------ run

    async def _worker(self) -> None:
        while True:
            job = await self._queue.get()
            if job.cancel_requested or self.stopping:
                continue
            job.task = asyncio.ensure_future(self._run(job))
            try:
                await asyncio.shield(job.task)
            except asyncio.CancelledError:
                if not job.task.done():
                    job.task.cancel()
                raise
            except Exception:  # noqa: S112 - _run records its own failures; a worker never dies
                continue

    async def _run(self, job: _Job) -> None:
        try:
            await self._pass(job)
        except asyncio.CancelledError:
            # Shutdown deadline: the articles in flight are dropped; the next start resumes the job.
            self._requeue(job)
            raise
        except Exception as exc:  # a bug or a full disk must not take the server down
            with contextlib.suppress(Exception):
                self._finish(job, "failed", f"{type(exc).__name__}: {self._redact(str(exc))}")
            self._active.pop(job.id, None)

    def _requeue(self, job: _Job) -> None:
        """A job stopped by a shutdown: queued on disk, resumed by the next start."""
        job.record.status = self._status(job)
        job.record.status.state = "queued"
        with contextlib.suppress(StoreError):
            self.index.write(job.dir, job.record)
        self._active.pop(job.id, None)
        job.notify()

    async def _pass(self, job: _Job) -> None:
        status = job.record.status
        status.state = "running"
        status.started = status.started or now()
        self.index.write(job.dir, job.record)
        settings = self.extractor.settings
        job.base = await asyncio.to_thread(_scan_results, job.dir, settings.price())
        job.written = 0
        job.summary = None
        paths = [job.dir / INPUT_FILE] if job.record.paths is None else [Path(p) for p in job.record.paths]
        if status.articles is None:
            status.articles = await asyncio.to_thread(count_inputs, paths, job.dir)
        reporter = _JobReporter(job)
        within = None if job.record.paths is None or self.allow_paths is None else [self.allow_paths]
        try:
            summary = await arun_batch(
                paths, job.dir, self.extractor, reporter=reporter, stop=job.stop, compact=False, within=within
            )
        except ExtractorError as exc:  # a ConfigError (endpoint unreachable, no key) or a StoreError
            self._finish(job, "failed", f"{type(exc).__name__}: {self._redact(str(exc))}")
            return
        if not summary.interrupted:
            self._finish(job, "done", None)
        elif job.cancel_requested:
            self._finish(job, "cancelled", None)
        else:
            self._requeue(job)

    def _finish(self, job: _Job, state: JobState, error: str | None) -> None:
        status = self._status(job)
        status.state = state
        status.finished = now()
        status.error = error
        job.record.status = status
        self.index.write(job.dir, job.record)
        self._active.pop(job.id, None)
        job.notify()

    # ------------------------------------------------------------------ read

    def _status(self, job: _Job) -> JobStatus:
        status = job.record.status.model_copy()
        if job.summary is None and status.state == "queued":
            return status  # as submitted, or as the last pass left it
        s, base = job.summary or RunSummary(), job.base
        status.ok = s.ok + s.skipped
        status.failed = s.failed
        status.duplicates = s.duplicates
        status.cache_hits = s.cache_hits
        status.done = s.ok + s.failed + s.skipped
        status.results = base.lines + job.written
        status.prompt_tokens = base.usage.prompt_tokens + s.prompt_tokens
        status.completion_tokens = base.usage.completion_tokens + s.completion_tokens
        status.http_calls = base.usage.http_calls + s.http_calls
        cost = add_cost(base.cost_usd, s.cost_usd)
        status.cost_usd = None if cost is None else round(cost, 6)
        if status.articles:
            status.progress = round(min(1.0, status.done / status.articles), 4)
        if job.cancel_requested and status.state == "running":
            status.state = "cancelling"
        return status

    def status(self, job_id: str) -> JobStatus:
        """The job's status; UnknownJobError when there is none."""
        self.index.folder(job_id)
        job = self._active.get(job_id)
        if job is not None:
            return self._status(job)
        status = self.index.get(job_id)
        if status is None:
            raise UnknownJobError(job_id)
        return status

    def list_jobs(
        self, states: Collection[str] | None = None, limit: int = 50, cursor: str | None = None
    ) -> JobList:
        """The jobs newest first (by creation, then id), only those in ``states`` if given, at most
        ``limit`` after ``cursor`` (a ``next_cursor`` of an earlier page). ValueError for a malformed
        cursor."""

        def current(job_id: str, written: JobStatus) -> JobStatus:
            job = self._active.get(job_id)
            return written if job is None else self._status(job)

        return self.index.page(current, states, limit, cursor)

    async def delete(self, job_id: str) -> JobStatus:
        """A queued or running job: cancel it (``cancel``). A finished one: delete its folder (results,
        report, input) and forget it; return its last status."""
        self.index.folder(job_id)
        if job_id in self._active:
            return await self.cancel(job_id)
        status = self.status(job_id)
        await self._remove(job_id)
        return status

    async def expire(self) -> int:
        """Delete the finished jobs that finished more than ``retention_s`` ago; return how many."""
        if self.retention_s is None:
            return 0
        old = self.index.expired(self.retention_s, busy=self._active)
        for job_id in old:
            await self._remove(job_id)
        return len(old)

    @property
    def sweep_period_s(self) -> float | None:
        """How often ``expire`` should run: a tenth of the retention, within [1 s, 1 h]."""
        return None if self.retention_s is None else min(3600.0, max(1.0, self.retention_s / 10))

    async def _remove(self, job_id: str) -> None:
        async with self._report_lock:  # not while its review page is being written
            await asyncio.to_thread(self.index.remove, job_id)

    async def cancel(self, job_id: str) -> JobStatus:
        """Cancel a queued or running job (the articles in flight finish); a finished job is left as
        it is (``delete`` deletes it). Returns the status."""
        self.index.folder(job_id)
        job = self._active.get(job_id)
        if job is None:
            return self.status(job_id)
        job.cancel_requested = True
        if job.record.status.state == "queued":
            self._finish(job, "cancelled", None)
        else:
            job.record.status.state = "cancelling"
            self.index.write(job.dir, job.record)
            job.stop.set()
        return self._status(job) if job.id in self._active else self.status(job_id)

    async def follow(self, job_id: str, after: int = 0) -> AsyncIterator[bytes]:
        """The job's result lines after the first ``after``, as they are written, until the job is
        finished (or the server stops). Each line is one ArticleResult as JSON, newline-terminated."""
        folder = self.index.folder(job_id)
        self.status(job_id)  # UnknownJobError before the stream starts
        prefixes = [folder, *([self.allow_paths] if self.allow_paths is not None else [])]
        local = [json.dumps(str(p) + os.sep)[1:-1].encode() for p in prefixes]
        path = folder / RESULTS_FILE
        fh = None
        skipped = 0
        pending = b""
        try:
            while True:
                job = self._active.get(job_id)
                waiter = job.changed if job is not None else None
                if fh is None and path.exists():
                    fh = path.open("rb")  # held open: a compaction at the end replaces the file
                if fh is not None:
                    while True:
                        chunk = fh.read(65536)
                        if not chunk:
                            break
                        data = pending + chunk
                        cut = data.rfind(b"\n") + 1
                        pending = data[cut:]
                        lines = data[:cut].splitlines(keepends=True)
                        if skipped < after:
                            drop = min(after - skipped, len(lines))
                            skipped += drop
                            lines = lines[drop:]
                        if lines:
                            yield self._public(b"".join(lines), local)
                        await asyncio.sleep(0)
                if job is None or self.stopping:
                    if job is None and fh is None and path.exists():
                        continue  # the file appeared as the job ended: read it once
                    return
                assert waiter is not None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.wait(), timeout=self.poll_s)
        finally:
            if fh is not None:
                fh.close()

    def _public(self, data: bytes, local: list[bytes]) -> bytes:
        """Result lines as clients see them: sources relative to the job or allowed folder, and
        nothing secret."""
        for prefix in local:
            if prefix in data:
                data = data.replace(prefix, b"")
        for secret in self.secrets:
            token = secret.encode("utf-8")
            if token in data:
                data = data.replace(token, REDACTED.encode())
        return data

    def _redact(self, text: str) -> str:
        return redact(text, *self.secrets)

    async def report(self, job_id: str) -> Path | None:
        """The job's review page, written (again) when missing or older than its results; None while
        the job has no result yet."""
        folder = self.index.folder(job_id)
        self.status(job_id)
        results = folder / RESULTS_FILE
        if not results.exists() or results.stat().st_size == 0:
            return None
        async with self._report_lock:  # one page at a time: it is CPU work in a thread
            page = folder / REPORT_FILE
            try:
                fresh = page.stat().st_mtime_ns >= results.stat().st_mtime_ns
            except OSError:
                fresh = False
            if not fresh:
                try:
                    await asyncio.to_thread(write_review_page, folder)
                except StoreError:
                    return None
        return page
