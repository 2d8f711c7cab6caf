"""The batch runner: incremental runs, crash safety (a real kill -9), failure isolation, duplicates,
run.json, progress reporters and the watch loop."""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

import extractor.batch as batch
from extractor import Extractor, Settings
from extractor.batch import RunSummary, run_batch, watch
from extractor.cli.progress import LogReporter, RichReporter
from extractor.cli.tables import render_summary_text
from extractor.errors import ConfigError, ParseError, TransportError
from extractor.models import ArticleResult, text_sha256
from extractor.prompts import load_prompts
from extractor.store import RESULTS_FILE, iter_results, read_article_text
from tests import wire
from tests.conftest import FakeModel

ROOT = Path(__file__).resolve().parents[1]

# Every article made by `body` contains these, so one answer fits any of them.
QUOTE = "we will act"
EVENT = "Leaders met in Paris on January 6."
STANCE = "Rome opposed sending troops."


def body(n: int | str) -> str:
    return f"Report {n}. The minister said “{QUOTE}” on Monday. {EVENT} {STANCE}\n"


def answer() -> dict[str, Any]:
    return wire.extraction(
        quotes=[(QUOTE, "the minister")], events=[wire.event(EVENT)], stances=[wire.stance(STANCE)]
    )


def answers(n: int) -> list[dict[str, Any]]:
    return [answer() for _ in range(n)]


def make(tmp_path: Path, fake: Any, **overrides: Any) -> Extractor:
    settings = Settings(cache_dir=tmp_path / "cache", use_cache=False, api_key=None, **overrides)
    return Extractor(settings, provider=fake, cache=None)


def drop(folder: Path, names: list[str] | range, text: Any = body) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.txt").write_text(text(name), encoding="utf-8")
    return folder


def lines(out: Path) -> list[dict[str, Any]]:
    raw = (out / RESULTS_FILE).read_bytes()
    assert raw == b"" or raw.endswith(b"\n")
    return [json.loads(x) for x in raw.splitlines()]


def run_json(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "run.json").read_text(encoding="utf-8"))
    return data


def quiet() -> LogReporter:
    return LogReporter(stream=io.StringIO(), quiet=True)


@dataclass
class SlowModel(FakeModel):
    """A FakeModel that takes ``delay`` seconds per call and records the peak number of calls in flight."""

    delay: float = 0.02
    active: int = 0
    peak: int = 0

    async def complete(self, messages: list[dict[str, str]], *, key: str, article_id: str, check: Any) -> Any:
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delay)
            return await super().complete(messages, key=key, article_id=article_id, check=check)
        finally:
            self.active -= 1


# --------------------------------------------------------------------------- incremental runs


def test_new_articles_on_top_of_done_ones_cost_one_call_each(tmp_path: Path) -> None:
    fake = FakeModel().enqueue(*answers(5))
    src = drop(tmp_path / "in", [f"a{i}" for i in range(5)])
    out = tmp_path / "out"
    first = run_batch([src], out, make(tmp_path, fake), reporter=quiet())
    assert (first.articles, first.ok, first.skipped, first.failed) == (5, 5, 0, 0)
    assert len(fake.history) == 5

    drop(src, ["b0", "b1", "b2"])
    fake2 = FakeModel().enqueue(*answers(3))
    second = run_batch([src], out, make(tmp_path, fake2), reporter=quiet())
    assert len(fake2.history) == 3  # N new articles, N calls, although the fake reports another model name
    assert sorted(h["article_id"] for h in fake2.history) == ["b0", "b1", "b2"]
    assert (second.articles, second.ok, second.skipped) == (8, 3, 5)
    results = lines(out)
    assert len(results) == 8 and {r["status"] for r in results} == {"ok"}
    assert Counter(r["article_id"] for r in results) == Counter(
        {f"a{i}": 1 for i in range(5)} | {f"b{i}": 1 for i in range(3)}
    )
    # the manifest records the configured model: that is the incremental key
    assert {r["model"] for r in results} == {"gpt-4o-mini"}
    assert run_json(out)["skipped"] == 5

    third = run_batch([src], out, make(tmp_path, FakeModel()), reporter=quiet())
    assert (third.skipped, third.ok) == (8, 0)
    assert len(lines(out)) == 8


def test_force_redoes_everything_and_compacts_to_one_line_per_source(tmp_path: Path) -> None:
    src = drop(tmp_path / "in", ["a", "b", "c"])
    out = tmp_path / "out"
    run_batch([src], out, make(tmp_path, FakeModel().enqueue(*answers(3))), reporter=quiet())
    fake = FakeModel().enqueue(*answers(3))
    summary = run_batch([src], out, make(tmp_path, fake), force=True, reporter=quiet())
    assert len(fake.history) == 3 and summary.skipped == 0 and summary.ok == 3
    assert summary.compacted_lines == 3
    assert sorted(r["article_id"] for r in lines(out)) == ["a", "b", "c"]
    assert run_json(out)["compacted_lines"] == 3


def test_another_model_or_prompt_version_is_not_done(tmp_path: Path) -> None:
    src = drop(tmp_path / "in", ["a", "b"])
    out = tmp_path / "out"
    run_batch([src], out, make(tmp_path, FakeModel().enqueue(*answers(2))), reporter=quiet())

    other_model = FakeModel().enqueue(*answers(2))
    run_batch([src], out, make(tmp_path, other_model, model="gpt-4.1-mini"), reporter=quiet())
    assert len(other_model.history) == 2

    edited = tmp_path / "prompts"
    edited.mkdir()
    for name in ("system.j2", "user.j2"):
        text = (load_prompts().directory / name).read_text(encoding="utf-8")
        (edited / name).write_text(text + ("\nBe careful." if name == "system.j2" else ""), encoding="utf-8")
    new_prompt = FakeModel().enqueue(*answers(2))
    settings = Settings(cache_dir=tmp_path / "cache", use_cache=False, model="gpt-4.1-mini")
    ex = Extractor(settings, provider=new_prompt, cache=None, prompts=load_prompts(edited))
    summary = run_batch([src], out, ex, reporter=quiet())
    assert len(new_prompt.history) == 2 and summary.skipped == 0
    results = lines(out)
    assert len(results) == 2  # one line per source
    assert {r["prompt_version"] for r in results} == {load_prompts(edited).version}


