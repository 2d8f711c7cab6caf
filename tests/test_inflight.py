"""The one in-flight loop: at most N tasks at once, finished ones handed back with their tags, an abort
that ends the wait, and cancellation of what is left."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from extractor.inflight import Aborted, InFlight
from tests import wire


def test_never_more_than_the_limit_in_flight_and_every_result_comes_back_with_its_tag() -> None:
    running: list[int] = []
    peak = 0

    async def work(n: int) -> int:
        nonlocal peak
        running.append(n)
        peak = max(peak, len(running))
        await asyncio.sleep(0.001 * (n % 3))
        running.remove(n)
        return n * n

    async def main() -> dict[str, int]:
        flight = InFlight[str, int](3)
        got: dict[str, int] = {}
        try:
            for n in range(10):
                flight.add(work(n), f"t{n}")
                assert len(flight) <= 3
                while flight.full:
                    got.update((tag, task.result()) for tag, task in await flight.next_done())
            while flight:
                got.update((tag, task.result()) for tag, task in await flight.next_done())
        finally:
            await flight.aclose()
        return got

    assert asyncio.run(main()) == {f"t{n}": n * n for n in range(10)}
    assert peak == 3


def test_abort_ends_the_wait_and_aclose_cancels_the_rest() -> None:
    cancelled: list[str] = []

    async def forever(tag: str) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(tag)
            raise

    async def main() -> None:
        abort = asyncio.Event()
        flight = InFlight[str, None](2, abort)
        flight.add(forever("a"), "a")
        flight.add(forever("b"), "b")
        asyncio.get_running_loop().call_later(0.01, abort.set)
        with pytest.raises(Aborted):
            await flight.next_done()
        assert len(flight) == 2
        await flight.aclose()
        assert len(flight) == 0

    asyncio.run(main())
    assert sorted(cancelled) == ["a", "b"]


def test_a_finished_task_is_handed_back_even_when_abort_is_set() -> None:
    async def main() -> list[str]:
        abort = asyncio.Event()
        abort.set()
        flight = InFlight[str, int](1, abort)
        flight.add(asyncio.sleep(0, 7), "done")
        await asyncio.sleep(0.001)
        finished = await flight.next_done()
        await flight.aclose()
        return [tag for tag, _ in finished]

    assert asyncio.run(main()) == ["done"]


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="limit must be positive"):
        InFlight[str, int](0)


def test_aextract_many_cancels_the_articles_in_flight_when_the_consumer_stops_early(tmp_path: Path) -> None:
    from extractor.config import Settings
    from extractor.models import Article
    from extractor.pipeline import Extractor
    from tests.conftest import FakeModel

    class Slow(FakeModel):
        def __init__(self) -> None:
            super().__init__()
            self.started: list[str] = []
            self.cancelled: list[str] = []

        async def complete(self, messages: Any, *, key: str, article_id: str, check: Any) -> Any:
            self.started.append(article_id)
            try:
                if article_id != "a0":
                    await asyncio.Event().wait()  # never answers: only the first article finishes
                self.enqueue(wire.extraction())
                return await super().complete(messages, key=key, article_id=article_id, check=check)
            except asyncio.CancelledError:
                self.cancelled.append(article_id)
                raise

    fake = Slow()
    articles = [Article.from_text(f"Text {i}.", id=f"a{i}") for i in range(6)]

    async def first() -> tuple[str, list[str]]:
        ex = Extractor(Settings(use_cache=False, cache_dir=tmp_path), provider=fake)
        stream = ex.aextract_many(articles, concurrency=3)
        result = await anext(stream)
        await stream.aclose()
        return result.article_id, sorted(fake.cancelled)  # before asyncio.run cancels any leftover

    assert asyncio.run(first()) == ("a0", ["a1", "a2"])
    assert fake.started == ["a0", "a1", "a2"]  # three in flight, the rest never started
