"""Ctrl-C and SIGTERM during a run: the first lets the articles in flight finish, a second leaves them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from extractor.batch.summary import RunSummary


class _Stop:
    """What the signals asked for: ``finish`` (a first Ctrl-C or SIGTERM: the articles in flight finish,
    nothing new starts) and ``abort`` (a second one: they are left for the next run); ``by`` names the
    first signal."""

    def __init__(self) -> None:
        self.finish = asyncio.Event()
        self.abort = asyncio.Event()
        self.by: str | None = None


async def _with_sigint(make: Callable[[_Stop], Awaitable[RunSummary]]) -> RunSummary:
    """Run ``make(stop)`` with Ctrl-C (SIGINT) and SIGTERM handled alike: the first sets ``stop.finish``,
    a second sets ``stop.abort``; either way the run ends normally and writes run.json. After the second
    the process's own handlers are back, so a third one ends it at once (like a kill: the next run
    repairs and finishes). The handlers the process had before are restored at the end."""
    stop = _Stop()
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def restore() -> None:
        for signum, handler in previous.items():
            loop.remove_signal_handler(signum)
            signal.signal(signum, handler)
        previous.clear()

    def on_signal(signum: signal.Signals) -> None:
        key = "Ctrl-C" if signum == signal.SIGINT else signum.name
        if not stop.finish.is_set():
            stop.by = signum.name
            stop.finish.set()
            prefix = "" if signum == signal.SIGINT else f"{signum.name}: "
            print(
                f"{prefix}stopping after the articles in flight ({key} again to leave them to the next run)",
                file=sys.stderr,
                flush=True,
            )
            return
        stop.abort.set()
        restore()
        print("stopping now: the articles in flight are left for the next run", file=sys.stderr, flush=True)

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            handler = signal.getsignal(signum)
            loop.add_signal_handler(signum, on_signal, signum)
            previous[signum] = signal.SIG_DFL if handler is None else handler
    try:
        return await make(stop)
    finally:
        restore()