def test_changed_text_of_the_same_file_is_redone(tmp_path: Path) -> None:
    src = drop(tmp_path / "in", ["a", "b"])
    out = tmp_path / "out"
    run_batch([src], out, make(tmp_path, FakeModel().enqueue(*answers(2))), reporter=quiet())
    (src / "a.txt").write_text(body("a, revised"), encoding="utf-8")
    fake = FakeModel().enqueue(answer())
    summary = run_batch([src], out, make(tmp_path, fake), reporter=quiet())
    assert [h["article_id"] for h in fake.history] == ["a"]
    assert summary.skipped == 1 and summary.compacted_lines == 1
    by_id = {r["article_id"]: r for r in lines(out)}
    assert sorted(by_id) == ["a", "b"]
    assert by_id["a"]["sha256"] == text_sha256(body("a, revised"))


def test_same_name_in_another_drop_gets_its_own_stable_id(tmp_path: Path) -> None:
    out = tmp_path / "out"
    one = drop(tmp_path / "one", ["story"], text=lambda n: body("first"))
    two = drop(tmp_path / "two", ["story"], text=lambda n: body("second"))
    run_batch([one], out, make(tmp_path, FakeModel().enqueue(answer())), reporter=quiet())
    run_batch([two], out, make(tmp_path, FakeModel().enqueue(answer())), reporter=quiet())
    again = FakeModel()
    summary = run_batch([one, two], out, make(tmp_path, again), reporter=quiet())
    assert summary.skipped == 2 and again.history == []
    by_source = {Path(r["source"]).parent.name: r["article_id"] for r in lines(out)}
    assert by_source == {"one": "story", "two": "story-2"}


def test_one_text_under_one_name_in_two_folders_of_one_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    one = drop(tmp_path / "one", ["story"], text=lambda n: body("same"))
    two = drop(tmp_path / "two", ["story", "other"], text=lambda n: body("same"))
    fake = FakeModel().enqueue(answer())
    run_batch([one, two], out, make(tmp_path, fake), reporter=quiet())
    assert len(fake.history) == 1
    first = {(Path(r["source"]).parent.name, r["article_id"], r["duplicate_of"]) for r in lines(out)}
    assert first == {("one", "story", None), ("two", "story-2", "story"), ("two", "other", "story")}
    again = FakeModel()
    summary = run_batch([one, two], out, make(tmp_path, again), reporter=quiet())
    assert summary.skipped == 3 and again.history == []
    assert {(Path(r["source"]).parent.name, r["article_id"], r["duplicate_of"]) for r in lines(out)} == first


def test_a_moved_file_keeps_its_id_and_a_renamed_one_is_a_duplicate(tmp_path: Path) -> None:
    out = tmp_path / "out"
    src = drop(tmp_path / "in", ["story"], text=lambda n: body("kept"))
    run_batch([src], out, make(tmp_path, FakeModel().enqueue(answer())), reporter=quiet())
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (src / "story.txt").rename(moved / "story.txt")
    again = FakeModel()
    summary = run_batch([moved], out, make(tmp_path, again), reporter=quiet())
    assert again.history == [] and summary.skipped == 1
    (moved / "story.txt").rename(moved / "renamed.txt")
    summary = run_batch([moved], out, make(tmp_path, again), reporter=quiet())
    assert again.history == [] and summary.duplicates == 1
    assert [(r["article_id"], r["duplicate_of"]) for r in lines(out)] == [
        ("story", None),
        ("renamed", "story"),
    ]


def test_the_output_folder_is_never_read_back_as_input(tmp_path: Path) -> None:
    src = drop(tmp_path / "in", ["a", "b"])
    out = src / "out"  # inside the input folder
    run_batch([src], out, make(tmp_path, FakeModel().enqueue(*answers(2))), reporter=quiet())
    (out / "report.html").write_text("<html><body><p>" + body("report") + "</p></body></html>")
    (out / "digest.json").write_text(json.dumps({"text": body("digest")}))
    (out / "notes.txt").write_text(body("notes"))
    idle = FakeModel()
    again = run_batch([src], out, make(tmp_path, idle), reporter=quiet())
    assert (again.articles, again.skipped, again.failed, again.duplicates) == (2, 2, 0, 0)
    assert idle.history == [] and len(lines(out)) == 2

    # walking the output folder itself (or a folder inside it) reads only what the run did not write
    fake = FakeModel().enqueue(answer())
    inside = run_batch([out], out, make(tmp_path, fake), reporter=quiet())
    assert [h["article_id"] for h in fake.history] == ["notes"] and inside.articles == 1
    # a file named explicitly is always read
    fake = FakeModel().enqueue(answer())
    run_batch([out / "digest.json"], out, make(tmp_path, fake), reporter=quiet())
    assert [h["article_id"] for h in fake.history] == ["digest"]
    assert sorted(r["article_id"] for r in lines(out)) == ["a", "b", "digest", "notes"]


# --------------------------------------------------------------------------- retries and failure isolation


