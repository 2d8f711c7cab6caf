"""Record and replay of wire-format exchanges: secrets scrubbed, no network, stale fixtures fail loudly."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from extractor import Article, ArticleResult, ConfigError, Extractor, ReplayError, Settings
from extractor.pipeline import open_extractor, replay_settings
from extractor.replay import (
    ReplayTransport,
    load_recorded_settings,
    save_recorded_settings,
    scrub_url,
    stale_recordings,
)
from tests import wire
from tests.conftest import FIXTURES, SEEDS

SECRET = "sk-live-SECRET-abcdefghijklmnop0123456789"
TEXT = "Meloni said: “No Italian troops will be sent.” The meeting was in Paris.\n"


def answer() -> dict[str, object]:
    return wire.extraction(
        quotes=[("No Italian troops will be sent.", "Meloni")],
        events=[wire.event("The meeting was in Paris.")],
    )


def settings(tmp_path: Path, **kw: object) -> Settings:
    base: dict[str, object] = {
        "api_key": SECRET,
        "base_url": wire.API,
        "model": "gpt-test",
        "use_cache": False,
        "cache_dir": tmp_path / "cache",
    }
    return Settings(**{**base, **kw})  # type: ignore[arg-type]


def record(tmp_path: Path, fixtures: Path) -> None:
    with respx.mock:
        respx.post(wire.CHAT).mock(return_value=wire.ok(answer()))
        with Extractor(settings(tmp_path, record_dir=fixtures)) as ex:
            assert ex.extract(Article.from_text(TEXT, id="rec")).status == "ok"


def test_recording_holds_no_key_or_auth_header(tmp_path: Path) -> None:
    fixtures = tmp_path / "rec"
    record(tmp_path, fixtures)
    files = list(fixtures.glob("*.json"))
    assert len(files) == 1
    raw = files[0].read_text(encoding="utf-8")
    assert SECRET not in raw and "Bearer" not in raw and "authorization" not in raw.lower()
    data = json.loads(raw)
    assert data["article_id"] == "rec" and len(data["exchanges"]) == 1
    assert data["exchanges"][0]["request"]["body"]["model"] == "gpt-test"


def test_scrub_url_drops_keys_and_credentials() -> None:
    url = httpx.URL(f"https://user:pw@x.openai.azure.com/openai?api-version=2024-06-01&api-key={SECRET}")
    clean = scrub_url(url)
    assert SECRET not in clean and "pw" not in clean and "api-version=2024-06-01" in clean


def test_replay_answers_without_network_and_matches_live(tmp_path: Path) -> None:
    fixtures = tmp_path / "rec"
    record(tmp_path, fixtures)
    # no respx here: anything not answered by the replay transport would hit the network guard
    with Extractor(settings(tmp_path, replay_dir=fixtures, api_key=None)) as ex:
        res = ex.extract(Article.from_text(TEXT, id="rec"))
    assert res.status == "ok", res.error
    assert [q.text for q in res.quotes] == ["No Italian troops will be sent."]
    assert res.quotes[0].span.status == "exact"


def test_missing_recording_fails_that_article_clearly(tmp_path: Path) -> None:
    (tmp_path / "rec").mkdir()
    with Extractor(settings(tmp_path, replay_dir=tmp_path / "rec")) as ex:
        res = ex.extract(Article.from_text("Another text.", id="new-one"))
    assert res.status == "error" and res.error is not None
    assert res.error.type == "ReplayError"
    assert res.error.message.startswith("no recorded response for new-one (key ")
    assert "record it with a live model" in res.error.message


def test_stale_recording_fails_loudly(tmp_path: Path) -> None:
    fixtures = tmp_path / "rec"
    record(tmp_path, fixtures)
    path = next(fixtures.glob("*.json"))
    data = json.loads(path.read_text(encoding="utf-8"))
    data["exchanges"][0]["request"]["body"]["messages"][0]["content"] += " (old prompt)"
    path.write_text(json.dumps(data), encoding="utf-8")
    with Extractor(settings(tmp_path, replay_dir=fixtures)) as ex:
        res = ex.extract(Article.from_text(TEXT, id="rec"))
    assert res.error is not None and res.error.type == "ReplayError" and "stale" in res.error.message


def test_replay_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="no recordings folder"):
        ReplayTransport(tmp_path / "missing")


def test_stale_recordings_lists_unused_keys(tmp_path: Path) -> None:
    copy = tmp_path / "rec"
    shutil.copytree(FIXTURES / "recorded", copy)
    with Extractor(replay_settings(Settings(cache_dir=tmp_path / "c"), copy)) as ex:
        texts = [p.read_text() for p in sorted(SEEDS.glob("*.txt"))]
        keys = [k for text in texts for _, k in ex.requests(Article.from_text(text))]
    assert stale_recordings(copy, keys) == []
    (copy / f"{'0' * 64}.json").write_text("{}", encoding="utf-8")
    assert [p.name for p in stale_recordings(copy, keys)] == [f"{'0' * 64}.json"]


def test_recorded_settings_round_trip(tmp_path: Path) -> None:
    save_recorded_settings(tmp_path, {"model": "m", "mode": "json"})
    assert load_recorded_settings(tmp_path) == {"model": "m", "mode": "json"}
    assert load_recorded_settings(tmp_path / "none") == {}


def test_replay_settings_take_the_recorded_ones_but_those_kept(tmp_path: Path) -> None:
    save_recorded_settings(tmp_path, {"model": "m-recorded", "mode": "json", "temperature": 0.5})
    base = settings(tmp_path / "s", model="m-flag", use_cache=True)
    replayed = replay_settings(base, tmp_path, keep={"model"})
    assert (replayed.model, replayed.mode, replayed.temperature) == ("m-flag", "json", 0.5)
    assert (replayed.replay_dir, replayed.use_cache, replayed.cache_dir) == (tmp_path, False, base.cache_dir)
    save_recorded_settings(tmp_path, {"model": "m", "colour": "blue"})
    with pytest.raises(ConfigError, match=r"unknown recorded setting.*colour"):
        replay_settings(base, tmp_path)


def test_open_extractor_is_live_with_a_key_and_replays_otherwise(tmp_path: Path) -> None:
    fixtures = FIXTURES / "recorded"
    live, fell_back = open_extractor(settings(tmp_path), fallback=fixtures)
    assert (live.settings.replay_dir, fell_back) == (None, None)
    keyless = settings(tmp_path, api_key=None)
    offline, fell_back = open_extractor(keyless, fallback=fixtures)
    assert (offline.settings.replay_dir, fell_back) == (fixtures, fixtures)
    assert offline.settings.model == load_recorded_settings(fixtures)["model"]
    chosen, fell_back = open_extractor(settings(tmp_path), fixtures)  # a replay asked for: no fallback
    assert (chosen.settings.replay_dir, fell_back, chosen.cache) == (fixtures, None, None)
    with pytest.raises(ConfigError, match="no recorded fixtures at"):
        open_extractor(keyless, fallback=tmp_path / "none")
    with pytest.raises(ConfigError, match="no API key"):
        open_extractor(keyless)
    with pytest.raises(ConfigError, match="no recordings folder there"):
        open_extractor(settings(tmp_path), tmp_path / "none")


def test_cli_record_leaves_no_key_from_the_base_url_in_the_fixtures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from extractor import cli

    url_secret = "sk-in-url-SECRET-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://tok:{url_secret}@127.0.0.1:9/v1")
    monkeypatch.setenv("EXTRACTOR_MODEL", "gpt-test")
    (tmp_path / "a.txt").write_text(TEXT, encoding="utf-8")
    fixtures = tmp_path / "rec"
    with respx.mock:
        route = respx.post(path__regex=r"/v1/chat/completions$").mock(return_value=wire.ok(answer()))
        argv = ["record", str(tmp_path / "a.txt"), "--fixtures", str(fixtures), "--out", str(tmp_path / "o")]
        assert cli.main([*argv, "-q"]) == 0
    assert route.call_count == 1
    files = sorted(p for p in fixtures.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"settings.json"} and len(files) == 2
    for path in [*files, tmp_path / "o" / "results.jsonl"]:
        raw = path.read_text(encoding="utf-8")
        assert url_secret not in raw and SECRET not in raw and "tok:" not in raw, path
    assert load_recorded_settings(fixtures)["base_url"] == "http://127.0.0.1:9/v1"
    # the scrubbed endpoint is what enters the key, so the recording replays under it
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("OPENAI_BASE_URL")
    out = tmp_path / "replayed"
    assert cli.main(["run", str(tmp_path / "a.txt"), "--replay", str(fixtures), "--out", str(out), "-q"]) == 0


def test_fixtures_check_finds_a_recording_whose_request_was_edited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from extractor import cli

    copy = tmp_path / "recorded"
    shutil.copytree(FIXTURES / "recorded", copy)
    victim = sorted(p for p in copy.glob("*.json") if p.name != "settings.json")[0]
    data = json.loads(victim.read_text(encoding="utf-8"))
    data["exchanges"][0]["request"]["body"]["messages"][1]["content"] += " (an older prompt)"
    victim.write_text(json.dumps(data), encoding="utf-8")
    assert cli.main(["fixtures", "check", "--fixtures", str(copy)]) == 1
    out = capsys.readouterr().out
    assert f"stale: {victim} ({data['article_id']}: its first request differs" in out
    assert "at message 2" in out and "1 stale recording(s), 0 missing" in out


def test_a_replay_never_answers_from_the_response_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warm cache must not hide a recording that changed (or went stale) since the last replay."""
    from extractor import cli

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    cache_dir = tmp_path / "cache"
    copy = tmp_path / "recorded"
    shutil.copytree(FIXTURES / "recorded", copy)
    seed = sorted(SEEDS.glob("001_*.txt"))[0]
    common = ["--replay", str(copy), "--cache-dir", str(cache_dir), "-q"]
    assert cli.main(["run", str(seed), "--out", str(tmp_path / "a"), *common]) == 0
    assert not cache_dir.exists()
    for path in copy.glob("*.json"):
        if path.name != "settings.json":
            path.unlink()
    assert cli.main(["run", str(seed), "--out", str(tmp_path / "b"), *common]) == 1
    [line] = (tmp_path / "b" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert "no recorded response for 001_" in json.loads(line)["error"]["message"]


@pytest.mark.parametrize("mode", ["json", "md_json", "json_schema"])
def test_fixtures_check_accepts_fresh_recordings_in_modes_that_add_to_the_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    from extractor import cli

    body = wire.tool_completion({})
    content = json.dumps(answer())
    body["choices"][0]["message"] = {
        "role": "assistant",
        "content": f"```json\n{content}\n```" if mode == "md_json" else content,
    }
    body["choices"][0]["finish_reason"] = "stop"
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    (tmp_path / "a.txt").write_text(TEXT, encoding="utf-8")
    fixtures = tmp_path / "rec"
    with respx.mock:
        respx.post("http://127.0.0.1:9/v1/chat/completions").mock(return_value=httpx.Response(200, json=body))
        argv = ["record", str(tmp_path / "a.txt"), "--fixtures", str(fixtures), "--out", str(tmp_path / "o")]
        assert cli.main([*argv, "--mode", mode, "-q"]) == 0
    capsys.readouterr()
    assert cli.main(["fixtures", "check", str(tmp_path / "a.txt"), "--fixtures", str(fixtures)]) == 0
    assert capsys.readouterr().out.endswith("1 request(s) checked: 0 stale recording(s), 0 missing\n")


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1",
        "https://HOST.Example.COM/v1?flag&x=%20a/b",
        "http://[::1]:8080/v1",
        "https://res.openai.azure.com/openai/v1/?api-version=2024-06-01",
        "localhost:11434/v1",
    ],
)
def test_a_url_without_secrets_is_left_exactly_as_it_is(url: str) -> None:
    """The endpoint enters every cache key: scrubbing must not rewrite an ordinary URL."""
    from extractor.config import scrub_url as scrub_text

    assert scrub_text(url) == url
    if "://" in url:  # "localhost:11434/v1" is no base_url (Settings says so), but scrub_url leaves it be
        assert Settings(base_url=url).public_endpoint == url.rstrip("/")


