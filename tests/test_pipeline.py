"""The extraction pipeline end to end at the HTTP level (respx): retries, re-asks, grounding, cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from extractor import Article, Extractor, Settings
from extractor.llm import OpenAIProvider
from extractor.prompts import load_prompts
from extractor.ratelimit import RateLimiter
from extractor.transport import parse_retry_after
from tests import wire

ARTICLE = (
    "Italian Prime Minister Giorgia Meloni said that her country does not plan to send troops.\n\n"
    "“Italy’s position is unchanged,” the statement reads. Meloni met leaders in Paris on January 6.\n"
)
QUOTE = "Italy’s position is unchanged,"
EVIDENCE = "Meloni met leaders in Paris on January 6."
SECRET = "sk-test-SECRET-0123456789abcdefghij"


class Sleeps:
    """Simulated time: ``calls`` records the transport's retry waits; the limiter's waits only advance
    ``now`` (a 429 pauses the shared limiter too, which would otherwise sleep for real)."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.now = 0.0

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.now += seconds

    async def limiter_sleep(self, seconds: float) -> None:
        self.now += seconds


def make(tmp_path: Path, **overrides: Any) -> tuple[Extractor, Sleeps]:
    settings = Settings(
        api_key=SECRET,
        base_url=wire.API,
        model="gpt-test",
        cache_dir=tmp_path / "cache",
        **overrides,
    )
    sleeps = Sleeps()
    limiter = RateLimiter(window_safe=True, clock=lambda: sleeps.now, sleep=sleeps.limiter_sleep)
    provider = OpenAIProvider(settings, sleep=sleeps, limiter=limiter)
    return Extractor(settings, provider=provider), sleeps


def good() -> dict[str, Any]:
    return wire.extraction(
        quotes=[(QUOTE, "the statement")],
        events=[wire.event(EVIDENCE)],
        stances=[wire.stance("her country does not plan to send troops")],
    )


@pytest.fixture
def article() -> Article:
    return Article.from_text(ARTICLE, id="a1")


@respx.mock
def test_happy_path(tmp_path: Path, article: Article) -> None:
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(good()))
    ex, _ = make(tmp_path)
    res = ex.extract(article)
    assert res.status == "ok", res.error
    assert [q.text for q in res.quotes] == [QUOTE]
    q = res.quotes[0]
    assert q.span.status == "exact"
    assert ARTICLE[q.span.start : q.span.end] == QUOTE  # type: ignore[misc]
    assert res.events[0].span.status == "exact"
    assert res.usage.prompt_tokens == 100 and res.usage.completion_tokens == 40 and res.usage.http_calls == 1
    assert res.cache_hit is False and res.model == "gpt-test"
    assert res.prompt_version == load_prompts().version
    sent = json.loads(route.calls[0].request.content)
    assert sent["temperature"] == 0 and sent["model"] == "gpt-test"
    assert sent["tools"][0]["function"]["name"] == "ArticleExtraction"
    user = sent["messages"][1]["content"]
    assert "<article_text>\n" + ARTICLE.rstrip("\n") in user
    assert "Publication date: unknown" in user
    ex.close()


@respx.mock
def test_429_then_success_honours_retry_after(tmp_path: Path, article: Article) -> None:
    respx.post(wire.CHAT).mock(
        side_effect=[
            wire.error(429, {"retry-after": "7"}),
            wire.error(429, {"retry-after-ms": "250"}),
            wire.ok(good()),
        ]
    )
    ex, sleeps = make(tmp_path)
    res = ex.extract(article)
    assert res.status == "ok"
    assert sleeps.calls == [7.0, 0.25]
    assert res.usage.http_calls == 3
    ex.close()


@respx.mock
def test_5xx_until_retries_run_out_gives_error_result(tmp_path: Path, article: Article) -> None:
    route = respx.post(wire.CHAT).mock(return_value=wire.error(503))
    ex, sleeps = make(tmp_path, transport_attempts=4)
    res = ex.extract(article)
    assert res.status == "error"
    assert res.error is not None and res.error.type == "TransportError"
    assert "HTTP 503" in res.error.message
    assert route.call_count == 4
    assert len(sleeps.calls) == 3 and all(0 <= s <= 30 for s in sleeps.calls)
    ex.close()


