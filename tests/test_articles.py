"""Tests for extractor.articles: formats, order, ids, normalisation, duplicates and bad input."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from extractor.articles import (
    iter_input_files,
    load_articles,
    load_file,
    normalize_text,
    sanitize_id,
)
from extractor.models import Article, LoadError, text_sha256

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

NEWS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Leaders meet in Paris on Ukraine guarantees | The Daily Ledger</title>
<meta property="og:title" content="Leaders meet in Paris on Ukraine guarantees">
<meta property="og:url" content="https://news.example.com/world/2026/01/07/paris-ukraine">
<meta property="og:site_name" content="The Daily Ledger">
{date_meta}
</head>
<body>
<header><nav><ul>
<li><a href="/">Home</a></li><li><a href="/world">World</a></li>
<li><a href="/sport">Sport</a></li><li><a href="/subscribe">Subscribe now</a></li>
</ul></nav></header>
<main><article>
<h1>Leaders meet in Paris on Ukraine guarantees</h1>
<p class="byline">By Jane Doe</p>
<p>Around 30 Western leaders gathered at the Elysee Palace on Tuesday to discuss security guarantees for
Ukraine, in a meeting hosted by the French president.</p>
<p>"We are closer than ever to a durable framework," the French president told reporters after the talks,
adding that the coalition would keep working with Washington.</p>
<p>Italian officials described the talks as "constructive and concrete", while stressing that Rome would
not send troops to Ukraine under any scenario currently being discussed.</p>
<p>The leaders agreed to meet again next month to review progress on monitoring arrangements.</p>
</article></main>
<aside><h3>Most read</h3><ul><li><a href="/a">Ten recipes for winter</a></li>
<li><a href="/b">Transfer news roundup</a></li></ul></aside>
<footer><p>© 2026 The Daily Ledger. All rights reserved.</p>
<p><a href="/privacy">Privacy policy</a> | <a href="/cookies">Cookie settings</a></p></footer>
</body>
</html>
"""
DATE_META = '<meta property="article:published_time" content="2026-01-07T09:30:00+01:00">'


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_bytes(content.encode("utf-8"))
    else:
        path.write_bytes(content)
    return path


def load(*paths: str | Path) -> list[Article | LoadError]:
    return list(load_articles(paths))


def articles(items: list[Article | LoadError]) -> list[Article]:
    return [item for item in items if isinstance(item, Article)]


def errors(items: list[Article | LoadError]) -> list[LoadError]:
    return [item for item in items if isinstance(item, LoadError)]


def only_error(path: Path) -> LoadError:
    items = load(path)
    assert len(items) == 1
    assert isinstance(items[0], LoadError), items[0]
    return items[0]


def only_article(path: Path) -> Article:
    items = load(path)
    assert len(items) == 1
    assert isinstance(items[0], Article), items[0]
    return items[0]


# --------------------------------------------------------------------------- formats


def test_txt_whole_file_is_text(tmp_path: Path) -> None:
    body = "Leaders met in Paris.\n\n“We agree,” she said.\n"
    path = write(tmp_path / "story one.txt", body)
    article = only_article(path)
    assert article.id == "story_one"
    assert article.text == body
    assert article.title is None
    assert article.url is None
    assert article.published is None
    assert article.source == str(path)
    assert article.sha256 == text_sha256(body)


def test_md_leading_heading_becomes_title_and_text_is_unchanged(tmp_path: Path) -> None:
    body = "\n# Paris talks end   \n\nLeaders met on Tuesday.\n"
    article = only_article(write(tmp_path / "talks.md", body))
    assert article.title == "Paris talks end"
    assert article.text == body


@pytest.mark.parametrize(
    "body", ["Leaders met.\n# Not a title\n", "## Section\nLeaders met.\n", "#hashtag news\n"]
)
def test_md_without_leading_level_one_heading_has_no_title(tmp_path: Path, body: str) -> None:
    article = only_article(write(tmp_path / "talks.md", body))
    assert article.title is None
    assert article.text == body


def test_html_main_text_and_metadata_boilerplate_stripped(tmp_path: Path) -> None:
    path = write(tmp_path / "paris.html", NEWS_PAGE.format(date_meta=DATE_META))
    article = only_article(path)
    assert article.id == "paris"
    assert article.title == "Leaders meet in Paris on Ukraine guarantees"
    assert article.url == "https://news.example.com/world/2026/01/07/paris-ukraine"
    assert article.published == dt.date(2026, 1, 7)
    assert article.source == str(path)
    assert "Around 30 Western leaders gathered at the Elysee Palace" in article.text
    assert '"We are closer than ever to a durable framework," the French president' in article.text
    assert "review progress on monitoring arrangements." in article.text
    for boilerplate in (
        "Subscribe now",
        "Sport",
        "Most read",
        "Ten recipes",
        "All rights reserved",
        "Privacy",
    ):
        assert boilerplate not in article.text
    assert article.text == article.text.strip()
    assert article.sha256 == text_sha256(article.text)