def test_url_credentials_and_secret_parameters_are_removed() -> None:
    from extractor.config import scrub_url as scrub_text

    assert scrub_text(f"http://tok:{SECRET}@127.0.0.1:9/v1") == "http://127.0.0.1:9/v1"
    url = f"https://x.azure.com/openai?api-version=2024&api-key={SECRET}&sig=abc"
    assert scrub_text(url) == "https://x.azure.com/openai?api-version=2024"


# --------------------------------------------------------------------------- recording re-asks and failures


def _live_then_replayed(
    tmp_path: Path, replies: list[httpx.Response], **kw: object
) -> tuple[ArticleResult, ArticleResult, int, Path]:
    """Record one article against ``replies`` (in order), then replay it offline. Returns the live and
    the replayed result, how many requests the live run sent, and the recordings folder."""
    fixtures = tmp_path / "rec"
    with respx.mock:
        route = respx.post(wire.CHAT).mock(side_effect=replies)
        with Extractor(settings(tmp_path, record_dir=fixtures, **kw)) as ex:
            live = ex.extract(Article.from_text(TEXT, id="rec"))
    # no respx here: a request the recordings cannot answer would hit the network guard
    with Extractor(settings(tmp_path, replay_dir=fixtures, api_key=None, **kw)) as ex:
        replayed = ex.extract(Article.from_text(TEXT, id="rec"))
    return live, replayed, route.call_count, fixtures


