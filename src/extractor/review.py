"""The review page of a run folder with its digest section: one composition for ``extractor report``,
``extractor run --html`` and the service's ``GET /v1/jobs/{id}/report``."""

from __future__ import annotations

from pathlib import Path

from extractor import digest
from extractor.report import article_anchors, write_report
from extractor.store import RunFolder

__all__ = ["write_review_page"]


def write_review_page(run_dir: Path, out: Path | None = None) -> tuple[Path, str | None]:
    """Write the page (default ``run_dir/report.html``); return its path and the digest's note.

    digest.json is used when it is current; one built from other results than the folder's current ones
    is rebuilt first, and a folder without one gets one built now from its results (deterministic, the
    built-in aliases) and saved -- the note says which, so the page never shows a digest of fewer or
    other articles than it lists.
    """
    folder = RunFolder(run_dir)  # results.jsonl is read once, for the digest and the page
    current, note = digest.ensure_digest(folder)
    section = digest.digest_html_section(current, article_anchors(folder.results()), note)
    return write_report(folder, out, [section], digest.DIGEST_CSS), note
