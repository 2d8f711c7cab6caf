"""Content-addressed cache of model answers, on disk with diskcache, JSON text only.

The key is a sha256 over everything that determines the answer — model, endpoint, mode, temperature,
max tokens, the rendered messages, the JSON Schema and the prompt version — and never the API key.
Values are JSON text; an entry stored any other way (e.g. a pickle planted in the folder) is refused and
never unpickled (CVE-2025-69872).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import diskcache

from extractor.config import Settings, answer_settings
from extractor.errors import CacheError

__all__ = ["CACHE_FORMAT", "AnswerCache", "ResponseCache", "cache_key", "open_cache"]

CACHE_FORMAT = 2


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(settings: Settings, messages: list[dict[str, str]], schema: str, prompt_version: str) -> str:
    """The content address of one request: sha256 over the settings that shape the answer, the schema,
    the prompt version and every message (each part hashed on its own, so the same article text under
    another role or order gives another key)."""
    answer = answer_settings(settings)
    # The endpoint enters the key as "endpoint", as it has since the first recordings (a rename orphans them).
    answer["endpoint"] = answer.pop("base_url")
    material = {
        "format": CACHE_FORMAT,
        **answer,
        "messages": [[m["role"], _digest(m["content"])] for m in messages],
        "schema": _digest(schema),
        "prompt_version": prompt_version,
    }
    return _digest(json.dumps(material, sort_keys=True, separators=(",", ":")))


class _JSONDisk(diskcache.Disk):  # type: ignore[misc]
    """A diskcache Disk that stores only str values and never unpickles."""

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> Any:
        if not isinstance(value, str):
            raise CacheError(f"cache values must be JSON text, not {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == diskcache.core.MODE_PICKLE:
            raise CacheError("refusing a pickled cache entry (only JSON text is ever stored)")
        return super().fetch(mode, filename, value, read)


_DB = "cache.db"
_DB_FILES = (_DB, f"{_DB}-wal", f"{_DB}-shm")
_VALUE_DIR = re.compile(r"[0-9a-f]{2}")  # diskcache keeps large values in files under DIR/ab/cd/
_ASIDE = "corrupt-"
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def _is_corrupt(exc: BaseException) -> bool:
    """Whether an sqlite error says the database file is damaged (not busy, full or unwritable)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    return isinstance(exc, sqlite3.DatabaseError) and any(
        text in str(exc) for text in ("malformed", "not a database")
    )


def _bad_value(exc: BaseException) -> bool:
    """A damaged entry rather than a damaged file (its text is not UTF-8)."""
    return isinstance(exc, sqlite3.OperationalError) and "Could not decode" in str(exc)


def _warn(message: str) -> None:
    print(f"extractor: warning: {message}", file=sys.stderr, flush=True)


