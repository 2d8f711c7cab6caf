"""benchmarks/fake_server.py: the local OpenAI-compatible server, exercised over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import importlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import instructor
import openai
import pytest

from extractor.models import Article, ArticleExtraction
from extractor.prompts import load_prompts

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
fs: Any = importlib.import_module("fake_server")

SEED_001 = ROOT / "seeds" / "001_7026c964f11f0189.txt"
SEED_002 = ROOT / "seeds" / "002_0277cc05516288b5.txt"


def seed(path: Path) -> Article:
    return Article.from_text(path.read_bytes().decode("utf-8"), id=path.stem)


def messages_for(article: Article) -> list[dict[str, str]]:
    return load_prompts().render(article)


def chat_body(text: str, mode: str = "tools", **extra: Any) -> dict[str, Any]:
    """A request body shaped like the ones instructor sends in each mode."""
    body: dict[str, Any] = {
        "model": "gpt-test",
        "temperature": 0,
        "messages": [
            {"role": "system", "content": "Extract.\n<article_text>\nexample\n</article_text>"},
            {"role": "user", "content": f"Go.\n<article_text>\n{text}\n</article_text>"},
        ],
    }
    schema = ArticleExtraction.model_json_schema()
    if mode == "tools":
        body["tools"] = [
            {"type": "function", "function": {"name": "ArticleExtraction", "parameters": schema}}
        ]
        body["tool_choice"] = {"type": "function", "function": {"name": "ArticleExtraction"}}
    elif mode == "json_schema":
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "A", "schema": schema}}
    elif mode == "json":
        body["response_format"] = {"type": "json_object"}
    body.update(extra)
    return body


def payload_of(response: httpx.Response) -> str:
    message = response.json()["choices"][0]["message"]
    if message.get("tool_calls"):
        return str(message["tool_calls"][0]["function"]["arguments"])
    return str(message["content"])


@pytest.fixture
def serve() -> Iterator[Any]:
    """serve(**config) -> base URL (…/v1) of a server running in a thread until the test ends."""
    with_stack: list[Any] = []

    def start(**config: Any) -> str:
        manager = fs.run_in_thread(fs.ServerConfig(**config))
        url = manager.__enter__()
        with_stack.append(manager)
        return str(url)

    yield start
    for manager in reversed(with_stack):
        manager.__exit__(None, None, None)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as c:
        yield c


# --------------------------------------------------------------------------- instructor modes


@pytest.mark.parametrize(
    "mode",
    [instructor.Mode.TOOLS, instructor.Mode.JSON_SCHEMA, instructor.Mode.JSON, instructor.Mode.MD_JSON],
)
async def test_each_instructor_mode_parses_into_article_extraction(serve: Any, mode: instructor.Mode) -> None:
    url = serve()
    article = seed(SEED_001)
    async with openai.AsyncOpenAI(base_url=url, api_key="test", max_retries=0) as oai:
        client = instructor.from_openai(oai, mode=mode)
        result, raw = await client.chat.completions.create_with_completion(
            model="gpt-test", response_model=ArticleExtraction, messages=messages_for(article), max_retries=1
        )
    assert isinstance(result, ArticleExtraction)
    assert result.model_dump() == json.loads(fs.synthetic_extraction(article.text))
    assert result.events
    assert result.stances
    assert result.quotes
    for item in [*result.events, *result.stances]:
        assert item.evidence in article.text
    for quote in result.quotes:
        assert quote.text in article.text
    assert raw.object == "chat.completion"
    assert raw.model == "gpt-test"
    expected_finish = "tool_calls" if mode is instructor.Mode.TOOLS else "stop"
    assert raw.choices[0].finish_reason == expected_finish
    assert raw.usage is not None
    assert raw.usage.prompt_tokens > 1000  # the system prompt alone is several thousand characters
    assert raw.usage.total_tokens == raw.usage.prompt_tokens + raw.usage.completion_tokens


def test_wire_format_per_mode(serve: Any, client: httpx.Client) -> None:
    url = serve(model_name="reference-fixture", created=1_700_000_000)
    text = seed(SEED_001).text
    expected = fs.synthetic_extraction(text)

    tools = client.post(f"{url}/chat/completions", json=chat_body(text, "tools")).json()
    message = tools["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"][0]["type"] == "function"
    assert message["tool_calls"][0]["function"] == {"name": "ArticleExtraction", "arguments": expected}
    assert tools["model"] == "reference-fixture"
    assert tools["created"] == 1_700_000_000
    assert tools["id"].startswith("chatcmpl-")

    for mode in ("json_schema", "json"):
        body = client.post(f"{url}/chat/completions", json=chat_body(text, mode)).json()
        assert body["choices"][0]["message"]["content"] == expected
        assert "tool_calls" not in body["choices"][0]["message"]
    md = client.post(f"{url}/chat/completions", json=chat_body(text, "md_json")).json()
    assert md["choices"][0]["message"]["content"] == f"```json\n{expected}\n```"

    root = url.removesuffix("/v1")
    assert client.post(f"{root}/chat/completions", json=chat_body(text)).status_code == 200


def test_article_is_taken_from_the_user_message_and_kept_exact() -> None:
    text = "First line.\n\nSecond “quoted words” line.\n\n\n"
    messages = [
        {"role": "system", "content": "<article_text>\nsystem example\n</article_text>"},
        {"role": "user", "content": f"Title: x\n<article_text>\n{text}\n</article_text>\n\nReturn JSON."},
        {"role": "user", "content": "<article_text>\nlater reask\n</article_text>"},
    ]
    assert fs.extract_article_text(messages) == text
    parts = [
        {"role": "user", "content": [{"type": "text", "text": f"<article_text>\n{text}\n</article_text>"}]}
    ]
    assert fs.extract_article_text(parts) == text
    assert fs.extract_article_text([{"role": "user", "content": "no block"}]) is None
    extraction = json.loads(fs.synthetic_extraction(text))
    assert extraction["events"][0]["evidence"] == "First line."
    assert [q["text"] for q in extraction["quotes"]] == ["quoted words"]


def test_bad_requests_get_openai_style_errors(serve: Any, client: httpx.Client) -> None:
    url = serve()
    no_article = client.post(
        f"{url}/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert no_article.status_code == 400
    assert no_article.json()["error"]["type"] == "invalid_request_error"
    streaming = client.post(f"{url}/chat/completions", json=chat_body("Text.", stream=True))
    assert streaming.status_code == 400
    not_json = client.post(
        f"{url}/chat/completions", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400


def test_max_tokens_cuts_the_answer_with_finish_reason_length(serve: Any, client: httpx.Client) -> None:
    url = serve()
    text = seed(SEED_001).text
    response = client.post(f"{url}/chat/completions", json=chat_body(text, "json", max_completion_tokens=10))
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "length"
    assert len(choice["message"]["content"]) == 40


def test_only_loopback_is_accepted() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        fs.ServerConfig(host="0.0.0.0")
    with pytest.raises(ValueError, match="unknown fault"):
        fs.ServerConfig(fault_rate=0.5, faults=("explode",))


# --------------------------------------------------------------------------- limits


def test_rpm_limit_gives_429_with_retry_after_and_ratelimit_headers(serve: Any, client: httpx.Client) -> None:
    url = serve(rpm=2)
    responses = [client.post(f"{url}/chat/completions", json=chat_body(f"Article {i}.")) for i in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    first, _, limited = responses
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    retry_after = float(limited.headers["retry-after"])
    assert 59 < retry_after <= 60
    assert abs(int(limited.headers["retry-after-ms"]) - retry_after * 1000) < 5
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    stats = client.get(f"{url}/stats").json()
    assert stats["rate_limited"] == 1
    assert stats["by_status"] == {"200": 2, "429": 1}


def test_tpm_limit_counts_prompt_and_completion_tokens(serve: Any, client: httpx.Client) -> None:
    url = serve(tpm=1500)
    text = seed(SEED_001).text
    first = client.post(f"{url}/chat/completions", json=chat_body(text, "json"))
    assert first.status_code == 200
    used = first.json()["usage"]["total_tokens"]
    assert 750 < used <= 1500
    assert first.headers["x-ratelimit-remaining-tokens"] == str(1500 - used)
    second = client.post(f"{url}/chat/completions", json=chat_body(text, "json"))
    assert second.status_code == 429
    assert float(second.headers["retry-after"]) > 59
    assert "x-ratelimit-reset-tokens" in second.headers
    assert second.json()["error"]["type"] == "tokens"


def test_short_window_enforces_the_limit_over_any_window_s(serve: Any, client: httpx.Client) -> None:
    url = serve(rpm=600, window_s=0.5)  # 600/min quantised: at most 5 in any 0.5 s
    started = time.monotonic()
    responses = [client.post(f"{url}/chat/completions", json=chat_body(f"Article {i}.")) for i in range(6)]
    assert time.monotonic() - started < 0.5, "machine too slow to send 6 requests inside the window"
    assert [r.status_code for r in responses] == [200] * 5 + [429]
    first, limited = responses[0], responses[-1]
    assert first.headers["x-ratelimit-limit-requests"] == "600"  # the per-minute figure a provider states
    assert first.headers["x-ratelimit-remaining-requests"] == "4"  # what is left in the window enforced
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    retry_after = float(limited.headers["retry-after"])
    assert 0 < retry_after <= 0.5
    time.sleep(retry_after + 0.01)
    assert client.post(f"{url}/chat/completions", json=chat_body("Article 7.")).status_code == 200
    stats = client.get(f"{url}/stats").json()
    assert stats["by_status"] == {"200": 6, "429": 1}
    assert 0 < stats["active_s"] <= stats["uptime_s"]


def test_short_window_scales_the_token_limit_too(serve: Any, client: httpx.Client) -> None:
    url = serve(tpm=90_000, window_s=1.0)  # 1,500 tokens in any 1 s
    text = seed(SEED_001).text
    first = client.post(f"{url}/chat/completions", json=chat_body(text, "json"))
    assert first.status_code == 200
    used = first.json()["usage"]["total_tokens"]
    assert 750 < used <= 1500
    assert first.headers["x-ratelimit-limit-tokens"] == "90000"
    assert first.headers["x-ratelimit-remaining-tokens"] == str(1500 - used)
    second = client.post(f"{url}/chat/completions", json=chat_body(text, "json"))
    assert second.status_code == 429
    assert 0 < float(second.headers["retry-after"]) <= 1.0


@pytest.mark.parametrize("window_s", [0, -1, 61])
def test_window_s_must_be_within_a_minute(window_s: float) -> None:
    with pytest.raises(ValueError, match="window_s"):
        fs.ServerConfig(rpm=600, window_s=window_s)


# --------------------------------------------------------------------------- faults


@pytest.mark.parametrize("kind", ["429", "500", "503", "malformed", "truncated", "schema-invalid"])
def test_fault_hits_the_first_attempt_only(serve: Any, client: httpx.Client, kind: str) -> None:
    url = serve(fault_rate=1.0, faults=(kind,), fault_retry_after=0.25)
    body = chat_body(seed(SEED_001).text)
    first = client.post(f"{url}/chat/completions", json=body)
    if kind == "429":
        assert first.status_code == 429
        assert first.headers["retry-after"] == "0.25"
        assert first.headers["retry-after-ms"] == "250"
    elif kind in ("500", "503"):
        assert first.status_code == int(kind)
        assert first.json()["error"]["message"]
    else:
        assert first.status_code == 200
        arguments = payload_of(first)
        if kind == "malformed":
            with pytest.raises(json.JSONDecodeError):
                json.loads(arguments)
        elif kind == "truncated":
            assert first.json()["choices"][0]["finish_reason"] == "length"
            assert len(arguments) < len(fs.synthetic_extraction(seed(SEED_001).text))
        else:
            data = json.loads(arguments)
            assert "quotes" not in data
            assert "events" in data

    for _ in range(2):
        again = client.post(f"{url}/chat/completions", json=body)
        assert again.status_code == 200
        ArticleExtraction.model_validate_json(payload_of(again))
    stats = client.get(f"{url}/stats").json()
    assert stats["faults"] == {kind: 1}
    assert stats["requests"] == 3


def test_timeout_fault_holds_the_connection_and_the_retry_succeeds(serve: Any) -> None:
    url = serve(fault_rate=1.0, faults=("timeout",), timeout_hold=20)
    body = chat_body("A short article.")
    with httpx.Client(timeout=0.3) as short:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            short.post(f"{url}/chat/completions", json=body)
        assert short.post(f"{url}/chat/completions", json=body).status_code == 200
        assert time.monotonic() - started < 2
        deadline = time.monotonic() + 5
        while short.get(f"{url}/stats").json()["by_status"].get("disconnected") != 1:
            assert time.monotonic() < deadline, "the held request was not cancelled on disconnect"
            time.sleep(0.05)
        assert short.get(f"{url}/stats").json()["faults"] == {"timeout": 1}


def test_fault_choice_is_a_deterministic_share_of_articles(serve: Any, client: httpx.Client) -> None:
    texts = [f"Article number {i} says something." for i in range(100)]

    def failing(url: str) -> set[int]:
        codes = [client.post(f"{url}/chat/completions", json=chat_body(t)).status_code for t in texts]
        return {i for i, code in enumerate(codes) if code != 200}

    config = {"fault_rate": 0.3, "faults": ("500", "503")}
    once = failing(serve(**config))
    assert 15 <= len(once) <= 45
    assert failing(serve(**config)) == once
    assert failing(serve(**config, fault_seed=7)) != once


# --------------------------------------------------------------------------- answers mode


def test_answers_mode_returns_the_answer_file_of_the_article(
    serve: Any, client: httpx.Client, tmp_path: Path
) -> None:
    article = seed(SEED_001)
    start = article.text.index("Giorgia Meloni")
    answer = {
        "events": [],
        "quotes": [],
        "stances": [
            {
                "holder": "Giorgia Meloni",
                "target": "sending Italian troops to Ukraine",
                "polarity": "oppose",
                "evidence": article.text[start : start + 40],
            }
        ],
    }
    answers = tmp_path / "answers"
    answers.mkdir()
    (answers / f"{SEED_001.stem}.json").write_text(json.dumps(answer), encoding="utf-8")
    url = serve(answers_dir=answers, articles_dir=ROOT / "seeds", model_name="reference-fixture")

    body = chat_body("", "tools")
    body["messages"] = messages_for(article)
    response = client.post(f"{url}/chat/completions", json=body)
    assert response.status_code == 200
    assert json.loads(payload_of(response)) == answer
    assert response.json()["model"] == "reference-fixture"

    missing = client.post(f"{url}/chat/completions", json={**body, "messages": messages_for(seed(SEED_002))})
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "answer_not_found"


def test_answers_mode_rejects_bad_answer_folders(tmp_path: Path) -> None:
    (tmp_path / "nobody.json").write_text('{"events": [], "quotes": [], "stances": []}', encoding="utf-8")
    with pytest.raises(ValueError, match="no article"):
        fs.load_answers(tmp_path, ROOT / "seeds")
    (tmp_path / "nobody.json").unlink()
    (tmp_path / f"{SEED_001.stem}.json").write_text('{"events": []}', encoding="utf-8")
    with pytest.raises(ValueError, match="not a valid ArticleExtraction"):
        fs.load_answers(tmp_path, ROOT / "seeds")


# --------------------------------------------------------------------------- stats, latency, CLI


def test_stats_count_and_reset(serve: Any, client: httpx.Client) -> None:
    url = serve()
    for mode in ("tools", "json", "json"):
        client.post(f"{url}/chat/completions", json=chat_body("One sentence here.", mode))
    client.post(f"{url}/chat/completions", json={"model": "m", "messages": []})
    stats = client.get(f"{url}/stats").json()
    assert stats["requests"] == 4
    assert stats["by_status"] == {"200": 3, "400": 1}
    assert stats["by_mode"] == {"tools": 1, "json": 2}
    assert stats["articles_seen"] == 1
    assert stats["tokens"]["total"] == stats["tokens"]["prompt"] + stats["tokens"]["completion"] > 0
    reset = client.post(f"{url}/stats/reset").json()
    assert reset["requests"] == 0
    assert reset["articles_seen"] == 0
    assert client.get(f"{url.removesuffix('/v1')}/stats").json()["requests"] == 0


async def test_latency_does_not_serialise_requests(serve: Any) -> None:
    url = serve(latency=0.3)
    async with httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=100)) as client:
        responses = await asyncio.gather(
            *(client.post(f"{url}/chat/completions", json=chat_body(f"Article {i}.")) for i in range(60))
        )
        stats = (await client.get(f"{url}/stats")).json()
    assert all(r.status_code == 200 for r in responses)
    # Concurrency is read from the server's own counter, not a clock (this machine is shared): with
    # 0.3 s of latency per answer, requests that were served one at a time would never overlap.
    assert stats["max_in_flight"] > 10


def test_cli_prints_the_port_and_serves(tmp_path: Path) -> None:
    script = ROOT / "benchmarks" / "fake_server.py"
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port", "0", "--model-name", "cli-model"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        base = line.removeprefix("listening on ")
        with httpx.Client(timeout=5) as client:
            response = client.post(f"{base}/v1/chat/completions", json=chat_body("CLI article."))
        assert response.status_code == 200
        assert response.json()["model"] == "cli-model"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err

    refused = subprocess.run(
        [sys.executable, str(script), "--host", "0.0.0.0"], capture_output=True, text=True, timeout=30
    )
    assert refused.returncode == 2
    assert "127.0.0.1" in refused.stderr
