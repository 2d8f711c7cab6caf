"""The LLM client across instructor modes, re-ask caps and endpoint failures (respx, no network)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from extractor import Article, ConfigError, Extractor, Settings
from extractor.llm import OpenAIProvider
from tests import wire
from tests.conftest import FakeModel

TEXT = "Rome said “no troops” on Tuesday. Leaders met in Paris.\n"
ANSWER = wire.extraction(quotes=[("no troops", "Rome")], events=[wire.event("Leaders met in Paris.")])


def content_completion(content: str) -> dict[str, Any]:
    body = wire.tool_completion({})
    body["choices"][0]["message"] = {"role": "assistant", "content": content, "refusal": None}
    body["choices"][0]["finish_reason"] = "stop"
    return body


async def no_sleep(_: float) -> None:
    return None


def run(tmp_path: Path, **kw: Any) -> Any:
    settings = Settings(api_key="sk-x", base_url=wire.API, cache_dir=tmp_path, use_cache=False, **kw)
    with Extractor(settings, provider=OpenAIProvider(settings, sleep=no_sleep)) as ex:
        return ex.extract(Article.from_text(TEXT, id="m"))


@pytest.mark.parametrize(
    ("mode", "content", "request_check"),
    [
        ("json_schema", json.dumps(ANSWER), lambda b: b["response_format"]["type"] == "json_schema"),
        ("json", json.dumps(ANSWER), lambda b: b["response_format"]["type"] == "json_object"),
        ("md_json", "Here:\n```json\n" + json.dumps(ANSWER) + "\n```", lambda b: "tools" not in b),
    ],
)
@respx.mock
def test_modes_for_servers_without_tool_calling(
    tmp_path: Path, mode: str, content: str, request_check: Any
) -> None:
    route = respx.post(wire.CHAT).mock(return_value=httpx.Response(200, json=content_completion(content)))
    res = run(tmp_path, mode=mode)
    assert res.status == "ok", res.error
    assert [q.text for q in res.quotes] == ["no troops"]
    assert request_check(json.loads(route.calls[0].request.content))


@respx.mock
def test_reask_lists_failures_with_a_cap(tmp_path: Path) -> None:
    invented = wire.extraction(quotes=[(f"invented words number {i}", "X") for i in range(15)])
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(invented))
    res = run(tmp_path, reasks=1, reask_max_listed=10)
    assert route.call_count == 2
    reask = json.loads(route.calls[1].request.content)["messages"][-1]["content"]
    assert reask.count("invented words number") == 10 and "(and 5 more)" in reask
    assert len(res.rejected) == 15


@respx.mock
def test_no_reasks_when_disabled(tmp_path: Path) -> None:
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(wire.extraction(quotes=[("made up", "X")])))
    res = run(tmp_path, reasks=0)
    assert route.call_count == 1 and len(res.rejected) == 1


@respx.mock
def test_unreachable_endpoint_is_one_actionable_line(tmp_path: Path) -> None:
    route = respx.post(wire.CHAT).mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(ConfigError) as caught:
        run(tmp_path, transport_attempts=3)
    message = str(caught.value)
    assert message.startswith(f"cannot reach {wire.API}")
    assert message.endswith("(no request has reached it yet)")
    assert "OPENAI_BASE_URL" in message and "\n" not in message
    assert route.call_count == 3


@respx.mock
def test_once_the_endpoint_has_answered_a_connection_failure_fails_only_that_article(tmp_path: Path) -> None:
    respx.post(wire.CHAT).mock(
        side_effect=[wire.ok(ANSWER), *[httpx.ConnectError("connection reset")] * 3, wire.ok(ANSWER)]
    )
    settings = Settings(
        api_key="sk-x", base_url=wire.API, cache_dir=tmp_path, use_cache=False, transport_attempts=3
    )
    with Extractor(settings, provider=OpenAIProvider(settings, sleep=no_sleep)) as ex:
        results = [ex.extract(Article.from_text(f"{TEXT}{i}", id=f"m{i}")) for i in range(3)]
    assert [r.status for r in results] == ["ok", "error", "ok"]
    error = results[1].error
    assert error is not None and error.type == "TransportError" and error.message.startswith("cannot reach")


@respx.mock
def test_any_http_answer_even_a_bad_one_means_the_endpoint_is_reachable(tmp_path: Path) -> None:
    respx.post(wire.CHAT).mock(
        side_effect=[
            wire.ok("{not json"),
            wire.ok("{still not json"),  # article 1: ParseError after its re-ask, but the server answered
            *[httpx.ConnectError("connection reset")] * 2,
            httpx.RemoteProtocolError("server hung up"),
        ]
    )
    settings = Settings(
        api_key="sk-x", base_url=wire.API, cache_dir=tmp_path, use_cache=False, transport_attempts=2
    )
    with Extractor(settings, provider=OpenAIProvider(settings, sleep=no_sleep)) as ex:
        first = ex.extract(Article.from_text(f"{TEXT}1", id="m1"))
        second = ex.extract(Article.from_text(f"{TEXT}2", id="m2"))
    assert first.error is not None and first.error.type == "ParseError"
    assert second.error is not None and second.error.type == "TransportError"


@respx.mock
def test_a_first_request_the_server_dropped_is_not_an_unreachable_endpoint(tmp_path: Path) -> None:
    respx.post(wire.CHAT).mock(side_effect=httpx.RemoteProtocolError("server hung up"))
    res = run(tmp_path, transport_attempts=2)
    assert res.error is not None and res.error.type == "TransportError"


@respx.mock
def test_a_reask_after_an_answer_with_two_tool_calls_keeps_them_with_their_results(tmp_path: Path) -> None:
    """Trimming must never leave a tool result without the assistant message that called the tool."""
    body = wire.tool_completion("{broken")
    call = body["choices"][0]["message"]["tool_calls"][0]
    body["choices"][0]["message"]["tool_calls"] = [call, {**call, "id": "call_2"}]
    route = respx.post(wire.CHAT).mock(
        side_effect=[httpx.Response(200, json=body), httpx.Response(200, json=body), wire.ok(ANSWER)]
    )
    res = run(tmp_path, reasks=2)
    assert res.status == "ok" and route.call_count == 3
    for sent in route.calls[1:]:
        messages = json.loads(sent.request.content)["messages"]
        roles = [m["role"] for m in messages]
        assert roles[:2] == ["system", "user"] and roles[2] == "assistant", roles
        assert len([r for r in roles if r == "assistant"]) == 1  # only the latest failed answer
        called = {c["id"] for c in messages[2].get("tool_calls") or []}
        answered = {m.get("tool_call_id") for m in messages[3:] if m["role"] == "tool"}
        assert answered <= called, (answered, called)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_batch_against_an_unreachable_endpoint_stops_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], concurrency: int
) -> None:
    from extractor import cli

    (tmp_path / "in").mkdir()
    for i in range(8):
        (tmp_path / "in" / f"{i}.txt").write_text(f"{TEXT}{i}", encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.setenv("OPENAI_BASE_URL", wire.API)
    config = tmp_path / "extractor.toml"
    config.write_text("transport_attempts = 2\n", encoding="utf-8")  # one short backoff, not five
    with respx.mock:
        route = respx.post(wire.CHAT).mock(side_effect=httpx.ConnectError("connection refused"))
        argv = ["run", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-cache", "-q"]
        code = cli.main([*argv, "--concurrency", str(concurrency), "--config", str(config)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "never retrieved" not in err
    assert err.count("cannot reach") == 1 and "configuration error: cannot reach" in err
    assert route.call_count <= 2 * concurrency  # the attempts of the articles in flight, not of all 8


@respx.mock
def test_usage_is_summed_over_every_attempt(tmp_path: Path) -> None:
    respx.post(wire.CHAT).mock(
        side_effect=[
            wire.error(500),
            wire.ok("{broken", prompt_tokens=1000, completion_tokens=10),
            wire.ok(ANSWER, prompt_tokens=1200, completion_tokens=30),
        ]
    )
    res = run(tmp_path)
    assert res.status == "ok"
    assert (res.usage.prompt_tokens, res.usage.completion_tokens, res.usage.http_calls) == (2200, 40, 3)


def test_extract_many_yields_every_article(tmp_path: Path) -> None:
    fake = FakeModel()
    articles = [Article.from_text(f"Text {i}.", id=f"a{i}") for i in range(6)]
    fake.enqueue(*[wire.extraction() for _ in articles])
    with Extractor(Settings(use_cache=False, cache_dir=tmp_path), provider=fake) as ex:
        results = list(ex.extract_many(articles, concurrency=3))
    assert sorted(r.article_id for r in results) == [a.id for a in articles]
    assert all(r.status == "ok" for r in results)


class _SlowModel(FakeModel):
    """Counts articles in flight; the article with id "boom" hits an unexpected bug."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.peak = 0

    async def complete(self, messages: list[dict[str, str]], *, key: str, article_id: str, check: Any) -> Any:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if article_id == "boom":
                raise RuntimeError("provider bug")
            self.enqueue(wire.extraction())
            return await super().complete(messages, key=key, article_id=article_id, check=check)
        finally:
            self.in_flight -= 1


