"""The content-addressed response cache: JSON text only, keys without secrets."""

from __future__ import annotations

import os
import pickle
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from extractor import Article, Extractor
from extractor.cache import ResponseCache, cache_key
from extractor.config import Settings
from extractor.errors import CacheError
from tests import wire
from tests.conftest import FakeModel

MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]


def test_key_covers_what_determines_the_answer_but_not_the_api_key() -> None:
    base = Settings(api_key="sk-one")
    key = cache_key(base, MESSAGES, "{}", "v1")
    assert key == cache_key(base.replace(api_key="sk-two"), MESSAGES, "{}", "v1")
    assert "sk-one" not in key
    variants = [
        cache_key(base.replace(model="other"), MESSAGES, "{}", "v1"),
        cache_key(base.replace(base_url="http://127.0.0.1:1/v1"), MESSAGES, "{}", "v1"),
        cache_key(base.replace(mode="json"), MESSAGES, "{}", "v1"),
        cache_key(base.replace(temperature=0.5), MESSAGES, "{}", "v1"),
        cache_key(base.replace(max_tokens=99), MESSAGES, "{}", "v1"),
        cache_key(base, [*MESSAGES[:1], {"role": "user", "content": "v"}], "{}", "v1"),
        cache_key(base, MESSAGES, '{"x":1}', "v1"),
        cache_key(base, MESSAGES, "{}", "v2"),
    ]
    assert len({key, *variants}) == len(variants) + 1


def test_round_trip_and_stats(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    assert cache.get("k") is None
    cache.set("k", {"extraction": {"events": []}, "model": "m"})
    assert cache.get("k") == {"extraction": {"events": []}, "model": "m"}
    assert "k" in cache
    assert cache.stats()["entries"] == 1
    assert cache.clear() == 1 and cache.get("k") is None
    cache.close()


def test_only_json_text_is_stored(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    cache.set("k", {"a": 1})
    con = sqlite3.connect(tmp_path / "cache.db")
    mode, value = con.execute("SELECT mode, value FROM Cache WHERE key = 'k'").fetchone()
    assert mode == 1  # diskcache MODE_RAW: the text itself, no pickle
    con.close()
    assert isinstance(value, str) and value == '{"a":1}'
    with pytest.raises(CacheError, match="JSON text"):
        cache._cache.set("raw", {"not": "text"})  # the disk refuses anything but str
    cache.close()


def test_a_planted_pickle_is_never_unpickled(tmp_path: Path) -> None:
    """A pickle planted in the cache database would run code when loaded: here it would create a folder.
    It must be refused before it is unpickled, not unpickled and then refused."""
    cache = ResponseCache(tmp_path / "cache")
    cache.set("k", {"a": 1})
    cache.close()
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.mkdir, (str(marker),))

    planted = pickle.dumps(Payload())
    pickle.loads(planted)  # the payload works: loading it creates the folder
    assert marker.is_dir()
    marker.rmdir()
    con = sqlite3.connect(tmp_path / "cache" / "cache.db")
    con.execute("UPDATE Cache SET mode = 4, value = ? WHERE key = 'k'", (planted,))
    con.commit()
    con.close()
    cache = ResponseCache(tmp_path / "cache")
    assert cache.get("k") is None  # refused, dropped, counted as a miss
    assert not marker.exists(), "the planted pickle was unpickled"
    assert "k" not in cache
    cache.close()


def test_corrupt_json_entry_is_a_miss(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    cache._cache.set("k", "{not json")
    assert cache.get("k") is None
    cache.close()


def test_unusable_cache_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CacheError, match="cannot open the response cache"):
        ResponseCache(blocker / "sub")


@pytest.mark.parametrize(
    "damage",
    [
        lambda entry: dict.fromkeys(entry, 17),  # every field of the wrong type
        lambda entry: {},  # no field at all (an entry from another format)
    ],
    ids=["wrong-types", "empty"],
)
def test_a_cached_answer_that_fails_validation_is_asked_again_and_replaced(
    tmp_path: Path, fake_model: FakeModel, damage: Callable[[dict[str, Any]], dict[str, Any]]
) -> None:
    text = "Leaders met in Paris on Tuesday.\n"
    answer = {"events": [wire.event("Leaders met in Paris on Tuesday.")], "quotes": [], "stances": []}
    fake_model.enqueue(answer, answer)
    with Extractor(Settings(cache_dir=tmp_path / "cache"), provider=fake_model) as ex:
        first = ex.extract(Article.from_text(text, id="a"))
        assert ex.cache is not None
        [key] = ex.request_keys(Article.from_text(text, id="a"))
        entry = ex.cache.get(key)
        assert first.status == "ok" and entry is not None
        ex.cache.set(key, damage(entry))
        again = ex.extract(Article.from_text(text, id="a"))
        assert len(fake_model.history) == 2 and not again.cache_hit  # a miss: the model was asked
        assert again.status == "ok" and again.events == first.events
        third = ex.extract(Article.from_text(text, id="a"))
    # the fresh answer replaced the bad entry: the next run is a hit again
    assert third.cache_hit and len(fake_model.history) == 2 and third.events == first.events