def _same_outcome(live: ArticleResult, replayed: ArticleResult, *, same_usage: bool = True) -> None:
    fields = {"status", "error", "quotes", "events", "stances", "rejected", "served_model"}
    fields |= {"usage"} if same_usage else set()
    assert replayed.model_dump(include=fields) == live.model_dump(include=fields)


def _invented(words: str) -> dict[str, object]:
    return wire.extraction(
        quotes=[("No Italian troops will be sent.", "Meloni"), (words, "Meloni")],
        events=[wire.event("The meeting was in Paris.")],
    )


@pytest.mark.parametrize(
    ("reasks", "answers"),
    [
        # answered, re-asked (an invented quote), answered again
        (1, [_invented("Italy stays out"), answer()]),
        # two re-asks: the second has as many turns as the first, only the answer it carries differs
        (2, [_invented("Italy stays out"), _invented("Rome stays out"), answer()]),
        # the same wrong answer twice: two identical re-ask requests, answered differently
        (2, [_invented("Italy stays out"), _invented("Italy stays out"), answer()]),
    ],
    ids=["one-reask", "two-reasks", "same-wrong-answer-twice"],
)
def test_a_reasked_article_is_recorded_whole_and_replays_the_same(
    tmp_path: Path, reasks: int, answers: list[dict[str, object]]
) -> None:
    live, replayed, sent, fixtures = _live_then_replayed(
        tmp_path, [wire.ok(a) for a in answers], reasks=reasks
    )
    assert live.status == "ok" and live.rejected == [] and sent == len(answers) == live.usage.http_calls
    [path] = list(fixtures.glob("*.json"))
    exchanges = json.loads(path.read_text(encoding="utf-8"))["exchanges"]
    assert [len(e["request"]["body"]["messages"]) for e in exchanges] == [2] + [4] * reasks
    _same_outcome(live, replayed)
    assert replayed.usage.http_calls == len(answers)