def test_extract_many_bounds_concurrency_and_isolates_a_failing_article(tmp_path: Path) -> None:
    fake = _SlowModel()
    ids = ["a0", "a1", "boom", "a3", "a4", "a5", "a6", "a7"]
    articles = [Article.from_text(f"Text {i}.", id=i) for i in ids]
    with Extractor(Settings(use_cache=False, cache_dir=tmp_path), provider=fake) as ex:
        results = {r.article_id: r for r in ex.extract_many(articles, concurrency=3)}
    assert sorted(results) == sorted(ids)
    assert fake.peak == 3
    failed = results.pop("boom")
    assert failed.status == "error" and failed.error is not None
    assert (failed.error.type, failed.error.message) == ("RuntimeError", "provider bug")
    assert all(r.status == "ok" for r in results.values())


def test_extract_many_over_load_articles_reports_bad_input_and_goes_on(tmp_path: Path) -> None:
    """The README's loop: ``extract_many(load_articles([...]))`` with a bad file and a bad JSONL line."""
    from extractor import load_articles

    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "a.txt").write_text(TEXT, encoding="utf-8")
    (drop / "b.jsonl").write_text(
        '{"id": "b1", "text": "Leaders met in Paris."}\nnot json\n', encoding="utf-8"
    )
    (drop / "c.txt").write_bytes(b"\x00\x01binary")
    fake = FakeModel().enqueue(ANSWER, wire.extraction(events=[wire.event("Leaders met in Paris.")]))
    with Extractor(Settings(use_cache=False, cache_dir=tmp_path / "c"), provider=fake) as ex:
        results = {r.article_id: r for r in ex.extract_many(load_articles([drop]), concurrency=2)}
    assert {k: r.status for k, r in results.items()} == {"a": "ok", "b1": "ok", "b-2": "error", "c": "error"}
    assert results["b-2"].error is not None and results["b-2"].error.type == "LoadError"
    assert results["b-2"].source.endswith("b.jsonl:2")
    assert results["c"].error is not None and "binary" in results["c"].error.message
    assert len(fake.history) == 2


