"""Remote input paths (``scheme://`` URIs read through pyarrow), tested with ``file://`` URIs: pyarrow's
local filesystem through ``FileSystem.from_uri``, the same code path as ``s3://`` or ``gs://``."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from extractor.articles import RemoteFile, is_uri, iter_input_files, load_articles, load_file
from extractor.batch import count_inputs, run_batch, watch
from extractor.errors import ConfigError
from extractor.models import Article, LoadError
from tests.conftest import FakeModel
from tests.test_batch import answers, body, lines, make, quiet

pytest.importorskip("pyarrow.fs")


def uri(path: Path) -> str:
    return path.resolve().as_uri()


def drop_folder(root: Path) -> Path:
    """A drop folder with nested, hidden and unsupported entries."""
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "b.txt").write_text(body("b"), encoding="utf-8")
    (root / "a.md").write_text("# Title A\n\n" + body("a"), encoding="utf-8")
    (root / "sub" / "c.txt").write_text(body("c"), encoding="utf-8")
    (root / "sub" / "deeper" / "d.json").write_text(json.dumps({"text": body("d"), "id": "dee"}), "utf-8")
    (root / "sub-e.txt").write_text(body("e"), encoding="utf-8")  # sorts after sub/ as a local walk does
    (root / ".hidden" / "x.txt").write_text(body("x"), encoding="utf-8")
    (root / "sub" / ".y.txt").write_text(body("y"), encoding="utf-8")
    (root / "notes.csv").write_text("a,b\n", encoding="utf-8")
    return root


def test_is_uri_takes_schemes_only() -> None:
    assert is_uri("s3://bucket/drop") and is_uri("file:///tmp/x") and is_uri("gs://b/k.jsonl")
    assert not is_uri("drop/a.txt") and not is_uri("C://drop") and not is_uri(Path("s3://bucket"))


def test_a_folder_uri_loads_like_the_local_folder_with_uris_as_sources(tmp_path: Path) -> None:
    root = drop_folder(tmp_path / "drop")
    local = list(load_articles([root]))
    remote = list(load_articles([uri(root)]))
    assert all(isinstance(item, Article) for item in remote)
    assert [a.id for a in remote] == [a.id for a in local] == ["a", "b", "c", "dee", "sub-e"]
    assert [(a.text, a.title, a.sha256) for a in remote] == [(a.text, a.title, a.sha256) for a in local]
    relative = ["a.md", "b.txt", "sub/c.txt", "sub/deeper/d.json", "sub-e.txt"]
    assert [a.source for a in remote] == [f"{uri(root)}/{rel}" for rel in relative]
    # A trailing slash names the same folder; a file inside a folder named before is not loaded twice.
    again = list(load_articles([uri(root) + "/", uri(root / "b.txt")]))
    assert [a.source for a in again if isinstance(a, Article)] == [a.source for a in remote]


def test_iter_input_files_lists_remote_files_with_their_sizes(tmp_path: Path) -> None:
    root = drop_folder(tmp_path / "drop")
    files = list(iter_input_files([uri(root)]))
    assert all(isinstance(f, RemoteFile) for f in files)
    assert [(f.uri.removeprefix(uri(root)), f.size) for f in files if isinstance(f, RemoteFile)] == [
        ("/a.md", (root / "a.md").stat().st_size),
        ("/b.txt", (root / "b.txt").stat().st_size),
        ("/sub/c.txt", (root / "sub" / "c.txt").stat().st_size),
        ("/sub/deeper/d.json", (root / "sub" / "deeper" / "d.json").stat().st_size),
        ("/sub-e.txt", (root / "sub-e.txt").stat().st_size),
    ]


def test_a_jsonl_uri_loads_line_by_line_with_errors_in_place(tmp_path: Path) -> None:
    path = tmp_path / "feed.jsonl"
    rows = [json.dumps({"text": "First text."}), "", "{not json", json.dumps({"text": "Third.", "id": 7})]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    items = list(load_file(uri(path)))
    assert [type(i).__name__ for i in items] == ["Article", "LoadError", "Article"]
    first, bad, third = items
    assert isinstance(first, Article) and isinstance(bad, LoadError) and isinstance(third, Article)
    assert (first.id, first.source) == ("feed-1", f"{uri(path)}:1")
    assert (bad.path, bad.line) == (uri(path), 3) and bad.reason.startswith("line is not valid JSON")
    assert (third.id, third.source) == ("7", f"{uri(path)}:4")
    as_local = [
        bad.model_copy(update={"path": str(path)})
        if isinstance(i, LoadError)
        else i.model_copy(update={"source": i.source.replace(uri(path), str(path))})
        for i in items
    ]
    assert list(load_file(path)) == as_local


def test_the_input_cap_applies_to_remote_files_and_jsonl_lines(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("x" * 500, encoding="utf-8")
    feed = tmp_path / "feed.jsonl"
    feed.write_text(json.dumps({"text": "y" * 400}) + "\n" + json.dumps({"text": "ok"}) + "\n", "utf-8")
    (error,) = load_file(uri(big), max_input_bytes=100)
    assert isinstance(error, LoadError) and error.path == uri(big)
    assert error.reason.startswith("file is 500 bytes, over the input cap of 100 bytes")
    over, ok = load_file(uri(feed), max_input_bytes=100)
    assert isinstance(over, LoadError) and over.line == 1 and "over the input cap of 100 bytes" in over.reason
    assert isinstance(ok, Article) and ok.text == "ok"


def test_remote_binary_unsupported_and_missing_inputs_are_load_errors(tmp_path: Path) -> None:
    (tmp_path / "bin.txt").write_bytes(b"abc\x00def")
    (tmp_path / "table.csv").write_text("a,b\n", encoding="utf-8")
    (tmp_path / "folder").mkdir()
    given = [
        uri(tmp_path / "bin.txt"),
        uri(tmp_path / "table.csv"),
        uri(tmp_path / "missing.txt"),
        uri(tmp_path / "missing-folder") + "/",
        "nosuchscheme://bucket/a.txt",
    ]
    errors = list(load_articles(given))
    assert all(isinstance(e, LoadError) for e in errors)
    assert [(e.path, e.reason.split(" (")[0]) for e in errors if isinstance(e, LoadError)] == [
        (given[0], "binary file"),
        (given[1], "unsupported file type .csv"),
        (given[2], "no such file or directory"),
        (given[3], "no such file or directory"),
        (given[4], "cannot open URI: Unrecognized filesystem type in URI: nosuchscheme://bucket/a.txt"),
    ]
    assert list(load_file(uri(tmp_path / "folder"))) == [
        LoadError(path=uri(tmp_path / "folder"), reason="is a directory")
    ]


def test_without_pyarrow_a_uri_is_a_config_error_naming_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_pyarrow(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.split(".")[0] == "pyarrow":
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    with pytest.raises(ConfigError, match=r"needs pyarrow.*pip install 'extractor\[export\]'"):
        list(load_articles([uri(tmp_path)]))
    assert list(load_articles([tmp_path])) == []  # local paths never need it


def test_importing_the_loader_does_not_import_pyarrow() -> None:
    code = "import sys, extractor.articles, extractor.batch; print('pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_count_inputs_counts_remote_files_and_jsonl_lines(tmp_path: Path) -> None:
    root = drop_folder(tmp_path / "drop")
    (root / "feed.jsonl").write_text('{"text": "a"}\n\n{"text": "b"}\n{"text": "c"}', encoding="utf-8")
    out = tmp_path / "out"
    assert count_inputs([uri(root)], out) == count_inputs([root], out) == 5 + 3
    assert count_inputs([uri(tmp_path / "missing.jsonl")], out) == 1


def test_run_batch_extracts_a_uri_drop_and_skips_its_own_output_folder(tmp_path: Path) -> None:
    root = tmp_path / "drop"
    root.mkdir()
    for name in ("a", "b"):
        (root / f"{name}.txt").write_text(body(name), encoding="utf-8")
    (root / "more.jsonl").write_text(json.dumps({"text": body("c"), "id": "c"}) + "\n", encoding="utf-8")
    out = root / "out"  # inside the drop: its results.jsonl must not become an input
    fake = FakeModel().enqueue(*answers(3))
    summary = run_batch([uri(root)], out, make(tmp_path, fake), reporter=quiet())
    assert (summary.articles, summary.ok, summary.failed) == (3, 3, 0)
    results = lines(out)
    assert sorted((r["article_id"], r["source"]) for r in results) == [
        ("a", f"{uri(root)}/a.txt"),
        ("b", f"{uri(root)}/b.txt"),
        ("c", f"{uri(root)}/more.jsonl:1"),
    ]
    again = run_batch([uri(root)], out, make(tmp_path, FakeModel()), reporter=quiet())
    assert (again.articles, again.ok, again.skipped) == (3, 0, 3)  # incremental, nothing sent


def test_watch_refuses_a_uri_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="watch takes a local folder"):
        watch("s3://bucket/drop", tmp_path / "out", make(tmp_path, FakeModel()), max_rounds=1)


@pytest.mark.slow
def test_the_ray_engine_lists_and_loads_a_uri_drop_through_the_same_loader(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    from extractor import Settings
    from extractor.ray_engine import run_ray

    root = tmp_path / "drop"
    root.mkdir()
    for name in ("a", "b"):
        (root / f"{name}.txt").write_text(body(name), encoding="utf-8")
    extractor = make(tmp_path, FakeModel().enqueue(*answers(2)))
    run_batch([uri(root)], tmp_path / "out", extractor, reporter=quiet())
    # Everything is done with this model and prompt: the engine lists and loads the URI drop, finds
    # every text done and never starts Ray (nothing listens on the base URL).
    settings = Settings(
        cache_dir=tmp_path / "c2", use_cache=False, api_key="sk-test", base_url="http://127.0.0.1:9/v1"
    )
    summary, plan = run_ray([uri(root)], tmp_path / "out", settings, reporter=quiet())
    assert (plan.loaded, plan.done_before, plan.sent, summary.skipped) == (2, 2, 0, 2)