@respx.mock
def test_backoff_without_retry_after_is_jittered_and_grows(tmp_path: Path, article: Article) -> None:
    respx.post(wire.CHAT).mock(return_value=wire.error(503))
    ex, sleeps = make(tmp_path, transport_attempts=6)
    runs = []
    for n in range(12):
        sleeps.calls.clear()
        ex.extract(Article.from_text(ARTICLE + f"run {n}", id=f"a{n}"))
        assert len(sleeps.calls) == 5
        runs.append(list(sleeps.calls))
    ex.close()
    # full jitter: uniform in [0, 0.5 * 2**n] (capped at 30 s), so the draws differ and the bound grows
    assert len({tuple(r) for r in runs}) == len(runs)
    for run in runs:
        assert all(0 <= w <= min(30.0, 0.5 * 2 ** (i + 1)) for i, w in enumerate(run)), run
    assert max(r[4] for r in runs) > max(r[0] for r in runs)


@respx.mock
def test_retries_stop_before_a_wait_would_pass_the_total_time_bound(tmp_path: Path, article: Article) -> None:
    route = respx.post(wire.CHAT).mock(return_value=wire.error(429, {"retry-after": "250"}))
    ex, sleeps = make(tmp_path, transport_attempts=6, transport_max_wait_s=300)
    res = ex.extract(article)
    ex.close()
    assert route.call_count == 2 and sleeps.calls == [250.0]  # a second 250-s wait would end at 500 s
    assert res.status == "error" and res.error is not None and "HTTP 429" in res.error.message


def test_retry_after_as_seconds_milliseconds_or_http_date() -> None:
    assert parse_retry_after(httpx.Headers({"retry-after": "7"})) == 7.0
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    date = "Wed, 02 Dec 2026 12:00:30 GMT"
    now = 1796212800.0  # 2026-12-02 12:00:00 UTC
    assert parse_retry_after(httpx.Headers({"retry-after": date}), now=now) == 30.0
    assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
    assert parse_retry_after(httpx.Headers({})) is None


@respx.mock
def test_timeouts_and_connection_errors_are_retried(tmp_path: Path, article: Article) -> None:
    respx.post(wire.CHAT).mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), wire.ok(good())]
    )
    ex, sleeps = make(tmp_path)
    res = ex.extract(article)
    assert res.status == "ok" and res.usage.http_calls == 3 and len(sleeps.calls) == 2
    ex.close()


@respx.mock
def test_malformed_json_is_reasked(tmp_path: Path, article: Article) -> None:
    route = respx.post(wire.CHAT).mock(side_effect=[wire.ok('{"events": [ oops'), wire.ok(good())])
    ex, _ = make(tmp_path)
    res = ex.extract(article)
    assert res.status == "ok" and len(res.quotes) == 1
    assert res.usage.prompt_tokens == 200 and res.usage.http_calls == 2
    reask = json.loads(route.calls[1].request.content)["messages"]
    assert len(reask) == 4 and "Validation Error" in reask[-1]["content"]
    ex.close()


@respx.mock
def test_schema_invalid_output_is_reasked_then_fails_clearly(tmp_path: Path, article: Article) -> None:
    bad = {"events": [], "quotes": [{"text": "x"}]}  # no speaker, no stances
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(bad))
    ex, _ = make(tmp_path, reasks=1)
    res = ex.extract(article)
    assert route.call_count == 2
    assert res.status == "error" and res.error is not None and res.error.type == "ParseError"
    assert "2 attempt(s)" in res.error.message
    assert res.usage.prompt_tokens == 200
    ex.close()


@respx.mock
def test_schema_invalid_output_is_reasked_with_the_error_then_ok(tmp_path: Path, article: Article) -> None:
    bad = good()
    bad["quotes"] = [{"speaker": "the statement", "cue": None}]  # no text: no repair can help
    route = respx.post(wire.CHAT).mock(side_effect=[wire.ok(bad), wire.ok(good())])
    ex, _ = make(tmp_path)
    res = ex.extract(article)
    ex.close()
    assert res.status == "ok" and [q.text for q in res.quotes] == [QUOTE] and res.rejected == []
    reask = json.loads(route.calls[1].request.content)["messages"][-1]["content"]
    assert "INVALID ITEMS" in reask and "- quotes.0: text: Field required" in reask
    assert res.usage.http_calls == 2 and res.usage.prompt_tokens == 200


