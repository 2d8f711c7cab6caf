"""The page of a run folder: what it reads there, and where it writes the page."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extractor import digest as digests
from extractor.errors import StoreError
from extractor.models import ArticleResult
from extractor.review.page import render_report
from extractor.store import REPORT_FILE, RUN_FILE, RunFolder, read_runs

__all__ = ["REPORT_FILE", "FolderContents", "read_folder", "write_report", "write_review_page"]


@dataclass(frozen=True, slots=True)
class FolderContents:
    """What the page shows of a run folder: results, article texts (by sha256), run.json, runs.jsonl."""

    results: list[ArticleResult]
    text: Callable[[str], str | None]
    summary: dict[str, Any] | None
    history: list[dict[str, Any]]


def _read_summary(folder: RunFolder) -> dict[str, Any] | None:
    try:
        data = json.loads(folder.run_json.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {RUN_FILE: f"unreadable: {exc}"}
    return data if isinstance(data, dict) else {RUN_FILE: data}


def read_folder(run_dir: RunFolder | Path | str) -> FolderContents:
    """Read results.jsonl (StoreError when missing or unreadable; a RunFolder lends the results it has
    read), run.json and runs.jsonl if present; article texts are read when the page asks for them (None
    when not stored)."""
    folder = RunFolder.of(run_dir)

    def text(sha256: str) -> str | None:
        try:
            return folder.article_text(sha256)
        except StoreError:
            return None

    try:
        history = read_runs(folder.path)
    except StoreError:
        history = []
    return FolderContents(folder.results(), text, _read_summary(folder), history)


def write_report(
    run_dir: RunFolder | Path | str,
    out_path: Path | str | None = None,
    *,
    digest: digests.Digest | Mapping[str, Any] | None = None,
    digest_note: str | None = None,
) -> Path:
    """Write the review page of a run folder (default ``run_dir/report.html``) and return its path.

    ``digest`` and ``digest_note`` as in ``render_report``; the title names the number of articles and
    the folder.
    """
    where = RunFolder.of(run_dir)
    out = Path(out_path) if out_path is not None else where.report
    folder = read_folder(where)
    page = render_report(
        folder.results,
        folder.text,
        folder.summary,
        digest=digest,
        digest_note=digest_note,
        folder=str(where.path.resolve()),
        history=folder.history,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_bytes(page.encode("utf-8", errors="replace"))
    os.replace(tmp, out)
    return out


def write_review_page(run_dir: Path, out: Path | None = None) -> tuple[Path, str | None]:
    """Write the page with its digest section (default ``run_dir/report.html``); return its path and the
    digest's note: one composition for ``extractor report``, ``extractor run --html`` and the service.

    digest.json is used when it is current; one built from other results than the folder's current ones
    is rebuilt first, and a folder without one gets one built now from its results (deterministic, the
    built-in aliases) and saved -- the note says which, so the page never shows a digest of fewer or
    other articles than it lists.
    """
    folder = RunFolder(run_dir)  # results.jsonl is read once, for the digest and the page
    current, note = digests.ensure_digest(folder)
    return write_report(folder, out, digest=current, digest_note=note), note
