"""Local files: walking folders, the input area that symlinks must stay in, and opening safely."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from extractor.articles.formats import (
    SUPPORTED_SUFFIXES,
    _load_opened,
    _unsupported,
)
from extractor.articles.text import _os_reason, is_uri
from extractor.models import Article, LoadError

_OPEN_FLAGS = os.O_RDONLY
for _flag in ("O_NONBLOCK", "O_NOFOLLOW", "O_CLOEXEC", "O_BINARY"):  # those this platform has
    _OPEN_FLAGS |= getattr(os, _flag, 0)
_FILE_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


class _Reached:
    """The inputs reached so far: folders walked (resolved, with a trailing separator) and files named
    (resolved). Memory grows with the paths given, not with the files in their folders."""

    def __init__(self) -> None:
        self.roots: list[str] = []
        self.files: set[str] = set()

    def __contains__(self, real: str) -> bool:
        return real in self.files or any(
            real.startswith(root) or real + os.sep == root for root in self.roots
        )


def _local_inputs(
    path: Path, reached: _Reached, exclude: Callable[[str, str], bool] | None
) -> Iterator[Path | LoadError]:
    """The files to load for one local path given (see ``iter_input_files``)."""
    if os.path.isdir(path):
        root = os.path.realpath(path)
        if root not in reached:
            yield from _walk(path, root, reached, exclude)
        reached.roots.append(os.path.join(root, ""))
        return
    real = os.path.realpath(path)
    if real not in reached:
        yield path
    reached.files.add(real)


def _walk(
    folder: Path,
    real_folder: str,
    reached: _Reached,
    exclude: Callable[[str, str], bool] | None,
    top: str | None = None,
) -> Iterator[Path | LoadError]:
    """The files under ``folder`` (whose resolved path is ``real_folder``), skipping what ``reached``
    holds and what ``exclude`` refuses. Only symlinks are resolved one by one: any other entry's
    resolved path is its folder's plus its name."""
    top = real_folder if top is None else top
    try:
        with os.scandir(folder) as listing:
            # Names only (not DirEntry objects): a drop folder can hold very many files.
            names = sorted(entry.name for entry in listing if not entry.name.startswith("."))
    except OSError as exc:
        yield LoadError(path=str(folder), reason=f"cannot list folder: {_os_reason(exc)}")
        return
    for name in names:
        path = folder / name
        try:
            mode = os.lstat(path).st_mode
            link = stat.S_ISLNK(mode)
            if link:
                try:
                    mode = os.stat(path).st_mode
                except FileNotFoundError:
                    continue  # a dangling symlink is not an input
        except OSError as exc:
            yield LoadError(path=str(path), reason=_os_reason(exc))
            continue
        real = os.path.realpath(path) if link else os.path.join(real_folder, name)
        if stat.S_ISDIR(mode):
            if not link:
                yield from _walk(path, real, reached, exclude, top)
        elif os.path.splitext(name)[1].lower() in SUPPORTED_SUFFIXES:  # a FIFO too: load_file reports it
            if real in reached or (exclude is not None and exclude(real, top)):
                continue
            yield path


class _Area:
    """The input area: the folders named (their resolved paths, all below them) and the files named
    that are not symlinks themselves. A symlink is followed only to a file inside it. Remote URIs have
    no symlinks and are not part of it."""

    def __init__(self) -> None:
        self._roots: list[str] = []
        self._files: set[str] = set()

    def add(self, given: str | Path) -> None:
        if is_uri(given):
            return
        if os.path.isdir(given):
            root = os.path.join(os.path.realpath(given), "")
            if root not in self._roots:
                self._roots.append(root)
        elif not os.path.islink(given):
            self._files.add(os.path.realpath(given))

    def adding(self, paths: Iterable[str | Path]) -> Iterator[str | Path]:
        """``paths`` as given, each added to the area just before it is handed on."""
        for given in paths:
            self.add(given)
            yield given

    def __contains__(self, real: str) -> bool:
        return real in self._files or any(real.startswith(root) for root in self._roots)


def _load_local(path: Path, area: _Area, follow: bool, cap: int) -> Iterator[Article | LoadError]:
    """The articles of one local file, opened safely (see the package docstring)."""
    suffix = path.suffix.lower()
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        yield LoadError(path=str(path), reason=_os_reason(exc))
        return
    if stat.S_ISDIR(mode):
        yield LoadError(path=str(path), reason="is a directory")
        return
    unsupported = _unsupported(suffix)
    if unsupported is not None:
        yield LoadError(path=str(path), reason=unsupported)
        return
    opened = _open_input(path, area, follow)
    if isinstance(opened, str):
        yield LoadError(path=str(path), reason=opened)
        return
    fd, size = opened
    yield from _load_opened(str(path), path.stem, suffix, os.fdopen(fd, "rb"), size, cap)


def _open_input(path: Path, area: _Area, follow: bool) -> tuple[int, int] | str:
    """Open ``path`` for reading if it is a regular file inside ``area`` (any file when ``follow``):
    (descriptor, size), or a one-line reason. A FIFO or device is never opened; the checks are made
    again on the opened descriptor."""
    try:
        target = os.fspath(path)
        if stat.S_ISLNK(os.lstat(path).st_mode):
            target = os.path.realpath(path)
            if not follow and target not in area:
                return (
                    f"symlink to outside the input ({target}); "
                    "name the target itself or use --follow-symlinks"
                )
        kind = _not_regular(os.stat(target).st_mode)
        if kind is not None:
            return kind
        fd = os.open(target, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "file changed while it was being loaded (now a symlink)"
        return _os_reason(exc)
    try:
        info = os.fstat(fd)
        reason = _not_regular(info.st_mode)
        opened = None if follow or reason else _fd_path(fd)
        if opened is not None and opened not in area:
            reason = f"file changed while it was being loaded (now outside the input: {opened})"
    except OSError as exc:
        reason = _os_reason(exc)
    if reason is None:
        return fd, info.st_size
    os.close(fd)
    return reason


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _FILE_KINDS if test(mode)), "a special file")
    return f"not a regular file ({kind})"


def _fd_path(fd: int) -> str | None:
    """The path an open descriptor really refers to (Linux ``/proc``), or None where unknown."""
    try:
        opened = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None
    if not opened.startswith("/"):
        return None
    if opened.endswith(" (deleted)") and not os.path.exists(opened):
        opened = opened.removesuffix(" (deleted)")
    return opened
