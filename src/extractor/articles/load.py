"""The public loader: which files to load, and the articles of files, folders and URIs."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from extractor.articles.local import _Area, _load_local, _local_inputs, _Reached
from extractor.articles.remote import RemoteFile, _load_remote, _load_uri, _remote_inputs
from extractor.articles.text import _UniqueIds, is_uri
from extractor.config import DEFAULT_MAX_INPUT_BYTES
from extractor.models import Article, LoadError


def iter_input_files(
    paths: Iterable[str | Path], *, exclude: Callable[[str, str], bool] | None = None
) -> Iterator[Path | RemoteFile | LoadError]:
    """Yield the files to load, in order: explicit paths as given (even if missing or unsupported, so
    ``load_file`` can report them), folders walked as the package docstring says; a ``scheme://``
    URI's files as ``RemoteFile`` (a missing URI as a ``LoadError``). A folder that cannot be listed
    is yielded as a ``LoadError``. A file already reached through an earlier path (the same file, or
    one inside an earlier folder, compared by resolved path) is not yielded again.

    ``exclude(real_path, real_folder)`` is asked about each file found by walking a folder; files named
    explicitly are always yielded. Memory does not grow with the number of files of a local folder."""
    reached = _Reached()
    for given in paths:
        if is_uri(given):
            yield from _remote_inputs(given, reached, exclude)
        else:
            yield from _local_inputs(Path(given), reached, exclude)


def load_file(
    path: str | Path,
    *,
    follow_symlinks: bool = False,
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
    within: Iterable[str | Path] | None = None,
) -> Iterator[Article | LoadError]:
    """Yield the articles of one file or URI (several for JSONL or a JSON list), or LoadErrors in
    their place.

    ``within``: the input area a symlink must point into (default: ``path`` itself, so a symlink is
    refused unless ``follow_symlinks``). Ids are sanitised but not yet made unique across files;
    ``load_articles`` does that."""
    if is_uri(path):
        return _load_uri(path, max_input_bytes)
    area = _Area()
    for given in [path] if within is None else within:
        area.add(given)
    return _load_local(Path(path), area, follow_symlinks, max_input_bytes)


def load_articles(
    paths: Iterable[str | Path],
    *,
    exclude: Callable[[str, str], bool] | None = None,
    unique_ids: bool = True,
    follow_symlinks: bool = False,
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
    within: Iterable[str | Path] | None = None,
) -> Iterator[Article | LoadError]:
    """Stream the articles of files, folders and URIs (see the package docstring), one file at a time.

    Yields every article with a sanitised id, and a ``LoadError`` in place of each input that could not
    be loaded. Never raises for bad input (a URI without pyarrow installed raises ``ConfigError``). Ids
    are made unique within this call unless ``unique_ids`` is False (the caller then does it, as the
    batch runner does in its on-disk index: the set of ids taken is the only state that grows with the
    number of articles). ``exclude``: see ``iter_input_files``.

    Symlinks must point inside ``within`` (default: ``paths``; when ``paths`` is neither a list nor a
    tuple it is consumed lazily, and a symlink can point only into the paths given so far) unless
    ``follow_symlinks``; ``max_input_bytes`` caps each file (each line of a JSONL file)."""
    ids = _UniqueIds() if unique_ids else None
    area = _Area()
    if within is not None or isinstance(paths, list | tuple):
        for given in paths if within is None else within:
            area.add(given)
    else:
        paths = area.adding(paths)
    for item in iter_input_files(paths, exclude=exclude):
        if isinstance(item, LoadError):
            yield item
            continue
        if isinstance(item, RemoteFile):
            loaded_file = _load_remote(item, max_input_bytes)
        else:
            loaded_file = _load_local(item, area, follow_symlinks, max_input_bytes)
        for loaded in loaded_file:
            if ids is not None and isinstance(loaded, Article):
                unique = ids.claim(loaded.id)
                if unique != loaded.id:
                    loaded = loaded.model_copy(update={"id": unique})
            yield loaded
