"""HTTP transport under the openai client: rate limiting, transport retries and per-article call counts.

Every request to the model endpoint goes through ``RetryingTransport``, an ``httpx`` transport that
wraps the real one (or the replay/recording transports of extractor.replay):

    openai.AsyncOpenAI -> httpx.AsyncClient -> RetryingTransport -> [Replay | Recording] -> network

- waits for the shared ``RateLimiter`` before each attempt (charging an estimate of the tokens, corrected
  to the usage the response reports) and feeds it every response's headers;
- retries 408/409/429/5xx responses, timeouts and connection errors with tenacity: ``retry-after-ms`` /
  ``Retry-After`` when the server sends one, otherwise exponential backoff with full jitter; bounded by
  attempts and by total time (a retry whose wait would end past ``max_wait_s`` is not made). After the
  last attempt the last response (or error) goes up unchanged.
- counts HTTP calls into the ``CallStats`` of the current article (a context variable).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    wait_random_exponential,
)

from extractor.models import Usage
from extractor.ratelimit import RateLimiter

__all__ = ["RETRY_STATUSES", "CallStats", "RetryingTransport", "parse_retry_after", "track_calls"]

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


@dataclass
class CallStats:
    """HTTP calls made on behalf of one article (transport retries included)."""

    usage: Usage = field(default_factory=Usage)
    retries: int = 0
    waits: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)


_CALLS: contextvars.ContextVar[CallStats | None] = contextvars.ContextVar("extractor_calls", default=None)


@contextlib.contextmanager
def track_calls() -> Iterator[CallStats]:
    """Count the HTTP calls made inside the block (in this task and tasks it starts)."""
    stats = CallStats()
    token = _CALLS.set(stats)
    try:
        yield stats
    finally:
        _CALLS.reset(token)


def parse_retry_after(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date), else None."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        with contextlib.suppress(ValueError):
            return max(0.0, float(raw_ms) / 1000.0)
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class _RetryableResponse(Exception):
    def __init__(self, response: httpx.Response, retry_after: float | None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = retry_after


_RETRY_EXCEPTIONS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


def _estimate_tokens(body: bytes) -> int:
    try:
        payload = json.loads(body or b"{}")
    except ValueError:
        return len(body) // 4
    completion = payload.get("max_tokens") or payload.get("max_completion_tokens") or 0
    # ~4 bytes per token for the prompt; a completion rarely uses its whole budget.
    return len(body) // 4 + int(completion) // 4


def _usage(body: bytes) -> tuple[int, int]:
    """(prompt, completion) tokens a response reports; (0, 0) when it reports none."""
    try:
        usage = json.loads(body).get("usage") or {}
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (ValueError, AttributeError, TypeError):
        return 0, 0


class RetryingTransport(httpx.AsyncBaseTransport):
    """Rate-limited, retrying wrapper around another async transport."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        limiter: RateLimiter | None = None,
        *,
        attempts: int = 6,
        max_wait_s: float = 300.0,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.inner = inner
        self.sleep = sleep
        self.limiter = limiter
        self.attempts = attempts
        self.max_wait_s = max_wait_s
        self._backoff = wait_random_exponential(multiplier=backoff_base_s, max=backoff_max_s)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableResponse) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_wait_s)
        return float(self._backoff(state))

    def _stop(self, state: RetryCallState) -> bool:
        # idle_for counts the waits already slept, so the bound holds with an injected (fake) sleep too.
        elapsed = max(state.seconds_since_start or 0.0, state.idle_for)
        return state.attempt_number >= self.attempts or elapsed + state.upcoming_sleep > self.max_wait_s

    async def _send_once(self, request: httpx.Request, tokens: int) -> httpx.Response:
        stats = _CALLS.get()
        sent_at = await self.limiter.acquire(tokens) if self.limiter is not None else None
        if stats is not None:
            stats.usage.http_calls += 1
        try:
            response = await self.inner.handle_async_request(request)
        except _RETRY_EXCEPTIONS as exc:
            if stats is not None:
                stats.errors[type(exc).__name__] = stats.errors.get(type(exc).__name__, 0) + 1
            raise
        if stats is not None:
            stats.statuses[response.status_code] = stats.statuses.get(response.status_code, 0) + 1
        if response.status_code == 200:
            prompt, completion = _usage(await response.aread())
            if stats is not None:
                stats.usage.prompt_tokens += prompt
                stats.usage.completion_tokens += completion
            if self.limiter is not None and prompt + completion > 0:
                # Correct the estimate first: a server's remaining-tokens header already counts this
                # request, so syncing to it afterwards must not be corrected again.
                self.limiter.reconcile(tokens, prompt + completion)
        if self.limiter is not None:
            self.limiter.observe_headers({k.lower(): v for k, v in response.headers.items()})
        if response.status_code in RETRY_STATUSES:
            await response.aread()
            retry_after = parse_retry_after(response.headers)
            if response.status_code == 429 and self.limiter is not None:
                self.limiter.on_rate_limited(retry_after, sent_at=sent_at)
            raise _RetryableResponse(response, retry_after)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        tokens = _estimate_tokens(body)
        stats = _CALLS.get()

        def note_wait(state: RetryCallState) -> None:
            if stats is not None and state.next_action is not None:
                stats.waits.append(state.next_action.sleep)

        retrying = AsyncRetrying(
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception_type((_RetryableResponse, *_RETRY_EXCEPTIONS)),
            before_sleep=note_wait,
            sleep=self.sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    if attempt.retry_state.attempt_number > 1 and stats is not None:
                        stats.retries += 1
                    return await self._send_once(request, tokens)
        except _RetryableResponse as final:
            return final.response
        raise AssertionError("unreachable: tenacity either returns or reraises")  # pragma: no cover

    async def aclose(self) -> None:
        await self.inner.aclose()