def test_a_failed_attempt_is_retried_live_and_not_recorded(tmp_path: Path) -> None:
    busy = wire.error(503, {"retry-after": "0"})
    live, replayed, sent, fixtures = _live_then_replayed(tmp_path, [busy, wire.ok(answer())])
    assert live.status == "ok" and sent == live.usage.http_calls == 2
    [path] = list(fixtures.glob("*.json"))
    exchanges = json.loads(path.read_text(encoding="utf-8"))["exchanges"]
    assert [e["response"]["status"] for e in exchanges] == [200]
    _same_outcome(live, replayed, same_usage=False)
    assert replayed.usage.http_calls == 1  # the failed attempt is not replayed


def test_a_request_that_never_got_an_answer_leaves_no_recording(tmp_path: Path) -> None:
    refused = httpx.Response(400, json={"error": {"message": "bad request", "type": "invalid_request_error"}})
    live, replayed, sent, fixtures = _live_then_replayed(tmp_path, [refused])
    assert live.status == "error" and sent == 1
    assert list(fixtures.glob("*")) == []
    assert replayed.error is not None and replayed.error.type == "ReplayError"
    assert replayed.error.message.startswith("no recorded response for rec (key ")


def test_an_answer_that_is_not_json_is_recorded_and_replayed_as_it_came(tmp_path: Path) -> None:
    json_type = {"content-type": "application/json"}
    cut = httpx.Response(200, content=b'{"id": "chatcmpl-1", "choi', headers=json_type)
    live, replayed, sent, fixtures = _live_then_replayed(tmp_path, [cut, wire.ok(answer())])
    assert live.status == "ok" and sent == 2
    [path] = list(fixtures.glob("*.json"))
    first = json.loads(path.read_text(encoding="utf-8"))["exchanges"][0]["response"]
    assert first["text"] == '{"id": "chatcmpl-1", "choi' and "body" not in first
    _same_outcome(live, replayed)
    assert replayed.usage.http_calls == 2


