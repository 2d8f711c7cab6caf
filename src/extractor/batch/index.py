"""The scratch sqlite files of a run: the index of what results.jsonl holds and what this run has done
(``_Index``), and the compaction of results.jsonl to one line per input at the end (``_compact``)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

from extractor.articles import MAX_ID_LENGTH
from extractor.batch.summary import _FOLDER_KEYS, _tally
from extractor.models import Article, ErrorInfo
from extractor.store import COMPACT_FILE, INDEX_FILE, LastLines, json_objects

_Key = tuple[bytes, str, str]  # (sha256 digest prefix, model, prompt version)


def _digest(sha256: str) -> bytes:
    """A compact key for a text: the first 16 bytes of its sha256 (the index holds one per article)."""
    return bytes.fromhex(sha256[:32]) if sha256 else b""


def _key(sha256: str, model: str | None, version: str | None) -> _Key:
    return (_digest(sha256), model or "", version or "")


class _Index:
    """What results.jsonl already holds (done texts, first extractions, who owns each id), what this
    run has extracted so far, and the copies waiting on a text in flight. It holds an entry per
    article, so it lives in a scratch sqlite file in the output folder (``.index.sqlite``, removed at
    the end) with a small page cache: memory does not grow with the drop. It is rebuilt from
    results.jsonl every run."""

    def __init__(self, path: Path) -> None:
        self._path = path
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # left by a killed run: the index is always rebuilt
        # Built in a worker thread (``_new_index``), then used on the event loop: one thread at a time.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.executescript(
            """
            PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -2048;
            CREATE TABLE done (text BLOB, model TEXT, version TEXT, id TEXT,
                               PRIMARY KEY (text, model, version, id)) WITHOUT ROWID;
            CREATE TABLE first (text BLOB, model TEXT, version TEXT, id TEXT,
                                PRIMARY KEY (text, model, version)) WITHOUT ROWID;
            CREATE TABLE owners (id TEXT PRIMARY KEY, source INTEGER, text BLOB, earlier INTEGER)
                                 WITHOUT ROWID;
            CREATE TABLE run (text BLOB PRIMARY KEY, id TEXT, finished INTEGER,
                              error_type TEXT, error_message TEXT) WITHOUT ROWID;
            CREATE TABLE waiting (text BLOB, seq INTEGER, article TEXT, PRIMARY KEY (text, seq))
                                  WITHOUT ROWID;
            BEGIN;
            """
        )
        self.lines = 0
        self._parked = 0  # copies parked so far (their order), and still parked
        self._waiting = 0

    def close(self) -> None:
        self._db.close()
        with contextlib.suppress(OSError):
            os.unlink(self._path)

    def _one(self, sql: str, *args: Any) -> Any:
        row = self._db.execute(sql, args).fetchone()
        return None if row is None else row[0]

    def add(self, data: dict[str, Any]) -> None:
        """Index one result line of results.jsonl (an earlier run's)."""
        article_id = str(data.get("article_id") or "")
        sha = str(data.get("sha256") or "")
        if article_id:
            self._db.execute(
                "INSERT OR REPLACE INTO owners VALUES (?, ?, ?, ?)",
                (article_id.lower(), hash(str(data.get("source") or "")), _digest(sha), 1),
            )
        if data.get("status") == "ok" and not data.get("chunk_errors") and sha and article_id:
            key = _key(sha, data.get("model"), data.get("prompt_version"))
            self._db.execute("INSERT OR IGNORE INTO done VALUES (?, ?, ?, ?)", (*key, article_id))
            if not data.get("duplicate_of"):
                self._db.execute("INSERT OR IGNORE INTO first VALUES (?, ?, ?, ?)", (*key, article_id))

    def is_done(self, key: _Key, article_id: str) -> bool:
        if not self.lines:
            return False
        sql = "SELECT 1 FROM done WHERE text = ? AND model = ? AND version = ? AND id = ?"
        return self._one(sql, *key, article_id) is not None

    def first_id(self, key: _Key) -> str | None:
        if not self.lines:
            return None
        first: str | None = self._one(
            "SELECT id FROM first WHERE text = ? AND model = ? AND version = ?", *key
        )
        return first

    def claim(self, wanted: str, source: str, sha: str) -> str:
        """An id for the input ``source`` that no other input of this folder uses (compared
        case-insensitively): ``wanted`` unless another source holds it, else ``wanted-2``, ``wanted-3``,
        … An input of an earlier run with the same text (a renamed file) hands its id over."""
        candidate, n = wanted, 1
        mine, text = hash(source), _digest(sha)
        while True:
            fresh = self._db.execute(
                "INSERT OR IGNORE INTO owners VALUES (?, ?, ?, 0)", (candidate.lower(), mine, text)
            )
            if fresh.rowcount == 1:
                return candidate
            owner = self._db.execute(
                "SELECT source, text, earlier FROM owners WHERE id = ?", (candidate.lower(),)
            )
            row = owner.fetchone()
            if row is None or row[0] == mine or (sha and row[1] == text and row[2]):
                self._db.execute(
                    "INSERT OR REPLACE INTO owners VALUES (?, ?, ?, 0)", (candidate.lower(), mine, text)
                )
                return candidate
            n += 1
            suffix = f"-{n}"
            candidate = wanted[: MAX_ID_LENGTH - len(suffix)] + suffix

    # this run: the id extracted for a text, and its outcome once done

    def started(self, text: bytes) -> str | None:
        started: str | None = self._one("SELECT id FROM run WHERE text = ?", text)
        return started

    def start(self, text: bytes, article_id: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO run VALUES (?, ?, 0, NULL, NULL)", (text, article_id))

    def finish(self, text: bytes, article_id: str, error: ErrorInfo | None) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO run VALUES (?, ?, 1, ?, ?)",
            (text, article_id, error.type if error else None, error.message if error else None),
        )

    def park(self, text: bytes, article: Article) -> None:
        """Keep a copy of a text whose extraction is in flight until ``release``: on disk, so that a
        run's memory does not grow with the number of copies waiting."""
        published = article.published.isoformat() if article.published else None
        fields = json.dumps([article.id, article.source, article.sha256, article.title, published])
        self._db.execute("INSERT INTO waiting VALUES (?, ?, ?)", (text, self._parked, fields))
        self._parked += 1
        self._waiting += 1

    def release(self, text: bytes) -> Iterator[Article]:
        """The copies parked for ``text``, in the order they came (without their text, which a copy's
        result does not carry), then forgotten."""
        if not self._waiting:
            return
        rows = self._db.execute("SELECT article FROM waiting WHERE text = ? ORDER BY seq", (text,))
        for (fields,) in rows:
            article_id, source, sha, title, published = json.loads(fields)
            yield Article(id=article_id, text="", source=source, sha256=sha, title=title, published=published)
        self._waiting -= self._db.execute("DELETE FROM waiting WHERE text = ?", (text,)).rowcount

    def outcome(self, text: bytes) -> tuple[str, ErrorInfo | None] | None:
        row = self._db.execute(
            "SELECT id, finished, error_type, error_message FROM run WHERE text = ?", (text,)
        )
        found = row.fetchone()
        if found is None or not found[1]:
            return None
        error = None if found[2] is None else ErrorInfo(type=found[2], message=found[3] or "")
        return found[0], error

    @classmethod
    def from_results(cls, path: Path) -> Self:
        """A fresh index (next to ``path``) of the result lines of ``path``, if it exists."""
        index = cls(path.parent / INDEX_FILE)
        if not path.exists():
            return index
        with path.open("rb") as fh:
            for data in json_objects(fh):
                index.lines += 1
                if data is not None:
                    index.add(data)
        return index


def _compact(path: Path, rewrite: bool = True) -> tuple[int, dict[str, int]]:
    """Keep only the last line per input source (and drop unreadable lines); return how many lines
    were dropped, and the folder totals over the lines kept. The file is replaced atomically; with
    ``rewrite=False`` it is left as it is (append-only: 0 lines dropped) and only the totals are worked
    out. Which line is the last of its source is worked out in a scratch sqlite file next to it
    (``store.LastLines``), so memory does not grow with the number of lines."""
    with LastLines.of(path, path.with_name(COMPACT_FILE), _compact_row, len(_FOLDER_KEYS)) as last:
        folder = dict(zip(_FOLDER_KEYS, last.sums(), strict=True))
        dropped = last.lines + last.torn - last.count()
        if not dropped or not rewrite:
            return 0, folder
        tmp = path.with_name(f".{path.name}.compact")
        with path.open("rb") as fh, tmp.open("wb") as out:
            for _, raw in last.kept_lines(fh):
                out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        return dropped, folder


def _compact_row(number: int, raw: bytes) -> tuple[Any, ...] | None:
    """A line's source (a line without one is its own) and its share of the folder totals; None for a
    line that is not a JSON object (dropped)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return (str(data.get("source", f"#{number}")), *_tally(data))
