"""Tables: the summary of a run (text and rows) and the evaluation's rich tables (``extractor eval``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.table import Table

    from extractor.batch import RunSummary
    from extractor.evaluate import EvalReport


def summary_rows(summary: RunSummary) -> list[tuple[str, str]]:
    """The summary of a run as (label, value) rows."""
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
    """The summary of a run as aligned text lines."""
    rows = summary_rows(summary)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _cell(value: float | None, detail: str) -> str:
    return f"{_fmt(value)} [dim]{detail}[/dim]" if detail else _fmt(value)


def _eval_summary(report: EvalReport, label: str | None) -> str:
    prefix = f"{label}: " if label else ""
    where = f" ({report.results})" if report.results else ""
    return (
        f"{prefix}{len(report.articles)} gold articles{where}, {len(report.unscored)} unscored, "
        f"{len(report.missing)} missing, {len(report.errors)} errors, {len(report.warnings)} warnings"
    )


def eval_summary_lines(
    report: EvalReport, other: EvalReport | None = None, labels: tuple[str, str] = ("A", "B")
) -> list[str]:
    """What was scored: one line per run (gold articles, results file, unscored / missing / errors)."""
    if other is None:
        return [_eval_summary(report, None)]
    return [_eval_summary(report, labels[0]), _eval_summary(other, labels[1])]


def eval_table(
    report: EvalReport,
    other: EvalReport | None = None,
    labels: tuple[str, str] = ("A", "B"),
    *,
    caption: bool = True,
) -> Table:
    """Micro-averaged totals as a rich table; with ``other``, both runs side by side and B − A.
    ``caption``: put ``eval_summary_lines`` under the table."""
    from rich.table import Table

    from extractor.evaluate import metric_sections

    table = Table(title="Evaluation against gold")
    table.add_column("metric")
    table.add_column(labels[0] if other is not None else "value", justify="right")
    if caption:
        table.caption = "\n".join(eval_summary_lines(report, other, labels))
    sections = metric_sections(report)
    if other is None:
        for i, section in enumerate(sections):
            if i:
                table.add_section()
            for name, value, detail in section:
                table.add_row(name, _cell(value, detail))
        return table
    table.add_column(labels[1], justify="right")
    table.add_column(f"Δ ({labels[1]} − {labels[0]})", justify="right")
    for i, (mine, theirs) in enumerate(zip(sections, metric_sections(other), strict=True)):
        if i:
            table.add_section()
        for (name, a, detail_a), (_, b, detail_b) in zip(mine, theirs, strict=True):
            delta = "n/a" if a is None or b is None else f"{b - a:+.3f}"
            table.add_row(name, _cell(a, detail_a), _cell(b, detail_b), delta)
    return table


def eval_articles_table(report: EvalReport) -> Table:
    """One row per gold article, narrow enough for 80 columns: F1 of quotes (exact), events and stances
    (strict); accuracy of speakers, event types, dates and polarities; invented dates (a count). An
    article whose result is missing or an error says so after its id."""
    from rich import box
    from rich.table import Table

    table = Table(
        title="Per article",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        caption="quotes, events, stances: F1; spkr, type, date, pol: accuracy; inv: invented dates",
    )
    columns = ("article", "quotes", "spkr", "events", "type", "date", "inv", "stances", "pol")
    for i, name in enumerate(columns):
        table.add_column(name, justify="right" if i else "left", no_wrap=True)
    for row in report.articles:
        table.add_row(
            row.article_id if row.status == "ok" else f"{row.article_id} ({row.status})",
            _fmt(row.quotes.exact.f1),
            _fmt(row.quotes.speaker.value),
            _fmt(row.events.matched.f1),
            _fmt(row.events.event_type.value),
            _fmt(row.events.date.accuracy.value),
            str(row.events.date.invented),
            _fmt(row.stances.strict.f1),
            _fmt(row.stances.polarity.value),
        )
    return table