def test_from_env_and_extract_of_plain_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXTRACTOR_MODEL", "model-from-env")
    monkeypatch.setenv("EXTRACTOR_CACHE_DIR", str(tmp_path / "envcache"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    ex = Extractor.from_env(temperature=0.5)
    got = (ex.settings.model, ex.settings.api_key, ex.settings.temperature)
    assert got == ("model-from-env", "sk-env", 0.5)
    assert ex.settings.cache_dir == tmp_path / "envcache"
    ex.close()
    fake = FakeModel().enqueue(ANSWER)
    with Extractor(Settings(use_cache=False, cache_dir=tmp_path), provider=fake) as ex:
        res = ex.extract(TEXT)
    assert res.status == "ok" and res.quotes[0].text == "no troops"
    assert TEXT[res.quotes[0].span.start : res.quotes[0].span.end] == "no troops"  # type: ignore[misc]


async def test_aextract_in_the_callers_loop(tmp_path: Path) -> None:
    fake = FakeModel().enqueue(ANSWER)
    ex = Extractor(Settings(use_cache=False, cache_dir=tmp_path), provider=fake)
    res = await ex.aextract(Article.from_text(TEXT, id="x"))
    assert res.quotes[0].span.status == "exact"
    await ex.aclose()


@respx.mock
def test_article_text_reaches_the_model_unchanged_even_with_template_syntax(tmp_path: Path) -> None:
    """instructor renders messages as Jinja when given a context; our context must not trigger that."""
    text = "Deal: “We will write {{ price }} in the contract,” he said.\n{% if x %}\n    indented line\n"
    answer = wire.extraction(quotes=[("We will write {{ price }} in the contract,", "he")])
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(answer))
    settings = Settings(api_key="sk-x", base_url=wire.API, cache_dir=tmp_path, use_cache=False)
    with Extractor(settings, provider=OpenAIProvider(settings, sleep=no_sleep)) as ex:
        res = ex.extract(Article.from_text(text, id="t"))
    sent = json.loads(route.calls[0].request.content)["messages"][1]["content"]
    assert text.rstrip("\n") in sent
    assert res.status == "ok" and res.rejected == []
    assert res.quotes[0].span.status == "exact"


@respx.mock
def test_grounding_reask_still_works_through_the_context(tmp_path: Path) -> None:
    route = respx.post(wire.CHAT).mock(return_value=wire.ok(wire.extraction(quotes=[("made up", "X")])))
    res = run(tmp_path, reasks=2)
    assert route.call_count == 3 and len(res.rejected) == 1


@respx.mock
def test_a_reask_that_fails_in_transport_is_a_transport_error(tmp_path: Path) -> None:
    respx.post(wire.CHAT).mock(side_effect=[wire.ok("{broken"), *[wire.error(503)] * 3])
    res = run(tmp_path, transport_attempts=3)
    assert res.error is not None and res.error.type == "TransportError"
    assert "HTTP 503" in res.error.message
    assert res.usage.http_calls == 4 and res.usage.prompt_tokens == 100


# --------------------------------------------------------------------------- endpoint and key mistakes


def _api_error(status: int, message: str, code: str | None = None, **extra: Any) -> httpx.Response:
    return httpx.Response(
        status, json={"error": {"message": message, "type": "invalid_request_error", "code": code}, **extra}
    )


MODEL_GONE = "The model `gpt-9` does not exist or you do not have access to it."


@pytest.mark.parametrize(
    ("response", "wanted"),
    [
        (_api_error(401, "Incorrect API key provided: sk-proj-****7890.", "invalid_api_key"), "HTTP 401"),
        (_api_error(403, "Project does not have access to this endpoint.", "forbidden"), "HTTP 403"),
    ],
)
@respx.mock
def test_a_rejected_key_is_one_config_error_line_after_one_call(
    tmp_path: Path, response: httpx.Response, wanted: str
) -> None:
    route = respx.post(wire.CHAT).mock(return_value=response)
    with pytest.raises(ConfigError) as caught:
        run(tmp_path, transport_attempts=3)
    message = str(caught.value)
    assert message.startswith(f"the API key was rejected by {wire.API} ({wanted}")
    assert message.endswith("check OPENAI_API_KEY") and "\n" not in message
    assert route.call_count == 1
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no body in a traceback


@pytest.mark.parametrize(
    "response",
    [
        _api_error(403, MODEL_GONE, "model_not_found"),  # a proxy that says 403
        _api_error(404, MODEL_GONE, "model_not_found"),  # OpenAI
        _api_error(
            404, "The API deployment for this resource does not exist.", "DeploymentNotFound"
        ),  # Azure
        _api_error(404, 'model "gpt-9" not found, try pulling it first', None),  # Ollama
        httpx.Response(
            404, json={"object": "error", "message": MODEL_GONE, "type": "NotFoundError", "code": 404}
        ),
    ],
    ids=["403-proxy", "openai", "azure", "ollama", "vllm"],
)
@respx.mock
def test_an_unknown_model_is_named(tmp_path: Path, response: httpx.Response) -> None:
    route = respx.post(wire.CHAT).mock(return_value=response)
    with pytest.raises(ConfigError) as caught:
        run(tmp_path, model="gpt-9")
    message = str(caught.value)
    assert message.startswith(f"model not found: gpt-9 at {wire.API} (HTTP {response.status_code}")
    assert "rejected" not in message and "EXTRACTOR_MODEL" in message and "\n" not in message
    assert route.call_count == 1


@respx.mock
def test_a_400_that_mentions_the_model_is_still_that_articles_error(tmp_path: Path) -> None:
    respx.post(wire.CHAT).mock(
        return_value=_api_error(
            400,
            "This model's maximum context length is 128000 tokens; tool 'x' was not found in the request.",
            "context_length_exceeded",
        )
    )
    res = run(tmp_path)
    assert res.error is not None and res.error.type == "TransportError"
    assert "answered HTTP 400: This model's maximum context length" in res.error.message


@respx.mock
def test_a_404_before_any_answer_is_a_wrong_base_url_and_after_one_only_that_article(tmp_path: Path) -> None:
    respx.post(wire.CHAT).mock(return_value=httpx.Response(404, text="404 page not found"))
    with pytest.raises(ConfigError, match=r"answered HTTP 404 \(404 page not found\); check OPENAI_BASE_URL"):
        run(tmp_path)
    respx.post(wire.CHAT).mock(side_effect=[wire.ok(ANSWER), httpx.Response(404, text="404 page not found")])
    settings = Settings(api_key="sk-x", base_url=wire.API, cache_dir=tmp_path, use_cache=False)
    with Extractor(settings, provider=OpenAIProvider(settings, sleep=no_sleep)) as ex:
        results = [ex.extract(Article.from_text(f"{TEXT}{i}", id=f"m{i}")) for i in range(2)]
    assert [r.status for r in results] == ["ok", "error"]
    assert results[1].error is not None and results[1].error.type == "TransportError"


HTML_PAGE = "<!doctype html>\n<html><head><title>Welcome to nginx!</title></head><body>It works</body></html>"


@pytest.mark.parametrize(
    ("response", "shown"),
    [
        (
            httpx.Response(200, text=HTML_PAGE, headers={"content-type": "text/html"}),
            "(content-type text/html, starts with '<!doctype html> <html><head><title>Welcome to",
        ),
        (
            httpx.Response(200, json={"status": "ok"}),
            '(content-type application/json, starts with \'{"status"',
        ),
        (
            httpx.Response(200, json={"choices": []}),
            "(content-type application/json, starts with '{\"choices\":[]}')",
        ),
    ],
    ids=["html", "json-without-choices", "empty-choices"],
)
@respx.mock
def test_an_endpoint_that_is_not_an_openai_api_stops_at_the_first_answer(
    tmp_path: Path, response: httpx.Response, shown: str
) -> None:
    route = respx.post(wire.CHAT).mock(return_value=response)
    with pytest.raises(ConfigError) as caught:
        run(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{wire.API} did not answer as an OpenAI-compatible API {shown}"), message
    assert "OPENAI_BASE_URL" in message and "\n" not in message and len(message) < 400
    assert route.call_count == 1  # no re-ask of a web page


@respx.mock
def test_a_web_page_after_good_answers_fails_only_that_article(tmp_path: Path) -> None:
    page = httpx.Response(200, text=HTML_PAGE, headers={"content-type": "text/html"})
    route = respx.post(wire.CHAT).mock(side_effect=[wire.ok(ANSWER), page, wire.ok(ANSWER)])
    settings = Settings(api_key="sk-x", base_url=wire.API, cache_dir=tmp_path, use_cache=False)
    with Extractor(settings, provider=OpenAIProvider(settings, sleep=no_sleep)) as ex:
        results = [ex.extract(Article.from_text(f"{TEXT}{i}", id=f"m{i}")) for i in range(3)]
    assert [r.status for r in results] == ["ok", "error", "ok"]
    error = results[1].error
    assert error is not None and error.type == "TransportError"
    assert "did not answer as an OpenAI-compatible API (content-type text/html" in error.message
    assert route.call_count == 3


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_batch_with_a_rejected_key_stops_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], concurrency: int
) -> None:
    from extractor import cli

    (tmp_path / "in").mkdir()
    for i in range(18):
        (tmp_path / "in" / f"{i}.txt").write_text(f"{TEXT}{i}", encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.setenv("OPENAI_BASE_URL", wire.API)
    with respx.mock:
        route = respx.post(wire.CHAT).mock(return_value=_api_error(401, "Incorrect API key provided"))
        argv = ["run", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--no-cache", "-q"]
        code = cli.main([*argv, "--concurrency", str(concurrency)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "never retrieved" not in err
    assert err.count("rejected") == 1 and "configuration error: the API key was rejected" in err
    assert route.call_count <= concurrency  # the requests already in flight, never one per article
    if concurrency == 1:
        assert route.call_count == 1


WITH_INVENTED = wire.extraction(
    quotes=[("no troops", "Rome"), ("we will never send anyone", "Rome")],
    events=[wire.event("Leaders met in Paris.")],
)


@pytest.mark.parametrize(
    ("mode", "content"),
    [
        ("json", json.dumps(WITH_INVENTED)),
        ("md_json", "Here is the extraction:\n```json\n" + json.dumps(WITH_INVENTED) + "\n```\nDone."),
        ("md_json", "```\n" + json.dumps(WITH_INVENTED) + "\n```"),  # a fence without a language
    ],
    ids=["json", "md_json", "md_json-bare-fence"],
)
@respx.mock
def test_an_answer_in_the_message_content_that_stays_ungrounded_is_kept_with_the_item_rejected(
    tmp_path: Path, mode: str, content: str
) -> None:
    """In the content modes the last answer is read back from the message text (a fenced block in
    md_json): after the last re-ask its grounded items are kept and the invented quote is rejected."""
    route = respx.post(wire.CHAT).mock(return_value=httpx.Response(200, json=content_completion(content)))
    res = run(tmp_path, mode=mode, reasks=1)
    assert res.status == "ok", res.error
    assert route.call_count == 2 and res.usage.http_calls == 2
    assert [q.text for q in res.quotes] == ["no troops"]
    assert [e.evidence for e in res.events] == ["Leaders met in Paris."]
    assert [(r.kind, r.item["text"]) for r in res.rejected] == [("quote", "we will never send anyone")]
    reask = json.loads(route.calls[1].request.content)["messages"]
    assert "we will never send anyone" in reask[-1]["content"]  # the re-ask names the invented quote


@pytest.mark.parametrize("mode", ["json", "md_json"])
@respx.mock
def test_a_content_answer_that_is_not_an_extraction_is_a_parse_error(tmp_path: Path, mode: str) -> None:
    route = respx.post(wire.CHAT).mock(
        return_value=httpx.Response(200, json=content_completion("I cannot help with that."))
    )
    res = run(tmp_path, mode=mode, reasks=1)
    assert route.call_count == 2
    assert res.error is not None and res.error.type == "ParseError"
    assert res.error.message.startswith(
        "no usable answer after 2 attempt(s) (1 re-ask(s)): the answer: Invalid JSON"
    )