@respx.mock
def test_schema_errors_in_a_reask_are_capped(tmp_path: Path, article: Article) -> None:
    bad = good()
    bad["quotes"] = [{"speaker": i, "cue": None} for i in range(300)]  # 600 errors in 300 items
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(bad))
    ex, _ = make(tmp_path, reasks=3, reask_max_listed=10)
    res = ex.extract(article)
    ex.close()
    assert route.call_count == 4
    sent = [json.loads(c.request.content)["messages"] for c in route.calls]
    assert [len(m) for m in sent] == [2, 4, 4, 4]  # prompt + only the latest failed answer and its errors
    assert len({json.dumps(m) for m in sent[1:]}) == 1
    errors = [m[-1]["content"] for m in sent[1:]]
    for error in errors:
        assert error.count("- quotes.") == 10 and "(and 290 more)" in error
        assert len(error) < 2000, len(error)
    # the model never fixed them: every bad item is rejected with its field, every good one kept
    assert res.status == "ok" and len(res.events) == 1 and len(res.stances) == 1 and res.quotes == []
    assert len(res.rejected) == 300 and {r.field for r in res.rejected} == {"text"}
    assert res.rejected[0].reason == "schema: text: Field required; speaker: Input should be a valid string"


@respx.mock
def test_an_answer_without_its_lists_is_a_parse_error_naming_the_field(
    tmp_path: Path, article: Article
) -> None:
    route = respx.post(wire.CHAT).mock(return_value=wire.ok({"events": [], "quotes": []}))
    ex, _ = make(tmp_path, reasks=1)
    res = ex.extract(article)
    ex.close()
    assert route.call_count == 2 and res.error is not None and res.error.type == "ParseError"
    assert res.error.message == ("no usable answer after 2 attempt(s) (1 re-ask(s)): stances: Field required")


@respx.mock
def test_an_answer_that_is_not_json_is_a_parse_error_saying_so(tmp_path: Path, article: Article) -> None:
    respx.post(wire.CHAT).mock(return_value=wire.ok("{not json"))
    ex, _ = make(tmp_path, reasks=1)
    res = ex.extract(article)
    ex.close()
    assert res.error is not None and res.error.type == "ParseError"
    assert "the answer: Invalid JSON" in res.error.message and "validation error" not in res.error.message


@respx.mock
def test_drift_is_repaired_without_a_reask(tmp_path: Path, article: Article) -> None:
    """The issue's drift: unattributed quote, enum case and whitespace, extra and missing keys."""
    drift = good()
    drift["quotes"][0] = {"text": QUOTE, "speaker": None, "confidence": 0.8}  # no cue
    drift["events"][0]["event_type"] = " consult"
    drift["events"][0]["location"] = ""
    del drift["events"][0]["date_text"]
    drift["stances"][0]["polarity"] = "Oppose"
    drift["notes"] = "the model added a top-level key"
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(drift))
    ex, _ = make(tmp_path)
    res = ex.extract(article)
    ex.close()
    assert route.call_count == 1 and res.usage.http_calls == 1
    assert res.status == "ok" and res.rejected == []
    q = res.quotes[0]
    assert (q.text, q.speaker, q.cue, q.span.status) == (QUOTE, None, None, "exact")
    assert ARTICLE[q.span.start : q.span.end] == QUOTE  # type: ignore[misc]
    e = res.events[0]
    assert (e.event_type, e.location, e.date_text) == ("CONSULT", None, None)
    assert res.stances[0].polarity == "oppose"


