"""Remote inputs: ``scheme://`` URIs (``s3://``, ``gs://``, ``hdfs://``, ``file://`` …) listed and read
through the filesystem pyarrow has for the scheme (``pyarrow.fs.FileSystem.from_uri``), with the same
formats, caps, binary sniffing and ``Article | LoadError`` records as local files; sources and default
ids come from the URI.

pyarrow ships with the ``export`` and ``ray`` extras and is imported only when a URI is given. A folder
is listed once, recursively (pyarrow returns the listing whole), skipping hidden entries and other
extensions, in the order of local folders. Object stores have no symlinks or devices: the local rules
for them do not apply, and a ``file://`` URI is read by pyarrow as it is (name a plain path to have
them).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO, Any

from extractor.articles.formats import (
    SUPPORTED_SUFFIXES,
    _load_opened,
    _unsupported,
    count_lines,
)
from extractor.articles.local import _Reached
from extractor.articles.text import _one_line, _os_reason
from extractor.errors import ConfigError
from extractor.models import Article, LoadError

_NO_PYARROW = (
    "reading {uri} needs pyarrow, which remote input paths (scheme://) are read with: "
    "pip install 'extractor[export]' (or extractor[ray])"
)


@dataclass(frozen=True)
class RemoteFile:
    """A file found at a URI: the URI (the articles' source), its filesystem, its path there and its
    size."""

    uri: str
    fs: Any = field(repr=False, compare=False)
    path: str
    size: int | None

    @property
    def suffix(self) -> str:
        """The lower-case extension, as local files are matched."""
        return PurePosixPath(self.path).suffix.lower()

    def open(self) -> IO[bytes]:
        """The file opened for buffered, seekable reading; raises ``OSError``."""
        return io.BufferedReader(self.fs.open_input_file(self.path))

    def count_articles(self) -> int:
        """How many articles the file holds, cheaply: a JSONL file's non-blank lines, else 1 (also
        when it cannot be read: the loader reports it)."""
        if self.suffix != ".jsonl":
            return 1
        try:
            with self.open() as fh:
                return count_lines(fh)
        except OSError:
            return 1


def _pyarrow_fs(uri: str) -> Any:
    try:
        import pyarrow.fs
    except ImportError as exc:
        raise ConfigError(_NO_PYARROW.format(uri=uri)) from exc
    return pyarrow.fs


def _resolve(uri: str) -> tuple[Any, Any, Any] | LoadError:
    """``(pyarrow.fs, filesystem, FileInfo)`` of ``uri``, or why it cannot be read. Raises
    ``ConfigError`` without pyarrow."""
    pafs = _pyarrow_fs(uri)
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
        info = fs.get_file_info(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        return LoadError(path=uri, reason=f"cannot open URI: {_one_line(str(exc))}")
    if info.type == pafs.FileType.NotFound:
        return LoadError(path=uri, reason="no such file or directory")
    return pafs, fs, info


def _remote_inputs(
    uri: str, reached: _Reached, exclude: Callable[[str, str], bool] | None
) -> Iterator[RemoteFile | LoadError]:
    """The files to load for one URI given: the file itself, or a folder's files in the order of a
    local walk (sorted by name, depth first). ``exclude(real_path, real_folder)`` is asked about a
    folder's files on the local filesystem (``file://``), where the output folder may be."""
    resolved = _resolve(uri)
    if isinstance(resolved, LoadError):
        yield resolved
        return
    pafs, fs, info = resolved
    key = f"{fs.type_name}://{info.path}"
    if info.type != pafs.FileType.Directory:
        if key not in reached:
            yield RemoteFile(uri, fs, info.path, info.size)
        reached.files.add(key)
        return
    base = info.path.rstrip("/")
    if f"{key.rstrip('/')}/" not in reached:
        try:
            listing = fs.get_file_info(pafs.FileSelector(base, recursive=True))
        except OSError as exc:
            yield LoadError(path=uri, reason=f"cannot list folder: {_os_reason(exc)}")
            return
        head, query, rest = uri.partition("?")
        head = head.rstrip("/")
        local = fs.type_name == "local"
        top = os.path.realpath(base) if local else ""
        found: list[tuple[list[str], str, int | None]] = []
        for child in listing:
            rel = child.path.removeprefix(base + "/")
            parts = rel.split("/")
            if (
                child.type != pafs.FileType.File
                or any(part.startswith(".") for part in parts)
                or PurePosixPath(rel).suffix.lower() not in SUPPORTED_SUFFIXES
                or f"{fs.type_name}://{child.path}" in reached
                or (local and exclude is not None and exclude(os.path.realpath(child.path), top))
            ):
                continue
            found.append((parts, child.path, child.size))
        found.sort(key=lambda entry: entry[0])
        for parts, path, size in found:
            yield RemoteFile(f"{head}/{'/'.join(parts)}{query}{rest}", fs, path, size)
    reached.roots.append(f"{key.rstrip('/')}/")


def _load_uri(uri: str, cap: int) -> Iterator[Article | LoadError]:
    """The articles of the file at ``uri`` (``load_file`` for a URI)."""
    resolved = _resolve(uri)
    if isinstance(resolved, LoadError):
        yield resolved
        return
    pafs, fs, info = resolved
    if info.type == pafs.FileType.Directory:
        yield LoadError(path=uri, reason="is a directory")
        return
    yield from _load_remote(RemoteFile(uri, fs, info.path, info.size), cap)


def _load_remote(file: RemoteFile, cap: int) -> Iterator[Article | LoadError]:
    """The articles of one remote file, read with the size cap as a local one is."""
    suffix, stem = file.suffix, PurePosixPath(file.path).stem
    unsupported = _unsupported(suffix)
    if unsupported is not None:
        yield LoadError(path=file.uri, reason=unsupported)
        return
    try:
        fh = file.open()
    except OSError as exc:
        yield LoadError(path=file.uri, reason=_os_reason(exc))
        return
    yield from _load_opened(file.uri, stem, suffix, fh, file.size or 0, cap)