def test_html_without_date_metadata_gets_no_guessed_date(tmp_path: Path) -> None:
    # The footer says "© 2026"; an extensive date search would turn that into 2026-01-01.
    page = NEWS_PAGE.format(date_meta="").replace("/2026/01/07/", "/")
    article = only_article(write(tmp_path / "paris.htm", page))
    assert article.published is None
    assert "Elysee Palace" in article.text


def test_html_in_declared_legacy_charset(tmp_path: Path) -> None:
    page = NEWS_PAGE.format(date_meta=DATE_META).replace("utf-8", "windows-1252").replace("Elysee", "Élysée")
    article = only_article(write(tmp_path / "paris.HTML", page.encode("cp1252")))
    assert "the Élysée Palace" in article.text


@pytest.mark.parametrize(
    "page",
    [
        "<html><head><title>Only a title</title></head><body></body></html>",
        "<html><head><title>Script</title></head><body><script>var a = 1;</script></body></html>",
    ],
)
def test_html_without_article_text_is_a_load_error(tmp_path: Path, page: str) -> None:
    error = only_error(write(tmp_path / "empty.html", page))
    assert error.reason == "no article text found in HTML"
    assert error.line is None


def test_html_invalid_utf8_without_declared_charset(tmp_path: Path) -> None:
    raw = b"<html><body><p>caf\xe9</p></body></html>"
    error = only_error(write(tmp_path / "bad.html", raw))
    assert raw[18:19] == b"\xe9"
    assert error.reason == "invalid UTF-8 at byte 18 (and the page declares no other charset)"


def test_json_object_with_all_fields(tmp_path: Path) -> None:
    obj = {
        "id": "paris-2026",
        "text": "Leaders met.\r\nThey agreed.",
        "title": "Paris talks",
        "url": "https://example.com/a",
        "published": "2026-01-07T10:15:00Z",
        "source": "Example News",
        "extra": [1, 2],
    }
    path = write(tmp_path / "one.json", json.dumps(obj))
    article = only_article(path)
    assert article.id == "paris-2026"
    assert article.text == "Leaders met.\nThey agreed."
    assert article.title == "Paris talks"
    assert article.url == "https://example.com/a"
    assert article.published == dt.date(2026, 1, 7)
    assert article.source == str(path)
    assert article.sha256 == text_sha256("Leaders met.\nThey agreed.")


def test_json_defaults_id_to_stem_and_accepts_integer_id(tmp_path: Path) -> None:
    assert only_article(write(tmp_path / "story.json", '{"text": "Body."}')).id == "story"
    article = only_article(
        write(tmp_path / "other.json", '{"id": 42, "text": "Body 2.", "published": "2025-09-04"}')
    )
    assert article.id == "42"
    assert article.published == dt.date(2025, 9, 4)


