"""RunFolder: one home for the names in a run folder, and results.jsonl read once per command."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from extractor import cli, store
from extractor.models import ArticleResult
from extractor.store import RESULTS_FILE, RunFolder

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"

# Every open of a results.jsonl while ``_READS`` is a list (an audit hook cannot be removed, so it is
# installed once and does nothing in between): counted at the OS level, whoever opens the file.
_READS: list[str] | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    path = args[0] if event == "open" and args else None
    if _READS is not None and isinstance(path, str | os.PathLike) and os.fspath(path).endswith(RESULTS_FILE):
        _READS.append(os.fspath(path))


sys.addaudithook(_audit)


@pytest.fixture
def reads() -> Iterator[list[str]]:
    global _READS
    _READS = []
    try:
        yield _READS
    finally:
        _READS = None


@pytest.fixture(scope="module")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seeds") / "out"
    assert cli.main(["run", str(SEEDS), "--out", str(out), "--quiet"]) == 0
    return out


@pytest.fixture
def run_copy(seed_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(seed_run, out)
    return out


@pytest.mark.parametrize(
    ("argv", "times"),
    [
        pytest.param(["report", "{out}"], 1, id="report, no digest.json yet (built and saved)"),
        pytest.param(["digest", "{out}"], 1, id="digest"),
        pytest.param(["eval", "{out}", "--json", "{tmp}/scores.json"], 1, id="eval"),
        # Export streams: a first pass notes each line's source (to leave out superseded lines), a
        # second parses the results, never all held at once.
        pytest.param(
            ["export", "{out}", "--format", "csv", "--out", "{tmp}/tables"],
            2,
            id="export",
            marks=pytest.mark.skipif(find_spec("pyarrow") is None, reason="export needs pyarrow"),
        ),
    ],
)
def test_each_command_reads_results_jsonl_once(
    run_copy: Path, tmp_path: Path, reads: list[str], argv: list[str], times: int
) -> None:
    args = [a.format(out=run_copy, tmp=tmp_path) for a in argv]
    assert cli.main(args) == 0
    assert reads == [str(run_copy / RESULTS_FILE)] * times


def test_report_with_a_stale_digest_still_reads_results_once(run_copy: Path, reads: list[str]) -> None:
    assert cli.main(["digest", str(run_copy)]) == 0
    with (run_copy / RESULTS_FILE).open("ab") as fh:  # the digest no longer matches the results
        fh.write(b"\n")
    reads.clear()
    assert cli.main(["report", str(run_copy)]) == 0
    assert reads == [str(run_copy / RESULTS_FILE)]


def test_a_run_folder_names_every_file_and_takes_a_results_path_too(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    assert folder.results_path == tmp_path / "results.jsonl"
    assert (folder.run_json, folder.runs_jsonl) == (tmp_path / "run.json", tmp_path / "runs.jsonl")
    assert (folder.report, folder.digest) == (tmp_path / "report.html", tmp_path / "digest.json")
    assert folder.index.name == ".index.sqlite" and folder.compact_scratch.name == ".compact.sqlite"
    assert folder.ray_scratch.name == ".ray-results.sqlite" and folder.batch_api.name == "batch_api"
    assert folder.articles == tmp_path / "articles"
    other = tmp_path / "elsewhere.jsonl"
    assert (RunFolder(other).path, RunFolder(other).results_path) == (tmp_path, other)
    assert RunFolder.of(folder) is folder
    import extractor.batch

    assert extractor.batch._OWN_FILES == RunFolder.OWN_FILES
    assert {"report.html", "digest.json", ".index.sqlite"} <= set(RunFolder.OWN_FILES)


def test_results_and_their_fingerprint_come_from_one_read(run_copy: Path, reads: list[str]) -> None:
    from extractor.digest import results_fingerprint

    folder = RunFolder(run_copy)
    with (run_copy / RESULTS_FILE).open("ab") as fh:
        fh.write(b'{"torn": ')  # a torn last line: neither parsed nor fingerprinted
    reads.clear()
    results = folder.results()
    assert folder.results() is results and len(results) == 5
    assert folder.fingerprint() == results_fingerprint(folder)
    assert len(reads) == 1
    data = (run_copy / RESULTS_FILE).read_bytes()
    complete = data[: data.rindex(b"\n") + 1]
    assert folder.fingerprint()[1] == len(complete)
    assert [r.article_id for r in store.iter_results(run_copy)] == [r.article_id for r in results]


def test_of_several_lines_of_one_source_results_keep_the_last_where_it_stands(run_copy: Path) -> None:
    """A service job's results.jsonl is append-only: an article retried after a restart has two lines.
    Every reader of the folder (page, digest, eval, export, ``iter_results``) sees the later one only,
    where it stands, as compaction would keep."""
    path = run_copy / RESULTS_FILE
    lines = path.read_bytes().splitlines(keepends=True)
    retried = ArticleResult.model_validate_json(lines[1]).model_copy(update={"status": "error"})
    path.write_bytes(b"".join([lines[0], lines[1], *lines[2:], retried.model_dump_json().encode() + b"\n"]))
    results = RunFolder(run_copy).results()
    sources = [r.source for r in results]
    assert len(results) == 5 and len(set(sources)) == 5
    assert sources[-1] == retried.source and results[-1].status == "error"
    streamed = list(store.iter_results(run_copy))
    assert [r.model_dump() for r in streamed] == [r.model_dump() for r in results]
    assert [r.source for r in RunFolder(run_copy).iter_results()] == sources


def test_the_latest_line_of_a_source_is_found_however_the_line_is_written(tmp_path: Path) -> None:
    """Sources with quotes, backslashes and non-ASCII text, as this package writes a line (its first two
    keys read without parsing the rest) and with the keys in another order (a line another tool wrote)."""
    sources = ['say "hi".txt', "back\\slash\\", "ü/“quoted”.txt", "plain.txt"]
    lines = []
    for n, source in enumerate(sources * 2):
        data = {"article_id": f"a{n}", "source": source, "sha256": f"{n:064x}", "status": "ok"}
        result = ArticleResult.model_validate(data)
        if n == 3:  # the first line of "plain.txt", written keys first-to-last reversed
            lines.append(json.dumps(dict(reversed(list(result.model_dump().items())))))
        else:
            lines.append(result.model_dump_json())
    (tmp_path / RESULTS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    streamed = [(r.article_id, r.source) for r in store.iter_results(tmp_path)]
    assert streamed == [(f"a{n}", source) for n, source in enumerate(sources, start=4)]
    assert streamed == [(r.article_id, r.source) for r in RunFolder(tmp_path).results()]
