"""Server-side paths of a job (``--allow-paths DIR``): what may be read, checked before the job is queued.

Nothing here imports the web framework.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from extractor.articles import iter_input_files
from extractor.models import LoadError

__all__ = ["MAX_PATH_PROBLEMS", "check_paths"]

MAX_PATH_PROBLEMS = 20


def check_paths(allowed: Path, paths: Sequence[str]) -> list[tuple[int, str]]:
    """Problems with ``paths`` (relative to the resolved folder ``allowed``) as (index, reason); none
    means every path may be read. Blocking (it walks the folders named): call it in a thread.

    A path must lie inside ``allowed`` once its symlinks are resolved, and so must every file a folder
    named holds: a symlink to outside (the path itself, a folder on the way, or a file found in a folder)
    is named, relative to ``allowed``, and refused. Symlinked folders inside a folder are not walked by
    the loader, so they are not checked. At most ``MAX_PATH_PROBLEMS`` are reported."""

    def inside(real: str) -> bool:
        return real == str(allowed) or real.startswith(os.path.join(allowed, ""))

    problems: list[tuple[int, str]] = []
    for i, raw in enumerate(paths):
        if "\x00" in raw:
            problems.append((i, "contains a NUL character"))
            continue
        given = allowed / raw
        try:
            real = os.path.realpath(given, strict=False)
        except (OSError, ValueError):
            problems.append((i, "cannot be resolved"))
            continue
        if not inside(real):
            links = (p for p in [given, *given.parents] if p.is_symlink() and not inside(os.path.realpath(p)))
            link = next(links, None)
            if link is None:
                problems.append((i, "is not inside the folder this server allows (--allow-paths)"))
            else:
                problems.append(
                    (i, f"{os.path.relpath(link, allowed)} is a symlink to outside the allowed folder")
                )
        elif not os.path.exists(real):
            problems.append((i, "no such file or folder under the allowed folder"))
        elif os.path.isdir(real):
            for found in iter_input_files([real]):
                path = Path(found.path) if isinstance(found, LoadError) else found
                assert isinstance(path, Path)  # a local folder's files
                if path.is_symlink() and not inside(os.path.realpath(path)):
                    shown = os.path.join(raw, os.path.relpath(path, real))
                    problems.append((i, f"{shown} is a symlink to outside the allowed folder"))
                    if len(problems) >= MAX_PATH_PROBLEMS:
                        return problems
        if len(problems) >= MAX_PATH_PROBLEMS:
            return problems
    return problems