def test_json_list_elements_are_numbered_like_lines(tmp_path: Path) -> None:
    data = [{"text": "First."}, "not an object", {"id": "named", "text": "Third."}, {"title": "no text"}]
    path = write(tmp_path / "batch.json", json.dumps(data))
    items = load(path)
    assert [type(item).__name__ for item in items] == ["Article", "LoadError", "Article", "LoadError"]
    first, second, third, fourth = items
    assert isinstance(first, Article)
    assert (first.id, first.source) == ("batch-1", f"{path}:1")
    assert isinstance(second, LoadError)
    assert (second.line, second.reason) == (2, "expected a JSON object, got a string")
    assert isinstance(third, Article)
    assert (third.id, third.source) == ("named", f"{path}:3")
    assert isinstance(fourth, LoadError)
    assert (fourth.line, fourth.reason) == (4, "missing field 'text'")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("42", "expected a JSON object or a list of objects, got a number"),
        ('"just text"', "expected a JSON object or a list of objects, got a string"),
        ("[]", "empty JSON list: no articles"),
        (
            '{"text": "a",}',
            "invalid JSON: Expecting property name enclosed in double quotes (line 1 column 14)",
        ),
        ('{"id": "x"}', "missing field 'text'"),
        ('{"text": ["a"]}', "field 'text' must be a string, got a list"),
        ('{"text": ""}', "field 'text' is empty"),
        ('{"text": " \\n\\t"}', "field 'text' contains only whitespace"),
        ('{"text": "a\\u0000b"}', "field 'text' contains a NUL character"),
        ('{"text": "a", "id": true}', "field 'id' must be a string or an integer, got a boolean"),
        ('{"text": "a", "title": 5}', "field 'title' must be a string, got a number"),
        ('{"text": "a", "url": {}}', "field 'url' must be a string, got an object"),
        (
            '{"text": "a", "published": "07/01/2026"}',
            "invalid date in field 'published': '07/01/2026' (use e.g. 2026-01-07)",
        ),
        (
            '{"text": "a", "published": "2026-02-30"}',
            "invalid date in field 'published': '2026-02-30' (use e.g. 2026-01-07)",
        ),
        (
            '{"text": "a", "published": 20260107}',
            "field 'published' must be an ISO date string, got a number",
        ),
    ],
)
def test_bad_json_file(tmp_path: Path, content: str, reason: str) -> None:
    path = write(tmp_path / "bad.json", content)
    error = only_error(path)
    assert error.reason == reason
    assert error.path == str(path)
    assert error.line is None


def test_jsonl_bad_lines_are_errors_and_the_rest_loads(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "text": "Alpha.", "published": "2026-01-06"}),
        "",
        "   ",
        "{not json",
        json.dumps({"id": "b"}),
        json.dumps({"id": "c", "text": 7}),
        json.dumps(["a", "list"]),
        json.dumps({"text": "Delta."}),
        json.dumps({"id": "e", "text": "Echo.", "published": "yesterday"}),
    ]
    path = write(tmp_path / "feed.jsonl", "\n".join(lines) + "\n")
    items = load(path)
    got = [
        (item.id, item.source) if isinstance(item, Article) else (item.line, item.reason) for item in items
    ]
    assert got == [
        ("a", f"{path}:1"),
        (4, "line is not valid JSON: Expecting property name enclosed in double quotes (column 2)"),
        (5, "missing field 'text'"),
        (6, "field 'text' must be a string, got a number"),
        (7, "expected a JSON object, got a list"),
        ("feed-8", f"{path}:8"),
        (9, "invalid date in field 'published': 'yesterday' (use e.g. 2026-01-07)"),
    ]
    first = items[0]
    assert isinstance(first, Article)
    assert first.published == dt.date(2026, 1, 6)
    assert all(error.path == str(path) for error in errors(items))


def test_jsonl_with_bom_and_crlf_lines(tmp_path: Path) -> None:
    raw = b'\xef\xbb\xbf{"text": "One.\\r\\nTwo."}\r\n\r\n{"text": "Three."}\r\n'
    items = load(write(tmp_path / "crlf.jsonl", raw))
    assert [(a.id, a.text) for a in articles(items)] == [("crlf-1", "One.\nTwo."), ("crlf-3", "Three.")]
    assert errors(items) == []


def test_jsonl_invalid_utf8_names_file_byte_offset(tmp_path: Path) -> None:
    raw = b'{"text": "ok"}\n{"text": "caf\xe9"}\n{"text": "fine"}\n'
    path = write(tmp_path / "enc.jsonl", raw)
    items = load(path)
    assert [a.id for a in articles(items)] == ["enc-1", "enc-3"]
    assert errors(items) == [LoadError(path=str(path), line=2, reason="invalid UTF-8 at byte 28")]
    assert raw[28:29] == b"\xe9"


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty file"), (b"\n\n  \n", "file contains only blank lines")],
)
def test_jsonl_without_articles(tmp_path: Path, content: bytes, reason: str) -> None:
    assert only_error(write(tmp_path / "none.jsonl", content)).reason == reason


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("name", ["a.txt", "a.md", "a.json", "a.jsonl", "a.html"])
def test_binary_file(tmp_path: Path, name: str) -> None:
    error = only_error(write(tmp_path / name, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"))
    assert error.reason == "binary file (contains NUL bytes)"


def test_utf16_file_is_explained(tmp_path: Path) -> None:
    error = only_error(write(tmp_path / "wide.txt", "Leaders met.".encode("utf-16")))
    assert error.reason == "file is UTF-16 encoded; save it as UTF-8"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b" \n\t\r\n", "file contains only whitespace"),
        (b"\xef\xbb\xbf", "empty file"),
        (b"Leaders met in Caf\xc3\xa9 and \xff then left.", "invalid UTF-8 at byte 25"),
        (b"\xef\xbb\xbfabc\xc3", "invalid UTF-8 at byte 6"),
    ],
)
def test_bad_text_files(tmp_path: Path, content: bytes, reason: str) -> None:
    for suffix in (".txt", ".md"):
        path = write(tmp_path / f"bad{suffix}", content)
        error = only_error(path)
        assert (error.path, error.line, error.reason) == (str(path), None, reason)
    if reason.startswith("invalid UTF-8 at byte "):
        offset = int(reason.rsplit(" ", 1)[1])
        with pytest.raises(UnicodeDecodeError) as decoding:
            content.decode("utf-8")
        assert decoding.value.start == offset


