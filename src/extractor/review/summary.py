"""The page's summary: totals of the results, the grounded-vs-rejected chart, the run lines, run.json and
the run history, and the contents table's rows."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from extractor.models import ArticleResult, SpanStatus
from extractor.review.article import Counts
from extractor.review.marks import KINDS, items_of, shorten

__all__ = ["fmt", "summary_context"]

_STATUSES: tuple[SpanStatus, ...] = ("exact", "normalized", "elided")
_CHART_CLASSES = ("ex", "no", "el", "rj")
_CHART_NAMES = (*_STATUSES, "rejected")
_HISTORY_SHOWN = 20
_HISTORY_COLUMNS = (
    ("articles", "articles"),
    ("ok", "ok"),
    ("skipped", "skipped"),
    ("failed", "failed"),
    ("http_calls", "HTTP calls"),
    ("tokens", "tokens"),
    ("wall_s", "wall"),
)


def fmt(key: str, value: Any) -> str:
    """A run.json value as the page shows it (``key`` tells costs and durations apart)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if "cost" in key or key.endswith("usd"):
            return f"${value:,.4f}"
        if key.endswith("_s") or key.endswith("seconds"):
            return f"{value:,.2f} s"
        return f"{value:,.4g}"
    if isinstance(value, Mapping) and all(not isinstance(v, Mapping | list) for v in value.values()):
        return " · ".join(f"{k} {fmt(str(k), v)}" for k, v in value.items())
    if isinstance(value, Mapping | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _by_kind(results: Sequence[ArticleResult]) -> dict[str, tuple[list[int], int]]:
    """Per item kind: the number of exact, normalized and elided items, and of rejected ones."""
    out: dict[str, tuple[list[int], int]] = {}
    for kind in KINDS:
        statuses = [x.span.status for r in results for k, _, x in items_of(r) if k == kind]
        rejected = sum(rej.kind == kind for r in results for rej in r.rejected)
        out[kind] = ([statuses.count(st) for st in _STATUSES], rejected)
    return out


@dataclass(frozen=True, slots=True)
class Bar:
    cls: str
    name: str
    x: str
    width: str
    value: int


@dataclass(frozen=True, slots=True)
class ChartRow:
    kind: str
    y: int
    bars: list[Bar]
    label: str


def _chart(by_kind: Mapping[str, tuple[list[int], int]]) -> dict[str, Any]:
    """An inline SVG's geometry: per item kind, grounded (exact / normalized / elided) vs rejected."""
    values = {kind: [*grounded, rejected] for kind, (grounded, rejected) in by_kind.items()}
    top = max((sum(v) for v in values.values()), default=0) or 1
    width, left, bar = 360, 60, 18
    rows = []
    for n, (kind, counts) in enumerate(values.items()):
        x = float(left)
        bars = []
        for cls, name, v in zip(_CHART_CLASSES, _CHART_NAMES, counts, strict=True):
            if v:
                w = v / top * width
                bars.append(Bar(cls, name, f"{x:.1f}", f"{w:.1f}", v))
                x += w
        label = f"{sum(counts[:3])} grounded, {counts[3]} rejected"
        rows.append(ChartRow(kind, n * (bar + 8), bars, label))
    legend_y = len(rows) * (bar + 8) + 12
    legend = [
        (cls, name, left + 90 * i)
        for i, (cls, name) in enumerate(zip(_CHART_CLASSES, _CHART_NAMES, strict=True))
    ]
    return {
        "width": left + width + 170,
        "height": len(rows) * (bar + 8) + 26,
        "bar": bar,
        "label_x": left + width + 6,
        "rows": rows,
        "legend": legend,
        "legend_y": legend_y,
    }


def _computed(
    results: Sequence[ArticleResult], counts: Sequence[Counts], by_kind: Mapping[str, tuple[list[int], int]]
) -> list[tuple[str, str]]:
    """The summary of the results on the page (whatever run, or runs, produced them)."""

    def kind_line(kind: str, total: int) -> str:
        grounded, rejected = by_kind[kind]
        parts = [f"{n:,} {st}" for n, st in zip(grounded, _STATUSES, strict=True)]
        if kind != "quote" and not any(grounded[1:]):
            parts = [f"{total:,}"]
        return " · ".join([*parts, f"{rejected:,} rejected"])

    ok, failed, duplicates = _tally(results)
    prompt = sum(r.usage.prompt_tokens for r in results)
    completion = sum(r.usage.completion_tokens for r in results)
    rows = [
        ("articles", f"{len(results):,}"),
        ("ok / failed", f"{ok:,} / {failed:,}" + (f" · {duplicates:,} duplicates" if duplicates else "")),
        ("quotes", kind_line("quote", sum(c.quotes for c in counts))),
        ("events", kind_line("event", sum(c.events for c in counts))),
        ("stances", kind_line("stance", sum(c.stances for c in counts))),
        ("tokens", f"{prompt + completion:,} ({prompt:,} prompt + {completion:,} completion)"),
    ]
    models = sorted({r.model for r in results if r.model})
    if models:
        rows.append(("model", ", ".join(models)))
    return rows


def _tally(results: Sequence[ArticleResult]) -> tuple[int, int, int]:
    ok = sum(r.status == "ok" for r in results)
    failed = sum(r.status == "error" for r in results)
    return ok, failed, sum(r.duplicate_of is not None for r in results)


def _runs_word(n: int) -> str:
    return f"{n:,} run{'' if n == 1 else 's'}"


def _when(stamp: object) -> str | None:
    """``2026-01-06T10:00:00Z`` as ``2026-01-06 10:00:00 UTC``."""
    if not isinstance(stamp, str) or not stamp.endswith("Z") or "T" not in stamp:
        return None
    return stamp[:-1].replace("T", " ") + " UTC"


def _folder_line(
    results: Sequence[ArticleResult], summary: Mapping[str, Any] | None, history: Sequence[Mapping[str, Any]]
) -> str:
    """What the folder holds: the results on this page, and how many runs made them."""
    ok, failed, duplicates = _tally(results)
    folder = f"{len(results):,} articles · {ok:,} ok · {failed:,} failed"
    if duplicates:
        folder += f" · {duplicates:,} duplicate{'' if duplicates == 1 else 's'}"
    recorded = summary.get("folder") if summary else None
    runs = len(history) or (recorded.get("runs") if isinstance(recorded, Mapping) else None)
    if isinstance(runs, int) and runs:
        folder += f" — the results of {_runs_word(runs)}"
    return folder


def _last_run_line(summary: Mapping[str, Any]) -> str:
    """What the last run did (run.json: articles it skipped as done are not counted as ok)."""
    failed_key = "failed" if "failed" in summary else "errors"
    gist = [
        f"{fmt(key, summary[key])} {label}".strip()
        for key, label in (
            ("articles", "articles"),
            ("ok", "ok"),
            ("skipped", "skipped as already done"),
            (failed_key, "failed"),
            ("wall_s", ""),
        )
        if key in summary
    ]
    if summary.get("stopped_by"):
        gist.append(f"stopped by {summary['stopped_by']}")
    elif summary.get("interrupted"):
        gist.append("interrupted")
    return " · ".join(gist) or "no figures in run.json"


def _history(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The last runs of runs.jsonl, newest last."""
    shown = history[-_HISTORY_SHOWN:]
    rows = [
        (
            _when(run.get("finished_at")) or "—",
            [fmt(key, run.get(key)) for key, _ in _HISTORY_COLUMNS],
            f"stopped by {run['stopped_by']}" if run.get("stopped_by") else "",
        )
        for run in shown
    ]
    more = f"The last {len(shown):,} of {_runs_word(len(history))}." if len(history) > len(shown) else ""
    return {"columns": [label for _, label in _HISTORY_COLUMNS], "rows": rows, "more": more}


def _last_run_title(summary: Mapping[str, Any] | None, history: Sequence[Mapping[str, Any]]) -> str:
    if summary and history:
        return f"Run history ({_runs_word(len(history))}, runs.jsonl) and the last run in full (run.json)"
    return "Last run in full (run.json)" if summary else "Run history"


@dataclass(frozen=True, slots=True)
class TocRow:
    pos: int
    result: ArticleResult
    title: str
    state: str
    counts: Counts


def _toc(results: Sequence[ArticleResult], counts: Sequence[Counts]) -> dict[str, Any]:
    top = max((c.grounded + c.rejected for c in counts), default=0) or 1
    rows = [
        TocRow(
            pos,
            result,
            shorten(result.title, 60) if result.title else "",
            "error" if result.status == "error" else "duplicate" if result.duplicate_of else "ok",
            c,
        )
        for pos, (result, c) in enumerate(zip(results, counts, strict=True), start=1)
    ]
    return {"top": top, "rows": rows}


def summary_context(
    results: Sequence[ArticleResult],
    counts: Sequence[Counts],
    summary: Mapping[str, Any] | None,
    history: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The template variables of the summary section and the contents table."""
    by_kind = _by_kind(results)
    return {
        "folder_line": _folder_line(results, summary, history),
        "last_run_line": _last_run_line(summary) if summary else None,
        "finished": _when(summary.get("finished_at")) if summary else None,
        "computed": _computed(results, counts, by_kind),
        "chart": _chart(by_kind),
        "last_run_title": _last_run_title(summary, history),
        "history": _history(history) if history else None,
        "run_rows": [(k.replace("_", " "), fmt(k, v)) for k, v in summary.items()] if summary else [],
        "toc": _toc(results, counts),
    }
