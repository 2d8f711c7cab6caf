"""Client-side rate limiting for the LLM endpoint: smooth RPM/TPM buckets that learn from the server.

One ``RateLimiter`` is shared by every request of a run:

- requests/min and tokens/min are each a token bucket refilled continuously at ``limit / 60`` per second,
  holding at most ``burst_seconds`` of refill (at least 1), so traffic is smooth rather than bursty;
- ``window_safe`` (what the Extractor uses) also keeps every shorter window within its share, because
  providers enforce a per-minute limit over seconds too (600 RPM as 10 per second): it paces at 98 % of
  the limit from a bucket of one request (or 20 ms of tokens) plus 20 ms of refill, so 600 RPM goes out
  one request every 0.102 s and no 1-s, 6-s or 60-s window holds more than 10, 60 or 600. A caller that
  wakes up to 20 ms late keeps its slot; a longer stall (a GC pause, a loaded machine) is lost time, as
  catching it up would be a burst;
- callers are served strictly first come, first served (the head of the queue waits, the rest queue behind);
- a 429 pauses every caller until the retry time and cuts the effective rate by ``decrease`` (floored at
  ``min_factor``); after ``recovery_quiet_s`` without a 429 it climbs back additively — quickly to 95 % of
  the rate that last drew a 429, then ten times more slowly (AIMD), so repeated 429s settle just below the
  server's real limit. With ``window_safe``, while the server's own ``x-ratelimit-limit-*`` headers say
  it allows what the limiter paces at, a 429 means it counted a few requests bunched (a slow first
  connection, the network): the first one in a minute only pauses, a repeat cuts as above;
- OpenAI-style ``x-ratelimit-*`` headers adopt the server's limit (the lower of it and the configured one)
  and sync the buckets down when the server has less left than they believe;
- with no limit configured, learned or inferred, ``acquire`` returns without sleeping or locking.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import TypedDict

from extractor.durations import parse_duration

__all__ = ["RateLimitStats", "RateLimiter", "parse_duration", "rate_limit_headers"]

# A wait this short is treated as no wait (keeps float rounding from spinning the wait loop).
_EPSILON_S = 1e-6
# How long the reset/retry hint of the last response headers stays usable for a header-less 429.
_HINT_TTL_S = 5.0
# Above the knee (95 % of the rate that last drew a 429) recovery runs this much slower.
_KNEE = 0.95
_SLOW_RECOVERY = 0.1
_WINDOW_S = 60.0
# A header-less 429 on an unlimited limiter infers a limit only from at least this many recent grants.
_MIN_INFER_SAMPLES = 10
# Bucket size of a plain limiter, in seconds of refill.
_PLAIN_BURST_S = 2.0
# window_safe: pace this far below the limit, from this small a bucket: any W-second window then holds
# at most 1 + (0.02 + 0.98 W) * limit/60 requests, within the share of every W >= 1 s at 600 RPM, and 61
# requests take 6.1 s, so sending jitter up to 0.1 s still keeps 60 in any 6 s.
_SAFE_PACE = 0.98
_SAFE_BURST_S = 0.02
# window_safe, pacing under the server's stated limits: one 429 per this many seconds only pauses.
_FORGIVE_S = 60.0


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _duration(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = parse_duration(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``x-ratelimit-*`` and ``retry-after*`` headers of a response (names lowercased): what a
    limiter learns from."""
    return {
        key.lower(): value
        for key, value in headers.items()
        if key[:12].lower() == "x-ratelimit-" or key[:11].lower() == "retry-after"
    }


class RateLimitStats(TypedDict):
    """``RateLimiter.stats()``: counters since creation and the limits in force now (per minute)."""

    acquired: int
    waits: int  # acquisitions that queued or slept
    wait_seconds: float  # summed over callers
    max_wait_seconds: float
    rate_limited: int  # 429s reported
    rate_decreases: int  # multiplicative cuts they caused
    rate_limits_forgiven: int  # 429s that only paused (window_safe, under the server's stated limit)
    rate_factor: float  # AIMD multiplier in force, 0 < f <= 1
    limit_rpm: float | None  # configured / learned / inferred limit, before the factor
    limit_tpm: float | None
    effective_rpm: float | None  # limit * factor; None = unlimited
    effective_tpm: float | None