def test_missing_path_and_unsupported_explicit_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    pdf = write(tmp_path / "paper.PDF", b"%PDF-1.7")
    bare = write(tmp_path / "README", "text")
    items = load(missing, pdf, bare)
    assert items == [
        LoadError(path=str(missing), reason="no such file or directory"),
        LoadError(
            path=str(pdf), reason="unsupported file type .pdf (use .txt, .md, .html, .htm, .json, .jsonl)"
        ),
        LoadError(
            path=str(bare), reason="unsupported file type (none) (use .txt, .md, .html, .htm, .json, .jsonl)"
        ),
    ]


def test_permission_denied_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    locked_txt = write(tmp_path / "locked.txt", "secret")
    locked_jsonl = write(tmp_path / "locked.jsonl", '{"text": "secret"}\n')
    fine = write(tmp_path / "z_fine.txt", "Fine.")
    real_open = os.open

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(path).name.startswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    items = load(tmp_path)
    assert items[:2] == [
        LoadError(path=str(locked_jsonl), reason="permission denied"),
        LoadError(path=str(locked_txt), reason="permission denied"),
    ]
    assert [(a.id, a.source) for a in articles(items)] == [("z_fine", str(fine))]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_permission_denied_for_real(tmp_path: Path) -> None:
    path = write(tmp_path / "locked.txt", "secret")
    path.chmod(0)
    try:
        assert only_error(path).reason == "permission denied"
    finally:
        path.chmod(0o644)


def test_unlistable_folder_is_an_error_and_the_rest_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "a_locked" / "x.txt", "hidden away")
    write(tmp_path / "b.txt", "Visible.")
    real_scandir = os.scandir

    def scandir(path: str | os.PathLike[str]) -> object:
        if Path(path).name == "a_locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    items = load(tmp_path)
    assert items[0] == LoadError(
        path=str(tmp_path / "a_locked"), reason="cannot list folder: permission denied"
    )
    assert [a.id for a in articles(items)] == ["b"]


def test_every_bad_input_in_one_run_does_not_stop_it(tmp_path: Path) -> None:
    write(tmp_path / "01.txt", b"")
    write(tmp_path / "02.txt", b"\x00\x01")
    write(tmp_path / "03.txt", b"\xff")
    write(tmp_path / "04.json", "[1")
    write(tmp_path / "05.jsonl", '{"text": "ok line"}\nnope\n')
    write(tmp_path / "06.html", "<html><body></body></html>")
    write(tmp_path / "07.txt", "A good article.")
    items = load(tmp_path)
    assert [a.id for a in articles(items)] == ["05-1", "07"]
    assert [Path(e.path).name for e in errors(items)] == [
        "01.txt",
        "02.txt",
        "03.txt",
        "04.json",
        "05.jsonl",
        "06.html",
    ]
    assert all("\n" not in e.reason and e.reason for e in errors(items))


# --------------------------------------------------------------------------- walking and order


def test_folders_are_walked_recursively_sorted_and_filtered(tmp_path: Path) -> None:
    for name in [
        "b.txt",
        "Z.txt",
        "a/2.txt",
        "a/10.md",
        "a/sub/x.json",
        "a/skip.pdf",
        "c.jsonl",
        "d.htm",
        ".hidden.txt",
        ".git/config.txt",
        "notes/readme",
    ]:
        write(tmp_path / name, "{}" if name.endswith("json") else "x")
    found = [p for p in iter_input_files([tmp_path]) if isinstance(p, Path)]
    rel = [p.relative_to(tmp_path).as_posix() for p in found]
    assert rel == ["Z.txt", "a/10.md", "a/2.txt", "a/sub/x.json", "b.txt", "c.jsonl", "d.htm"]
    assert [p for p in iter_input_files([tmp_path]) if isinstance(p, Path)] == found


