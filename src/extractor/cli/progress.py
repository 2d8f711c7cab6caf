"""What a run shows while it goes: plain log lines (pipes, CI, --quiet) or a rich progress bar, then
the summary (``tables``). Both are ``extractor.batch.BatchReporter``s."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from extractor.cli.tables import render_summary_text, summary_rows

if TYPE_CHECKING:
    from rich.console import Console

    from extractor.batch import BatchReporter, RunSummary
    from extractor.models import ArticleResult


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


def reporter_for(args: argparse.Namespace) -> BatchReporter:
    """A progress bar on a terminal (counting the inputs first), else log lines (none with --quiet)."""
    from extractor.batch import count_inputs

    if not args.quiet and sys.stderr.isatty():
        paths = getattr(args, "paths", None)
        return RichReporter(total=count_inputs(paths, args.out) if paths else None)
    return LogReporter(quiet=args.quiet)
