"""``extractor run --batch-api`` against the fake endpoint's files and batches routes: the request body is
the direct path's, results equal a direct run's, a stopped run resumes the same batch, expired / failed
batches and error files, re-asks (batch and direct) of ungrounded and of cut-off answers, polling settings,
pricing, the cache, ``batches list|cancel``."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks.fake_server import UNGROUNDED_QUOTE, ServerConfig, _unit, run_in_thread
from extractor import Extractor, Settings
from extractor.batch import run_batch
from extractor.batch_api import STATE_DIR, BatchPollTimeout, list_batches, run_batch_api
from extractor.cli import main
from extractor.cli.progress import LogReporter
from extractor.errors import ConfigError, FolderBusyError
from extractor.llm import OpenAIProvider, request_body
from extractor.models import Article, text_sha256
from extractor.store import iter_results

TEXTS = [
    f"Leaders of {city} met in {city} on 2024-01-0{n}.\n\n“We will act on {topic},” said Jane Doe.\n"
    for n, (city, topic) in enumerate(
        [("Paris", "prices"), ("Rome", "water"), ("Oslo", "roads"), ("Lima", "schools")], start=1
    )
]


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    for n, text in enumerate(TEXTS, start=1):
        (folder / f"a{n}.txt").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def server() -> Iterator[str]:
    with run_in_thread(ServerConfig()) as url:
        yield url


def _settings(url: str, tmp_path: Path, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "base_url": url,
        "api_key": "sk-test",
        "cache_dir": tmp_path / "cache",
        "batch_poll_s": 0.01,
        "batch_poll_max_s": 0.02,
        "transport_attempts": 2,
    }
    values.update(extra)
    return Settings(**values)


def _run(url: str, tmp_path: Path, drop: Path, out: Path, **kwargs: Any) -> Any:
    extra = kwargs.pop("settings", {})
    lines: list[str] = []
    with Extractor(_settings(url, tmp_path, **extra)) as extractor:
        summary = run_batch_api(
            [drop], out, extractor, reporter=LogReporter(quiet=True), log=lines.append, **kwargs
        )
    return summary, lines


def _submit_and_stop(url: str, tmp_path: Path, drop: Path, out: Path) -> None:
    """Submit the batch, then stop (as Ctrl-C) at the first wait between polls."""

    async def stop(_: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(url, tmp_path, drop, out, sleep=stop)


def _items(out: Path) -> dict[str, Any]:
    return {
        r.sha256: (
            r.status,
            [(q.text, q.span.start, q.span.end) for q in r.quotes],
            [(e.evidence, e.span.start) for e in r.events],
            [(s.evidence, s.span.start) for s in r.stances],
            [x.item for x in r.rejected],
        )
        for r in iter_results(out)
    }


def _state(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / STATE_DIR / "state.json").read_text(encoding="utf-8"))
    return data


def _server_batches(url: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = httpx.get(f"{url}/batches", params={"limit": 100}).json()["data"]
    return data


class _Capture(httpx.AsyncBaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.bodies: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("mode", ["tools", "json_schema", "md_json"])
def test_the_batch_body_is_the_body_the_direct_path_sends(server: str, tmp_path: Path, mode: str) -> None:
    settings = _settings(server, tmp_path, mode=mode)
    extractor = Extractor(settings, cache=None)
    messages, key = extractor.requests(Article.from_text(TEXTS[0]))[0]
    capture = _Capture()

    async def direct() -> None:
        provider = OpenAIProvider(settings, transport=capture)
        try:
            await provider.complete(messages, key=key, article_id="a", check=None)
        finally:
            await provider.aclose()

    asyncio.run(direct())
    assert capture.bodies == [request_body(settings, messages)]


def test_a_batch_run_gives_the_direct_runs_items_at_half_the_price(
    server: str, tmp_path: Path, drop: Path
) -> None:
    with Extractor(_settings(server, tmp_path, use_cache=False)) as extractor:
        direct = run_batch([drop], tmp_path / "direct", extractor, reporter=LogReporter(quiet=True))
    summary, lines = _run(server, tmp_path, drop, tmp_path / "batched")
    assert summary.ok == 4 and summary.failed == 0
    assert _items(tmp_path / "batched") == _items(tmp_path / "direct")
    assert any(line.startswith("submitted batch") for line in lines)
    state = _state(tmp_path / "batched")
    assert [(s["round"], s["requests"], s["status"]) for s in state["submissions"]] == [(0, 4, "completed")]
    # custom_id = the article's sha256; the body is request_body's
    text = (tmp_path / "batched" / STATE_DIR / "r0-1.input.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(x) for x in text.splitlines()]
    assert sorted(r["custom_id"] for r in rows) == sorted(Article.from_text(t).sha256 for t in TEXTS)
    run = json.loads((tmp_path / "batched" / "run.json").read_text())
    assert run["batch_api"]["batch_prompt_tokens"] == summary.prompt_tokens == direct.prompt_tokens
    assert direct.cost_usd is not None and run["cost_usd"] == pytest.approx(direct.cost_usd / 2, rel=1e-3)
    # a second run sends nothing: done articles are skipped, no new batch
    again, _ = _run(server, tmp_path, drop, tmp_path / "batched")
    assert again.skipped == 4 and len(_server_batches(server)) == 1


def test_answers_are_cached_so_a_direct_run_afterwards_makes_no_call(
    server: str, tmp_path: Path, drop: Path
) -> None:
    _run(server, tmp_path, drop, tmp_path / "batched")
    with Extractor(_settings(server, tmp_path)) as extractor:
        direct = run_batch([drop], tmp_path / "direct", extractor, reporter=LogReporter(quiet=True))
    assert direct.cache_hits == 4 and direct.http_calls == 0


def test_a_stopped_run_resumes_polling_the_same_batch_and_never_submits_twice(
    tmp_path: Path, drop: Path
) -> None:
    with run_in_thread(ServerConfig(batch_steps=3)) as url:
        _submit_and_stop(url, tmp_path, drop, tmp_path / "out")
        state = _state(tmp_path / "out")
        assert state["submissions"][0]["status"] == "validating"
        summary, lines = _run(url, tmp_path, drop, tmp_path / "out")
        assert any("resuming 1 batch" in line for line in lines)
        assert summary.ok == 4
        assert [b["id"] for b in _server_batches(url)] == [state["submissions"][0]["batch_id"]]


def test_an_expired_batch_keeps_its_answers_and_the_next_run_submits_only_the_rest(
    tmp_path: Path, drop: Path
) -> None:
    with run_in_thread(ServerConfig(batch_outcome="expired")) as url:
        first, _ = _run(url, tmp_path, drop, tmp_path / "out")
        assert (first.ok, first.errors) == (2, 2)
        errors = [r for r in iter_results(tmp_path / "out") if r.status == "error"]
        assert all(r.error is not None and "batch_expired" in r.error.message for r in errors)
        second, _ = _run(url, tmp_path, drop, tmp_path / "out")
        assert [s["requests"] for s in _state(tmp_path / "out")["submissions"]] == [4, 2]
        assert second.ok == 1 and second.skipped == 2


def test_a_failed_batch_gives_every_article_an_error_saying_why(tmp_path: Path, drop: Path) -> None:
    with run_in_thread(ServerConfig(batch_outcome="failed")) as url:
        summary, _ = _run(url, tmp_path, drop, tmp_path / "out")
    assert summary.errors == 4
    for result in iter_results(tmp_path / "out"):
        assert result.error is not None and "ended 'failed'" in result.error.message
        assert "injected" in result.error.message


def test_lines_in_the_error_file_fail_only_their_articles(tmp_path: Path, drop: Path) -> None:
    shas = [text_sha256(t) for t in TEXTS]
    seed = next(s for s in range(100) if sum(_unit(s, "fault", sha) < 0.5 for sha in shas) == 2)
    with run_in_thread(ServerConfig(fault_rate=0.5, faults=("500",), fault_seed=seed)) as url:
        summary, _ = _run(url, tmp_path, drop, tmp_path / "out")
    assert (summary.ok, summary.errors) == (2, 2)
    for result in iter_results(tmp_path / "out"):
        if result.status == "error":
            assert result.error is not None and "HTTP 500" in result.error.message
    assert _state(tmp_path / "out")["submissions"][0]["error_file_id"]


def test_ungrounded_answers_are_reasked_in_one_follow_up_batch(tmp_path: Path, drop: Path) -> None:
    with run_in_thread(ServerConfig(fault_rate=1.0, faults=("ungrounded",))) as url:
        summary, _ = _run(url, tmp_path, drop, tmp_path / "out")
        chat_calls = httpx.get(f"{url}/stats").json()["requests"]
    rounds = [(s["round"], s["requests"]) for s in _state(tmp_path / "out")["submissions"]]
    assert rounds == [(0, 4), (1, 4)]
    assert summary.ok == 4 and summary.rejected == 0
    assert chat_calls == 8  # batch lines only: no direct call
    text = (tmp_path / "out" / STATE_DIR / "r1-1.input.jsonl").read_text(encoding="utf-8")
    reask = json.loads(text.splitlines()[0])
    assert [m["role"] for m in reask["body"]["messages"]][-2:] == ["assistant", "tool"]
    assert UNGROUNDED_QUOTE in json.dumps(reask["body"]["messages"][-2])


def test_reask_direct_sends_the_reasks_to_the_chat_endpoint(tmp_path: Path, drop: Path) -> None:
    with run_in_thread(ServerConfig(fault_rate=1.0, faults=("ungrounded",))) as url:
        summary, _ = _run(url, tmp_path, drop, tmp_path / "out", reask_direct=True)
    assert [s["round"] for s in _state(tmp_path / "out")["submissions"]] == [0]
    assert summary.ok == 4 and summary.rejected == 0 and summary.http_calls == 4
    run = json.loads((tmp_path / "out" / "run.json").read_text())
    batch = run["batch_api"]
    assert batch["direct_prompt_tokens"] > 0 and batch["batch_prompt_tokens"] > 0
    full, half = (0.15, 0.60), (0.075, 0.30)
    expected = (
        batch["direct_prompt_tokens"] * full[0]
        + batch["direct_completion_tokens"] * full[1]
        + batch["batch_prompt_tokens"] * half[0]
        + batch["batch_completion_tokens"] * half[1]
    ) / 1e6
    assert run["cost_usd"] == pytest.approx(expected, abs=1e-6)


def test_without_reasks_the_ungrounded_item_is_rejected_not_dropped(tmp_path: Path, drop: Path) -> None:
    with run_in_thread(ServerConfig(fault_rate=1.0, faults=("ungrounded",))) as url:
        summary, _ = _run(url, tmp_path, drop, tmp_path / "out", settings={"reasks": 0})
    assert summary.ok == 4 and summary.rejected_quotes == 4
    assert len(_state(tmp_path / "out")["submissions"]) == 1


def test_batch_prices_per_model_override_the_ratio() -> None:
    assert Settings(model="gpt-4o").batch_price() == (1.25, 5.0)
    assert Settings(model="gpt-4o", batch_price_ratio=1.0).batch_price() == (2.5, 10.0)
    assert Settings(model="gpt-4o", batch_prices={"gpt-4o": (1.0, 2.0)}).batch_price() == (1.0, 2.0)
    assert Settings(model="local-model").batch_price() is None


def test_batches_list_and_cancel_from_the_command_line(
    tmp_path: Path, drop: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_in_thread(ServerConfig(batch_steps=3)) as url:
        _submit_and_stop(url, tmp_path, drop, tmp_path / "out")
        batch_id = _state(tmp_path / "out")["submissions"][0]["batch_id"]
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", url)
        assert main(["batches", "list"]) == 0
        assert batch_id in capsys.readouterr().out
        assert main(["batches", "cancel", "--out", str(tmp_path / "out")]) == 0
        assert "cancelling" in capsys.readouterr().out
        infos = list_batches(_settings(url, tmp_path), tmp_path / "out")
        assert [(i.id, i.status, i.submission) for i in infos] == [(batch_id, "cancelled", "r0-1")]
        # the next run reads the cancelled batch in and submits its requests again
        summary, _ = _run(url, tmp_path, drop, tmp_path / "out")
        assert summary.errors == 4  # cancelled: nothing answered this time
        again, _ = _run(url, tmp_path, drop, tmp_path / "out")
        assert again.ok == 4


def test_run_batch_api_from_the_command_line(
    server: str,
    tmp_path: Path,
    drop: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = tmp_path / "extractor.toml"
    config.write_text("[extractor]\nbatch_poll_s = 0.01\nbatch_poll_max_s = 0.02\n", encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", server)
    out = tmp_path / "out"
    argv = ["run", str(drop), "--out", str(out), "--batch-api", "--config", str(config)]
    assert main([*argv, "--cache-dir", str(tmp_path / "cache")]) == 0
    captured = capsys.readouterr()
    assert "submitted batch" in captured.err and "results:" in captured.out
    assert [r.status for r in iter_results(out)] == ["ok"] * 4
    assert main([*argv, "--replay", str(tmp_path)]) == 2
    assert "cannot be combined with --replay" in capsys.readouterr().err


def test_an_answer_cut_at_max_tokens_is_asked_again_with_more_tokens_in_the_follow_up_batch(
    tmp_path: Path, drop: Path
) -> None:
    # the fake server cuts every first answer in half with finish_reason "length"
    with run_in_thread(ServerConfig(fault_rate=1.0, faults=("truncated",))) as url:
        summary, _ = _run(url, tmp_path, drop, tmp_path / "out", settings={"use_cache": False})
        chat_calls = httpx.get(f"{url}/stats").json()["requests"]
    assert summary.ok == 4 and summary.errors == 0 and chat_calls == 8
    rounds = [(s["round"], s["requests"]) for s in _state(tmp_path / "out")["submissions"]]
    assert rounds == [(0, 4), (1, 4)]
    first = (tmp_path / "out" / STATE_DIR / "r0-1.input.jsonl").read_text(encoding="utf-8").splitlines()
    retry = (tmp_path / "out" / STATE_DIR / "r1-1.input.jsonl").read_text(encoding="utf-8").splitlines()
    settings = Settings()
    before, after = json.loads(first[0])["body"], json.loads(retry[0])["body"]
    assert before["max_tokens"] == settings.max_tokens and after["max_tokens"] == settings.max_tokens_retry
    assert after["messages"] == before["messages"]  # the same request, only with more room


def test_a_cut_answer_is_asked_again_directly_with_reask_direct(tmp_path: Path, drop: Path) -> None:
    with run_in_thread(ServerConfig(fault_rate=1.0, faults=("truncated",))) as url:
        summary, _ = _run(url, tmp_path, drop, tmp_path / "out", reask_direct=True)
    assert [s["round"] for s in _state(tmp_path / "out")["submissions"]] == [0]
    assert summary.ok == 4 and summary.http_calls == 4


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        ({"reasks": 0}, "no retry: reasks is 0"),
        # answers longer than both budgets: cut in the first batch and again in the retry
        ({"max_tokens": 20, "max_tokens_retry": 40}, "even after one retry with more tokens"),
    ],
)
def test_a_cut_answer_with_no_retry_left_fails_its_article_naming_finish_reason_length(
    tmp_path: Path, drop: Path, settings: dict[str, Any], why: str
) -> None:
    with run_in_thread(ServerConfig(fault_rate=1.0, faults=("truncated",))) as url:
        summary, _ = _run(url, tmp_path, drop, tmp_path / "out", settings=settings)
    assert summary.errors == 4 and summary.ok == 0
    results = list(iter_results(tmp_path / "out"))
    assert len(results) == 4
    for result in results:
        assert result.error is not None and result.error.type == "TruncatedOutputError"
        assert "finish_reason=length" in result.error.message and why in result.error.message
    rounds = [s["round"] for s in _state(tmp_path / "out")["submissions"]]
    assert rounds == ([0] if settings.get("reasks") == 0 else [0, 1])


def test_polling_backs_off_by_the_settings_and_gives_up_at_the_timeout(tmp_path: Path, drop: Path) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    poll = {"batch_poll_s": 1.0, "batch_poll_backoff": 2.0, "batch_poll_max_s": 5.0}
    with run_in_thread(ServerConfig(batch_steps=50)) as url:
        with pytest.raises(BatchPollTimeout, match=r"gave up waiting for batch\(es\) batch-\w+ after 12 s"):
            _run(
                url,
                tmp_path,
                drop,
                tmp_path / "out",
                settings={**poll, "batch_poll_timeout_s": 15.0},
                sleep=sleep,
            )
        assert waits == [1.0, 2.0, 4.0, 5.0]
        # the batch keeps running; the next run resumes it and submits nothing new
        summary, lines = _run(url, tmp_path, drop, tmp_path / "out", settings=poll, sleep=sleep)
        assert any("resuming 1 batch" in line for line in lines) and summary.ok == 4
        assert len(_server_batches(url)) == 1


def test_poll_settings_come_from_the_environment_and_the_run_flags(
    server: str, tmp_path: Path, drop: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "EXTRACTOR_BATCH_POLL_S": "2",
        "EXTRACTOR_BATCH_POLL_MAX_S": "9",
        "EXTRACTOR_BATCH_POLL_TIMEOUT_S": "60",
    }
    settings = Settings.load(env={**env, "EXTRACTOR_BATCH_POLL_BACKOFF": "3"})
    assert (settings.batch_poll_s, settings.batch_poll_max_s, settings.batch_poll_backoff) == (2.0, 9.0, 3.0)
    assert settings.batch_poll_timeout_s == 60.0
    with pytest.raises(ConfigError, match="batch_poll_backoff must be between 1 and 10"):
        Settings(batch_poll_backoff=0.5)
    with pytest.raises(ConfigError, match=r"batch_poll_max_s .* must be at least batch_poll_s"):
        Settings(batch_poll_s=10.0, batch_poll_max_s=5.0)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", server)
    monkeypatch.setenv("EXTRACTOR_BATCH_POLL_S", "50")  # the flags below win over it
    out = tmp_path / "out"
    argv = ["run", str(drop), "--out", str(out), "--batch-api", "--cache-dir", str(tmp_path / "cache")]
    flags = ["--batch-poll", "0.01", "--batch-poll-max", "0.02", "--batch-poll-backoff", "1.2"]
    assert main([*argv, *flags, "--batch-poll-timeout", "30", "-q"]) == 0
    assert [r.status for r in iter_results(out)] == ["ok"] * 4


def test_the_folder_stays_locked_while_the_batches_are_polled(tmp_path: Path, drop: Path) -> None:
    refused: list[str] = []
    out = tmp_path / "out"

    def another_run() -> None:
        try:
            with Extractor(_settings("http://127.0.0.1:9/v1", tmp_path)) as other:
                run_batch([drop], out, other, reporter=LogReporter(quiet=True))
        except FolderBusyError as exc:
            refused.append(str(exc))

    async def sleep(_: float) -> None:  # between polls: another run on the same folder is refused
        if not refused:
            thread = threading.Thread(target=another_run)
            thread.start()
            thread.join()

    with run_in_thread(ServerConfig(batch_steps=2)) as url:
        summary, _ = _run(url, tmp_path, drop, out, sleep=sleep)
    assert summary.ok == 4
    assert refused and "is in use by another extractor run or watch" in refused[0]
