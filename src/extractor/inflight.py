"""Keep at most N awaitables in flight: the one loop behind ``Extractor.aextract_many``, the batch runner
and the Batch API's direct re-asks. Standard library only.

    flight = InFlight[Article, ArticleResult](limit, abort=stop_now)
    try:
        for article in articles:
            flight.add(extract(article), article)
            while flight.full:
                for article, task in await flight.next_done(): ...
        while flight:
            for article, task in await flight.next_done(): ...
    finally:
        await flight.aclose()  # cancels what is still in flight
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Generic, TypeVar

__all__ = ["Aborted", "InFlight"]

T = TypeVar("T")
K = TypeVar("K")


class Aborted(Exception):
    """The ``abort`` event was set while waiting, and no finished task was left to hand back."""


class InFlight(Generic[K, T]):
    """Tasks started with a tag each, at most ``limit`` of them wanted at once (``full`` says when to
    wait); ``next_done`` hands back the finished ones with their tags, ``aclose`` cancels the rest."""

    def __init__(self, limit: int, abort: asyncio.Event | None = None) -> None:
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        self.limit = limit
        self._abort = abort
        self._aborted: asyncio.Future[Any] | None = None
        self._tags: dict[asyncio.Future[T], K] = {}

    def __len__(self) -> int:
        return len(self._tags)

    @property
    def full(self) -> bool:
        """Whether ``limit`` tasks are in flight (wait with ``next_done`` before adding another)."""
        return len(self._tags) >= self.limit

    def add(self, work: Awaitable[T], tag: K) -> None:
        """Start ``work`` as a task now."""
        self._tags[asyncio.ensure_future(work)] = tag

    async def next_done(self) -> list[tuple[K, asyncio.Future[T]]]:
        """Wait until at least one task has finished and return the finished ones (with their tags), in
        the order they were added; raise ``Aborted`` if ``abort`` is set first."""
        waiting: set[asyncio.Future[Any]] = set(self._tags)
        if self._abort is not None:
            if self._aborted is None:
                self._aborted = asyncio.ensure_future(self._abort.wait())
            waiting.add(self._aborted)
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finished = [(tag, task) for task, tag in self._tags.items() if task in done]
        if not finished:
            raise Aborted
        for _, task in finished:
            del self._tags[task]
        return finished

    async def aclose(self) -> None:
        """Cancel the tasks still in flight and wait for them to end (their outcome is dropped)."""
        if self._aborted is not None:
            self._aborted.cancel()
            self._aborted = None
        tasks = list(self._tags)
        self._tags.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