class _Bucket:
    """One dimension (requests or tokens): per-minute limits and the bucket's current level."""

    __slots__ = ("configured", "inferred", "level", "limit", "server", "updated")

    def __init__(self, configured: float | None, now: float) -> None:
        self.configured = configured
        self.server: float | None = None
        self.inferred: float | None = None
        self.limit: float | None = None
        self.level = 0.0
        self.updated = now


class RateLimiter:
    """Shared, adaptive requests/min + tokens/min limiter for one event loop.

    ``rpm``/``tpm`` of ``None`` mean no client-side limit (one may still be learned from headers).
    ``burst_seconds`` defaults to 2 s of refill, or 0.02 s with ``window_safe``, which also paces at 98 %
    of the limit, lets a late caller catch up by ``burst_seconds`` and stretches the refill over 60 s +
    the burst, so that neither a server's sliding 60-s window nor a shorter one over which it enforces
    its share is exceeded.
    ``clock``/``sleep`` are injectable so tests can run on simulated time.
    """

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        burst_seconds: float | None = None,
        window_safe: bool = False,
        decrease: float = 0.8,
        min_factor: float = 0.05,
        decrease_cooldown_s: float = 5.0,
        recovery_quiet_s: float = 30.0,
        recovery_per_s: float = 0.005,
        default_backoff_s: float = 1.0,
        max_pause_s: float = 120.0,
        max_sleep_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number or None, got {value!r}")
        if not 0 < decrease < 1 or not 0 < min_factor <= 1:
            raise ValueError("decrease must be in (0, 1) and min_factor in (0, 1]")
        if burst_seconds is None:
            burst_seconds = _SAFE_BURST_S if window_safe else _PLAIN_BURST_S
        if min(burst_seconds, recovery_per_s, max_sleep_s) <= 0:
            raise ValueError("burst_seconds, recovery_per_s and max_sleep_s must be positive")
        if min(decrease_cooldown_s, recovery_quiet_s, default_backoff_s, max_pause_s) < 0:
            raise ValueError("durations must not be negative")
        self._clock = clock
        self._sleep = sleep
        self._burst_s = burst_seconds
        # window_safe: refill over 60 s + the burst, so a full bucket plus a minute of refill stays within
        # the limit and a server's sliding 60-s window is never exceeded; pace 2 % lower for short windows.
        self._refill_window_s = _WINDOW_S + (burst_seconds if window_safe else 0.0)
        self._pace = _SAFE_PACE if window_safe else 1.0
        self._window_safe = window_safe
        self._decrease = decrease
        self._min_factor = min_factor
        self._cooldown_s = decrease_cooldown_s
        self._quiet_s = recovery_quiet_s
        self._recovery_per_s = recovery_per_s
        self._default_backoff_s = default_backoff_s
        self._max_pause_s = max_pause_s
        # window_safe: the head re-checks every burst_s, so a credit (release_unused) that lets it go
        # early is used before its small bucket overflows.
        self._max_sleep_s = min(max_sleep_s, burst_seconds) if window_safe else max_sleep_s

        now = clock()
        self._lock = asyncio.Lock()
        self._queued = 0
        self._not_before = -math.inf

        # AIMD state: factor(t) recovers from _f0 (set at _t0) towards 1; _ceiling drew the last 429.
        self._f0 = 1.0
        self._t0 = -math.inf
        self._ceiling = 1.0
        self._last_decrease = -math.inf

        # Grant times while requests are unlimited, to infer a limit from a header-less 429.
        self._recent: deque[float] = deque()
        self._recent_start = now

        self._requests = _Bucket(rpm, now)
        self._tokens = _Bucket(tpm, now)
        self._limited = False
        self._set_limit(self._requests, now)
        self._set_limit(self._tokens, now)

        self._hint: float | None = None
        self._hint_at = -math.inf

        self._acquired = 0
        self._waits = 0
        self._wait_s = 0.0
        self._max_wait_s = 0.0
        self._rate_limited = 0
        self._decreases = 0
        self._forgiven = 0
        self._forgiven_at = -math.inf

    # -- public API -------------------------------------------------------------------------------------

    async def acquire(self, tokens: int = 0) -> float:
        """Wait until one request needing ``tokens`` may be sent; return the grant time (on ``clock``).

        A need larger than the token bucket holds is capped at its capacity (so it always passes) and
        the rest is charged as debt that later callers wait off.
        """
        arrived = self._clock()
        if not self._limited and self._queued == 0 and arrived >= self._not_before:
            self._granted(arrived)
            return arrived
        self._queued += 1
        contended = self._lock.locked() or self._queued > 1
        slept = False
        now = arrived
        try:
            async with self._lock:
                while True:
                    now = self._clock()
                    wait = self._wait_time(now, tokens)
                    if wait <= _EPSILON_S:
                        break
                    slept = True
                    await self._sleep(min(wait, self._max_sleep_s))
                self._take(tokens)
        finally:
            self._queued -= 1
        self._granted(now)
        if contended or slept:
            self._count_wait(max(0.0, now - arrived))
        return now

    def reserve(self, tokens: int = 0) -> float:
        """Book one request needing ``tokens`` without sleeping: the seconds from now until it may be sent
        (0: now). The buckets are charged at once, so the next booking queues behind this one exactly as
        an ``acquire`` that slept the returned time would. For a caller that sends elsewhere (a Ray worker
        asking one shared limiter); use either ``reserve`` or ``acquire`` on one limiter, not both.
        """
        now = self._clock()
        wait = max(0.0, self._wait_time(now, tokens))
        self._take(tokens)
        self._granted(now + wait)
        if wait > _EPSILON_S:
            self._count_wait(wait)
        return wait

    def _count_wait(self, waited: float) -> None:
        self._waits += 1
        self._wait_s += waited
        self._max_wait_s = max(self._max_wait_s, waited)

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        """Learn from a response's ``x-ratelimit-*`` / ``retry-after*`` headers; malformed values are ignored.

        Call it for every response, 429s included (before ``on_rate_limited``).
        """
        values = rate_limit_headers(headers)
        if not values:
            return
        now = self._clock()
        self._refill_all(now)
        hints: list[float] = []
        for bucket, dim in ((self._requests, "requests"), (self._tokens, "tokens")):
            limit = _number(values.get(f"x-ratelimit-limit-{dim}"))
            if limit is not None and limit > 0 and limit != bucket.server:
                bucket.server = limit
                bucket.inferred = None
                self._set_limit(bucket, now)
            remaining = _number(values.get(f"x-ratelimit-remaining-{dim}"))
            if remaining is not None and bucket.limit is not None:
                bucket.level = min(bucket.level, remaining)
            if remaining == 0:
                reset = _duration(values.get(f"x-ratelimit-reset-{dim}"))
                if reset is not None:
                    hints.append(reset)
        retry_ms = _number(values.get("retry-after-ms"))
        retry_s = _number(values.get("retry-after"))
        if retry_ms is not None:
            hints = [retry_ms / 1000.0]
        elif retry_s is not None:
            hints = [retry_s]
        self._hint = max(hints) if hints else None
        self._hint_at = now

    def on_rate_limited(self, retry_after_s: float | None = None, *, sent_at: float | None = None) -> None:
        """Record a 429: pause every caller until now + ``retry_after_s`` and cut the effective rate.

        Without ``retry_after_s`` the pause comes from the last headers (``retry-after-ms``, or the reset
        time of an exhausted ``x-ratelimit-*`` dimension) or is ``default_backoff_s``. One cut per
        ``decrease_cooldown_s``; pass ``sent_at`` (what ``acquire`` returned) to also ignore 429s for
        requests sent before the last cut. With ``window_safe``, while every limit in force is one the
        server stated in its headers, the first 429 in a minute (and those of requests sent before it)
        only pauses; a 429 for a request sent after it cuts.
        """
        now = self._clock()
        self._rate_limited += 1
        delay = retry_after_s
        if delay is None or not (math.isfinite(delay) and delay >= 0):
            fresh = self._hint is not None and now - self._hint_at <= _HINT_TTL_S
            delay = self._hint if fresh and self._hint is not None else self._default_backoff_s
        self._not_before = max(self._not_before, now + min(delay, self._max_pause_s))
        if sent_at is not None and sent_at < self._last_decrease:
            return
        if self._forgive(now, sent_at):
            return
        self._refill_all(now)
        factor = self._factor(now)
        if now - self._last_decrease < self._cooldown_s:
            self._f0, self._t0 = factor, now  # a 429 restarts the quiet period
            return
        if not self._limited:
            # Nothing to scale: infer the request rate that drew this 429 from recent grants.
            observed = self._observed_rpm(now)
            if observed is None:
                self._f0, self._t0 = factor, now
                return
            self._requests.inferred = observed / factor
            self._set_limit(self._requests, now)
        self._ceiling = factor
        self._f0 = max(self._min_factor, factor * self._decrease)
        self._t0 = now
        self._last_decrease = now
        self._decreases += 1

    def _forgive(self, now: float, sent_at: float | None) -> bool:
        """Whether a 429 only pauses: window_safe pacing under limits the server itself stated."""
        dims = [b for b in (self._requests, self._tokens) if b.limit is not None]
        if not self._window_safe or not dims or any(b.server is None for b in dims):
            return False
        if now - self._forgiven_at >= _FORGIVE_S:
            self._forgiven_at = now
        elif sent_at is None or sent_at >= self._forgiven_at:
            return False  # a repeat: the bunching is not a one-off
        self._forgiven += 1
        return True

    def release_unused(self, tokens: int) -> None:
        """Give back tokens charged by ``acquire`` but not used (e.g. estimate minus actual usage).

        With ``window_safe`` the credit may lift the bucket above its capacity (by at most this one
        credit), so that the small bucket does not clip it away before the next caller can use it."""
        if tokens > 0 and self._tokens.limit is not None:
            now = self._clock()
            self._refill_all(now)
            capacity = self._capacity(self._tokens, self._tokens.limit, self._factor(now))
            if self._window_safe:
                self._tokens.level = min(self._tokens.level, capacity) + tokens
            else:
                self._tokens.level = min(capacity, self._tokens.level + tokens)

    def reconcile(self, estimated: int, actual: int) -> None:
        """Correct the token charge of a request: credit an overestimate, charge an underestimate."""
        if actual <= estimated:
            self.release_unused(estimated - actual)
        elif self._tokens.limit is not None:
            self._refill_all(self._clock())
            self._tokens.level -= min(actual - estimated, self._tokens.limit)

    def stats(self) -> RateLimitStats:
        """Counters and the current effective limits, for the run summary."""
        factor = self._factor(self._clock())
        rpm, tpm = self._requests.limit, self._tokens.limit
        return RateLimitStats(
            acquired=self._acquired,
            waits=self._waits,
            wait_seconds=self._wait_s,
            max_wait_seconds=self._max_wait_s,
            rate_limited=self._rate_limited,
            rate_decreases=self._decreases,
            rate_limits_forgiven=self._forgiven,
            rate_factor=factor,
            limit_rpm=rpm,
            limit_tpm=tpm,
            effective_rpm=None if rpm is None else rpm * factor,
            effective_tpm=None if tpm is None else tpm * factor,
        )

    # -- internals --------------------------------------------------------------------------------------

    def _factor(self, now: float) -> float:
        """The AIMD multiplier on every limit at ``now``."""
        if self._f0 >= 1.0:
            return 1.0
        elapsed = now - self._t0 - self._quiet_s
        if elapsed <= 0:
            return self._f0
        knee = max(self._f0, min(1.0, self._ceiling * _KNEE))
        factor = self._f0 + elapsed * self._recovery_per_s
        if factor <= knee:
            return factor
        to_knee = (knee - self._f0) / self._recovery_per_s
        return min(1.0, knee + (elapsed - to_knee) * self._recovery_per_s * _SLOW_RECOVERY)

    def _rate(self, limit: float, factor: float) -> float:
        """Refill per second of a per-minute ``limit`` at the current rate factor."""
        return limit * factor * self._pace / self._refill_window_s

    def _burst(self, limit: float, factor: float) -> float:
        """The most a waiting head needs before it may go (a bigger need passes then, as debt)."""
        return max(1.0, self._rate(limit, factor) * self._burst_s)

    def _capacity(self, bucket: _Bucket, limit: float, factor: float) -> float:
        burst = self._burst(limit, factor)
        if not self._window_safe:
            return burst
        # One request (or the token burst) plus burst_s of refill on top, so a head that wakes up to
        # burst_s late (a busy event loop, a loaded machine) keeps its slot: the next one goes early by
        # as much, never earlier than burst_s ahead of even pacing.
        base = 1.0 if bucket is self._requests else burst
        return base + self._rate(limit, factor) * self._burst_s

    def _refill_all(self, now: float) -> None:
        factor = self._factor(now)
        for bucket in (self._requests, self._tokens):
            if bucket.limit is not None and now > bucket.updated:
                refill = (now - bucket.updated) * self._rate(bucket.limit, factor)
                capacity = self._capacity(bucket, bucket.limit, factor)
                if bucket.level < capacity:  # a credit above the capacity stays until it is spent
                    bucket.level = min(capacity, bucket.level + refill)
            bucket.updated = max(bucket.updated, now)

    def _set_limit(self, bucket: _Bucket, now: float) -> None:
        """Recompute ``bucket.limit`` after one of its sources changed (callers refill first)."""
        sources = [v for v in (bucket.configured, bucket.server, bucket.inferred) if v is not None]
        old, bucket.limit = bucket.limit, (min(sources) if sources else None)
        if bucket.limit is None:
            bucket.level = 0.0
        else:
            capacity = self._capacity(bucket, bucket.limit, self._factor(now))
            bucket.level = capacity if old is None else min(bucket.level, capacity)
        bucket.updated = now
        self._limited = self._requests.limit is not None or self._tokens.limit is not None
        if bucket is self._requests and bucket.limit is None and old is not None:
            self._recent.clear()
            self._recent_start = now

    def _wait_time(self, now: float, tokens: int) -> float:
        """Seconds the head of the queue must still wait (<= 0: it may go now)."""
        if self._requests.inferred is not None and self._factor(now) >= 1.0:
            # Fully recovered: drop the guess and probe the server's real limit again.
            self._refill_all(now)
            self._requests.inferred = None
            self._set_limit(self._requests, now)
        wait = self._not_before - now
        if not self._limited:
            return wait
        self._refill_all(now)
        factor = self._factor(now)
        for bucket, need in ((self._requests, 1.0), (self._tokens, float(tokens))):
            if bucket.limit is None or need <= 0:
                continue
            need = min(need, self._burst(bucket.limit, factor))
            if bucket.level < need:
                wait = max(wait, (need - bucket.level) / self._rate(bucket.limit, factor))
        return wait

    def _take(self, tokens: int) -> None:
        if self._requests.limit is not None:
            self._requests.level -= 1.0
        if self._tokens.limit is not None and tokens > 0:
            self._tokens.level -= min(float(tokens), self._tokens.limit)

    def _granted(self, now: float) -> None:
        self._acquired += 1
        if self._requests.limit is None:
            self._recent.append(now)
            while self._recent[0] < now - _WINDOW_S:
                self._recent.popleft()

    def _observed_rpm(self, now: float) -> float | None:
        """Requests per minute granted over the last minute (or since tracking began); None if too few."""
        while self._recent and self._recent[0] < now - _WINDOW_S:
            self._recent.popleft()
        if len(self._recent) < _MIN_INFER_SAMPLES:
            return None
        span = min(_WINDOW_S, max(1.0, now - self._recent_start))
        return len(self._recent) * 60.0 / span