@pytest.mark.parametrize(
    ("damage", "problem"),
    [
        (lambda d: d.update(exchanges={"a": 1}), "has no exchanges list"),
        (lambda d: d["exchanges"].__setitem__(0, "text"), "exchange 1 is not an object"),
        (lambda d: d["exchanges"][0].pop("request"), "exchange 1 has no request body"),
        (lambda d: d["exchanges"][0].pop("response"), "exchange 1 has no response"),
        (lambda d: d["exchanges"][0]["response"].update(status="200"), "exchange 1 has no integer response"),
        (lambda d: d["exchanges"][0]["response"].update(headers=[]), "headers that are not an object"),
        (lambda d: d["exchanges"][0]["response"].pop("body"), "neither a response body nor a response text"),
    ],
)
def test_a_malformed_recording_fails_that_article_naming_the_file(
    tmp_path: Path, damage: Any, problem: str
) -> None:
    fixtures = tmp_path / "rec"
    record(tmp_path, fixtures)
    [path] = list(fixtures.glob("*.json"))
    data = json.loads(path.read_text(encoding="utf-8"))
    damage(data)
    path.write_text(json.dumps(data), encoding="utf-8")
    with Extractor(settings(tmp_path, replay_dir=fixtures, api_key=None)) as ex:
        res = ex.extract(Article.from_text(TEXT, id="rec"))
    assert res.error is not None and res.error.type == "ReplayError", res.error
    assert res.error.message.startswith(f"recording {path}") and problem in res.error.message


def test_an_unreadable_recording_fails_that_article_naming_the_file(tmp_path: Path) -> None:
    fixtures = tmp_path / "rec"
    record(tmp_path, fixtures)
    [path] = list(fixtures.glob("*.json"))
    path.write_text('{"exchanges": [', encoding="utf-8")
    with Extractor(settings(tmp_path, replay_dir=fixtures, api_key=None)) as ex:
        res = ex.extract(Article.from_text(TEXT, id="rec"))
    assert res.error is not None and res.error.type == "ReplayError"
    assert res.error.message.startswith(f"recording {path} is unreadable")


def test_copies_of_a_reasked_article_replayed_at_once_each_get_their_own_turns(tmp_path: Path) -> None:
    """A re-ask is matched by the answer it carries, not by arrival order, so interleaved replays of the
    same request (two copies of one text in flight) each follow their own recorded conversation."""
    answers = [_invented("Italy stays out"), _invented("Rome stays out"), answer()]
    live, _, _, fixtures = _live_then_replayed(tmp_path, [wire.ok(a) for a in answers], reasks=2)

    async def both() -> list[ArticleResult]:
        with Extractor(settings(tmp_path, replay_dir=fixtures, api_key=None, reasks=2)) as ex:
            copies = [Article.from_text(TEXT, id="rec") for _ in range(2)]
            return list(await asyncio.gather(*(ex.aextract(a) for a in copies)))

    for replayed in asyncio.run(both()):
        _same_outcome(live, replayed)
