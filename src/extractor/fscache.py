"""The shared response cache: one JSON file per answer on any filesystem pyarrow opens.

diskcache keeps its index in SQLite, which is safe for several processes on one host but not over a
network filesystem shared by several hosts. This store has no index at all: an answer is the file
``ROOT/<key[:2]>/<key>.json`` where ``key`` is the same content address ``cache.cache_key`` computes, so
any number of workers on any number of hosts read and write it without coordination — two workers that
answer the same request write the same content, and the last write wins. ROOT is a local folder or a URL
pyarrow understands (``s3://bucket/prefix``, ``gs://bucket/prefix``, ``hdfs://…``, ``file:///…``).

Values are JSON objects only; nothing is ever unpickled. A file that is not a JSON object counts as a
miss and is removed. On a local filesystem an answer is written to a temporary file and renamed into
place, so a reader never sees half of one; object stores make a written object visible whole.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from typing import Any

from extractor.config import scrub_url
from extractor.errors import CacheError

__all__ = ["JSONFileCache"]

_KEY = re.compile(r"[0-9a-f]{64}")
_SUFFIX = ".json"


class JSONFileCache:
    """JSON answers by content key, one file each, under ``url`` (a folder or a pyarrow filesystem URL)."""

    def __init__(self, url: str) -> None:
        try:
            import pyarrow.fs as pafs
        except ImportError as exc:
            raise CacheError(
                "cache_url needs pyarrow: pip install 'extractor[export]' (or use cache_dir, the local "
                "diskcache store)"
            ) from exc
        self.url = url
        self.shown = scrub_url(url)
        try:
            if "://" in url:
                self._fs, root = pafs.FileSystem.from_uri(url)
            else:
                self._fs, root = pafs.LocalFileSystem(), os.path.abspath(os.path.expanduser(url))
            self._root = root.rstrip("/")
            self._local = self._fs.type_name == "local"
            self._fs.create_dir(self._root, recursive=True)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise CacheError(f"cannot open the shared response cache at {self.shown}: {exc}") from exc

    def _path(self, key: str) -> str:
        if _KEY.fullmatch(key) is None:
            raise CacheError(f"not a cache key: {key!r}")
        return f"{self._root}/{key[:2]}/{key}{_SUFFIX}"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored answer for ``key``, or None. A file that is not a JSON object is dropped (a miss);
        a read that fails (the store unreachable) is a miss too: the answer is asked again."""
        path = self._path(key)
        try:
            with self._fs.open_input_stream(path) as fh:
                raw = fh.read()
        except OSError:
            return None
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            value = None
        if not isinstance(value, dict):
            self._remove(path)
            return None
        return value

    def set(self, key: str, value: dict[str, Any]) -> None:
        if not isinstance(value, dict):
            raise CacheError(f"cache values must be JSON objects, not {type(value).__name__}")
        path = self._path(key)
        data = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            self._fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
            target = f"{path}.{uuid.uuid4().hex}.tmp" if self._local else path
            with self._fs.open_output_stream(target) as fh:
                fh.write(data)
            if target != path:
                self._fs.move(target, path)
        except OSError as exc:
            raise CacheError(f"cannot write to the shared response cache at {self.shown}: {exc}") from exc

    def __contains__(self, key: str) -> bool:
        import pyarrow.fs as pafs

        try:
            return bool(self._fs.get_file_info(self._path(key)).type == pafs.FileType.File)
        except OSError:
            return False

    def _entries(self) -> list[Any]:
        import pyarrow.fs as pafs

        try:
            selector = pafs.FileSelector(self._root, recursive=True, allow_not_found=True)
            infos = self._fs.get_file_info(selector)
        except OSError as exc:
            raise CacheError(f"cannot list the shared response cache at {self.shown}: {exc}") from exc
        return [i for i in infos if i.type == pafs.FileType.File and i.path.endswith(_SUFFIX)]

    def stats(self) -> dict[str, Any]:
        """Entries, bytes and location (the URL without credentials)."""
        entries = self._entries()
        return {"directory": self.shown, "entries": len(entries), "bytes": sum(i.size or 0 for i in entries)}

    def clear(self) -> int:
        """Remove every entry; return how many there were."""
        entries = self._entries()
        for info in entries:
            self._remove(info.path)
        return len(entries)

    def _remove(self, path: str) -> None:
        try:
            self._fs.delete_file(path)
        except OSError:
            return

    def close(self) -> None:
        return None