def test_explicit_paths_keep_their_order_and_hidden_explicit_files_load(tmp_path: Path) -> None:
    write(tmp_path / "dir" / "b.txt", "B.")
    write(tmp_path / "dir" / "a.txt", "A.")
    hidden = write(tmp_path / ".secret.txt", "Hidden but named.")
    items = load(hidden, tmp_path / "dir")
    assert [a.id for a in articles(items)] == ["secret", "a", "b"]


def test_same_file_twice_is_loaded_once(tmp_path: Path) -> None:
    path = write(tmp_path / "dir" / "a.txt", "A.")
    items = load(path, tmp_path / "dir", tmp_path / "dir" / ".." / "dir" / "a.txt")
    assert [a.id for a in articles(items)] == ["a"]


def test_a_symlink_into_an_earlier_folder_is_not_loaded_again(tmp_path: Path) -> None:
    first = write(tmp_path / "first" / "a.txt", "A.")
    second = tmp_path / "second"
    write(second / "b.txt", "B.")
    (second / "link.txt").symlink_to(first)
    (second / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    (second / "linked-dir").symlink_to(tmp_path / "first", target_is_directory=True)
    assert [a.id for a in articles(load(tmp_path / "first", second))] == ["a", "b"]
    assert [a.id for a in articles(load(second, tmp_path / "first"))] == ["b", "link", "a"]
    alone = load(second)  # the link points outside the input now
    assert [a.id for a in articles(alone)] == ["b"]
    assert [e.reason.split(" (")[0] for e in errors(alone)] == ["symlink to outside the input"]


def test_exclude_sees_resolved_paths_of_walked_files_only(tmp_path: Path) -> None:
    named = write(tmp_path / "named.txt", "Named.")
    write(tmp_path / "dir" / "keep.txt", "Keep.")
    write(tmp_path / "dir" / "drop.txt", "Drop.")
    asked: list[tuple[str, str]] = []

    def exclude(real: str, folder: str) -> bool:
        asked.append((real, folder))
        return real.endswith("drop.txt") or real.endswith("named.txt")

    items = list(load_articles([named, tmp_path / "dir"], exclude=exclude))
    assert [a.id for a in articles(items)] == ["named", "keep"]
    real_dir = os.path.realpath(tmp_path / "dir")
    assert asked == [
        (os.path.join(real_dir, "drop.txt"), real_dir),
        (os.path.join(real_dir, "keep.txt"), real_dir),
    ]


def test_ids_can_be_left_for_the_caller_to_make_unique(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"id": "x", "text": "1"}\n{"id": "x", "text": "2"}\n')
    assert [a.id for a in articles(load_articles([path], unique_ids=False))] == ["x", "x"]


def test_loading_streams_one_file_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(3):
        write(tmp_path / f"{i}.txt", f"Article {i}.")
    reads: list[str] = []
    real_open = os.open

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        reads.append(Path(path).name)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)

    def paths() -> Iterator[Path]:
        yield tmp_path / "0.txt"
        yield tmp_path / "1.txt"
        raise AssertionError("the loader consumed more paths than it needed")

    stream = load_articles(paths())
    first = next(stream)
    assert isinstance(first, Article)
    assert first.id == "0"
    assert reads == ["0.txt"]
    second = next(stream)
    assert isinstance(second, Article)
    assert reads == ["0.txt", "1.txt"]


def test_load_file_yields_unsuffixed_ids(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", '{"id": "x", "text": "1"}\n{"id": "x", "text": "2"}\n')
    assert [a.id for a in load_file(path) if isinstance(a, Article)] == ["x", "x"]
    assert [a.id for a in articles(load(path))] == ["x", "x-2"]


# --------------------------------------------------------------------------- ids


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "etc_passwd"),
        ("a/b\\c", "a_b_c"),
        (".hidden", "hidden"),
        ("..", "e3b0c44298fc1c14"),
        ("", "e3b0c44298fc1c14"),
        ("\x00\x1f\n", "e3b0c44298fc1c14"),
        ("Reuters: Paris talks (2026)", "Reuters__Paris_talks__2026"),
        ("café-über", "caf_-_ber"),
        ("-rf", "rf"),
        ("a..b...c", "a.b.c"),
        ("x" * 500, "x" * 200),
        ("000_2b0579c4498e7e08", "000_2b0579c4498e7e08"),
    ],
)
def test_sanitize_id(raw: str, expected: str) -> None:
    assert sanitize_id(raw, text_sha256("")) == expected


