"""The content-addressed response cache: JSON text only, keys without secrets."""

from __future__ import annotations

import os
import pickle
import random
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from extractor import Article, Extractor
from extractor.cache import ResponseCache, cache_key
from extractor.config import Settings, answer_settings
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


def test_settings_saved_with_recordings_give_the_same_key_and_no_credential() -> None:
    """``answer_settings`` is what ``extractor record`` saves and a replay loads: the same key again."""
    live = Settings(api_key="sk-one", base_url="http://me:pw@127.0.0.1:1/v1", temperature=0.3, concurrency=3)
    saved = answer_settings(live)
    assert "pw" not in str(saved) and "sk-one" not in str(saved)
    assert cache_key(Settings(**saved), MESSAGES, "{}", "v1") == cache_key(live, MESSAGES, "{}", "v1")


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
        [(_, key)] = ex.requests(Article.from_text(text, id="a"))
        entry = ex.cache.get(key)
        assert first.status == "ok" and entry is not None
        ex.cache.set(key, damage(entry))
        again = ex.extract(Article.from_text(text, id="a"))
        assert len(fake_model.history) == 2 and not again.cache_hit  # a miss: the model was asked
        assert again.status == "ok" and again.events == first.events
        third = ex.extract(Article.from_text(text, id="a"))
    # the fresh answer replaced the bad entry: the next run is a hit again
    assert third.cache_hit and len(fake_model.history) == 2 and third.events == first.events


# --------------------------------------------------------------------------- a corrupt cache.db


def filled(directory: Path, n: int = 300) -> Path:
    """A cache of ``n`` answers (about 5 KB each) and one large one (kept in a file of its own)."""
    cache = ResponseCache(directory)
    for i in range(n):
        cache.set(f"k{i}", {"extraction": {"text": "y" * 5000}, "i": i})
    cache.set("big", {"extraction": {"text": "z" * 100_000}})
    cache.close()
    return directory / "cache.db"


def healthy(db: Path) -> bool:
    con = sqlite3.connect(db)
    try:
        return bool(con.execute("PRAGMA quick_check").fetchall() == [("ok",)])
    except sqlite3.DatabaseError:
        return False
    finally:
        con.close()


def garbage(db: Path) -> None:
    db.write_bytes(random.Random(1).randbytes(20_000))


def truncated(db: Path) -> None:
    with db.open("r+b") as fh:
        fh.truncate(db.stat().st_size // 2 // 4096 * 4096)


def damaged_inside(db: Path) -> None:
    """Pages in the middle overwritten: the cache still opens; reading some entries fails."""
    with db.open("r+b") as fh:
        fh.seek(db.stat().st_size // 3)
        fh.write(random.Random(2).randbytes(8192))


@pytest.mark.parametrize("corrupt", [garbage, truncated, damaged_inside])
def test_a_corrupt_cache_is_moved_aside_once_and_a_fresh_one_started(
    tmp_path: Path, corrupt: Callable[[Path], None]
) -> None:
    db = filled(tmp_path / "c")
    value_dirs = [p.name for p in db.parent.iterdir() if p.is_dir()]
    assert value_dirs  # diskcache keeps the large answer in a file of its own
    corrupt(db)
    notices: list[str] = []
    cache = ResponseCache(tmp_path / "c", notice=notices.append)
    answers = [cache.get(f"k{i}") for i in range(300)]  # damage inside shows only when read
    assert answers.count(None) >= 1
    cache.set("new", {"a": 1})
    assert cache.get("new") == {"a": 1}
    assert cache.stats()["entries"] >= 1
    aside = [p for p in (tmp_path / "c").iterdir() if p.name.startswith("corrupt-")]
    assert len(aside) == 1 and not healthy(aside[0] / "cache.db")
    assert [p.name for p in aside[0].iterdir() if p.is_dir()] == value_dirs  # the big answer went too
    assert len(notices) == 1, notices
    assert str(aside[0]) in notices[0] and "corrupt" in notices[0] and "fresh" in notices[0]
    assert cache.stats()["set_aside"] == [str(aside[0])]
    cache.close()
    again = ResponseCache(tmp_path / "c", notice=notices.append)  # the fresh cache is kept
    assert again.get("new") == {"a": 1} and len(notices) == 1
    again.close()


def test_the_default_notice_is_one_line_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage(filled(tmp_path / "c", n=3))
    ResponseCache(tmp_path / "c").close()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("extractor: warning: the response cache ")
    assert "moved it aside to " in err and str(tmp_path / "c") in err


def test_two_caches_on_one_corrupt_folder_set_it_aside_once(tmp_path: Path) -> None:
    """Two runs sharing a cache folder: the second to notice the damage finds it already replaced."""
    db = filled(tmp_path / "c")
    notices: list[str] = []
    first = ResponseCache(tmp_path / "c", notice=notices.append)
    second = ResponseCache(tmp_path / "c", notice=notices.append)
    assert first.get("k0") is not None and second.get("k0") is not None
    damaged_inside(db)
    assert None in [first.get(f"k{i}") for i in range(300)]
    first.set("after", {"a": 1})
    assert None in [second.get(f"k{i}") for i in range(300)]
    assert second.get("after") == {"a": 1}  # it reopened the fresh cache, not set it aside again
    assert len(notices) == 1
    assert len([p for p in (tmp_path / "c").iterdir() if p.name.startswith("corrupt-")]) == 1
    first.close()
    second.close()


def test_clear_removes_the_answers_and_what_was_set_aside(tmp_path: Path) -> None:
    garbage(filled(tmp_path / "c", n=3))
    cache = ResponseCache(tmp_path / "c", notice=lambda _: None)
    cache.set("k", {"a": 1})
    assert cache.clear() == 1
    assert cache.stats()["set_aside"] == []
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith("corrupt-")]
    cache.close()


def test_a_corrupt_cache_in_a_read_only_folder_is_a_clear_error(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    garbage(filled(tmp_path / "c", n=3))
    (tmp_path / "c").chmod(0o555)
    try:
        with pytest.raises(CacheError, match=r"corrupt .* could not be moved aside"):
            ResponseCache(tmp_path / "c")
    finally:
        (tmp_path / "c").chmod(0o755)


def test_a_corrupt_cache_that_cannot_be_moved_aside_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    garbage(filled(tmp_path / "c", n=3))

    def refuse(src: object, dst: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(CacheError, match=r"corrupt .* could not be moved aside: Permission denied"):
        ResponseCache(tmp_path / "c")
