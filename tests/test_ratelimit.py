"""extractor.ratelimit: smooth RPM/TPM limits, FIFO, 429 pauses, AIMD, header learning — simulated time."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
from collections import Counter, deque
from collections.abc import Callable

import pytest

from extractor.ratelimit import RateLimiter, parse_duration

START = 1000.0


class FakeTime:
    """A clock that only moves when the limiter sleeps (only the head of its queue ever sleeps)."""

    def __init__(self) -> None:
        self.now = START
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def make(ft: FakeTime, rpm: float | None = None, tpm: float | None = None, **kw: float) -> RateLimiter:
    return RateLimiter(rpm, tpm, clock=ft.clock, sleep=ft.sleep, **kw)


async def demand(
    limiter: RateLimiter,
    until: float,
    *,
    workers: int = 8,
    tokens: int = 0,
    on_grant: Callable[[float], None] | None = None,
) -> list[float]:
    """Workers acquire back to back until simulated time ``until``; returns the grant times."""
    grants: list[float] = []

    async def worker() -> None:
        while True:
            granted = await limiter.acquire(tokens)
            if granted >= until:
                return
            grants.append(granted)
            if on_grant is not None:
                on_grant(granted)
            await asyncio.sleep(0)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return grants


def per_minute(times: list[float]) -> list[int]:
    counts = Counter(int((t - START) // 60) for t in times)
    return [counts[m] for m in range(max(counts) + 1)]


def max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


# -- parse_duration -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("0.5s", 0.5),
        ("120ms", 0.12),
        ("1m30.5s", 90.5),
        ("2h3m4s", 7384.0),
        ("1h", 3600.0),
        ("250us", 0.00025),
        ("17µs", 0.000017),
        ("500ns", 5e-7),
        ("1d", 86400.0),
        (" 20S ", 20.0),
        ("0s", 0.0),
        (".5s", 0.5),
        ("3", 3.0),
        ("2.25", 2.25),
        ("1m5ms", 60.005),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "1x", "-1s", "1.2.3s", "1m-3s", "nan", "inf", "1 m", "m1", "1s2"])
def test_parse_duration_rejects_malformed(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


# -- construction -------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -5, math.nan, math.inf])
def test_rejects_nonpositive_limits(bad: float) -> None:
    with pytest.raises(ValueError, match="rpm"):
        RateLimiter(rpm=bad)
    with pytest.raises(ValueError, match="tpm"):
        RateLimiter(tpm=bad)


# -- unlimited fast path ------------------------------------------------------------------------------


async def test_unlimited_never_sleeps_or_waits() -> None:
    ft = FakeTime()
    limiter = make(ft)
    grants = await asyncio.gather(*(limiter.acquire(tokens=50_000) for _ in range(2000)))
    assert grants == [START] * 2000
    assert ft.sleeps == []
    stats = limiter.stats()
    assert stats["acquired"] == 2000
    assert stats["waits"] == 0
    assert stats["effective_rpm"] is None
    assert stats["effective_tpm"] is None


async def test_default_clock_and_sleep_work_within_burst() -> None:
    limiter = RateLimiter(rpm=60_000, tpm=10_000_000)
    for _ in range(5):
        await limiter.acquire(100)
    assert limiter.stats()["waits"] == 0


# -- steady limits ------------------------------------------------------------------------------------


async def test_rpm_is_honoured_and_used_over_ten_minutes() -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=600)  # 10/s, burst capacity 20
    grants = await demand(limiter, START + 600)
    minutes = per_minute(grants)
    assert len(minutes) == 10
    assert all(m <= 600 + 20 + 1 for m in minutes)
    assert all(m >= 0.95 * 600 for m in minutes)
    assert max_in_window(grants, 60.0) <= 600 + 20 + 1
    # Smooth: after the initial burst, no second holds more than the refill rate.
    assert max_in_window([t for t in grants if t >= START + 5], 1.0) <= 10 + 1
    assert limiter.stats()["waits"] > 0


async def test_tpm_is_honoured_and_used_over_ten_minutes() -> None:
    ft = FakeTime()
    limiter = make(ft, tpm=60_000)  # 1000 tokens/s, burst capacity 2000
    grants = await demand(limiter, START + 600, tokens=700)
    tokens_per_minute = [m * 700 for m in per_minute(grants)]
    assert len(tokens_per_minute) == 10
    assert all(t <= 60_000 + 2000 + 700 for t in tokens_per_minute)
    assert all(t >= 0.95 * 60_000 for t in tokens_per_minute)


async def test_both_limits_the_tighter_one_binds() -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=600, tpm=30_000)  # tokens allow 30 req/min of 1000 tokens
    grants = await demand(limiter, START + 300, tokens=1000, workers=3)
    minutes = per_minute(grants)
    assert all(28 <= m <= 30 + 2 for m in minutes)


async def test_oversized_request_passes_and_is_charged_as_debt() -> None:
    ft = FakeTime()
    limiter = make(ft, tpm=600)  # 10 tokens/s, capacity 20
    first = await asyncio.wait_for(limiter.acquire(tokens=5000), timeout=5)
    assert first == START
    # The charge is capped at one minute's budget (600): 20 - 600 = -580, so 10 tokens need 59 s.
    second = await asyncio.wait_for(limiter.acquire(tokens=10), timeout=5)
    assert second - first == pytest.approx(59.0)


async def test_release_unused_and_reconcile() -> None:
    ft = FakeTime()
    limiter = make(ft, tpm=6000)  # 100 tokens/s, capacity 200
    await limiter.acquire(200)
    limiter.release_unused(150)
    assert await limiter.acquire(150) == START  # credited back: no wait
    limiter.reconcile(estimated=100, actual=300)  # 200 more used than charged
    assert await limiter.acquire(100) == pytest.approx(START + 3.0)
    limiter.reconcile(estimated=300, actual=100)
    assert await limiter.acquire(200) == pytest.approx(START + 3.0)


# -- fairness -----------------------------------------------------------------------------------------


async def test_waiters_are_served_in_arrival_order() -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=60)  # 1/s, capacity 2
    order: list[int] = []

    async def one(i: int) -> None:
        await limiter.acquire()
        order.append(i)

    tasks = [asyncio.create_task(one(i)) for i in range(12)]
    await asyncio.gather(*tasks)
    assert order == list(range(12))


async def test_small_late_request_does_not_overtake_a_big_waiter() -> None:
    ft = FakeTime()
    limiter = make(ft, tpm=600)  # 10 tokens/s, capacity 20
    await limiter.acquire(20)  # drain
    order: list[str] = []

    async def one(name: str, tokens: int) -> None:
        await limiter.acquire(tokens)
        order.append(name)

    big = asyncio.create_task(one("big", 20))
    await asyncio.sleep(0)
    small = asyncio.create_task(one("small", 1))
    await asyncio.gather(big, small)
    assert order == ["big", "small"]
    assert ft.now == pytest.approx(START + 2.1)


async def test_cancelled_waiter_does_not_block_the_queue() -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=60)
    await limiter.acquire()
    await limiter.acquire()  # bucket empty
    head = asyncio.create_task(limiter.acquire())
    queued = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    queued.cancel()
    assert await head == pytest.approx(START + 1.0)
    assert await limiter.acquire() == pytest.approx(START + 2.0)
    with pytest.raises(asyncio.CancelledError):
        await queued


# -- 429 handling -------------------------------------------------------------------------------------


async def test_429_pauses_every_caller_until_retry_time() -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=600)
    hit: list[float] = []

    def on_grant(t: float) -> None:
        if not hit and t >= START + 30:
            hit.append(t)
            limiter.on_rate_limited(7.5)

    grants = await demand(limiter, START + 120, on_grant=on_grant)
    (t429,) = hit
    assert not [t for t in grants if t429 < t < t429 + 7.5]
    assert min(t for t in grants if t > t429) == pytest.approx(t429 + 7.5)
    assert limiter.stats()["rate_limited"] == 1


async def test_429_pauses_an_unlimited_limiter_too() -> None:
    ft = FakeTime()
    limiter = make(ft)
    limiter.on_rate_limited(3.0)
    granted = await asyncio.gather(*(limiter.acquire() for _ in range(5)))
    assert all(t == pytest.approx(START + 3.0) for t in granted)
    assert limiter.stats()["waits"] == 5


@pytest.mark.parametrize(
    ("headers", "pause"),
    [
        ({}, 1.0),  # default backoff
        ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2.5s"}, 2.5),
        (
            {
                "x-ratelimit-remaining-requests": "3",
                "x-ratelimit-reset-requests": "9s",  # not exhausted: ignored
                "x-ratelimit-remaining-tokens": "0",
                "x-ratelimit-reset-tokens": "1m30s",
            },
            90.0,
        ),
        ({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1h"}, 120.0),  # max_pause_s
        (
            {"retry-after-ms": "1500", "x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "9s"},
            1.5,
        ),
        ({"Retry-After": "4"}, 4.0),
    ],
)
async def test_429_without_retry_after_uses_header_hints(headers: dict[str, str], pause: float) -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=6000, tpm=1_000_000)
    limiter.observe_headers(headers)
    limiter.on_rate_limited(None)
    assert await limiter.acquire() == pytest.approx(START + pause)


async def test_stale_header_hint_is_not_used() -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=6000)
    limiter.observe_headers({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "30s"})
    ft.now += 60
    limiter.on_rate_limited(None)
    assert await limiter.acquire() == pytest.approx(START + 61.0)


async def test_invalid_retry_after_falls_back_to_default() -> None:
    ft = FakeTime()
    limiter = make(ft, default_backoff_s=2.0)
    limiter.on_rate_limited(math.nan)
    assert await limiter.acquire() == pytest.approx(START + 2.0)


def test_aimd_cuts_then_recovers() -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=600, tpm=100_000)
    limiter.on_rate_limited(1.0)
    stats = limiter.stats()
    assert stats["effective_rpm"] == pytest.approx(480)
    assert stats["effective_tpm"] == pytest.approx(80_000)
    ft.now += 2
    limiter.on_rate_limited(1.0)  # within the cooldown: one storm is one cut
    assert limiter.stats()["effective_rpm"] == pytest.approx(480)
    assert limiter.stats()["rate_decreases"] == 1
    ft.now += 25
    assert limiter.stats()["effective_rpm"] == pytest.approx(480)  # still in the quiet period
    history = []
    for _ in range(60):
        ft.now += 5
        history.append(limiter.stats()["rate_factor"])
    assert history == sorted(history)
    assert history[0] < 1.0
    assert history[-1] == 1.0
    assert limiter.stats()["effective_rpm"] == pytest.approx(600)
    assert limiter.stats()["rate_limited"] == 2


def test_aimd_settles_below_the_rate_that_drew_the_429() -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=1000)
    limiter.on_rate_limited(0)
    ft.now += 10
    limiter.on_rate_limited(0)  # second cut: 0.64; the 429 came at 0.8
    assert limiter.stats()["rate_factor"] == pytest.approx(0.64)
    ft.now += 30 + 24  # quiet period, then 0.005/s up to the knee at 0.95 * 0.8
    assert limiter.stats()["rate_factor"] == pytest.approx(0.76)
    ft.now += 10  # above the knee: ten times slower
    assert limiter.stats()["rate_factor"] == pytest.approx(0.765)


def test_aimd_floor() -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=1000, min_factor=0.1)
    for _ in range(30):
        limiter.on_rate_limited(0)
        ft.now += 6
    assert limiter.stats()["rate_factor"] == pytest.approx(0.1)


def test_stale_429_does_not_cut_again() -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=600)
    sent_before = ft.now
    ft.now += 10
    limiter.on_rate_limited(0, sent_at=ft.now)
    ft.now += 10
    limiter.on_rate_limited(0, sent_at=sent_before)  # sent under the old rate
    assert limiter.stats()["rate_decreases"] == 1
    limiter.on_rate_limited(0, sent_at=ft.now)
    assert limiter.stats()["rate_decreases"] == 2
    assert limiter.stats()["rate_limited"] == 3


@pytest.mark.parametrize(
    ("client_rpm", "headers"), [(1200, False), (1200, True), (6000, False), (None, False)]
)
async def test_converges_below_a_stricter_server(client_rpm: int | None, headers: bool) -> None:
    """Against a server allowing 10 req/s (burst 10), 429s die out and throughput stays near the limit."""
    ft = FakeTime()
    limiter = make(ft, rpm=client_rpm)
    server = {"level": 10.0, "at": START}
    accepted: list[float] = []
    rejected: list[float] = []

    def on_grant(t: float) -> None:
        server["level"] = min(10.0, server["level"] + (t - server["at"]) * 10.0)
        server["at"] = t
        info = {"x-ratelimit-limit-requests": "600"} if headers else {}
        limiter.observe_headers(info)
        if server["level"] >= 1:
            server["level"] -= 1
            accepted.append(t)
        else:
            rejected.append(t)
            limiter.on_rate_limited(None)

    await demand(limiter, START + 600, on_grant=on_grant)
    ok = per_minute(accepted)
    late_429s = [t for t in rejected if t >= START + 120]
    assert len(late_429s) <= 16  # ~ one per minute or two, not a storm
    assert len(rejected) <= 0.02 * len(accepted)
    assert all(m >= 0.85 * 600 for m in ok[2:])
    if headers:
        assert limiter.stats()["limit_rpm"] == 600
        assert not late_429s


# -- header learning ----------------------------------------------------------------------------------


async def test_learns_limit_when_none_configured() -> None:
    ft = FakeTime()
    limiter = make(ft)
    limiter.observe_headers(
        {
            "X-RateLimit-Limit-Requests": "120",
            "X-RateLimit-Remaining-Requests": "119",
            "x-ratelimit-limit-tokens": "60000",
            "x-ratelimit-remaining-tokens": "59000",
            "x-ratelimit-reset-tokens": "1s",
        }
    )
    stats = limiter.stats()
    assert stats["limit_rpm"] == 120
    assert stats["limit_tpm"] == 60_000
    grants = await demand(limiter, START + 120, tokens=100)
    assert per_minute(grants) == [4 + 119, 120]  # burst of 4 (2 s at 2/s), then one every 0.5 s


@pytest.mark.parametrize(("configured", "server", "expected"), [(1000, 300, 300), (100, 300, 100)])
def test_tighter_of_configured_and_server_limit(configured: int, server: int, expected: int) -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=configured)
    limiter.observe_headers({"x-ratelimit-limit-requests": str(server)})
    assert limiter.stats()["limit_rpm"] == expected


async def test_remaining_syncs_the_bucket_down_not_up() -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=600, tpm=60_000)  # capacities: 20 requests, 2000 tokens
    limiter.observe_headers({"x-ratelimit-remaining-requests": "0"})
    assert await limiter.acquire() == pytest.approx(START + 0.1)
    limiter.observe_headers({"x-ratelimit-remaining-tokens": "500"})
    assert await limiter.acquire(1000) == pytest.approx(START + 0.6)
    limiter.observe_headers({"x-ratelimit-remaining-requests": "5000", "x-ratelimit-remaining-tokens": "9e9"})
    assert await limiter.acquire(1000) == pytest.approx(START + 1.6)  # not synced up


@pytest.mark.parametrize(
    "value", ["", "abc", "-5", "nan", "inf", "-inf", "1e999", "0x10", "12 requests", "None", "1m"]
)
async def test_malformed_header_values_are_ignored(value: str) -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=600)
    headers = {
        f"x-ratelimit-{kind}-{dim}": value
        for kind in ("limit", "remaining", "reset")
        for dim in ("requests", "tokens")
    }
    headers |= {"retry-after": value, "retry-after-ms": value}
    limiter.observe_headers(headers)
    limiter.on_rate_limited(None)
    stats = limiter.stats()
    assert stats["limit_rpm"] == 600
    assert stats["limit_tpm"] is None
    assert await limiter.acquire() == pytest.approx(START + 1.0)  # default backoff, bucket untouched


async def test_unrelated_headers_are_cheap_noops() -> None:
    ft = FakeTime()
    limiter = make(ft)
    limiter.observe_headers({"content-type": "application/json", "x-request-id": "abc"})
    assert limiter.stats()["limit_rpm"] is None
    assert await limiter.acquire() == START
    assert ft.sleeps == []


async def test_unlimited_429_infers_a_limit_then_probes_again() -> None:
    ft = FakeTime()
    limiter = make(ft)
    for _ in range(100):  # 10 requests/s for 10 s
        await limiter.acquire()
        ft.now += 0.1
    limiter.on_rate_limited(0)
    stats = limiter.stats()
    assert stats["limit_rpm"] == pytest.approx(600)
    assert stats["effective_rpm"] == pytest.approx(480)
    ft.now += 600  # long quiet: fully recovered
    await limiter.acquire()
    assert limiter.stats()["limit_rpm"] is None
    ft.sleeps.clear()
    await asyncio.gather(*(limiter.acquire() for _ in range(500)))
    assert ft.sleeps == []


async def test_too_few_grants_to_infer_a_limit() -> None:
    ft = FakeTime()
    limiter = make(ft)
    for _ in range(9):
        await limiter.acquire()
    limiter.on_rate_limited(0)
    assert limiter.stats()["limit_rpm"] is None
    assert limiter.stats()["rate_decreases"] == 0


async def test_server_limit_replaces_an_inferred_one() -> None:
    ft = FakeTime()
    limiter = make(ft)
    await asyncio.gather(*(limiter.acquire() for _ in range(30)))
    limiter.on_rate_limited(0)
    assert limiter.stats()["limit_rpm"] == pytest.approx(1800)  # 30 requests in (at least) 1 s
    limiter.observe_headers({"x-ratelimit-limit-requests": "3000"})
    assert limiter.stats()["limit_rpm"] == 3000


# -- window_safe (what the Extractor uses) --------------------------------------------------------------


async def test_window_safe_never_exceeds_a_sliding_60s_window() -> None:
    ft = FakeTime()
    plain = await demand(make(ft, rpm=600), until=START + 300)
    assert max_in_window(plain, 60.0) > 600  # a full bucket plus a minute of refill overruns the window
    ft = FakeTime()
    safe_limiter = RateLimiter(600, None, window_safe=True, clock=ft.clock, sleep=ft.sleep)
    safe = await demand(safe_limiter, until=START + 300)
    assert max_in_window(safe, 60.0) <= 600
    assert len(safe) >= 0.95 * 600 * 5  # still within ~3 % of the limit over five minutes


# -- short windows: a per-minute limit enforced over seconds (what the Extractor relies on) --------------


def paced(ft: FakeTime, rpm: float | None = None, tpm: float | None = None) -> RateLimiter:
    """The limiter the Extractor builds (window_safe), on simulated time."""
    return RateLimiter(rpm, tpm, window_safe=True, clock=ft.clock, sleep=ft.sleep)


@pytest.mark.parametrize("rpm", [60, 600, 1200, 6000])
async def test_window_safe_keeps_every_short_window_within_its_share(rpm: int) -> None:
    """600 RPM may be enforced as 10 per second: no 1-s, 6-s or 60-s window gets more than its share."""
    ft = FakeTime()
    grants = await demand(paced(ft, rpm), until=START + 130, workers=16)
    share = rpm / 60.0
    for window in (1.0, 6.0, 60.0):
        assert max_in_window(grants, window) <= window * share, window
    assert len(grants) >= 0.97 * share * 130  # the pacing margin costs ~2 %


async def test_window_safe_gaps_are_even() -> None:
    ft = FakeTime()
    grants = await demand(paced(ft, 600), until=START + 30, workers=16)
    gaps = [b - a for a, b in itertools.pairwise(grants)]
    assert gaps[0] >= 0.1 - 0.02  # at most 20 ms early: the bucket starts with one request + 20 ms
    assert min(gaps[1:]) >= 0.1  # then never two requests closer than 1/10 s at 600 RPM
    assert max(gaps) <= 0.1 / 0.97  # ... and no slack left either


async def test_window_safe_a_late_head_keeps_its_slot() -> None:
    """A caller that wakes up to 20 ms late (busy loop, loaded machine) costs no throughput; later is lost."""
    for late, expected in ((0.015, 0.0), (0.05, 0.03)):
        ft = FakeTime()
        limiter = paced(ft, 600)  # one request every 60.02 / 588 s
        spacing = 60.02 / 588
        await limiter.acquire()
        await limiter.acquire()
        second = ft.now
        ft.now += spacing + late  # the next caller arrives (or wakes) late
        await limiter.acquire()
        third = await limiter.acquire()
        # the fourth goes on the even schedule again, unless the lateness exceeded the 20-ms allowance
        assert third - second == pytest.approx(2 * spacing + expected, abs=1e-3), late


async def test_reserve_books_the_slots_acquire_would_grant() -> None:
    """Booked without sleeping (the Ray engine's shared budget): slot times match acquire's grant times,
    so every short window stays within its share, and a 429's pause pushes later bookings back."""
    ft = FakeTime()
    limiter = paced(ft, 600)
    booked: list[float] = []
    while len(booked) < 1300:  # batches of 8 booked at once, the clock moving on to the last slot
        booked += [ft.now + limiter.reserve() for _ in range(8)]
        ft.now = booked[-1]
    for window in (1.0, 6.0, 60.0):
        assert max_in_window(booked, window) <= window * 10, window
    assert booked[-1] - booked[0] == pytest.approx(1299 * 60.02 / 588, rel=5e-3)  # even 98 % pacing
    ft2 = FakeTime()
    acquired = await demand(paced(ft2, 600), until=START + 20, workers=8)
    assert [round(t, 6) for t in booked[: len(acquired)]] == [round(t, 6) for t in acquired]
    limiter.on_rate_limited(5.0)
    assert limiter.reserve() >= 5.0
    assert limiter.stats()["acquired"] == len(booked) + 1


@pytest.mark.parametrize(("rpm", "burst"), [(600, 1), (6000, 2), (60_000, 20)])
async def test_window_safe_burst_is_small(rpm: int, burst: int) -> None:
    """After a long idle spell a crowd of callers gets one request + 20 ms of the limit at once."""
    ft = FakeTime()
    limiter = paced(ft, rpm)
    ft.now += 3600
    grants = await asyncio.gather(*(limiter.acquire() for _ in range(50)))
    assert Counter(grants)[START + 3600] == burst
    later = sorted(grants)[burst:]
    assert min(b - a for a, b in itertools.pairwise(later)) >= 60.0 / rpm - 1e-9


async def test_window_safe_bucket_does_not_refill_into_a_burst_after_a_429_pause() -> None:
    ft = FakeTime()
    limiter = paced(ft, 600)
    hit: list[float] = []

    def on_grant(t: float) -> None:
        if not hit and t >= START + 20:
            hit.append(t)
            limiter.on_rate_limited(5.0)

    grants = await demand(limiter, START + 60, workers=16, on_grant=on_grant)
    after = [t for t in grants if hit[0] + 5.0 <= t < hit[0] + 30.0]  # before the rate recovers
    assert max_in_window(after, 1.0) <= 8  # the cut rate (0.8 of 10/s), no refilled burst on top


async def test_window_safe_paces_tokens_over_short_windows() -> None:
    ft = FakeTime()
    grants = await demand(paced(ft, tpm=60_000), until=START + 130, tokens=700, workers=16)  # 1,000/s
    for window in (1.0, 6.0, 60.0):
        # its share plus at most one request (a request bigger than the bucket passes, then is waited off)
        assert 700 * max_in_window(grants, window) <= window * 1000 + 700, window
    assert 700 * len(grants) >= 0.97 * 1000 * 130


class EventTime(FakeTime):
    """FakeTime whose sleeps also run callbacks scheduled with ``at`` (e.g. responses), at their time."""

    def __init__(self) -> None:
        super().__init__()
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()

    def at(self, when: float, callback: Callable[[], None]) -> None:
        heapq.heappush(self._events, (when, next(self._seq), callback))

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        end = self.now + seconds
        while self._events and self._events[0][0] <= end:
            when, _, callback = heapq.heappop(self._events)
            self.now = max(self.now, when)
            callback()
        self.now = end
        await asyncio.sleep(0)


async def test_window_safe_credits_for_overestimated_tokens_are_not_lost() -> None:
    """Requests charged 1,000 tokens that use 700: the credit, landing 1.5 s later at any point of the
    waiting head's sleep, is spent, not clipped by the small bucket; short windows hold."""
    ft = EventTime()
    limiter = paced(ft, tpm=60_000)  # 1,000 tokens/s

    def on_grant(t: float) -> None:
        ft.at(t + 1.5, lambda: limiter.reconcile(1000, 700))

    grants = await demand(limiter, START + 130, tokens=1000, workers=16, on_grant=on_grant)
    assert 700 * len(grants) >= 0.95 * 1000 * 130
    for window in (1.0, 6.0, 60.0):
        # its share plus one request's charge and a credit's worth
        assert 700 * max_in_window(grants, window) <= window * 1000 + 1000 + 300, window


@pytest.mark.parametrize(
    ("window", "jitter", "max_429", "min_ratio"),
    [(6.0, 0.05, 0, 0.97), (1.0, 0.0, 0, 0.97), (1.0, 0.05, 10, 0.85)],
)
async def test_window_safe_against_a_short_window_server(
    window: float, jitter: float, max_429: int, min_ratio: float
) -> None:
    """A server allowing 600/min as ``10 * window`` in any ``window`` s, requests reaching it up to
    ``jitter`` s after their grant: no 429 where the pacing margin covers the jitter; where it cannot
    (50 ms against 1-s windows), a rare 429 each time the AIMD factor climbs back, well under 1 %."""
    ft = FakeTime()
    limiter = paced(ft, 600)
    rng = random.Random(7)
    arrivals: deque[float] = deque()
    accepted: list[float] = []
    rejected: list[float] = []

    def on_grant(t: float) -> None:
        at = t + rng.uniform(0, jitter)
        while arrivals and arrivals[0] <= at - window:
            arrivals.popleft()
        if sum(1 for a in arrivals if a <= at) >= 10 * window:
            rejected.append(t)
            limiter.on_rate_limited(None)
        else:
            arrivals.append(at)
            accepted.append(t)

    await demand(limiter, START + 600, workers=16, on_grant=on_grant)
    assert len(rejected) <= max_429
    assert len(rejected) < 0.01 * len(accepted)
    assert len(accepted) >= min_ratio * 600 * 10


async def test_window_safe_one_429_a_minute_only_pauses_under_the_servers_stated_limit() -> None:
    ft = FakeTime()
    limiter = paced(ft, 600)
    limiter.observe_headers({"x-ratelimit-limit-requests": "600"})  # we pace at 98 % of what it allows
    first_sent = await limiter.acquire()
    ft.now += 1
    limiter.on_rate_limited(0.05, sent_at=first_sent)
    assert await limiter.acquire() == pytest.approx(START + 1.05)  # the pause is honoured
    limiter.on_rate_limited(0.05, sent_at=first_sent)  # in flight before the first 429: same bunch
    stats = limiter.stats()
    assert (stats["rate_limits_forgiven"], stats["rate_decreases"], stats["rate_factor"]) == (2, 0, 1.0)
    ft.now += 2
    limiter.on_rate_limited(0.05, sent_at=ft.now - 0.5)  # sent after the first 429: not a one-off
    stats = limiter.stats()
    assert (stats["rate_limits_forgiven"], stats["rate_decreases"]) == (2, 1)
    assert stats["rate_factor"] == pytest.approx(0.8)
    ft.now += 61
    limiter.on_rate_limited(0.05, sent_at=ft.now - 0.5)  # a minute later: one-off again
    assert limiter.stats()["rate_decreases"] == 1
    assert limiter.stats()["rate_limited"] == 4


@pytest.mark.parametrize(
    "headers",
    [
        {},  # the server states no limit: a 429 may mean ours is too high
        {"x-ratelimit-limit-tokens": "100000"},  # it states one, but not for the requests we pace
    ],
)
def test_window_safe_429_cuts_at_once_without_the_servers_stated_limit(headers: dict[str, str]) -> None:
    ft = FakeTime()
    limiter = paced(ft, 600)
    limiter.observe_headers(headers)
    limiter.on_rate_limited(0.05)
    assert limiter.stats()["rate_decreases"] == 1
    assert limiter.stats()["rate_limits_forgiven"] == 0


def test_plain_limiter_429_cuts_at_once_even_under_a_stated_limit() -> None:
    ft = FakeTime()
    limiter = make(ft, rpm=600)
    limiter.observe_headers({"x-ratelimit-limit-requests": "600"})
    limiter.on_rate_limited(0.05)
    assert limiter.stats()["rate_decreases"] == 1


async def test_window_safe_slow_first_connection_against_a_6s_window_costs_one_pause() -> None:
    """The first request reaches a 60-in-any-6-s server 0.15 s late (a TLS handshake, a cold client), so
    the 61st, paced 6.1 s after it, lands 5.95 s after it and draws a 429: it is retried after the pause
    and the run goes on at full pace, not at the 0.8 a rate cut would leave for the next half-minute."""
    ft = FakeTime()
    limiter = paced(ft, 600)
    arrivals: deque[float] = deque()
    accepted: list[float] = []
    rejected: list[float] = []

    def on_grant(t: float) -> None:
        at = t + (0.15 if not accepted and not rejected else 0.0)
        limiter.observe_headers({"x-ratelimit-limit-requests": "600"})
        while arrivals and arrivals[0] <= at - 6.0:
            arrivals.popleft()
        if len(arrivals) >= 60:
            rejected.append(t)
            limiter.on_rate_limited(arrivals[0] + 6.0 - at, sent_at=t)
        else:
            arrivals.append(at)
            accepted.append(t)

    await demand(limiter, START + 60, workers=16, on_grant=on_grant)
    assert len(rejected) == 1
    assert limiter.stats()["rate_decreases"] == 0
    assert len(accepted) >= 0.97 * 600