@respx.mock
def test_a_bad_item_costs_one_reask_then_is_rejected_and_the_rest_kept(
    tmp_path: Path, article: Article
) -> None:
    """Before: one impossible date failed the whole article (ParseError after the re-ask)."""
    bad = good()
    bad["events"].append({**wire.event(EVIDENCE), "date": "2025-13-45", "summary": "Bad date."})
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(bad))
    ex, _ = make(tmp_path, reasks=1)
    res = ex.extract(article)
    ex.close()
    assert route.call_count == 2
    reask = json.loads(route.calls[1].request.content)["messages"][-1]["content"]
    assert "INVALID ITEMS" in reask and '- events.1 ("Meloni met leaders' in reask and "date: " in reask
    assert res.status == "ok"
    assert [q.text for q in res.quotes] == [QUOTE] and len(res.events) == 1 and len(res.stances) == 1
    [reject] = res.rejected
    assert (reject.kind, reject.field, reject.item["date"]) == ("event", "date", "2025-13-45")
    assert reject.reason.startswith("schema: date: String should match pattern")


@respx.mock
def test_with_reasks_off_a_bad_item_costs_no_call(tmp_path: Path, article: Article) -> None:
    bad = good()
    bad["stances"][0]["polarity"] = "against"
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(bad))
    ex, _ = make(tmp_path, reasks=0)
    res = ex.extract(article)
    ex.close()
    assert route.call_count == 1 and res.status == "ok" and res.stances == [] and len(res.quotes) == 1
    assert [(r.kind, r.field) for r in res.rejected] == [("stance", "polarity")]


@respx.mock
def test_a_schema_and_a_grounding_failure_share_one_reask(tmp_path: Path, article: Article) -> None:
    bad = good()
    bad["quotes"].append({"text": "Italy will never send troops", "speaker": "Meloni", "cue": None})
    bad["events"][0]["event_type"] = "MEETING"
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(bad))
    ex, _ = make(tmp_path, reasks=1)
    res = ex.extract(article)
    ex.close()
    assert route.call_count == 2
    reask = json.loads(route.calls[1].request.content)["messages"][-1]["content"]
    assert "INVALID ITEMS" in reask and "event_type" in reask
    assert "NOT IN ARTICLE" in reask and "Italy will never send troops" in reask
    assert sorted((r.kind, r.field) for r in res.rejected) == [("event", "event_type"), ("quote", "text")]
    assert [q.text for q in res.quotes] == [QUOTE] and len(res.stances) == 1


@respx.mock
def test_an_unusable_last_answer_falls_back_to_the_usable_one(tmp_path: Path, article: Article) -> None:
    bad = good()
    bad["events"][0]["date"] = "2025-13-45"
    respx.post(wire.CHAT).mock(side_effect=[wire.ok(bad), wire.ok("{broken")])
    ex, _ = make(tmp_path, reasks=1)
    res = ex.extract(article)
    ex.close()
    assert res.status == "ok" and [q.text for q in res.quotes] == [QUOTE] and len(res.stances) == 1
    assert [(r.kind, r.field) for r in res.rejected] == [("event", "date")]
    assert res.usage.http_calls == 2


@respx.mock
def test_a_reask_lost_in_transport_keeps_the_usable_answer(tmp_path: Path, article: Article) -> None:
    bad = good()
    bad["events"][0]["date"] = "2025-13-45"
    route = respx.post(wire.CHAT).mock(side_effect=[wire.ok(bad), *[wire.error(503)] * 3])
    ex, _ = make(tmp_path, reasks=1, transport_attempts=3)
    res = ex.extract(article)
    ex.close()
    assert route.call_count == 4 and res.usage.http_calls == 4
    assert res.status == "ok" and [q.text for q in res.quotes] == [QUOTE] and len(res.stances) == 1
    assert [(r.kind, r.field) for r in res.rejected] == [("event", "date")]


@pytest.mark.parametrize("mode", ["json_schema", "md_json"])
def test_drift_and_bad_items_in_content_modes(tmp_path: Path, article: Article, mode: str) -> None:
    drift = good()
    drift["quotes"][0]["speaker"] = ""
    drift["events"][0]["date"] = "2025-02-30"
    content = json.dumps(drift) if mode == "json_schema" else f"```json\n{json.dumps(drift)}\n```"
    body = wire.tool_completion({})
    body["choices"][0]["message"] = {"role": "assistant", "content": content, "refusal": None}
    body["choices"][0]["finish_reason"] = "stop"
    with respx.mock:
        route = respx.post(wire.CHAT).mock(return_value=httpx.Response(200, json=body))
        ex, _ = make(tmp_path, mode=mode, reasks=1)
        res = ex.extract(article)
        ex.close()
    assert route.call_count == 2  # the impossible date is worth one re-ask; the empty speaker is not
    assert res.status == "ok" and res.quotes[0].speaker is None and res.events == []
    assert [(r.field, r.item["date"]) for r in res.rejected] == [("date", "2025-02-30")]