def test_failures_are_isolated_and_retried_next_run(tmp_path: Path) -> None:
    src = drop(tmp_path / "in", ["a", "b", "c", "d"])
    (src / "empty.txt").write_bytes(b"")
    (src / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (src / "rows.jsonl").write_text('{"id": "r1", "text": "' + body("r1").strip() + '"}\nnot json\n', "utf-8")
    out = tmp_path / "out"
    fake = FakeModel().enqueue(
        answer(), TransportError("HTTP 503 after 6 attempts"), ParseError("still invalid after 2 attempt(s)")
    )
    fake.enqueue(RuntimeError("a bug in one article"), answer())
    summary = run_batch([src], out, make(tmp_path, fake), concurrency=1, reporter=quiet())
    by_id = {r["article_id"]: r for r in lines(out)}
    assert by_id["a"]["status"] == "ok"
    assert by_id["b"]["error"]["type"] == "TransportError"
    assert by_id["c"]["error"]["type"] == "ParseError"
    assert by_id["d"]["error"] == {"type": "RuntimeError", "message": "a bug in one article"}
    assert by_id["empty"]["error"] == {"type": "LoadError", "message": "empty file"}
    assert by_id["latin1"]["error"]["type"] == "LoadError" and "UTF-8" in by_id["latin1"]["error"]["message"]
    assert by_id["r1"]["status"] == "ok"
    assert by_id["rows-2"]["error"]["type"] == "LoadError" and by_id["rows-2"]["source"].endswith(
        "rows.jsonl:2"
    )
    assert (summary.ok, summary.errors, summary.load_errors, summary.failed) == (2, 3, 3, 6)
    data = run_json(out)
    assert data["failed"] == 6
    assert data["error_types"] == {"TransportError": 1, "ParseError": 1, "RuntimeError": 1, "LoadError": 3}

    (src / "empty.txt").write_text(body("e"), encoding="utf-8")
    retry = FakeModel().enqueue(*answers(4))
    again = run_batch([src], out, make(tmp_path, retry), reporter=quiet())
    assert sorted(h["article_id"] for h in retry.history) == ["b", "c", "d", "empty"]
    assert again.skipped == 2 and again.ok == 4 and again.load_errors == 2
    assert again.compacted_lines == 6  # the superseded lines of every retried source
    results = lines(out)
    assert len(results) == len({r["source"] for r in results}) == 8
    assert sorted(r["article_id"] for r in results if r["status"] == "error") == ["latin1", "rows-2"]


def test_unattributed_quotes_and_partial_articles_are_counted_and_partials_redone(tmp_path: Path) -> None:
    """Before: a failed chunk failed its article, and run.json had no unattributed-quote count."""
    from extractor.cache import ResponseCache
    from extractor.chunking import split_chunks

    src = drop(tmp_path / "in", ["u"])
    long_text = "\n\n".join(f"Part {i}: the minister said “{QUOTE}” again. " + "z" * 300 for i in range(8))
    (src / "long.txt").write_text(long_text, encoding="utf-8")
    windows = split_chunks(long_text, 1000, 200)
    assert len(windows) >= 3
    unattributed = wire.extraction(quotes=[(QUOTE, "the minister")], events=[wire.event(EVENT)])
    unattributed["quotes"].append({"text": "Rome opposed sending troops", "speaker": None, "cue": None})
    per_chunk = [wire.extraction(quotes=[(QUOTE, "the minister")]) for _ in windows]
    fake = FakeModel().enqueue(unattributed, per_chunk[0], TransportError("HTTP 503 after 6 attempts"))
    fake.enqueue(*per_chunk[2:])

    def extractor(model: FakeModel) -> Extractor:
        settings = Settings(cache_dir=tmp_path / "cache", chunk_chars=1000, chunk_overlap_chars=200)
        return Extractor(settings, provider=model, cache=ResponseCache(tmp_path / "cache"))

    stream = io.StringIO()
    out = tmp_path / "out"
    summary = run_batch(
        [src / "u.txt", src / "long.txt"],
        out,
        extractor(fake),
        concurrency=1,
        reporter=LogReporter(stream=stream),
    )
    by_id = {r.article_id: r for r in iter_results(out)}
    assert by_id["long"].status == "ok" and [c.chunk for c in by_id["long"].chunk_errors] == [2]
    assert len(by_id["long"].quotes) == len(windows) - 1  # one per chunk answered
    assert [q.speaker for q in by_id["u"].quotes] == ["the minister", None]
    assert (summary.quotes_unattributed, summary.partial, summary.ok, summary.errors) == (1, 1, 2, 0)
    data = run_json(out)
    assert (data["quotes_unattributed"], data["partial"]) == (1, 1)
    text = stream.getvalue()
    assert ", 1 rejected, 1 unattributed" not in text and "0 rejected, 1 unattributed" in text
    assert "partial articles         1 (a chunk failed: redone next run)" in text
    assert f"; partial: chunk 2 (TransportError) of {len(windows)} failed" in text

    # the next run redoes the partial article only, and pays only for its failed chunk
    retry = FakeModel().enqueue(per_chunk[1])
    again = run_batch([src / "u.txt", src / "long.txt"], out, extractor(retry), reporter=quiet())
    assert [h["article_id"] for h in retry.history] == ["long"]
    assert (again.skipped, again.ok, again.partial) == (1, 1, 0)
    fixed = {r.article_id: r for r in iter_results(out)}["long"]
    assert fixed.chunk_errors == [] and len(fixed.quotes) == len(windows)


def test_a_config_error_stops_the_batch(tmp_path: Path) -> None:
    src = drop(tmp_path / "in", ["a"])
    ex = Extractor(Settings(cache_dir=tmp_path / "cache", use_cache=False), cache=None)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        run_batch([src], tmp_path / "out", ex, reporter=quiet())
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="concurrency"):
        run_batch([src], tmp_path / "out", make(tmp_path, FakeModel()), concurrency=0)


# --------------------------------------------------------------------------- duplicates


def test_the_same_text_twice_is_extracted_once(tmp_path: Path) -> None:
    src = drop(tmp_path / "in", ["a", "b"], text=lambda n: body("same"))
    drop(src, ["c"])
    out = tmp_path / "out"
    fake = FakeModel().enqueue(*answers(2))
    summary = run_batch([src], out, make(tmp_path, fake), reporter=quiet())
    assert sorted(h["article_id"] for h in fake.history) == ["a", "c"]
    by_id = {r["article_id"]: r for r in lines(out)}
    assert by_id["b"]["duplicate_of"] == "a" and by_id["b"]["status"] == "ok" and by_id["b"]["quotes"] == []
    assert by_id["a"]["duplicate_of"] is None and len(by_id["a"]["quotes"]) == 1
    assert summary.duplicates == 1 and run_json(out)["duplicates"] == 1
    assert len(list((out / "articles").iterdir())) == 2

    # re-running extracts nothing (the first of the pair included), and a later copy is a duplicate too
    drop(tmp_path / "later", ["z"], text=lambda n: body("same"))
    again = FakeModel()
    second = run_batch([src, tmp_path / "later"], out, make(tmp_path, again), reporter=quiet())
    assert again.history == []
    assert second.skipped == 3 and second.duplicates == 1
    assert {r["article_id"]: r["duplicate_of"] for r in lines(out)}["z"] == "a"


def test_copies_of_a_failed_article_fail_with_it_and_are_retried(tmp_path: Path) -> None:
    src = drop(tmp_path / "in", ["a", "b", "c"], text=lambda n: body("same"))
    out = tmp_path / "out"
    fake = SlowModel().enqueue(TransportError("HTTP 503"))
    summary = run_batch([src], out, make(tmp_path, fake), concurrency=4, reporter=quiet())
    assert len(fake.history) == 1 and summary.failed == 3
    by_id = {r["article_id"]: r for r in lines(out)}
    assert by_id["b"]["status"] == "error" and by_id["b"]["duplicate_of"] == "a"
    assert "same text as a, which failed (TransportError: HTTP 503)" in by_id["b"]["error"]["message"]

    retry = FakeModel().enqueue(answer())
    run_batch([src], out, make(tmp_path, retry), reporter=quiet())
    assert len(retry.history) == 1
    final = {r["article_id"]: r for r in lines(out)}
    assert len(final) == 3 and {r["status"] for r in final.values()} == {"ok"}
    assert final["b"]["duplicate_of"] == final["c"]["duplicate_of"] == "a"


