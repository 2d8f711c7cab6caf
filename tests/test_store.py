"""The output folder: torn-line repair, streaming results, the append-only writer, article texts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extractor.errors import StoreError
from extractor.models import ArticleResult, text_sha256
from extractor.store import (
    RESULTS_FILE,
    ResultsWriter,
    article_text_path,
    iter_results,
    read_article_text,
    repair_results,
    write_article_text,
    write_json_atomic,
)


def result(article_id: str, status: str = "ok") -> ArticleResult:
    return ArticleResult.model_validate(
        {"article_id": article_id, "source": f"in/{article_id}.txt", "sha256": "0" * 64, "status": status}
    )


def line(article_id: str) -> bytes:
    return result(article_id).model_dump_json().encode() + b"\n"


# --------------------------------------------------------------------------- repair_results


def test_repair_missing_and_empty_file(tmp_path: Path) -> None:
    path = tmp_path / RESULTS_FILE
    assert repair_results(path) == 0
    assert not path.exists()
    path.write_bytes(b"")
    assert repair_results(path) == 0
    assert path.read_bytes() == b""


def test_repair_leaves_a_complete_file_alone(tmp_path: Path) -> None:
    path = tmp_path / RESULTS_FILE
    data = line("a") + line("b")
    path.write_bytes(data)
    assert repair_results(path) == 0
    assert path.read_bytes() == data


def test_repair_cuts_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / RESULTS_FILE
    torn = b'{"article_id": "x'
    path.write_bytes(line("a") + line("b") + torn)
    assert repair_results(path) == len(torn)
    assert path.read_bytes() == line("a") + line("b")
    assert repair_results(path) == 0  # idempotent


def test_repair_a_file_that_is_one_torn_line(tmp_path: Path) -> None:
    path = tmp_path / RESULTS_FILE
    path.write_bytes(b'{"article_id": "only", "sour')
    assert repair_results(path) == 28
    assert path.read_bytes() == b""


@pytest.mark.parametrize("torn_size", [65535, 65536, 65537, 200_000])
def test_repair_a_torn_line_longer_than_the_read_block(tmp_path: Path, torn_size: int) -> None:
    path = tmp_path / RESULTS_FILE
    torn = b'{"article_id": "' + b"x" * (torn_size - 16)
    assert len(torn) == torn_size
    path.write_bytes(line("a") + torn)
    assert repair_results(path) == torn_size
    assert path.read_bytes() == line("a")


def test_repair_a_huge_torn_line_with_nothing_before_it(tmp_path: Path) -> None:
    path = tmp_path / RESULTS_FILE
    path.write_bytes(b"y" * 150_000)
    assert repair_results(path) == 150_000
    assert path.read_bytes() == b""


def test_repair_keeps_non_ascii_lines_intact(tmp_path: Path) -> None:
    path = tmp_path / RESULTS_FILE
    good = json.dumps({"article_id": "é", "title": "“Paris” – ünïcode"}, ensure_ascii=False).encode() + b"\n"
    path.write_bytes(good + '{"title": "“Pa'.encode())
    repair_results(path)
    assert path.read_bytes() == good


# --------------------------------------------------------------------------- iter_results


def test_iter_results_skips_a_torn_last_line_and_blank_lines(tmp_path: Path) -> None:
    (tmp_path / RESULTS_FILE).write_bytes(line("a") + b"\n" + line("b") + b'{"article_id": "c", "so')
    assert [r.article_id for r in iter_results(tmp_path)] == ["a", "b"]
    # the folder or the file itself
    assert [r.article_id for r in iter_results(tmp_path / RESULTS_FILE)] == ["a", "b"]


def test_iter_results_does_not_modify_the_file(tmp_path: Path) -> None:
    data = line("a") + b'{"torn'
    (tmp_path / RESULTS_FILE).write_bytes(data)
    list(iter_results(tmp_path))
    assert (tmp_path / RESULTS_FILE).read_bytes() == data


def test_iter_results_names_a_corrupt_middle_line(tmp_path: Path) -> None:
    (tmp_path / RESULTS_FILE).write_bytes(line("a") + b'{"not": "a result"}\n' + line("c"))
    with pytest.raises(
        StoreError, match=r"results.jsonl:2: not an ArticleResult: article_id: Field required"
    ):
        list(iter_results(tmp_path))


def test_iter_results_of_a_missing_folder_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot read results"):
        list(iter_results(tmp_path / "nope"))


# --------------------------------------------------------------------------- ResultsWriter


def test_writer_creates_the_folder_and_flushes_each_line(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "out"
    writer = ResultsWriter(out)
    writer.write(result("a"))
    # readable by another reader before close: each line is flushed as it is written
    assert (out / RESULTS_FILE).read_bytes() == line("a")
    writer.write(result("b", status="error"))
    writer.close()
    writer.close()  # closing twice is harmless
    assert [(r.article_id, r.status) for r in iter_results(out)] == [("a", "ok"), ("b", "error")]


def test_writer_appends_after_repairing_a_torn_line(tmp_path: Path) -> None:
    torn = b'{"article_id": "x'
    (tmp_path / RESULTS_FILE).write_bytes(line("a") + torn)
    with ResultsWriter(tmp_path) as writer:
        assert writer.repaired_bytes == len(torn)
        writer.write(result("b"))
    assert (tmp_path / RESULTS_FILE).read_bytes() == line("a") + line("b")
    for raw in (tmp_path / RESULTS_FILE).read_bytes().splitlines():
        ArticleResult.model_validate_json(raw)


def test_writer_on_an_unusable_folder_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create output folder"):
        ResultsWriter(blocker / "out")


# --------------------------------------------------------------------------- article texts


@pytest.mark.parametrize(
    "bad",
    [
        "../../etc/passwd",
        "../" + "a" * 61,
        "A" * 64,  # upper case is not how sha256 hex is written here
        "a" * 63,
        "a" * 65,
        "g" * 64,
        "",
        "a" * 63 + "/",
    ],
)
def test_article_text_path_rejects_anything_but_a_sha256(tmp_path: Path, bad: str) -> None:
    with pytest.raises(StoreError, match="not a sha256"):
        article_text_path(tmp_path, bad)
    with pytest.raises(StoreError):
        read_article_text(tmp_path, bad)
    with pytest.raises(StoreError):
        write_article_text(tmp_path, bad, "text")


def test_article_text_round_trip_is_exact(tmp_path: Path) -> None:
    text = "“Quoted” – ünïcode\r\nstays as given\u2028and\ttabs "
    sha = text_sha256(text)
    assert read_article_text(tmp_path, sha) is None
    write_article_text(tmp_path, sha, text)
    path = article_text_path(tmp_path, sha)
    assert path == tmp_path / "articles" / f"{sha}.txt"
    assert path.read_bytes() == text.encode("utf-8")
    assert read_article_text(tmp_path, sha) == text
    write_article_text(tmp_path, sha, "a second write of the same sha is a no-op")
    assert read_article_text(tmp_path, sha) == text
    assert sorted(p.name for p in (tmp_path / "articles").iterdir()) == [f"{sha}.txt"]  # no temp files


def test_article_text_that_is_not_utf8_is_a_store_error(tmp_path: Path) -> None:
    sha = "b" * 64
    path = article_text_path(tmp_path, sha)
    path.parent.mkdir()
    path.write_bytes(b"\xff\xfe bad")
    with pytest.raises(StoreError, match="not UTF-8"):
        read_article_text(tmp_path, sha)


def test_write_article_text_into_an_unusable_folder_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "articles").write_text("a file where the folder should be")
    with pytest.raises(StoreError, match="cannot write article text"):
        write_article_text(tmp_path, "c" * 64, "text")


def test_write_json_atomic(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    write_json_atomic(path, {"a": 1, "path": tmp_path, "é": "ü"})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 1, "path": str(tmp_path), "é": "ü"}
    write_json_atomic(path, {"a": 2})
    assert json.loads(path.read_text(encoding="utf-8")) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]
    with pytest.raises(StoreError, match="cannot write"):
        write_json_atomic(tmp_path / "missing" / "run.json", {})