@given(st.text(max_size=300))
def test_sanitized_ids_are_always_safe(raw: str) -> None:
    safe = sanitize_id(raw, text_sha256(raw))
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}", safe)
    assert ".." not in safe
    assert not safe.endswith(".")


def test_json_ids_are_sanitised(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": raw, "text": f"Text {i}."})
        for i, raw in enumerate(["../../etc/passwd", "a/b\\c", "/"])
    ]
    items = load(write(tmp_path / "ids.jsonl", "\n".join(lines)))
    assert [a.id for a in articles(items)] == ["etc_passwd", "a_b_c", text_sha256("Text 2.")[:16]]


def test_clashing_ids_get_deterministic_suffixes(tmp_path: Path) -> None:
    write(tmp_path / "a.md", "From markdown.")
    write(tmp_path / "a.txt", "From text.")
    write(tmp_path / "b" / "A.txt", "Upper case.")
    write(tmp_path / "c.jsonl", '{"id": "a-2", "text": "Explicit a-2."}\n{"id": "a", "text": "Another a."}\n')
    ids = [a.id for a in articles(load(tmp_path))]
    assert ids == ["a", "a-2", "A-3", "a-2-2", "a-4"]
    assert [a.id for a in articles(load(tmp_path))] == ids


# --------------------------------------------------------------------------- normalisation


def test_bom_and_line_endings_are_normalised(tmp_path: Path) -> None:
    raw = "\ufeffLine one\r\nLine two\rLine three\n\r\nEnd".encode()
    article = only_article(write(tmp_path / "endings.txt", raw))
    assert article.text == "Line one\nLine two\nLine three\n\nEnd"
    assert article.sha256 == text_sha256(article.text)
    assert article.text == Article.from_text(raw.decode("utf-8")).text
    assert normalize_text("\ufeffa\r\nb\rc\u2028d") == "a\nb\nc\u2028d"


# --------------------------------------------------------------------------- duplicates


def test_the_same_text_in_any_format_has_one_sha256(tmp_path: Path) -> None:
    """A run spots duplicates by sha256: a BOM, CRLF line ends or a JSON wrapper do not hide one."""
    write(tmp_path / "1.txt", "Same story.\n")
    write(tmp_path / "2.json", '{"text": "Same story.\\r\\n"}')
    write(tmp_path / "3.txt", "Other story.")
    write(tmp_path / "4.md", "\ufeffSame story.\n")
    loaded = {a.id: a.sha256 for a in articles(load(tmp_path))}
    assert loaded["1"] == loaded["2"] == loaded["4"] != loaded["3"]


# --------------------------------------------------------------------------- seeds


def test_real_seeds_load_verbatim() -> None:
    files = sorted(SEEDS.glob("*.txt"))
    assert len(files) == 5
    items = load(SEEDS)
    assert errors(items) == []
    loaded = articles(items)
    assert [a.id for a in loaded] == [f.stem for f in files]
    for article, file in zip(loaded, files, strict=True):
        assert article.text == file.read_bytes().decode("utf-8")
        assert article.source == str(file)
        assert article.sha256 == text_sha256(article.text)
        assert article.title is None
        assert article.published is None


# --------------------------------------------------------------------------- outside the input, endless input

SECRET = "root:x:0:0:secret line that must never leave this machine"


def load_soon(*paths: str | Path, seconds: float = 10.0, **options: Any) -> list[Article | LoadError]:
    """``load_articles`` in a thread that must finish within ``seconds`` (a FIFO would block it)."""
    done: list[list[Article | LoadError]] = []
    failed: list[BaseException] = []

    def target() -> None:
        try:
            done.append(list(load_articles(paths, **options)))
        except BaseException as exc:  # handed to the test thread
            failed.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        for path in paths:  # a reader blocked on a FIFO gets EOF once a writer comes and goes
            with contextlib.suppress(OSError):
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"loading {paths} did not finish within {seconds} s")
    if failed:
        raise failed[0]
    return done[0]


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    return write(tmp_path / "elsewhere" / "passwd", SECRET)


def no_secret(items: list[Article | LoadError]) -> None:
    assert not any(SECRET in (a.text + (a.title or "")) for a in articles(items))


