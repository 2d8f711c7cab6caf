"""The jobs' records: ``DATA/jobs/<id>/job.json`` of every job, read once at start-up and kept in memory
for the status, the listing (newest first, in pages) and the retention; deleting a job's folder.

Nothing here imports the web framework.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from collections.abc import Callable, Collection
from pathlib import Path

from pydantic import BaseModel, ValidationError

from extractor.errors import StoreError
from extractor.serve_models import FINAL_STATES, JobList, JobStatus
from extractor.store import JOB_FILE, write_json_atomic

__all__ = ["JobIndex", "Record", "UnknownJobError", "now"]


_JOB_ID = re.compile(r"[0-9a-f]{16}")
_DELETED = ".deleted-"  # a job folder being deleted is renamed to this prefix + its id first
_CURSOR = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)_([0-9a-f]{16})")


class UnknownJobError(Exception):
    """No job with this id (the service answers 404 with this message)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id!r}")


class Record(BaseModel):
    """job.json: the status and what the job reads."""

    status: JobStatus
    paths: list[str] | None = None  # server-side inputs (None: the job's own input.jsonl)


def now() -> str:
    """UTC, to the millisecond (jobs are listed in the order they were created)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(stamp: str) -> float | None:
    try:
        moment = dt.datetime.fromisoformat(stamp)
    except ValueError:
        return None
    return moment.replace(tzinfo=moment.tzinfo or dt.UTC).timestamp()


class JobIndex:
    """Every job under ``root`` (its last written status), by id."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._statuses: dict[str, JobStatus] = {}

    def folder(self, job_id: str) -> Path:
        """The job's folder; UnknownJobError for what cannot be a job id."""
        if not _JOB_ID.fullmatch(job_id):
            raise UnknownJobError(job_id)
        return self.root / job_id

    def get(self, job_id: str) -> JobStatus | None:
        return self._statuses.get(job_id)

    def load(self) -> list[tuple[Record, Path]]:
        """Read every job.json (blocking: call it in a thread); finish deletions a stop interrupted;
        return the unfinished jobs, oldest first, each marked queued on disk (one cancelled just before
        a stop stays cancelled)."""
        self.root.mkdir(parents=True, exist_ok=True)
        resume: list[tuple[Record, Path]] = []
        for folder in sorted(self.root.iterdir()):
            if folder.name.startswith(_DELETED):
                shutil.rmtree(folder, ignore_errors=True)
                continue
            record = self._read(folder) if _JOB_ID.fullmatch(folder.name) else None
            if record is None:
                continue
            self._statuses[record.status.id] = record.status
            if record.status.state in FINAL_STATES:
                continue
            if record.status.state == "cancelling":
                record.status.state = "cancelled"
                record.status.finished = record.status.finished or now()
            else:
                record.status.state = "queued"
                record.status.resumed += 1
                resume.append((record, folder))
            self.write(folder, record)
        resume.sort(key=lambda pair: pair[0].status.created)
        return resume

    @staticmethod
    def _read(folder: Path) -> Record | None:
        try:
            return Record.model_validate_json((folder / JOB_FILE).read_bytes())
        except (OSError, ValidationError):
            return None

    def write(self, folder: Path, record: Record) -> None:
        """Write job.json atomically and keep its status."""
        write_json_atomic(folder / JOB_FILE, record.model_dump(mode="json"))
        self._statuses[record.status.id] = record.status.model_copy()

    def page(
        self,
        current: Callable[[str, JobStatus], JobStatus],
        states: Collection[str] | None,
        limit: int,
        cursor: str | None,
    ) -> JobList:
        """The jobs newest first (by creation, then id) as ``current(id, last written status)`` has
        them, only those in ``states`` if given, at most ``limit`` after ``cursor`` (a ``next_cursor``
        of an earlier page). ValueError for a malformed cursor."""
        after: tuple[str, str] | None = None
        if cursor is not None:
            match = _CURSOR.fullmatch(cursor)
            if match is None:
                raise ValueError(f"not a cursor of this listing: {cursor[:60]!r}")
            after = (match[1], match[2])
        chosen = []
        for job_id, written in list(self._statuses.items()):
            status = current(job_id, written)
            if (states is None or status.state in states) and (
                after is None or (status.created, job_id) < after
            ):
                chosen.append(status)
        chosen.sort(key=lambda s: (s.created, s.id), reverse=True)
        jobs = chosen[:limit]
        last = jobs[-1] if len(chosen) > limit and jobs else None
        return JobList(jobs=jobs, next_cursor=None if last is None else f"{last.created}_{last.id}")

    def expired(self, retention_s: float, busy: Collection[str]) -> list[str]:
        """The finished jobs (not in ``busy``) that finished more than ``retention_s`` ago."""
        cutoff = dt.datetime.now(dt.UTC).timestamp() - retention_s
        old = []
        for job_id, status in list(self._statuses.items()):
            moment = _epoch(status.finished or status.created)
            if job_id not in busy and status.finished_state and moment is not None and moment < cutoff:
                old.append(job_id)
        return old

    def remove(self, job_id: str) -> None:
        """Delete the job's folder and forget it (blocking: call it in a thread). The folder is renamed
        first, so a stop halfway leaves no half job (the next ``load`` finishes the deletion)."""
        gone = self.root / f"{_DELETED}{job_id}"
        try:
            os.replace(self.folder(job_id), gone)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StoreError(f"cannot delete job {job_id}: {exc.strerror or exc}") from exc
        self._statuses.pop(job_id, None)
        shutil.rmtree(gone, ignore_errors=True)