@respx.mock
def test_invented_quote_is_reasked_then_rejected_with_reason(tmp_path: Path, article: Article) -> None:
    invented = good()
    invented["quotes"].append({"text": "Italy will never send troops", "speaker": "Meloni", "cue": None})
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(invented))
    ex, _ = make(tmp_path)
    res = ex.extract(article)
    assert route.call_count == 2  # one re-ask listing the failure
    reask = json.loads(route.calls[1].request.content)["messages"][-1]["content"]
    assert "NOT IN ARTICLE" in reask and "Italy will never send troops" in reask
    assert res.status == "ok"
    assert [q.text for q in res.quotes] == [QUOTE]
    assert len(res.rejected) == 1
    rejected = res.rejected[0]
    assert rejected.kind == "quote" and rejected.field == "text"
    assert rejected.item["text"] == "Italy will never send troops"
    assert rejected.reason.startswith("not in the article"), rejected.reason
    ex.close()


@respx.mock
def test_reask_fixes_an_invented_quote(tmp_path: Path, article: Article) -> None:
    invented = good()
    invented["quotes"][0]["text"] = "Italy’s position is unchanged and firm,"
    respx.post(wire.CHAT).mock(side_effect=[wire.ok(invented), wire.ok(good())])
    ex, _ = make(tmp_path)
    res = ex.extract(article)
    assert res.rejected == [] and [q.text for q in res.quotes] == [QUOTE]
    ex.close()


@respx.mock
def test_straight_quotes_are_kept_as_normalized(tmp_path: Path, article: Article) -> None:
    straight = good()
    straight["quotes"][0]["text"] = "Italy's position is unchanged,"
    respx.post(wire.CHAT).mock(return_value=wire.ok(straight))
    ex, _ = make(tmp_path)
    res = ex.extract(article)
    q = res.quotes[0]
    assert q.span.status == "normalized" and ARTICLE[q.span.start : q.span.end] == QUOTE  # type: ignore[misc]
    assert res.rejected == []
    ex.close()


@respx.mock
def test_truncated_output_retries_with_more_tokens_then_errors(tmp_path: Path, article: Article) -> None:
    cut = json.dumps(good())[:40]
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(cut, finish_reason="length"))
    ex, _ = make(tmp_path, max_tokens=1000, max_tokens_retry=3000)
    res = ex.extract(article)
    assert [json.loads(c.request.content)["max_tokens"] for c in route.calls] == [1000, 3000]
    assert res.status == "error" and res.error is not None and res.error.type == "TruncatedOutputError"
    assert "max_tokens=3000" in res.error.message
    ex.close()


@respx.mock
def test_truncated_output_then_success_with_more_tokens(tmp_path: Path, article: Article) -> None:
    cut = json.dumps(good())[:40]
    respx.post(wire.CHAT).mock(side_effect=[wire.ok(cut, finish_reason="length"), wire.ok(good())])
    ex, _ = make(tmp_path)
    res = ex.extract(article)
    assert res.status == "ok" and res.usage.http_calls == 2
    ex.close()


@respx.mock
def test_cache_hit_makes_no_http_call_and_regrounds(tmp_path: Path, article: Article) -> None:
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(good()))
    ex, _ = make(tmp_path)
    first = ex.extract(article)
    second = ex.extract(article)
    assert route.call_count == 1
    assert second.cache_hit and not first.cache_hit
    assert second.usage.http_calls == 0
    assert second.quotes == first.quotes and second.events == first.events
    ex.close()


