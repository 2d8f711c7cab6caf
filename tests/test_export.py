"""extractor export: flat tables of a run (articles, quotes, events, stances, rejected) with pyarrow, and
the README's DuckDB queries over them, run exactly as written."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from extractor import cli
from extractor.export import TABLES, export_run
from extractor.models import ArticleResult
from extractor.store import ResultsWriter, iter_results, read_article_text

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
_EVENT = {
    "event_type": "CONSULT",
    "date": None,
    "date_text": None,
    "location": None,
    "actors": ["A"],
    "evidence": "e",
    "span": {"status": "exact", "start": 0, "end": 1},
}


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["EXTRACTOR_CACHE_DIR"] = str(out.parent / "cache")
    done = subprocess.run(
        [sys.executable, "-m", "extractor", "run", str(SEEDS), "--out", str(out), "-q"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return out


def test_parquet_tables_hold_one_row_per_item_with_offsets_into_the_article(
    seed_run: Path, tmp_path: Path
) -> None:
    summary = export_run(seed_run, tmp_path / "t", "parquet")
    results = list(iter_results(seed_run))
    assert set(summary.files) == set(TABLES)
    assert summary.rows["articles"] == len(results)
    for kind in ("quotes", "events", "stances", "rejected"):
        assert summary.rows[kind] == sum(len(getattr(r, kind)) for r in results), kind
    assert summary.rows["quotes"] > 0 and summary.rows["events"] > 0 and summary.rows["stances"] > 0

    quotes = pq.read_table(summary.files["quotes"]).to_pylist()
    by_id = {r.article_id: r for r in results}
    for row in quotes:
        result = by_id[row["article_id"]]
        original = result.quotes[row["item"]]
        assert (row["speaker"], row["text"], row["span_status"]) == (
            original.speaker,
            original.text,
            original.span.status,
        )
        assert (row["start"], row["end"]) == (original.span.start, original.span.end)
        assert row["model"] == result.model and row["prompt_version"] == result.prompt_version
        assert row["source"] == result.source
        if row["span_status"] == "exact":
            text = read_article_text(seed_run, result.sha256)
            assert text is not None and text[row["start"] : row["end"]] == row["text"]
    events = pq.read_table(summary.files["events"])
    assert events.schema.field("actors").type == pa.list_(pa.string())
    assert events.schema.field("published").type == pa.date32()
    first = events.to_pylist()[0]
    original_event = by_id[first["article_id"]].events[first["item"]]
    assert first["actors"] == original_event.actors and first["event_type"] == original_event.event_type


def test_csv_and_jsonl_hold_the_same_rows(seed_run: Path, tmp_path: Path) -> None:
    parquet = export_run(seed_run, tmp_path / "p", "parquet")
    as_csv = export_run(seed_run, tmp_path / "c", "csv")
    as_jsonl = export_run(seed_run, tmp_path / "j", "jsonl")
    assert parquet.rows == as_csv.rows == as_jsonl.rows
    expected = pq.read_table(parquet.files["events"]).to_pylist()
    with as_csv.files["events"].open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["evidence"] for r in rows] == [e["evidence"] for e in expected]
    assert [r["actors"] for r in rows] == ["; ".join(e["actors"]) for e in expected]
    lines = as_jsonl.files["stances"].read_text(encoding="utf-8").splitlines()
    stances = pq.read_table(parquet.files["stances"]).to_pylist()
    assert [json.loads(line)["target"] for line in lines] == [s["target"] for s in stances]


def test_an_empty_run_gives_empty_typed_tables(tmp_path: Path) -> None:
    run = tmp_path / "run"
    ResultsWriter(run).close()
    summary = export_run(run, tmp_path / "t", "parquet")
    assert all(n == 0 for n in summary.rows.values())
    assert pq.read_table(summary.files["quotes"]).schema.field("start").type == pa.int64()


def test_errors_and_rejected_items_are_rows(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with ResultsWriter(run) as writer:
        writer.write(
            ArticleResult.model_validate(
                {
                    "article_id": "a",
                    "source": "a.txt",
                    "sha256": "0" * 64,
                    "status": "ok",
                    "rejected": [
                        {
                            "kind": "quote",
                            "field": "text",
                            "item": {"text": "never said", "speaker": "X", "cue": None},
                            "reason": "not in the article",
                        },
                        {
                            "kind": "event",
                            "field": "evidence",
                            "item": {"evidence": "the council met"},
                            "reason": "over max_events (1)",
                        },
                        {
                            "kind": "quote",
                            "field": "speaker",
                            "item": {"text": "x", "speaker": 3},
                            "reason": "schema: speaker: Input should be a valid string",
                        },
                    ],
                }
            )
        )
        writer.write(
            ArticleResult.model_validate(
                {
                    "article_id": "b",
                    "source": "b.txt",
                    "sha256": "1" * 64,
                    "status": "error",
                    "error": {"type": "LLMError", "message": "boom"},
                }
            )
        )
    summary = export_run(run, tmp_path / "t", "parquet")
    rejected = pq.read_table(summary.files["rejected"]).to_pylist()
    assert [(r["article_id"], r["text"], r["span_status"], r["start"]) for r in rejected] == [
        ("a", "never said", "not_found", None),
        ("a", "the council met", None, None),  # over the event limit: it was not checked as missing
        ("a", None, None, None),  # a schema reject
    ]
    articles = pq.read_table(summary.files["articles"]).to_pylist()
    assert [(a["status"], a["error_type"]) for a in articles] == [("ok", None), ("error", "LLMError")]


def test_an_article_retried_in_an_append_only_folder_is_exported_once_as_last_line(tmp_path: Path) -> None:
    """A service job's results.jsonl keeps every line: the first try of an article that failed and was
    retried is not a row (nor its items), and a torn last line (a kill) is left out."""
    run = tmp_path / "run"

    def line(article_id: str, status: str, summary: str | None = None) -> ArticleResult:
        events = [] if summary is None else [{**_EVENT, "summary": summary}]
        error = {"type": "LLMError", "message": "boom"} if status == "error" else None
        data = {"source": f"{article_id}.txt", "sha256": article_id * 64, "status": status, "error": error}
        return ArticleResult.model_validate({"article_id": article_id, **data, "events": events})

    with ResultsWriter(run) as writer:
        writer.write(line("a", "error"))
        writer.write(line("b", "ok", "first b"))
        writer.write(line("a", "ok", "retried a"))
    with (run / "results.jsonl").open("a", encoding="utf-8") as fh:
        fh.write(line("b", "ok", "torn").model_dump_json()[:40])

    summary = export_run(run, tmp_path / "t", "csv")

    assert summary.rows["articles"] == 2
    with summary.files["articles"].open(encoding="utf-8", newline="") as fh:
        assert [(r["article_id"], r["status"]) for r in csv.DictReader(fh)] == [("b", "ok"), ("a", "ok")]
    with summary.files["events"].open(encoding="utf-8", newline="") as fh:
        assert [r["summary"] for r in csv.DictReader(fh)] == ["first b", "retried a"]


def test_bad_input_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["export", str(tmp_path / "nothing")]) == 2
    assert "no results to export" in capsys.readouterr().err
    ResultsWriter(tmp_path / "run").close()
    with pytest.raises(SystemExit):
        cli.main(["export", str(tmp_path / "run"), "--format", "xlsx"])


def test_cli_export_writes_into_the_run_folder_by_default(
    seed_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["export", str(seed_run), "--format", "csv"]) == 0
    printed = capsys.readouterr().out
    for table in TABLES:
        assert (seed_run / "export" / f"{table}.csv").is_file()
        assert table in printed


def test_memory_is_flat_in_the_number_of_articles(tmp_path: Path) -> None:
    """Rows go out in record batches: exporting 10x the articles does not take 10x the memory."""
    item = {
        "summary": "x",
        "event_type": "AGREE",
        "date": None,
        "date_text": None,
        "location": None,
        "actors": ["A", "B"],
        "evidence": "e" * 200,
        "span": {"status": "exact", "start": 0, "end": 200},
    }

    def peak(n: int) -> int:
        run = tmp_path / f"run{n}"
        with ResultsWriter(run) as writer:
            for i in range(n):
                line = {"article_id": f"a{i}", "source": f"{i}.txt", "sha256": "0" * 64, "status": "ok"}
                writer.write(ArticleResult.model_validate({**line, "events": [item] * 5}))
        tracemalloc.start()
        export_run(run, tmp_path / f"t{n}", "parquet", batch_rows=256)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(400), peak(4000)
    assert large < small * 2, (small, large)


def _readme_queries() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Querying the tables with DuckDB", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, re.DOTALL)


def test_the_readme_duckdb_queries_work_as_written(seed_run: Path, tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    queries = _readme_queries()
    assert len(queries) == 3
    summary = export_run(seed_run, tmp_path / "export", "parquet")
    results = list(iter_results(seed_run))
    here = Path.cwd()
    os.chdir(summary.out_dir)  # the README's queries name the files relative to the export folder
    try:
        con = duckdb.connect()
        by_speaker, by_type, by_holder = (con.execute(q).fetchall() for q in queries)
    finally:
        os.chdir(here)
    assert sum(row[1] for row in by_speaker) == sum(len(r.quotes) for r in results)
    assert sum(row[2] for row in by_type) == sum(len(r.events) for r in results)
    assert sum(row[3] for row in by_holder) == sum(len(r.stances) for r in results)
    speakers = {q.speaker for r in results for q in r.quotes}
    assert {row[0] for row in by_speaker} == speakers


def test_importing_the_library_and_the_cli_pulls_in_neither_ray_nor_pyarrow() -> None:
    code = (
        "import sys, extractor, extractor.cli, extractor.pipeline, extractor.batch, extractor.cache; "
        "extractor.cli.build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'pyarrow')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