def test_a_symlink_in_the_drop_to_outside_it_is_refused(tmp_path: Path, outside: Path) -> None:
    drop = tmp_path / "drop"
    write(drop / "a.txt", "A real article.")
    (drop / "passwd.txt").symlink_to(outside)
    items = load(drop)
    no_secret(items)
    assert [a.id for a in articles(items)] == ["a"]
    assert errors(items) == [
        LoadError(
            path=str(drop / "passwd.txt"),
            reason=f"symlink to outside the input ({os.path.realpath(outside)}); "
            "name the target itself or use --follow-symlinks",
        )
    ]
    # named one by one (a shell glob), the link is still refused
    assert only_error(drop / "passwd.txt").reason.startswith("symlink to outside the input")
    assert [type(x) for x in load_file(drop / "passwd.txt")] == [LoadError]


def test_follow_symlinks_opts_in(tmp_path: Path, outside: Path) -> None:
    drop = tmp_path / "drop"
    (drop / "sub").mkdir(parents=True)
    (drop / "sub" / "passwd.txt").symlink_to(outside)
    items = list(load_articles([drop], follow_symlinks=True))
    assert [(a.id, a.text) for a in articles(items)] == [("passwd", SECRET)]
    assert [a.text for a in articles(list(load_file(drop / "sub" / "passwd.txt", follow_symlinks=True)))] == [
        SECRET
    ]


def test_symlinks_inside_the_given_paths_still_load(tmp_path: Path, outside: Path) -> None:
    drop, other = tmp_path / "drop", tmp_path / "other"
    write(drop / "a.txt", "A.")
    write(other / "b.txt", "B.")
    (drop / "link-a.txt").symlink_to(drop / "a.txt")  # within its own folder: an input of its own
    (drop / "link-b.txt").symlink_to(other / "b.txt")  # into another given folder (named later)
    (drop / "link-secret.txt").symlink_to(outside)
    named = tmp_path / "named.txt"
    named.symlink_to(outside)
    items = load(drop, other, named, outside)
    # a link into a folder named later is an input of its own, like a link within its folder
    assert [a.id for a in articles(items)] == ["a", "link-a", "link-b", "link-secret", "b", "named"]
    # the target named too: it is inside the input, and loaded once (through the first path reaching it)
    assert [a.text for a in articles(items)].count(SECRET) == 2
    alone = load(drop)
    assert [a.id for a in articles(alone)] == ["a", "link-a"]
    assert [Path(e.path).name for e in errors(alone)] == ["link-b.txt", "link-secret.txt"]


def test_a_symlinked_folder_named_explicitly_is_walked(tmp_path: Path) -> None:
    write(tmp_path / "real" / "a.txt", "A.")
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    assert [a.id for a in articles(load(tmp_path / "alias"))] == ["a"]


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "drop" / "pipe.txt"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    write(tmp_path / "drop" / "z.txt", "After the pipe.")
    named_jsonl = tmp_path / "feed.jsonl"
    os.mkfifo(named_jsonl)
    items = load_soon(fifo, named_jsonl, tmp_path / "drop")
    assert [(e.path, e.reason) for e in errors(items)] == [
        (str(fifo), "not a regular file (a FIFO)"),
        (str(named_jsonl), "not a regular file (a FIFO)"),
    ]
    assert [a.id for a in articles(items)] == ["z"]
    # inside a walked folder it is reported, not skipped silently
    walked = load_soon(tmp_path / "drop")
    assert [(Path(e.path).name, e.reason) for e in errors(walked)] == [
        ("pipe.txt", "not a regular file (a FIFO)")
    ]


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_symlink_to_dev_zero_is_refused_not_read(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    for name in ("zero.txt", "zero.jsonl", "zero.json", "zero.html"):
        (drop / name).symlink_to("/dev/zero")
    items = load_soon(drop)
    assert {e.reason for e in errors(items)} == {
        "symlink to outside the input (/dev/zero); name the target itself or use --follow-symlinks"
    }
    followed = load_soon(drop, follow_symlinks=True)
    assert len(followed) == 4
    assert {e.reason for e in errors(followed)} == {"not a regular file (a character device)"}
    named = drop / "zero.jsonl"
    assert load_soon(named, follow_symlinks=True) == [
        LoadError(path=str(named), reason="not a regular file (a character device)")
    ]


CAP_REASON = "over the input cap of 1,000 bytes (max_input_bytes; raise it with --max-input-bytes)"


@pytest.mark.parametrize("suffix", [".txt", ".md", ".json", ".html"])
def test_a_file_over_the_size_cap_is_refused_and_says_the_cap(tmp_path: Path, suffix: str) -> None:
    def content(size: int) -> str:
        if suffix == ".json":
            return json.dumps({"text": "x" * (size - 12)})
        if suffix == ".html":
            head, tail = "<html><body><article><p>", "</p></article></body></html>"
            words = ("Some words of a story. " * 100)[: size - len(head) - len(tail)]
            return head + words + tail
        return "x" * size

    fits = write(tmp_path / f"fits{suffix}", content(1000))
    big = write(tmp_path / f"big{suffix}", content(1001))
    assert fits.stat().st_size == 1000 and big.stat().st_size == 1001
    items = list(load_articles([fits, big], max_input_bytes=1000))
    assert errors(items) == [LoadError(path=str(big), reason=f"file is 1,001 bytes, {CAP_REASON}")]
    assert [a.id for a in articles(items)] == ["fits"]


def test_the_default_cap_is_20_mb(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    with big.open("wb") as fh:
        fh.truncate(20_000_001)  # sparse: no disk used
    error = only_error(big)
    assert error.reason == (
        "file is 20,000,001 bytes, over the input cap of 20,000,000 bytes "
        "(max_input_bytes; raise it with --max-input-bytes)"
    )


def test_in_jsonl_the_cap_is_per_line(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "a", "text": "x" * 900}),
        json.dumps({"id": "huge", "text": "y" * 5000}),
        json.dumps({"id": "c", "text": "z" * 900}),
        json.dumps({"id": "last", "text": "w" * 3000}),  # no newline at the end
    ]
    path = write(tmp_path / "feed.jsonl", "\n".join(lines))
    assert path.stat().st_size > 5000  # the file is far over the cap; its lines are not
    items = list(load_articles([path], max_input_bytes=1000))
    assert [a.id for a in articles(items)] == ["a", "c"]
    assert errors(items) == [
        LoadError(path=str(path), line=2, reason=f"line is {len(lines[1]):,} bytes, {CAP_REASON}"),
        LoadError(path=str(path), line=4, reason=f"line is {len(lines[3]):,} bytes, {CAP_REASON}"),
    ]