@respx.mock
def test_a_cache_hit_is_grounded_again_against_the_article(tmp_path: Path, article: Article) -> None:
    """Cached answers are re-parsed and re-grounded, so a validator change applies to old answers."""
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(good()))
    ex, _ = make(tmp_path)
    ex.extract(article)
    assert ex.cache is not None
    [(_, key)] = ex.requests(article)
    entry = ex.cache.get(key)
    assert entry is not None
    entry["answer"]["quotes"].append({"text": "Italy will send troops", "speaker": "Meloni", "cue": None})
    entry["answer"]["quotes"][0]["text"] = "Italy's position is unchanged,"  # straight apostrophe
    ex.cache.set(key, entry)
    res = ex.extract(article)
    ex.close()
    assert route.call_count == 1 and res.cache_hit and res.usage.http_calls == 0
    assert [(q.text, q.span.status) for q in res.quotes] == [("Italy's position is unchanged,", "normalized")]
    assert [(r.kind, r.item["text"]) for r in res.rejected] == [("quote", "Italy will send troops")]
    assert res.rejected[0].reason.startswith("not in the article")


@respx.mock
def test_a_cache_hit_keeps_and_rejects_the_same_items_as_the_call(tmp_path: Path, article: Article) -> None:
    """Before: the cache kept only the valid items, so a hit lost the schema rejects."""
    messy = good()
    messy["quotes"][0]["speaker"] = None
    messy["events"][0]["event_type"] = "consult "
    messy["events"].append({**wire.event(EVIDENCE), "date": "2025-13-45"})
    messy["quotes"].append({"text": "Italy will never send troops", "speaker": "Meloni", "cue": None})
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(messy))
    ex, _ = make(tmp_path, reasks=1)
    first = ex.extract(article)
    second = ex.extract(article)
    ex.close()
    assert route.call_count == 2 and not first.cache_hit and second.cache_hit
    assert second.usage.http_calls == 0
    assert len(first.rejected) == 2
    for field in ("events", "quotes", "stances", "rejected"):
        assert getattr(second, field) == getattr(first, field), field


@respx.mock
def test_a_cache_entry_written_before_answers_were_kept_still_hits(tmp_path: Path, article: Article) -> None:
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(good()))
    ex, _ = make(tmp_path)
    first = ex.extract(article)
    assert ex.cache is not None
    [(_, key)] = ex.requests(article)
    entry = ex.cache.get(key)
    assert entry is not None
    entry["extraction"] = entry.pop("answer")  # the old entry format: the validated extraction
    ex.cache.set(key, entry)
    second = ex.extract(article)
    ex.close()
    assert route.call_count == 1 and second.cache_hit and second.quotes == first.quotes


@respx.mock
def test_prompt_edit_is_a_cache_miss(tmp_path: Path, article: Article) -> None:
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(good()))
    ex, _ = make(tmp_path)
    ex.extract(article)
    edited = tmp_path / "prompts"
    edited.mkdir()
    for name in ("system.j2", "user.j2"):
        text = (load_prompts().directory / name).read_text(encoding="utf-8")
        (edited / name).write_text(text + ("\nBe careful." if name == "system.j2" else ""), encoding="utf-8")
    ex2 = Extractor(ex.settings, provider=OpenAIProvider(ex.settings), prompts=load_prompts(edited))
    res = ex2.extract(article)
    assert route.call_count == 2 and not res.cache_hit
    assert res.prompt_version != load_prompts().version
    ex.close()
    ex2.close()


@respx.mock
def test_api_key_is_in_no_cache_file(tmp_path: Path, article: Article) -> None:
    respx.post(wire.CHAT).mock(return_value=wire.ok(good()))
    ex, _ = make(tmp_path)
    ex.extract(article)
    ex.close()
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_unauthorised_key_is_one_actionable_line(tmp_path: Path, article: Article) -> None:
    from extractor import ConfigError

    with respx.mock:
        respx.post(wire.CHAT).mock(return_value=wire.error(401))
        ex, _ = make(tmp_path)
        with pytest.raises(ConfigError, match="API key was rejected") as caught:  # every article would fail
            ex.extract(article)
    assert "\n" not in str(caught.value)
    ex.close()


def test_missing_api_key_is_a_config_error(tmp_path: Path, article: Article) -> None:
    from extractor import ConfigError

    ex = Extractor(Settings(cache_dir=tmp_path / "c"))
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        ex.extract(article)
    ex.close()
