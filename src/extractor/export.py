"""Flat tables of a run folder for analysts: ``extractor export RUN_DIR --format parquet|csv|jsonl``.

Five tables, one file each in the output folder (``articles.parquet``, ``quotes.parquet``, …):

    articles  one row per article (a retried one's last line): id, source, status, error, title,
              published, item counts, usage
    quotes    one row per grounded quote: speaker, text, cue
    events    one row per grounded event: type, date, summary, location, actors, evidence
    stances   one row per grounded stance: holder, target, polarity, evidence
    rejected  one row per item not kept: words not in the article (span_status "not_found"), or not
              fitting the schema, or an event over max_events (span_status null: not checked)

Every item row names its article (``article_id``, ``source``, ``published``), its position in the
article's list (``item``), where it sits in the article text (``span_status``, ``start``, ``end`` —
code-point offsets, end-exclusive, as in results.jsonl) and the ``model`` and ``prompt_version`` that
produced it. The results are streamed: rows go out in record batches of ``batch_rows``, so memory does
not grow with the number of articles. Written with pyarrow (``pip install 'extractor[export]'``); CSV
has no list type, so ``actors`` is joined with ``"; "`` there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from extractor.errors import ConfigError, StoreError
from extractor.models import ArticleResult
from extractor.store import RunFolder

__all__ = ["FORMATS", "TABLES", "ExportSummary", "Format", "export_run"]

Format = Literal["parquet", "csv", "jsonl"]
FORMATS: tuple[str, ...] = get_args(Format)
TABLES: tuple[str, ...] = ("articles", "quotes", "events", "stances", "rejected")

_Row = dict[str, Any]


def _pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError as exc:
        raise ConfigError(
            "extractor export needs pyarrow: pip install 'extractor[export]' (or pyarrow)"
        ) from exc
    return pyarrow


def _schemas(pa: Any) -> dict[str, Any]:
    """The columns of each table, typed, so an empty table or an all-null column keeps its type."""
    s, i, f, b, d = pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.date32()
    article = [("article_id", s), ("source", s), ("published", d)]
    span = [("span_status", s), ("start", i), ("end", i)]
    made_by = [("model", s), ("prompt_version", s)]
    return {
        "articles": pa.schema(
            [
                ("article_id", s),
                ("source", s),
                ("sha256", s),
                ("status", s),
                ("error_type", s),
                ("error_message", s),
                ("title", s),
                ("published", d),
                ("duplicate_of", s),
                ("events", i),
                ("quotes", i),
                ("stances", i),
                ("rejected", i),
                ("prompt_tokens", i),
                ("completion_tokens", i),
                ("http_calls", i),
                ("cache_hit", b),
                ("chunks", i),
                ("latency_s", f),
                ("model", s),
                ("served_model", s),
                ("prompt_version", s),
            ]
        ),
        "quotes": pa.schema(
            [
                *article,
                ("item", i),
                ("speaker", s),
                ("text", s),
                ("cue", s),
                *span,
                ("occurrences", i),
                *made_by,
            ]
        ),
        "events": pa.schema(
            [
                *article,
                ("item", i),
                ("event_type", s),
                ("date", s),
                ("date_text", s),
                ("summary", s),
                ("location", s),
                ("actors", pa.list_(s)),
                ("evidence", s),
                *span,
                ("occurrences", i),
                *made_by,
            ]
        ),
        "stances": pa.schema(
            [
                *article,
                ("item", i),
                ("holder", s),
                ("target", s),
                ("polarity", s),
                ("evidence", s),
                *span,
                ("occurrences", i),
                *made_by,
            ]
        ),
        "rejected": pa.schema(
            [
                *article,
                ("item", i),
                ("kind", s),
                ("field", s),
                ("text", s),
                ("reason", s),
                ("item_json", s),
                *span,
                *made_by,
            ]
        ),
    }


def _rows(result: ArticleResult) -> dict[str, list[_Row]]:
    """The rows one result line adds to each table."""
    head = {"article_id": result.article_id, "source": result.source, "published": result.published}
    made_by = {"model": result.model, "prompt_version": result.prompt_version}
    error = result.error
    rows: dict[str, list[_Row]] = {
        "articles": [
            {
                "article_id": result.article_id,
                "source": result.source,
                "sha256": result.sha256 or None,
                "status": result.status,
                "error_type": error.type if error else None,
                "error_message": error.message if error else None,
                "title": result.title,
                "published": result.published,
                "duplicate_of": result.duplicate_of,
                "events": len(result.events),
                "quotes": len(result.quotes),
                "stances": len(result.stances),
                "rejected": len(result.rejected),
                "prompt_tokens": result.usage.prompt_tokens,
                "completion_tokens": result.usage.completion_tokens,
                "http_calls": result.usage.http_calls,
                "cache_hit": result.cache_hit,
                "chunks": result.chunks,
                "latency_s": result.latency_s,
                "model": result.model,
                "served_model": result.served_model,
                "prompt_version": result.prompt_version,
            }
        ],
        "quotes": [],
        "events": [],
        "stances": [],
        "rejected": [],
    }
    for n, q in enumerate(result.quotes):
        span = {"span_status": q.span.status, "start": q.span.start, "end": q.span.end}
        item = {"item": n, "speaker": q.speaker, "text": q.text, "cue": q.cue}
        rows["quotes"].append({**head, **item, **span, "occurrences": q.span.occurrences, **made_by})
    for n, e in enumerate(result.events):
        span = {"span_status": e.span.status, "start": e.span.start, "end": e.span.end}
        event: dict[str, Any] = {
            "item": n,
            "event_type": e.event_type,
            "date": e.date,
            "date_text": e.date_text,
            "summary": e.summary,
            "location": e.location,
            "actors": list(e.actors),
            "evidence": e.evidence,
        }
        rows["events"].append({**head, **event, **span, "occurrences": e.span.occurrences, **made_by})
    for n, st in enumerate(result.stances):
        span = {"span_status": st.span.status, "start": st.span.start, "end": st.span.end}
        item = {"item": n, "holder": st.holder, "target": st.target, "polarity": st.polarity}
        item["evidence"] = st.evidence
        rows["stances"].append({**head, **item, **span, "occurrences": st.span.occurrences, **made_by})
    for n, r in enumerate(result.rejected):
        text = r.item.get(r.field)
        rows["rejected"].append(
            {
                **head,
                "item": n,
                "kind": r.kind,
                "field": r.field,
                "text": text if isinstance(text, str) else None,
                "reason": r.reason,
                "item_json": json.dumps(r.item, ensure_ascii=False, sort_keys=True),
                "span_status": "not_found" if r.not_in_article else None,
                "start": None,
                "end": None,
                **made_by,
            }
        )
    return rows


class _Sink:
    """One table's file, written a record batch at a time."""

    def __init__(self, pa: Any, fmt: str, path: Path, schema: Any) -> None:
        self.pa, self.fmt, self.path, self.schema = pa, fmt, path, schema
        self.rows = 0
        self._writer: Any = None
        self._fh: Any = None
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(str(path), schema)
        elif fmt == "csv":
            import pyarrow.csv as pcsv

            self._csv_schema = pa.schema(
                [pa.field(f.name, pa.string()) if pa.types.is_list(f.type) else f for f in schema]
            )
            self._writer = pcsv.CSVWriter(str(path), self._csv_schema)
        else:
            self._fh = path.open("w", encoding="utf-8", newline="\n")

    def write(self, rows: list[_Row]) -> None:
        if not rows:
            return
        batch = self.pa.RecordBatch.from_pylist(rows, schema=self.schema)
        self.rows += batch.num_rows
        if self.fmt == "parquet":
            self._writer.write_batch(batch)
        elif self.fmt == "csv":
            columns = []
            for column, f in zip(batch.columns, self.schema, strict=True):
                if self.pa.types.is_list(f.type):
                    column = self.pa.array(
                        [None if v is None else "; ".join(v) for v in column.to_pylist()], self.pa.string()
                    )
                columns.append(column)
            self._writer.write_batch(self.pa.RecordBatch.from_arrays(columns, schema=self._csv_schema))
        else:
            for row in batch.to_pylist():
                self._fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._fh is not None:
            self._fh.close()


