"""The counters of a run (``RunSummary``, what run.json holds), the folder totals, and what a reporter
is told (``BatchReporter``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from extractor.models import ArticleResult, add_cost

__all__ = ["BatchReporter", "RunSummary"]


@dataclass
class RunSummary:
    """The counters written to run.json."""

    articles: int = 0
    ok: int = 0
    errors: int = 0
    load_errors: int = 0
    skipped: int = 0
    duplicates: int = 0
    cache_hits: int = 0
    quotes_exact: int = 0
    quotes_normalized: int = 0
    quotes_elided: int = 0
    quotes_unattributed: int = 0  # kept quotes whose speaker the article does not name (speaker null)
    partial: int = 0  # ok articles with a failed chunk (ArticleResult.chunk_errors); redone next run
    rejected: int = 0
    rejected_quotes: int = 0
    events: int = 0
    stances: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    http_calls: int = 0
    cost_usd: float | None = 0.0
    wall_s: float = 0.0
    articles_per_min: float = 0.0
    model: str | None = None
    prompt_version: str | None = None
    repaired_bytes: int = 0
    compacted_lines: int = 0
    interrupted: bool = False
    stopped_by: str | None = None  # "SIGINT" (Ctrl-C) or "SIGTERM" when a signal stopped the run
    error_types: dict[str, int] = field(default_factory=dict)
    rate_limiter: dict[str, Any] = field(default_factory=dict)
    started_at: str | None = None  # UTC, ISO 8601
    finished_at: str | None = None
    # The folder's totals after this run (results.jsonl, one result per input, and the runs so far),
    # as opposed to the counters above, which are this run's alone.
    folder: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        return self.errors + self.load_errors

    def add(self, result: ArticleResult, price: tuple[float, float] | None) -> None:
        if result.status == "ok":
            self.ok += 1
        else:
            self.errors += 1
            kind = result.error.type if result.error else "Error"
            self.error_types[kind] = self.error_types.get(kind, 0) + 1
        if result.duplicate_of:
            self.duplicates += 1
        if result.cache_hit:
            self.cache_hits += 1
        for quote in result.quotes:
            status = quote.span.status
            if status == "exact":
                self.quotes_exact += 1
            elif status == "normalized":
                self.quotes_normalized += 1
            elif status == "elided":
                self.quotes_elided += 1
            if quote.speaker is None:
                self.quotes_unattributed += 1
        if result.chunk_errors:
            self.partial += 1
        self.rejected += len(result.rejected)
        self.rejected_quotes += sum(1 for r in result.rejected if r.kind == "quote")
        self.events += len(result.events)
        self.stances += len(result.stances)
        self.prompt_tokens += result.usage.prompt_tokens
        self.completion_tokens += result.usage.completion_tokens
        self.http_calls += result.usage.http_calls
        self.cost_usd = add_cost(self.cost_usd, result.usage.cost(price))

    def as_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data["tokens"] = self.prompt_tokens + self.completion_tokens
        data["failed"] = self.failed
        if self.cost_usd is not None:
            data["cost_usd"] = round(self.cost_usd, 6)
        return data


class BatchReporter(Protocol):
    def start(self, out_dir: Path) -> None: ...
    def article(self, result: ArticleResult, outcome: str, summary: RunSummary) -> None: ...
    def finish(self, summary: RunSummary) -> None: ...


class NullReporter:
    """Reports nothing: the default of library callers (the command's reporters, plain log lines and a
    progress bar, are ``extractor.cli.progress``)."""

    def start(self, out_dir: Path) -> None:
        return None

    def article(self, result: ArticleResult, outcome: str, summary: RunSummary) -> None:
        return None

    def finish(self, summary: RunSummary) -> None:
        return None


_FOLDER_KEYS = ("articles", "ok", "failed", "duplicates", "quotes", "events", "stances", "rejected")


def _tally(data: dict[str, Any]) -> tuple[int, ...]:
    """One result line's share of the folder totals (in the order of _FOLDER_KEYS)."""

    def count(key: str) -> int:
        items = data.get(key)
        return len(items) if isinstance(items, list) else 0

    ok = data.get("status") == "ok"
    kinds = (count("quotes"), count("events"), count("stances"), count("rejected"))
    return (1, int(ok), int(not ok), int(bool(data.get("duplicate_of"))), *kinds)


def _folder_of(summary: RunSummary) -> dict[str, int]:
    """The folder totals when every line of results.jsonl is this run's."""
    quotes = summary.quotes_exact + summary.quotes_normalized + summary.quotes_elided
    return {
        "articles": summary.ok + summary.failed,
        "ok": summary.ok,
        "failed": summary.failed,
        "duplicates": summary.duplicates,
        "quotes": quotes,
        "events": summary.events,
        "stances": summary.stances,
        "rejected": summary.rejected,
    }


def _merge(total: RunSummary, part: RunSummary) -> None:
    """Add the counters of ``part`` (one watch round) to ``total``."""
    for key, value in part.__dict__.items():
        if isinstance(value, int) and not isinstance(value, bool):
            setattr(total, key, getattr(total, key) + value)
    for kind, count in part.error_types.items():
        total.error_types[kind] = total.error_types.get(kind, 0) + count
    total.cost_usd = add_cost(total.cost_usd, part.cost_usd)
    total.interrupted = total.interrupted or part.interrupted
    total.rate_limiter = part.rate_limiter
    total.folder = part.folder  # the folder's totals after the latest round
