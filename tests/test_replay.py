"""Record and replay of wire-format exchanges: secrets scrubbed, no network, stale fixtures fail loudly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
import respx

from extractor import Article, Extractor, ReplayError, Settings
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
    recorded = load_recorded_settings(copy)
    with Extractor(Settings(**recorded, replay_dir=copy, use_cache=False, cache_dir=tmp_path / "c")) as ex:
        keys = [
            k for p in sorted(SEEDS.glob("*.txt")) for k in ex.request_keys(Article.from_text(p.read_text()))
        ]
    assert stale_recordings(copy, keys) == []
    (copy / f"{'0' * 64}.json").write_text("{}", encoding="utf-8")
    assert [p.name for p in stale_recordings(copy, keys)] == [f"{'0' * 64}.json"]


def test_recorded_settings_round_trip(tmp_path: Path) -> None:
    save_recorded_settings(tmp_path, {"model": "m", "mode": "json"})
    assert load_recorded_settings(tmp_path) == {"model": "m", "mode": "json"}
    assert load_recorded_settings(tmp_path / "none") == {}
