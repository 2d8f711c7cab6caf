"""The shared response cache (extractor.fscache): JSON files by content key on a pyarrow filesystem,
selected by ``cache_url``; diskcache stays the default."""

from __future__ import annotations

import json
import pickle
import threading
from pathlib import Path

import pytest

from extractor import cli
from extractor.cache import ResponseCache, open_cache
from extractor.config import Settings
from extractor.errors import CacheError
from extractor.pipeline import Extractor

pytest.importorskip("pyarrow")

from extractor.fscache import JSONFileCache

KEY = "ab" + "0" * 62


def test_settings_select_the_store(tmp_path: Path) -> None:
    default = open_cache(Settings(cache_dir=tmp_path / "dc"))
    assert isinstance(default, ResponseCache)
    default.close()
    shared = open_cache(Settings(cache_url=str(tmp_path / "shared")))
    assert isinstance(shared, JSONFileCache)
    assert Settings.load(env={"EXTRACTOR_CACHE_URL": "file:///tmp/x"}).cache_url == "file:///tmp/x"


def test_round_trip_one_json_file_per_key(tmp_path: Path) -> None:
    cache = JSONFileCache(f"file://{tmp_path / 'store'}")
    assert cache.get(KEY) is None and KEY not in cache
    cache.set(KEY, {"extraction": {"events": []}, "model": "m"})
    assert cache.get(KEY) == {"extraction": {"events": []}, "model": "m"}
    assert KEY in cache
    path = tmp_path / "store" / "ab" / f"{KEY}.json"
    assert json.loads(path.read_text(encoding="utf-8"))["model"] == "m"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    other = JSONFileCache(str(tmp_path / "store"))  # a second worker, a plain folder path
    assert other.get(KEY) == {"extraction": {"events": []}, "model": "m"}
    assert other.stats()["entries"] == 1 and other.stats()["bytes"] == path.stat().st_size
    assert other.clear() == 1 and cache.get(KEY) is None


def test_a_pickle_or_broken_file_is_a_miss_and_removed(tmp_path: Path) -> None:
    cache = JSONFileCache(str(tmp_path))
    path = tmp_path / "ab" / f"{KEY}.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps({"extraction": {}}))
    assert cache.get(KEY) is None and not path.exists()
    path.write_text("[1, 2]", encoding="utf-8")
    assert cache.get(KEY) is None and not path.exists()
    with pytest.raises(CacheError):
        cache.set(KEY, ["not", "an", "object"])  # type: ignore[arg-type]


def test_keys_must_be_content_addresses(tmp_path: Path) -> None:
    cache = JSONFileCache(str(tmp_path))
    with pytest.raises(CacheError, match="not a cache key"):
        cache.get("../../etc/passwd")


def test_concurrent_writers_of_one_key_leave_one_whole_answer(tmp_path: Path) -> None:
    caches = [JSONFileCache(str(tmp_path)) for _ in range(4)]
    value = {"extraction": {"quotes": ["x" * 10_000]}}

    def write(cache: JSONFileCache) -> None:
        for _ in range(25):
            cache.set(KEY, value)
            assert cache.get(KEY) == value

    threads = [threading.Thread(target=write, args=(c,)) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert caches[0].get(KEY) == value and caches[0].stats()["entries"] == 1


def test_an_unusable_url_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match="cannot open the shared response cache"):
        JSONFileCache("nosuchscheme://bucket/prefix")


def test_credentials_in_the_url_are_secrets_and_never_shown(tmp_path: Path) -> None:
    settings = Settings(cache_url="s3://AKIDEXAMPLE:s3cr3tvalue@bucket/prefix")
    assert "s3cr3tvalue" in settings.secrets


def test_the_pipeline_answers_from_the_shared_store(tmp_path: Path) -> None:
    from tests.conftest import FakeModel

    model = FakeModel().enqueue({"events": [], "quotes": [], "stances": []})
    settings = Settings(cache_url=str(tmp_path / "shared"), api_key="sk-test")
    text = "A short article. It says little."
    with Extractor(settings, provider=model) as one:
        first = one.extract(text)
    assert first.status == "ok" and not first.cache_hit
    with Extractor(settings, provider=FakeModel()) as two:  # a second worker: no model call
        again = two.extract(text)
    assert again.status == "ok" and again.cache_hit


def test_cache_stats_and_clear_use_the_selected_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "shared"
    JSONFileCache(str(store)).set(KEY, {"a": 1})
    assert cli.main(["cache", "stats", "--cache-url", str(store)]) == 0
    assert "1 cached answer(s)" in capsys.readouterr().out
    assert cli.main(["cache", "clear", "--cache-url", str(store)]) == 0
    assert "removed 1 cached answer(s)" in capsys.readouterr().out
