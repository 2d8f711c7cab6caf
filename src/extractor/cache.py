"""Content-addressed cache of model answers, on disk with diskcache, JSON text only.

The key is a sha256 over everything that determines the answer — model, endpoint, mode, temperature,
max tokens, the rendered messages, the JSON Schema and the prompt version — and never the API key.
Values are JSON text; an entry stored any other way (e.g. a pickle planted in the folder) is refused and
never unpickled (CVE-2025-69872).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any, Protocol

import diskcache

from extractor.config import Settings
from extractor.errors import CacheError

__all__ = ["CACHE_FORMAT", "AnswerCache", "ResponseCache", "cache_key", "open_cache"]

CACHE_FORMAT = 2


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cache_key(settings: Settings, messages: list[dict[str, str]], schema: str, prompt_version: str) -> str:
    """The content address of one request: sha256 over the settings that shape the answer, the schema,
    the prompt version and every message (each part hashed on its own, so the same article text under
    another role or order gives another key)."""
    material = {
        "format": CACHE_FORMAT,
        "model": settings.model,
        "endpoint": settings.public_endpoint,
        "mode": settings.mode,
        "temperature": settings.temperature,
        "max_tokens": settings.max_tokens,
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


class ResponseCache:
    """JSON answers by content key, under ``directory`` (default: Settings.cache_dir)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        try:
            # A bounded sqlite page cache and no mmap: a run over many articles keeps a flat footprint.
            self._cache = diskcache.Cache(
                str(self.directory), disk=_JSONDisk, sqlite_cache_size=2**9, sqlite_mmap_size=0
            )
        except (OSError, sqlite3.Error) as exc:
            raise CacheError(f"cannot open the response cache at {self.directory}: {exc}") from exc

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer for ``key``, or None. A corrupt entry is dropped and counts as a miss."""
        try:
            raw = self._cache.get(key)
        except CacheError:
            self._cache.delete(key)
            return None
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            self._cache.delete(key)
            return None
        return value if isinstance(value, dict) else None

    def set(self, key: str, value: dict[str, Any]) -> None:
        self._cache.set(key, json.dumps(value, ensure_ascii=False, separators=(",", ":")))

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def stats(self) -> dict[str, Any]:
        """Entries, bytes on disk and location."""
        return {"directory": str(self.directory), "entries": len(self._cache), "bytes": self._cache.volume()}

    def clear(self) -> int:
        """Remove every entry; return how many there were."""
        return int(self._cache.clear())

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