@dataclass
class GatedModel(FakeModel):
    """Answers only once the batch has read its whole input (every copy is then waiting on the first),
    each article with the answer queued under its id (the calls resume in any order)."""

    state: dict[str, bool] = field(default_factory=dict)
    by_id: dict[str, Any] = field(default_factory=dict)

    async def complete(self, messages: list[dict[str, str]], *, key: str, article_id: str, check: Any) -> Any:
        while not self.state.get("read_all"):
            await asyncio.sleep(0.001)
        self.queue.insert(0, self.by_id.pop(article_id))
        return await super().complete(messages, key=key, article_id=article_id, check=check)


@pytest.fixture
def parked(monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, bool], list[int]]:
    """Marks when the batch has read all its input, and records how many copies wait in the on-disk
    index each time the copies of a finished article are released."""
    state: dict[str, bool] = {}
    counts: list[int] = []
    real_next = batch._Inputs.next

    async def next_(self: Any) -> Any:
        item = await real_next(self)
        state["read_all"] = item is None
        return item

    class Index(batch._Index):
        def release(self, text: bytes) -> Iterator[Any]:
            counts.append(self._one("SELECT count(*) FROM waiting"))
            return super().release(text)

    monkeypatch.setattr(batch._Inputs, "next", next_)
    monkeypatch.setattr(batch.runner, "_Index", Index)
    return state, counts


@pytest.mark.parametrize("fails", [False, True], ids=["ok", "failed"])
def test_copies_waiting_on_an_article_in_flight_wait_on_disk_and_each_gets_its_line(
    tmp_path: Path, parked: tuple[dict[str, bool], list[int]], fails: bool
) -> None:
    state, counts = parked
    feed = tmp_path / "in" / "feed.jsonl"
    feed.parent.mkdir()
    rows = [{"id": "other", "text": body("other")}]
    rows += [{"id": f"copy{i}", "text": body("same"), "title": f"T{i}"} for i in range(300)]
    rows += [{"id": "last", "text": body("last")}]
    feed.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    out = tmp_path / "out"
    first = TransportError("HTTP 503") if fails else answer()
    fake = GatedModel(state=state, by_id={"other": answer(), "copy0": first, "last": answer()})
    summary = run_batch([feed], out, make(tmp_path, fake), concurrency=4, reporter=quiet())
    assert len(fake.history) == 3
    assert counts and max(counts) == 299  # every copy waited in the index, none in memory
    got = lines(out)
    assert len(got) == 302 and summary.articles == 302 and summary.duplicates == 299
    copies = [r for r in got if r["duplicate_of"] == "copy0"]
    assert [r["article_id"] for r in copies] == [f"copy{i}" for i in range(1, 300)]  # in input order
    assert [r["title"] for r in copies] == [f"T{i}" for i in range(1, 300)]
    assert {r["source"] for r in copies} == {f"{feed}:{i}" for i in range(3, 302)}
    assert {r["sha256"] for r in copies} == {text_sha256(body("same"))}
    if fails:
        assert {r["status"] for r in copies} == {"error"} and summary.failed == 300
        assert {r["error"]["message"] for r in copies} == {
            "same text as copy0, which failed (TransportError: HTTP 503)"
        }
    else:
        assert {r["status"] for r in got} == {"ok"} and summary.ok == 302


# --------------------------------------------------------------------------- concurrency and interruption


def test_concurrency_bounds_the_calls_in_flight(tmp_path: Path) -> None:
    src = drop(tmp_path / "in", range(12))
    fake = SlowModel()
    fake.enqueue(*answers(12))
    summary = run_batch([src], tmp_path / "out", make(tmp_path, fake), concurrency=3, reporter=quiet())
    assert summary.ok == 12 and fake.peak == 3

    fake2 = SlowModel()
    fake2.enqueue(*answers(12))
    run_batch([src], tmp_path / "out2", make(tmp_path, fake2, concurrency=5), reporter=quiet())
    assert fake2.peak == 5  # Settings.concurrency when none is given


@dataclass
class InterruptingModel(SlowModel):
    """Sends this process SIGINT (Ctrl-C) during its second call."""

    calls: int = 0

    async def complete(self, messages: list[dict[str, str]], *, key: str, article_id: str, check: Any) -> Any:
        self.calls += 1
        if self.calls == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return await super().complete(messages, key=key, article_id=article_id, check=check)


def test_ctrl_c_finishes_the_articles_in_flight_then_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = drop(tmp_path / "in", range(10))
    out = tmp_path / "out"
    fake = InterruptingModel(delay=0.05).enqueue(*answers(10))
    summary = run_batch([src], out, make(tmp_path, fake), concurrency=2, reporter=quiet())
    assert summary.interrupted and run_json(out)["interrupted"] is True
    done = lines(out)
    assert 2 <= len(done) < 10 and len(done) == len(fake.history)
    assert {r["status"] for r in done} == {"ok"}
    assert "stopping after the articles in flight" in capsys.readouterr().err

    rest = FakeModel().enqueue(*answers(10))
    final = run_batch([src], out, make(tmp_path, rest), reporter=quiet())
    assert not final.interrupted and final.skipped == len(done) and len(rest.history) == 10 - len(done)
    assert sorted(r["article_id"] for r in lines(out)) == sorted(str(i) for i in range(10))


# --------------------------------------------------------------------------- crash safety


