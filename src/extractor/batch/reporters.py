"""How a run is shown as it goes: plain log lines or a rich progress bar, then a summary table."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from extractor.batch.summary import RunSummary
from extractor.models import ArticleResult

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["LogReporter", "RichReporter", "render_summary_text", "summary_rows"]


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