def test_a_jsonl_line_at_the_cap_loads_and_offsets_stay_right_after_a_long_line(tmp_path: Path) -> None:
    at_cap = json.dumps({"id": "at", "text": "x" * 100}).encode()
    long = json.dumps({"text": "y" * 500}).encode()
    raw = at_cap + b"\n" + long + b"\n" + b'{"text": "caf\xe9"}\n'
    path = write(tmp_path / "f.jsonl", raw)
    items = list(load_articles([path], max_input_bytes=len(at_cap)))
    assert [a.id for a in articles(items)] == ["at"]
    cap = f"over the input cap of {len(at_cap)} bytes (max_input_bytes; raise it with --max-input-bytes)"
    assert errors(items) == [
        LoadError(path=str(path), line=2, reason=f"line is {len(long)} bytes, {cap}"),
        LoadError(path=str(path), line=3, reason=f"invalid UTF-8 at byte {raw.index(0xE9)}"),
    ]


def test_a_file_swapped_for_a_fifo_after_the_check_is_caught_on_the_open_fd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = write(tmp_path / "drop" / "a.txt", "Harmless at first.")
    real_open = os.open

    def swapping_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == str(victim) and victim.is_file():
            victim.unlink()
            os.mkfifo(victim)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", swapping_open)
    items = load_soon(tmp_path / "drop")
    assert errors(items) == [LoadError(path=str(victim), reason="not a regular file (a FIFO)")]


def test_a_file_swapped_for_a_symlink_after_the_check_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outside: Path
) -> None:
    victim = write(tmp_path / "drop" / "a.txt", "Harmless at first.")
    real_open = os.open

    def swapping_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == str(victim) and not victim.is_symlink():
            victim.unlink()
            victim.symlink_to(outside)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", swapping_open)
    items = load_soon(tmp_path / "drop")
    no_secret(items)
    assert [e.reason for e in errors(items)] == ["file changed while it was being loaded (now a symlink)"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")
def test_a_folder_swapped_for_a_symlink_after_the_walk_is_caught_on_the_open_fd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "elsewhere" / "a.txt", SECRET)
    victim = write(tmp_path / "drop" / "sub" / "a.txt", "Harmless at first.")
    real_open = os.open

    def swapping_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == str(victim) and not victim.parent.is_symlink():
            victim.unlink()
            victim.parent.rmdir()
            victim.parent.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", swapping_open)
    items = load_soon(tmp_path / "drop")
    no_secret(items)
    real = os.path.realpath(tmp_path / "elsewhere" / "a.txt")
    assert errors(items) == [
        LoadError(
            path=str(victim), reason=f"file changed while it was being loaded (now outside the input: {real})"
        )
    ]