def test_a_torn_last_line_is_repaired_and_its_article_redone(tmp_path: Path) -> None:
    src = drop(tmp_path / "in", ["a", "b", "c"])
    out = tmp_path / "out"
    run_batch([src], out, make(tmp_path, FakeModel().enqueue(*answers(3))), concurrency=1, reporter=quiet())
    raw = (out / RESULTS_FILE).read_bytes()
    kept, last = raw[: raw.rstrip(b"\n").rfind(b"\n") + 1], raw[raw.rstrip(b"\n").rfind(b"\n") + 1 :]
    torn = last[: len(last) // 2]
    (out / RESULTS_FILE).write_bytes(kept + torn)  # the kill landed in the middle of the last write
    fake = FakeModel().enqueue(answer())
    summary = run_batch([src], out, make(tmp_path, fake), reporter=quiet())
    assert summary.repaired_bytes == len(torn) and run_json(out)["repaired_bytes"] == len(torn)
    assert [h["article_id"] for h in fake.history] == ["c"] and summary.skipped == 2
    assert sorted(r["article_id"] for r in lines(out)) == ["a", "b", "c"]


def _complete_lines(path: Path) -> list[dict[str, Any]]:
    raw = path.read_bytes() if path.exists() else b""
    return [json.loads(x) for x in raw.split(b"\n")[:-1] if x.strip()]


@pytest.fixture
def slow_server() -> Iterator[str]:
    """The project's fake OpenAI-compatible server on 127.0.0.1, 0.2 s per request."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        fs: Any = importlib.import_module("fake_server")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    manager = fs.run_in_thread(fs.ServerConfig(latency=0.2))
    url = manager.__enter__()
    try:
        yield str(url)
    finally:
        manager.__exit__(None, None, None)


def live_env(tmp_path: Path, url: str) -> dict[str, str]:
    return dict(
        os.environ, OPENAI_API_KEY="test", OPENAI_BASE_URL=url, EXTRACTOR_CACHE_DIR=str(tmp_path / "c")
    )


@pytest.mark.slow
def test_kill_9_mid_run_then_the_same_command_finishes_the_rest(tmp_path: Path, slow_server: str) -> None:
    src = drop(tmp_path / "in", [f"art{i:02d}" for i in range(40)])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "extractor", "run", str(src), "--out", str(out)]
    command += ["--concurrency", "4", "--no-cache", "--quiet"]
    env = live_env(tmp_path, slow_server)
    log = (tmp_path / "first.log").open("wb")
    proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60  # a liveness bound, generous for a loaded machine
        while len(_complete_lines(out / RESULTS_FILE)) < 8:
            assert proc.poll() is None, (tmp_path / "first.log").read_text()
            assert time.monotonic() < deadline, "the run wrote no results in time"
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    assert not (out / "run.json").exists()
    done_before = _complete_lines(out / RESULTS_FILE)
    assert 8 <= len(done_before) < 40
    with (out / RESULTS_FILE).open("ab") as fh:
        fh.write(b'{"article_id": "x')  # and a torn write on top of whatever the kill left

    second = subprocess.run(command, env=env, capture_output=True, timeout=30, check=False)
    assert second.returncode == 0, second.stderr.decode()
    raw = (out / RESULTS_FILE).read_bytes()
    assert raw.endswith(b"\n")
    results = [ArticleResult.model_validate_json(x) for x in raw.splitlines()]
    assert Counter(r.article_id for r in results) == Counter({f"art{i:02d}": 1 for i in range(40)})
    assert {r.status for r in results} == {"ok"}
    assert all(r.events or r.quotes or r.stances for r in results)
    summary = run_json(out)
    assert summary["articles"] == 40 and summary["failed"] == 0
    assert summary["skipped"] == len(done_before)
    assert summary["ok"] == 40 - len(done_before)
    assert summary["repaired_bytes"] >= len(b'{"article_id": "x')
    assert summary["http_calls"] == 40 - len(done_before)
    assert len(list((out / "articles").glob("*.txt"))) == 40


# --------------------------------------------------------------------------- run.json


RICH = (
    "The minister said “we will act quickly and we will act firmly” on Monday. "
    "“Italy’s position is unchanged,” the statement reads. Leaders met in Paris on January 6. "
    "Rome opposed sending troops.\n"
)


def rich_answer() -> dict[str, Any]:
    return wire.extraction(
        quotes=[
            ("we will act quickly and we will act firmly", "the minister"),  # exact
            ("Italy's position is unchanged,", "the statement"),  # straight apostrophe: normalized
            ("we will act quickly ... act firmly", "the minister"),  # elided
            ("we never said this at all", "the minister"),  # rejected
        ],
        events=[
            wire.event(EVENT),
            wire.event("Rome opposed sending troops."),
            wire.event("Nobody met in Berlin."),
        ],
        stances=[wire.stance("Rome opposed sending troops.")],
    )


def crafted_drop(tmp_path: Path) -> Path:
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.txt").write_text(RICH, encoding="utf-8")
    (src / "b.txt").write_text(body("b"), encoding="utf-8")
    (src / "c.txt").write_text(body("b"), encoding="utf-8")  # a copy of b
    (src / "d.txt").write_bytes(b"  \n")  # only whitespace: a load error
    (src / "e.txt").write_text(body("e"), encoding="utf-8")  # the model fails on it
    return src


class FakeClock:
    """perf_counter for extractor.batch: 1000.0 at the start of a run, 1000.12345 at its end."""

    def __init__(self) -> None:
        self.values = iter([1000.0, 1000.12345])

    def __call__(self) -> float:
        return next(self.values)


def test_run_json_of_a_crafted_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = crafted_drop(tmp_path)
    out = tmp_path / "out"
    fake = FakeModel().enqueue(rich_answer(), answer(), TransportError("HTTP 503 after 6 attempts"))
    monkeypatch.setattr(
        batch.runner,
        "time",
        SimpleNamespace(perf_counter=FakeClock(), time=time.time, monotonic=time.monotonic),
    )
    summary = run_batch([src], out, make(tmp_path, fake), concurrency=1, reporter=quiet())
    data = run_json(out)
    expected = {
        "articles": 5,
        "ok": 3,
        "errors": 1,
        "load_errors": 1,
        "failed": 2,
        "skipped": 0,
        "duplicates": 1,
        "cache_hits": 0,
        "quotes_exact": 1 + 1,
        "quotes_normalized": 1,
        "quotes_elided": 1,
        "rejected": 2,
        "rejected_quotes": 1,
        "events": 2 + 1,
        "stances": 1 + 1,
        "prompt_tokens": 200,
        "completion_tokens": 100,
        "tokens": 300,
        "http_calls": 2,
        "cost_usd": round((200 * 0.15 + 100 * 0.60) / 1e6, 6),
        "model": "gpt-4o-mini",
        "prompt_version": load_prompts().version,
        "repaired_bytes": 0,
        "compacted_lines": 0,
        "interrupted": False,
        "error_types": {"LoadError": 1, "TransportError": 1},
        "wall_s": 0.123,
        # from the unrounded wall time (0.12345 s), not from 0.123
        "articles_per_min": round(5 / 0.12345 * 60, 1),
    }
    assert {k: data[k] for k in expected} == expected
    assert data["articles_per_min"] != round(5 / 0.123 * 60, 1)
    assert summary.as_dict() == data
    a = next(r for r in iter_results(out) if r.article_id == "a")
    assert [q.span.status for q in a.quotes] == ["exact", "normalized", "elided"]
    assert [(x.kind, x.item.get("text") or x.item.get("evidence")) for x in a.rejected] == [
        ("event", "Nobody met in Berlin."),
        ("quote", "we never said this at all"),
    ]
    for r in iter_results(out):
        if r.sha256:
            assert read_article_text(out, r.sha256) == (src / f"{r.article_id}.txt").read_text(
                encoding="utf-8"
            )


def test_prices_can_be_overridden_and_unknown_models_cost_nothing_known(tmp_path: Path) -> None:
    src = drop(tmp_path / "in", ["a", "b"])
    cfg = tmp_path / "extractor.toml"
    cfg.write_text('[extractor]\nmodel = "house-model"\n\n[extractor.prices]\nhouse-model = [1.0, 2.0]\n')
    settings = Settings.load(cfg, env={}, cache_dir=tmp_path / "cache", use_cache=False)
    ex = Extractor(settings, provider=FakeModel().enqueue(*answers(2)), cache=None)
    run_batch([src], tmp_path / "out1", ex, reporter=quiet())
    assert run_json(tmp_path / "out1")["cost_usd"] == pytest.approx(2 * (100 * 1.0 + 50 * 2.0) / 1e6)

    overridden = make(tmp_path, FakeModel().enqueue(*answers(2)), prices={"gpt-4o-mini": (10.0, 20.0)})
    run_batch([src], tmp_path / "out2", overridden, reporter=quiet())
    assert run_json(tmp_path / "out2")["cost_usd"] == pytest.approx(2 * (100 * 10.0 + 50 * 20.0) / 1e6)

    stream = io.StringIO()
    unknown = make(tmp_path, FakeModel().enqueue(*answers(2)), model="mystery-llm")
    run_batch([src], tmp_path / "out3", unknown, reporter=LogReporter(stream=stream))
    assert run_json(tmp_path / "out3")["cost_usd"] is None
    assert "n/a (no price for this model)" in stream.getvalue()


def test_cache_hits_are_counted(tmp_path: Path) -> None:
    src = drop(tmp_path / "in", ["a", "b"])
    settings = Settings(cache_dir=tmp_path / "cache", api_key=None)
    fake = FakeModel().enqueue(*answers(2))
    with Extractor(settings, provider=fake) as ex:
        run_batch([src], tmp_path / "out1", ex, reporter=quiet())
    with Extractor(settings, provider=fake) as ex:
        summary = run_batch([src], tmp_path / "out2", ex, reporter=quiet())
    assert len(fake.history) == 2
    data = run_json(tmp_path / "out2")
    assert (summary.cache_hits, data["cache_hits"], data["http_calls"], data["ok"]) == (2, 2, 0, 2)


# --------------------------------------------------------------------------- reporters


def test_log_reporter_lines_and_summary(tmp_path: Path) -> None:
    src = crafted_drop(tmp_path)
    fake = FakeModel().enqueue(rich_answer(), answer(), TransportError("HTTP 503 after 6 attempts"))
    stream = io.StringIO()
    out = tmp_path / "out"
    run_batch([src], out, make(tmp_path, fake), concurrency=1, reporter=LogReporter(stream=stream))
    text = stream.getvalue()
    assert text.startswith(f"extracting into {out}\n")
    assert "[extracted] a: 2 events, 3 quotes, 1 stances, 2 rejected\n" in text
    assert "[duplicate] c: duplicate of b\n" in text
    assert "[failed] d: LoadError: file contains only whitespace\n" in text
    assert "[failed] e: TransportError: HTTP 503 after 6 attempts\n" in text
    assert "ok / failed              3 / 2 (1 could not be loaded)" in text
    assert "quotes                   2 exact, 1 normalized, 1 elided, 1 rejected" in text

    again = io.StringIO()
    run_batch([src], out, make(tmp_path, FakeModel().enqueue(answer())), reporter=LogReporter(stream=again))
    assert "[skipped] a: already done\n" in again.getvalue()


def test_quiet_log_reporter_prints_only_the_summary(tmp_path: Path) -> None:
    src = crafted_drop(tmp_path)
    fake = FakeModel().enqueue(rich_answer(), answer(), TransportError("HTTP 503"))
    stream = io.StringIO()
    run_batch([src], tmp_path / "out", make(tmp_path, fake), reporter=LogReporter(stream=stream, quiet=True))
    text = stream.getvalue()
    assert "[" not in text and "extracting into" not in text
    assert text.startswith("articles ") and "wall time" in text


def test_rich_reporter_draws_a_bar_and_a_table(tmp_path: Path) -> None:
    src = crafted_drop(tmp_path)
    fake = FakeModel().enqueue(rich_answer(), answer(), TransportError("HTTP 503"))
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=140, color_system=None)
    reporter = RichReporter(total=5, console=console)
    run_batch([src], tmp_path / "out", make(tmp_path, fake), concurrency=1, reporter=reporter)
    text = buffer.getvalue()
    assert "extract" in text and "5/5" in text and "ok 3 · failed 2" in text
    assert "failed e: HTTP 503" in text
    assert "extractor run" in text and "ok / failed" in text and "3 / 2 (1 could not be loaded)" in text


def test_rich_reporter_prints_an_error_message_as_text_not_markup(tmp_path: Path) -> None:
    src = crafted_drop(tmp_path)
    upstream = "HTTP 502: <pre>[bold]proxy[/bold] sent authorization: [REDACTED] [link]</pre>"
    fake = FakeModel().enqueue(rich_answer(), answer(), TransportError(upstream))
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=200, color_system=None)
    run_batch([src], tmp_path / "out", make(tmp_path, fake), concurrency=1, reporter=RichReporter(5, console))
    assert f"failed e: {upstream}" in buffer.getvalue()


def test_summary_text_of_an_empty_run() -> None:
    text = render_summary_text(RunSummary())
    assert "0 (0 skipped as done, 0 duplicates)" in text and "$0.0000" in text


# --------------------------------------------------------------------------- watch


class DropMore:
    """A reporter that drops more files into the watched folder when ``trigger`` is extracted."""

    def __init__(self, folder: Path, trigger: str, files: dict[str, str]) -> None:
        self.folder, self.trigger, self.files = folder, trigger, files
        self.outcomes: list[tuple[str, str]] = []
        self.finished: list[RunSummary] = []

    def start(self, out_dir: Path) -> None:
        pass

    def article(self, result: ArticleResult, outcome: str, summary: RunSummary) -> None:
        self.outcomes.append((result.article_id, outcome))
        if result.article_id == self.trigger and outcome == "extracted":
            for name, text in self.files.items():
                (self.folder / name).write_text(text, encoding="utf-8")
            self.files = {}  # once

    def finish(self, summary: RunSummary) -> None:
        self.finished.append(summary)


def test_watch_extracts_files_added_between_rounds_exactly_once(tmp_path: Path) -> None:
    src = drop(tmp_path / "drop", ["a1", "a2"])
    out = src / "out"  # inside the watched folder: its results.jsonl must not be read as input
    more = {"b1.txt": body("b1"), "b2.txt": body("b2"), "a1.txt": body("a1, edited")}
    reporter = DropMore(src, "a1", more)
    fake = FakeModel().enqueue(*answers(5))
    summary = watch(
        src, out, make(tmp_path, fake), interval_s=0.05, settle_s=0, max_rounds=3, reporter=reporter
    )
    assert sorted(h["article_id"] for h in fake.history) == ["a1", "a1", "a2", "b1", "b2"]
    results = lines(out)
    assert sorted(r["article_id"] for r in results) == ["a1", "a2", "b1", "b2"]
    assert {r["article_id"]: r["sha256"] for r in results}["a1"] == text_sha256(body("a1, edited"))
    assert (summary.articles, summary.ok, summary.failed, summary.compacted_lines) == (5, 5, 0, 1)
    assert len(reporter.finished) == 1  # one summary for the whole watch
    data = run_json(out)
    assert (data["articles"], data["ok"], data["skipped"]) == (5, 5, 0)
    assert data["cost_usd"] == pytest.approx(5 * (100 * 0.15 + 50 * 0.6) / 1e6)

    # a new watch of the same folder: everything is already done
    idle = FakeModel()
    again = watch(src, out, make(tmp_path, idle), interval_s=0.05, settle_s=0, max_rounds=2, reporter=quiet())
    assert idle.history == [] and again.skipped == 4 and run_json(out)["skipped"] == 4


def test_watch_waits_for_files_to_settle(tmp_path: Path) -> None:
    src = drop(tmp_path / "drop", ["fresh"])
    idle = FakeModel()
    summary = watch(src, tmp_path / "out", make(tmp_path, idle), interval_s=0.01, settle_s=60, max_rounds=2)
    assert idle.history == [] and summary.articles == 0
    assert run_json(tmp_path / "out")["articles"] == 0


def test_watch_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        watch(tmp_path / "missing", tmp_path / "out", make(tmp_path, FakeModel()), max_rounds=1)
    with pytest.raises(ConfigError, match="interval"):
        watch(tmp_path, tmp_path / "out", make(tmp_path, FakeModel()), interval_s=0, max_rounds=1)


def test_count_inputs_gives_the_progress_bar_its_total(tmp_path: Path) -> None:
    from extractor.batch import count_inputs

    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.txt").write_text("one", encoding="utf-8")
    (drop / "b.jsonl").write_text('{"text": "x"}\n\n{"text": "y"}\n{"text": "z"}\n', encoding="utf-8")
    out = drop / "out"
    out.mkdir()
    (out / "results.jsonl").write_text("{}\n", encoding="utf-8")
    assert count_inputs([drop], out) == 4


def test_count_inputs_neither_blocks_on_a_fifo_nor_holds_a_long_line(tmp_path: Path) -> None:
    from extractor.batch import count_inputs

    drop = tmp_path / "drop"
    drop.mkdir()
    os.mkfifo(drop / "pipe.jsonl")
    (drop / "long.jsonl").write_bytes(b'{"text": "' + b"x" * 3_000_000 + b'"}\n  \n{"text": "y"}')
    counted: list[int] = []
    worker = threading.Thread(
        target=lambda: counted.append(count_inputs([drop], tmp_path / "out")), daemon=True
    )
    worker.start()
    worker.join(20)
    if worker.is_alive():
        os.close(os.open(drop / "pipe.jsonl", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("count_inputs blocked on a FIFO")
    assert counted == [3]  # two lines of long.jsonl, and the FIFO counted once (the loader reports it)


def test_watch_refuses_a_symlink_out_of_the_drop(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("Outside the drop.", encoding="utf-8")
    src = drop(tmp_path / "in", ["a"])
    (src / "link.txt").symlink_to(outside)
    out = tmp_path / "out"
    fake = FakeModel().enqueue(answer())
    watch(src, out, make(tmp_path, fake), interval_s=0.01, settle_s=0, max_rounds=1, reporter=quiet())
    by_id = {r["article_id"]: r for r in lines(out)}
    assert by_id["a"]["status"] == "ok" and [h["article_id"] for h in fake.history] == ["a"]
    assert by_id["link"]["error"]["type"] == "LoadError"
    assert by_id["link"]["error"]["message"].startswith("symlink to outside the input")


def test_compaction_keeps_the_last_line_per_source_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / RESULTS_FILE
    rows = [
        b'{"source": "a", "n": 1}\n',
        b'{"source": "b", "n": 2}\n',
        b'{"source": "a", "n": 3}\n',
        b"not json\n",
        b'{"n": 5}\n',  # no source: kept, keyed by its line
        b'["a list"]\n',
        b'{"source": "c", "n": 7}\n',
        b'{"source": "b", "n": 8}\n',
    ]
    path.write_bytes(b"".join(rows))
    assert batch._compact(path)[0] == 4
    assert path.read_bytes() == rows[2] + rows[4] + rows[6] + rows[7]
    assert batch._compact(path)[0] == 0 and path.read_bytes() == rows[2] + rows[4] + rows[6] + rows[7]
    assert sorted(p.name for p in tmp_path.iterdir()) == [RESULTS_FILE]  # no scratch file left


def test_compaction_drops_a_torn_last_line_and_totals_only_the_lines_kept(tmp_path: Path) -> None:
    path = tmp_path / RESULTS_FILE
    first = b'{"source": "a", "status": "error"}\n'
    kept = b'{"source": "a", "status": "ok", "quotes": [{}, {}]}\n'
    path.write_bytes(first + kept + b'{"source": "b", "sta')
    (tmp_path / batch.COMPACT_FILE).write_bytes(b"left by a killed run")
    dropped, folder = batch._compact(path)
    assert dropped == 2 and path.read_bytes() == kept
    assert (folder["articles"], folder["ok"], folder["failed"], folder["quotes"]) == (1, 1, 0, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == [RESULTS_FILE]


def test_the_scratch_index_is_removed_and_a_stale_one_is_rebuilt(tmp_path: Path) -> None:
    from extractor.batch import INDEX_FILE

    src = drop(tmp_path / "in", range(3))
    out = tmp_path / "out"
    fake = FakeModel().enqueue(*answers(3))
    run_batch([src], out, make(tmp_path, fake), reporter=quiet())
    assert not (out / INDEX_FILE).exists()
    (out / INDEX_FILE).write_bytes(b"garbage left by a killed run")
    summary = run_batch([src], out, make(tmp_path, fake), reporter=quiet())
    assert (summary.skipped, len(fake.history)) == (3, 3)
    assert not (out / INDEX_FILE).exists()


@pytest.mark.parametrize("slow_s", [60.0, -1.0], ids=["on the loop", "in a thread"])
def test_inputs_come_in_order_with_each_text_stored_once_loaded(slow_s: float) -> None:
    import threading

    from extractor.articles import LoadError
    from extractor.models import Article

    items: list[Article | LoadError] = [Article.from_text(f"Text {i}.") for i in range(40)]
    items.insert(7, LoadError(path="bad.txt", reason="empty file"))
    prepared: list[tuple[str, bool]] = []

    def prepare(article: Article) -> None:
        prepared.append((article.text, threading.current_thread() is threading.main_thread()))

    async def drain() -> list[Article | LoadError]:
        source = batch._Inputs(iter(items), prepare, block=8, slow_s=slow_s)
        got: list[Article | LoadError] = []
        while (item := await source.next()) is not None:
            got.append(item)
        await source.aclose()
        return got

    assert asyncio.run(drain()) == items
    assert [text for text, _ in prepared] == [a.text for a in items if isinstance(a, Article)]
    on_loop = {on_main for _, on_main in prepared}
    # A slow first block moves loading off the loop from the second block on.
    assert on_loop == ({True} if slow_s > 0 else {True, False})


# --------------------------------------------------------------------------- SIGTERM


@dataclass
class SignallingModel(SlowModel):
    """Answers its first ``quick`` calls after ``delay``; every later call hangs (an endpoint that stopped
    answering). During call ``at`` it sends this process ``signals`` (one after another)."""

    quick: int = 2
    at: int = 2
    signals: tuple[int, ...] = (signal.SIGTERM,)
    calls: int = 0

    async def complete(self, messages: list[dict[str, str]], *, key: str, article_id: str, check: Any) -> Any:
        self.calls += 1
        if self.calls == self.at:
            for signum in self.signals:
                os.kill(os.getpid(), signum)
                await asyncio.sleep(0.01)
        if self.calls > self.quick:
            await asyncio.sleep(3600)
        return await super().complete(messages, key=key, article_id=article_id, check=check)


def test_sigterm_finishes_the_articles_in_flight_then_stops(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = drop(tmp_path / "in", range(10))
    out = tmp_path / "out"
    fake = SignallingModel(delay=0.05, quick=10, at=2).enqueue(*answers(10))
    summary = run_batch([src], out, make(tmp_path, fake), concurrency=2, reporter=quiet())
    assert summary.interrupted and summary.stopped_by == "SIGTERM"
    data = run_json(out)
    assert data["interrupted"] is True and data["stopped_by"] == "SIGTERM"
    done = lines(out)
    assert 2 <= len(done) < 10 and len(done) == len(fake.history)  # every call made was finished
    assert "SIGTERM: stopping after the articles in flight" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the handler is gone after the run


@pytest.mark.parametrize("signals", [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGINT)])
def test_a_second_signal_leaves_the_articles_in_flight_to_the_next_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], signals: tuple[int, ...]
) -> None:
    src = drop(tmp_path / "in", range(6))
    out = tmp_path / "out"
    # the first two answer; the third call hangs and signals twice: it must not hold the run
    fake = SignallingModel(delay=0.01, quick=2, at=3, signals=signals).enqueue(*answers(6))
    summary = run_batch([src], out, make(tmp_path, fake), concurrency=1, reporter=quiet())
    name = signal.Signals(signals[0]).name
    assert summary.interrupted and summary.stopped_by == name
    assert run_json(out)["interrupted"] is True and run_json(out)["stopped_by"] == name
    assert [r["article_id"] for r in lines(out)] == ["0", "1"]  # the hung one is not written
    assert "the articles in flight are left for the next run" in capsys.readouterr().err

    rest = FakeModel().enqueue(*answers(4))
    final = run_batch([src], out, make(tmp_path, rest), reporter=quiet())
    assert (final.skipped, final.ok, final.interrupted) == (2, 4, False)
    assert sorted(r["article_id"] for r in lines(out)) == [str(i) for i in range(6)]


def test_sigterm_ends_a_watch_like_ctrl_c(tmp_path: Path) -> None:
    src = drop(tmp_path / "drop", range(4))
    past = time.time() - 60
    for path in src.iterdir():
        os.utime(path, (past, past))
    out = tmp_path / "out"
    fake = SignallingModel(delay=0.02, quick=4, at=1).enqueue(*answers(4))
    summary = watch(src, out, make(tmp_path, fake), interval_s=0.05, settle_s=0.0, reporter=quiet())
    assert summary.stopped_by == "SIGTERM" and run_json(out)["stopped_by"] == "SIGTERM"
    assert {r["status"] for r in lines(out)} == {"ok"} and len(lines(out)) == len(fake.history)


def test_loading_off_the_loop_keeps_to_one_thread_of_its_own() -> None:
    from extractor.models import Article

    items = [Article.from_text(f"Text {i}.") for i in range(400)]
    threads: set[str] = set()

    def prepare(article: Article) -> None:
        if threading.current_thread() is not threading.main_thread():
            threads.add(threading.current_thread().name)
        time.sleep(0.0005)  # a slow block, so that blocks overlap with the consumer

    async def drain() -> int:
        source = batch._Inputs(iter(items), prepare, block=4, slow_s=-1.0)
        count = 0
        while await source.next() is not None:
            count += 1
            await asyncio.sleep(0)
        await source.aclose()
        return count

    assert asyncio.run(drain()) == 400
    # one thread: a pool of them would each keep a malloc arena of freed memory (peak RSS grew ~9 MB
    # over a million short articles, benchmarks/bench_duplicates.py)
    assert len(threads) == 1 and next(iter(threads)).startswith("extractor-load")