class ResponseCache:
    """JSON answers by content key, under ``directory`` (default: Settings.cache_dir).

    A damaged cache (``cache.db`` that is not a database, truncated, or with damaged pages) never stops
    a run: it is moved aside into ``directory/corrupt-<time>-<random>/`` (with its value files), a fresh
    empty cache is started, and ``notice`` is told where, once (default: a warning line on stderr). Two
    processes sharing the folder set it aside once. CacheError remains for a cache that cannot be
    opened or recovered at all (an unwritable folder, a damaged file that cannot be moved).
    """

    def __init__(self, directory: Path | str, *, notice: Callable[[str], None] | None = None) -> None:
        self.directory = Path(directory)
        self._notice = notice or _warn
        self._identity: tuple[int, int] | None = None
        self._cache = self._open()

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.directory / _DB)
        except OSError:
            return None
        return (st.st_dev, st.st_ino)

    def _open(self, recovering: bool = False) -> diskcache.Cache:
        identity = self._stat()
        try:
            # A bounded sqlite page cache and no mmap: a run over many articles keeps a flat footprint.
            cache = diskcache.Cache(
                str(self.directory), disk=_JSONDisk, sqlite_cache_size=2**9, sqlite_mmap_size=0
            )
        except (OSError, sqlite3.Error) as exc:
            if recovering or not _is_corrupt(exc):
                raise CacheError(f"cannot open the response cache at {self.directory}: {exc}") from exc
            self._identity = identity
            self._set_aside(exc)
            return self._open(recovering=True)
        self._identity = self._stat()
        return cache

    def _set_aside(self, exc: BaseException) -> None:
        """Move the damaged database (and its value files) aside, unless another process sharing the
        folder has already replaced it; say where."""
        import fcntl

        try:
            guard = os.open(self.directory / ".recover.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise self._unrecoverable(exc, err) from exc
        try:
            fcntl.flock(guard, fcntl.LOCK_EX)
            if self._stat() is None or self._stat() != self._identity:
                return  # set aside (and replaced) by another process since we opened it
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
            try:
                aside = Path(tempfile.mkdtemp(prefix=f"{_ASIDE}{stamp}-", dir=self.directory))
                for name in _DB_FILES:
                    with contextlib.suppress(FileNotFoundError):
                        os.replace(self.directory / name, aside / name)
                for entry in os.scandir(self.directory):
                    if entry.is_dir(follow_symlinks=False) and _VALUE_DIR.fullmatch(entry.name):
                        os.replace(entry.path, aside / entry.name)
            except OSError as err:
                raise self._unrecoverable(exc, err) from exc
        finally:
            os.close(guard)
        self._notice(
            f"the response cache {self.directory / _DB} was corrupt ({exc}); moved it aside to {aside} "
            "and started a fresh, empty cache (delete that folder, or run `extractor cache clear`)"
        )

    def _unrecoverable(self, exc: BaseException, err: OSError) -> CacheError:
        return CacheError(
            f"the response cache {self.directory / _DB} is corrupt ({exc}) and could not be moved aside: "
            f"{err.strerror or err}; delete it, or use another --cache-dir"
        )

    def _recover(self, exc: BaseException) -> None:
        """After a read or write found the database damaged: set it aside and reopen a fresh one."""
        with contextlib.suppress(Exception):
            self._cache.close()
        self._set_aside(exc)
        self._cache = self._open(recovering=True)

    def _call(self, what: str, action: Callable[[], Any]) -> Any:
        """Run ``action`` on the cache; a damaged database is set aside and ``action`` tried once more
        on the fresh one. Other failures are a CacheError naming ``what`` was being done."""
        for attempt in (1, 2):
            try:
                return action()
            except CacheError:
                raise
            except (OSError, sqlite3.Error) as exc:
                if attempt == 1 and _is_corrupt(exc):
                    self._recover(exc)
                    continue
                raise CacheError(f"cannot {what} the response cache at {self.directory}: {exc}") from exc
        raise AssertionError("unreachable")

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer for ``key``, or None. A corrupt entry is dropped and counts as a miss."""
        try:
            raw = self._call("read", lambda: self._cache.get(key))
        except CacheError as exc:
            if not isinstance(exc.__cause__, sqlite3.Error) or _bad_value(exc.__cause__):
                self._call("write", lambda: self._cache.delete(key))
                return None
            raise
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            self._call("write", lambda: self._cache.delete(key))
            return None
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        self._call("write", lambda: self._cache.set(key, text))

    def __contains__(self, key: str) -> bool:
        return bool(self._call("read", lambda: key in self._cache))

    def set_aside(self) -> list[Path]:
        """The damaged caches moved aside in this folder (oldest first)."""
        try:
            entries = sorted(self.directory.glob(f"{_ASIDE}*"))
        except OSError:
            return []
        return [p for p in entries if p.is_dir()]

    def stats(self) -> dict[str, Any]:
        """Entries, bytes on disk, location, and the damaged caches set aside."""
        entries = self._call("read", lambda: len(self._cache))
        volume = self._call("read", lambda: self._cache.volume())
        aside = [str(p) for p in self.set_aside()]
        return {"directory": str(self.directory), "entries": entries, "bytes": volume, "set_aside": aside}

    def clear(self) -> int:
        """Remove every entry, and the damaged caches set aside; return how many entries there were."""
        removed = int(self._call("write", lambda: self._cache.clear()))
        for path in self.set_aside():
            shutil.rmtree(path, ignore_errors=True)
        return removed

    def close(self) -> None:
        self._cache.close()


class AnswerCache(Protocol):
    """What the pipeline needs of a response cache: ResponseCache (diskcache, one host) or
    extractor.fscache.JSONFileCache (JSON files on any pyarrow filesystem, shared across hosts)."""

    def get(self, key: str) -> dict[str, Any] | None: ...
    def set(self, key: str, value: dict[str, Any]) -> None: ...
    def __contains__(self, key: str) -> bool: ...
    def stats(self) -> dict[str, Any]: ...
    def clear(self) -> int: ...
    def close(self) -> None: ...


def open_cache(settings: Settings) -> AnswerCache:
    """The cache the settings select: the shared JSON store at ``cache_url`` when set, else diskcache in
    ``cache_dir``."""
    if settings.cache_url:
        from extractor.fscache import JSONFileCache

        return JSONFileCache(settings.cache_url)
    return ResponseCache(settings.cache_dir)
