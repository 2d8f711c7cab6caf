"""``watch``: extract files as they appear in a drop folder, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from extractor.articles import is_uri
from extractor.batch.inputs import _input_files, _load
from extractor.batch.runner import _clock, _finish, _run, _write_progress
from extractor.batch.signals import _Stop, _with_sigint
from extractor.batch.summary import BatchReporter, NullReporter, RunSummary, _merge
from extractor.errors import ConfigError
from extractor.pipeline import Extractor
from extractor.store import lock_run_folder

__all__ = ["watch"]


def _new_files(
    drop: Path, seen: dict[Path, tuple[int, float]], settle_s: float, out_dir: Path
) -> Iterator[Path]:
    """Input files under ``drop`` (not the output folder) that appeared or changed and have not changed
    for ``settle_s``."""
    now = time.time()
    for path in _input_files([drop], out_dir):
        assert isinstance(path, Path)  # a local folder's files
        try:
            stat = path.stat()
        except OSError:
            continue
        sig = (stat.st_size, stat.st_mtime)
        if seen.get(path) == sig or now - stat.st_mtime < settle_s:
            continue
        seen[path] = sig
        yield path


def watch(
    drop_dir: str | Path,
    out_dir: str | Path,
    extractor: Extractor,
    *,
    interval_s: float = 2.0,
    settle_s: float = 1.0,
    reporter: BatchReporter | None = None,
    max_rounds: int | None = None,
    wait_lock: bool = False,
) -> RunSummary:
    """Extract files as they appear in ``drop_dir`` (same incremental rules) until Ctrl-C, which lets
    the articles in flight finish. run.json holds the totals of the whole watch, rewritten each round.
    The folder's lock is held for the whole watch, as in ``run_batch``."""
    if is_uri(drop_dir):
        raise ConfigError(f"cannot watch {drop_dir}: watch takes a local folder (run reads URIs)")
    drop, out = Path(drop_dir), Path(out_dir)
    if interval_s <= 0:
        raise ConfigError(f"watch interval must be positive, got {interval_s}")
    if not drop.is_dir():
        raise ConfigError(f"cannot watch {drop}: not a folder")
    extractor.check_ready()
    report = reporter or NullReporter()

    async def loop(stop: _Stop) -> RunSummary:
        started = _clock()
        total = RunSummary(model=extractor.settings.model, prompt_version=extractor.prompts.version)
        seen: dict[Path, tuple[int, float]] = {}
        rounds = 0
        report.start(out)
        while not stop.finish.is_set() and (max_rounds is None or rounds < max_rounds):
            rounds += 1
            fresh = list(_new_files(drop, seen, settle_s, out))
            if fresh:
                part = await _run(
                    _load(fresh, out, extractor.settings, within=[drop]),
                    out,
                    extractor,
                    False,
                    extractor.settings.concurrency,
                    report,
                    stop.finish,
                    stop.abort,
                )
                _merge(total, part)
                _write_progress(out, total, started)
            if max_rounds is not None and rounds >= max_rounds:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.finish.wait(), timeout=interval_s)
        total.interrupted = total.interrupted or stop.finish.is_set()
        total.stopped_by = stop.by
        return _finish(out, total, started, report)

    with lock_run_folder(out, wait=wait_lock):
        return asyncio.run(_with_sigint(loop))
