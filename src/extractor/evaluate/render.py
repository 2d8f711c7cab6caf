"""The evaluation as rich tables (``extractor eval``)."""

from __future__ import annotations

from rich import box
from rich.table import Table

from extractor.evaluate.scores import EvalReport, metric_sections


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _cell(value: float | None, detail: str) -> str:
    return f"{_fmt(value)} [dim]{detail}[/dim]" if detail else _fmt(value)


def _summary(report: EvalReport, label: str | None) -> str:
    prefix = f"{label}: " if label else ""
    where = f" ({report.results})" if report.results else ""
    return (
        f"{prefix}{len(report.articles)} gold articles{where}, {len(report.unscored)} unscored, "
        f"{len(report.missing)} missing, {len(report.errors)} errors, {len(report.warnings)} warnings"
    )


def summary_lines(
    report: EvalReport, other: EvalReport | None = None, labels: tuple[str, str] = ("A", "B")
) -> list[str]:
    """What was scored: one line per run (gold articles, results file, unscored / missing / errors)."""
    if other is None:
        return [_summary(report, None)]
    return [_summary(report, labels[0]), _summary(other, labels[1])]


def render_table(
    report: EvalReport,
    other: EvalReport | None = None,
    labels: tuple[str, str] = ("A", "B"),
    *,
    caption: bool = True,
) -> Table:
    """Micro-averaged totals as a rich table; with ``other``, both runs side by side and B − A.
    ``caption``: put ``summary_lines`` under the table."""
    table = Table(title="Evaluation against gold")
    table.add_column("metric")
    table.add_column(labels[0] if other is not None else "value", justify="right")
    if caption:
        table.caption = "\n".join(summary_lines(report, other, labels))
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


def render_articles(report: EvalReport) -> Table:
    """One row per gold article, narrow enough for 80 columns: F1 of quotes (exact), events and stances
    (strict); accuracy of speakers, event types, dates and polarities; invented dates (a count). An
    article whose result is missing or an error says so after its id."""
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
