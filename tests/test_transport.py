"""The transport under the openai client feeds the shared rate limiter: 429s, x-ratelimit-* headers and
each response's real token usage (respx, simulated time)."""

from __future__ import annotations

from pathlib import Path

import httpx
import respx

from extractor import Article, Extractor, Settings
from extractor.llm import OpenAIProvider
from extractor.ratelimit import RateLimiter
from extractor.transport import RetryingTransport
from tests import wire

TEXT = "Leaders met in Paris.\n"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.retry_waits: list[float] = []  # the transport's waits between attempts, apart from the limiter's

    async def sleep(self, seconds: float) -> None:
        self.now += seconds

    async def retry_sleep(self, seconds: float) -> None:
        self.retry_waits.append(seconds)
        self.now += seconds


def extractor(tmp_path: Path, limiter: RateLimiter, clock: Clock, **kw: object) -> Extractor:
    settings = Settings(
        api_key="sk-x",
        base_url=wire.API,
        cache_dir=tmp_path,
        use_cache=False,
        **kw,  # type: ignore[arg-type]
    )
    return Extractor(settings, provider=OpenAIProvider(settings, limiter=limiter, sleep=clock.retry_sleep))


def answer() -> dict[str, object]:
    return wire.extraction(events=[wire.event("Leaders met in Paris.")])


@respx.mock
def test_a_429_and_ratelimit_headers_reach_the_limiter(tmp_path: Path) -> None:
    clock = Clock()
    limiter = RateLimiter(window_safe=True, clock=lambda: clock.now, sleep=clock.sleep)
    headers = {"x-ratelimit-limit-requests": "120", "x-ratelimit-limit-tokens": "90000"}
    respx.post(wire.CHAT).mock(
        side_effect=[
            httpx.Response(
                429, json={"error": {"message": "slow down"}}, headers={"retry-after": "3", **headers}
            ),
            httpx.Response(200, json=wire.tool_completion(answer()), headers=headers),
        ]
    )
    with extractor(tmp_path, limiter, clock) as ex:
        res = ex.extract(Article.from_text(TEXT, id="a"))
    assert res.status == "ok" and res.usage.http_calls == 2
    stats = limiter.stats()
    assert stats["rate_limited"] == 1 and stats["acquired"] == 2
    assert stats["limit_rpm"] == 120 and stats["limit_tpm"] == 90000  # learned from the server's headers
    # The retry waited exactly what Retry-After asked for. (Not checked on the clock: the limiter's own
    # pause after the 429 moves the same clock, so a retry that ignored Retry-After would pass that.)
    assert clock.retry_waits == [3.0]


def _simulated_seconds_for(tmp_path: Path, completion_tokens: int) -> float:
    clock = Clock()
    limiter = RateLimiter(tpm=60_000, window_safe=True, clock=lambda: clock.now, sleep=clock.sleep)
    with respx.mock:
        respx.post(wire.CHAT).mock(
            return_value=wire.ok(answer(), prompt_tokens=100, completion_tokens=completion_tokens)
        )
        with extractor(tmp_path, limiter, clock, max_tokens=4000) as ex:
            for i in range(12):
                assert ex.extract(Article.from_text(f"{TEXT}{i}", id=f"a{i}")).status == "ok"
    return clock.now


def test_the_token_bucket_is_charged_what_responses_really_used(tmp_path: Path) -> None:
    """Each request is first charged an estimate (prompt bytes / 4 + max_tokens / 4, more than the 2-s
    burst holds at 60,000/min), then corrected to the usage the response reports."""
    cheap = _simulated_seconds_for(tmp_path / "cheap", completion_tokens=40)  # 140 tokens each
    dear = _simulated_seconds_for(tmp_path / "dear", completion_tokens=3900)  # 4,000 tokens each
    # charged only the estimate, each of the 11 later requests would wait ~2 s for a full bucket
    assert cheap < 11 * 140 / 960 + 0.5, cheap
    # charged 4,000 each: 12 x 4,000 tokens at ~968/s (window-safe) after a ~1,935-token burst, ~48 s
    assert 42.0 < dear < 52.0, dear


async def test_the_servers_remaining_tokens_are_not_corrected_twice() -> None:
    """The server's x-ratelimit-remaining-tokens already counts this request: after syncing the bucket
    down to it, the usage correction must not move it again."""
    clock = Clock()
    limiter = RateLimiter(tpm=600_000, clock=lambda: clock.now, sleep=clock.sleep)
    body = wire.tool_completion(answer(), prompt_tokens=1500, completion_tokens=500)

    def reply(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body, headers={"x-ratelimit-remaining-tokens": "1000"})

    transport = RetryingTransport(httpx.MockTransport(reply), limiter)
    request = httpx.Request("POST", wire.CHAT, json={"messages": [], "max_tokens": 400})
    response = await transport.handle_async_request(request)
    assert response.status_code == 200
    assert limiter._tokens.level == 1000  # not 1000 minus (or plus) the estimate's error