@dataclass
class ExportSummary:
    """What ``export_run`` wrote: the file and row count of each table."""

    out_dir: Path
    format: str
    files: dict[str, Path] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


def export_run(
    run_dir: str | Path,
    out_dir: str | Path,
    fmt: str = "parquet",
    *,
    batch_rows: int = 2048,
) -> ExportSummary:
    """Write the five tables of the run in ``run_dir`` (a run folder or a results.jsonl) into
    ``out_dir`` as ``fmt``; return the files and row counts. Rows are buffered ``batch_rows`` at a time
    per table, so memory is flat in the number of articles."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if batch_rows < 1:
        raise ConfigError(f"batch_rows must be positive, got {batch_rows}")
    run = Path(run_dir)
    folder = RunFolder(run)
    source = folder.results_path
    if not source.is_file():
        raise ConfigError(f"no results to export: {source} does not exist (is {run} a run folder?)")
    pa = _pyarrow()
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create export folder {out}: {exc.strerror or exc}") from exc
    schemas = _schemas(pa)
    summary = ExportSummary(out_dir=out, format=fmt)
    sinks: dict[str, _Sink] = {}
    try:
        for table in TABLES:
            path = out / f"{table}.{fmt}"
            sinks[table] = _Sink(pa, fmt, path, schemas[table])
            summary.files[table] = path
        buffers: dict[str, list[_Row]] = {table: [] for table in TABLES}
        for result in folder.iter_results():
            for table, rows in _rows(result).items():
                buffer = buffers[table]
                buffer.extend(rows)
                if len(buffer) >= batch_rows:
                    sinks[table].write(buffer)
                    buffer.clear()
        for table, buffer in buffers.items():
            sinks[table].write(buffer)
    except OSError as exc:
        raise StoreError(f"cannot write the export into {out}: {exc.strerror or exc}") from exc
    finally:
        for sink in sinks.values():
            sink.close()
    summary.rows = {table: sink.rows for table, sink in sinks.items()}
    return summary
