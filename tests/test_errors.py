"""Secrets never leave the process: ``redact`` itself, and an endpoint that echoes the request's
``Authorization`` header back in its error pages, run through the CLI with every output grepped."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from extractor import cli
from extractor.errors import REDACTED, redact

# --------------------------------------------------------------------------- redact


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("upstream said: Authorization: Bearer abc.def-ghi_123", "abc.def-ghi_123"),
        ('{"authorization": "Bearer tok_9f8e7d6c5b4a"}', "tok_9f8e7d6c5b4a"),
        ("{'Authorization': 'Basic dXNlcjpwYXNzd29yZA=='}", "dXNlcjpwYXNzd29yZA=="),
        ("headers: proxy-authorization=Token xyz987", "xyz987"),
        ("api-key: 0123456789abcdef0123", "0123456789abcdef0123"),
        ('{"api_key": "k-1"}', "k-1"),
        ("x-api-key=hunter22&other=1", "hunter22"),
        ("set OPENAI_API_KEY=raw-value-here in your shell", "raw-value-here"),
        ("sent bearer AbCdEfGh12345678 to the proxy", "AbCdEfGh12345678"),
        ("key sk-proj-AbCdEfGhIjKlMnOpQrSt123 is invalid", "AbCdEfGhIjKlMnOpQrSt123"),
        ("key sk-ant-api03-AbCdEfGhIjKlMnOpQrSt is invalid", "AbCdEfGhIjKlMnOpQrSt"),
        ("google AIzaSyA1234567890abcdefghijklmnopqrstu", "AIzaSyA1234567890abcdefghijklmnopqrstu"),
        ("GET https://host/v1/chat?api-key=s3cr3t&x=1 failed", "s3cr3t"),
        ("GET https://host/v1/chat?x=1&sig=abc%2Fdef failed", "abc%2Fdef"),
        ("cannot reach https://me:pa55word@host.example/v1 now", "pa55word"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlX2hlcmU", "eyJzdWIiOiIx"),
    ],
)
def test_redact_removes_anything_shaped_like_a_credential(text: str, gone: str) -> None:
    out = redact(text)
    assert gone not in out and REDACTED in out, out
    assert redact(out) == out  # idempotent: a second pass changes nothing


def test_redact_removes_the_given_secrets_in_every_encoding() -> None:
    key = "Zq9/Tk+w0rd=="  # nothing about it looks like a key: only the literal match can find it
    text = f"echo {key} | url {quote(key, safe='')} | form {quote_plus(key)} | json {json.dumps(key)}"
    out = redact(text, key, None, "")
    for form in (key, quote(key, safe=""), quote_plus(key), "Zq9"):
        assert form not in out, out
    assert out.startswith("echo [REDACTED] | url [REDACTED] | form [REDACTED] | json ")


@pytest.mark.parametrize(
    "text",
    [
        "check OPENAI_API_KEY and OPENAI_BASE_URL",
        "the API key was rejected by https://api.openai.com/v1 (HTTP 401); check OPENAI_API_KEY",
        "max_tokens=4096 prompt_tokens: 100 completion_tokens: 40",
        "a task-list with sk-learn and the Bearer of bad news",
        "model not found: gpt-4o-mini at http://localhost:11434/v1 (HTTP 404)",
        "no valid answer after 2 attempt(s): quotes.0.speaker: Input should be a valid string",
    ],
)
def test_redact_leaves_ordinary_messages_alone(text: str) -> None:
    assert redact(text) == text


def test_a_short_secret_is_only_replaced_as_a_whole_word() -> None:
    # local servers take any key, e.g. "test": redacting it inside other words would garble messages
    assert redact("latest test: test-ok", "test") == "latest [REDACTED]: [REDACTED]-ok"
    assert redact("x marks x", "x") == "x marks x"  # too short to be a secret at all


# --------------------------------------------------------------------------- an echoing endpoint

SK_KEY = "sk-proj-7f3a9c1e5b2d8046AbCdEfGhIjKl"
ODD_KEY = "Zq9/Tk+3e8d1c0b7a6f5e4d3==m"  # not shaped like any key: found by its literal value only


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with the request's own headers (and URL) in the body, like a misconfigured
    proxy's error page. ``server.status`` / ``server.kind`` choose the answer."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        server: Any = self.server
        server.calls += 1
        dump = " | ".join(f"{k}: {v}" for k, v in self.headers.items())  # one line: no first-line cut
        auth = self.headers.get("authorization") or ""
        echo = (
            f"you sent: authorization: {auth} | {dump} | url: {self.path} | encoded: {quote(auth, safe='')}"
        )
        echo += f" | form: {quote_plus(auth)}"
        if server.kind == "html":  # the key within the first bytes, which a message may quote
            body = f"<!doctype html><pre>{echo}</pre><h1>Bad gateway</h1>"
            ctype = "text/html; charset=utf-8"
        else:
            error = {"message": f"request rejected; {echo}", "type": "invalid_request_error"}
            body = json.dumps({"error": error, "headers": dict(self.headers.items())})
            ctype = "application/json"
        data = body.encode("utf-8")
        self.send_response(server.status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def echo_server() -> Iterator[Any]:
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.calls, server.status, server.kind = 0, 502, "html"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _leaks(blob: str, key: str) -> list[str]:
    forms = {key, quote(key, safe=""), quote_plus(key), json.dumps(key)[1:-1], key[8:20]}
    return sorted(form for form in forms if form in blob)


@pytest.mark.parametrize("key", [SK_KEY, ODD_KEY], ids=["sk-key", "odd-key"])
@pytest.mark.parametrize(
    ("status", "kind", "code", "seen"),
    [
        (502, "html", 1, "answered HTTP 502"),  # retried, then each article's TransportError
        (400, "json", 1, "answered HTTP 400"),  # not retried: each article's TransportError
        (401, "json", 2, "rejected"),  # stops the run: one ConfigError line
        (200, "html", 2, "did not answer as an OpenAI-compatible API"),  # a web page: stops the run
    ],
)
def test_an_endpoint_echoing_the_key_leaks_it_nowhere(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    echo_server: Any,
    key: str,
    status: int,
    kind: str,
    code: int,
    seen: str,
) -> None:
    echo_server.status, echo_server.kind = status, kind
    drop, out, cache = tmp_path / "drop", tmp_path / "out", tmp_path / "cache"
    drop.mkdir()
    for i in range(3):
        (drop / f"a{i}.txt").write_text(f"Story {i}. The mayor said “we will rebuild” on Monday.\n")
    config = tmp_path / "extractor.toml"
    config.write_text("[extractor]\ntransport_attempts = 2\ntransport_max_wait_s = 5\n", encoding="utf-8")
    port = echo_server.server_address[1]
    monkeypatch.setenv("OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("EXTRACTOR_CACHE_DIR", str(cache))
    argv = ["run", str(drop), "--out", str(out), "--config", str(config), "--concurrency", "1"]
    assert cli.main(argv) == code
    console = capsys.readouterr()
    shown = console.out + console.err
    assert seen in shown, shown
    if code == 1:  # every article failed on its own: its error is stored, and the review page shows it
        assert cli.main(["report", str(out)]) == 0
        shown += "".join(capsys.readouterr())
        assert (out / "report.html").exists()
        lines = (out / "results.jsonl").read_text(encoding="utf-8").splitlines()
        errors = [json.loads(line)["error"]["message"] for line in lines]
        assert len(errors) == 3 and all(REDACTED in m and seen in m for m in errors), errors
    if code == 2:
        assert echo_server.calls == 1  # the first answer stopped the run; no article after it was sent
        assert shown.count("configuration error") == 1 and "Traceback" not in shown
        assert REDACTED in shown, shown
    assert not _leaks(shown, key), shown
    written = [p for root in (out, cache) if root.exists() for p in root.rglob("*") if p.is_file()]
    assert any(p.name == "results.jsonl" for p in written)
    for path in written:
        assert not _leaks(path.read_bytes().decode("utf-8", "replace"), key), path


@pytest.mark.parametrize("where", ["config file", "environment"])
def test_the_cli_scrubs_the_key_it_knows_from_whatever_error_it_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    """Defence in depth: an error raised with the key in it (here a fake cache failure) is printed without
    the key, whether the key came from the environment or only from the config file."""
    from extractor import cache
    from extractor.errors import CacheError

    key = "mykey-0a1b2c3d4e"
    config = tmp_path / "extractor.toml"
    config.write_text(f'[extractor]\napi_key = "{key}"\n' if where == "config file" else "", encoding="utf-8")
    if where == "environment":
        monkeypatch.setenv("OPENAI_API_KEY", key)

    def broken(*_: Any, **__: Any) -> Any:
        raise CacheError(f"cannot open the cache\n(seen: {key}, {quote(key + '/')})")

    monkeypatch.setattr(cache, "ResponseCache", broken)
    assert cli.main(["cache", "stats", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err == "extractor: CacheError: cannot open the cache (seen: [REDACTED], [REDACTED]/)\n"


def test_a_results_file_written_before_scrubbing_is_shown_scrubbed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error line stored by an older version, key and all: the review page never shows the key."""
    from extractor.models import ArticleResult, ErrorInfo

    message = f"https://api.example/v1 answered HTTP 502: <pre>authorization: Bearer {SK_KEY}</pre>"
    old = ArticleResult(
        article_id="a1",
        source="drop/a1.txt",
        sha256="0" * 64,
        status="error",
        error=ErrorInfo.model_construct(type="TransportError", message=message),
        model="gpt-4o-mini",
        prompt_version="p",
    )
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.jsonl").write_text(old.model_dump_json(warnings=False) + "\n", encoding="utf-8")
    assert SK_KEY in (out / "results.jsonl").read_text(encoding="utf-8")
    assert cli.main(["report", str(out)]) == 0
    capsys.readouterr()
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "answered HTTP 502" in page and not _leaks(page, SK_KEY)
    assert REDACTED in page


@pytest.mark.parametrize("kind", ["html", "json"])
def test_recording_against_an_echoing_endpoint_stores_no_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    echo_server: Any,
    kind: str,
) -> None:
    """``extractor record`` keeps whatever a 200 answer says; one that echoes the key is kept without it
    (a web page as text, JSON still as JSON)."""
    echo_server.status, echo_server.kind = 200, kind
    drop, fixtures = tmp_path / "drop", tmp_path / "fixtures"
    drop.mkdir()
    (drop / "a.txt").write_text("The mayor said “we will rebuild” on Monday.\n", encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", ODD_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{echo_server.server_address[1]}/v1")
    argv = ["record", str(drop), "--fixtures", str(fixtures), "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 2
    shown = "".join(capsys.readouterr())
    assert "did not answer as an OpenAI-compatible API" in shown and not _leaks(shown, ODD_KEY)
    recorded = [p for p in fixtures.rglob("*.json") if p.name != "settings.json"]
    assert recorded  # the exchange is kept (what the endpoint said), scrubbed
    for path in recorded:
        text = path.read_text(encoding="utf-8")
        assert "you sent: authorization: [REDACTED]" in text and not _leaks(text, ODD_KEY), text
        response = json.loads(text)["exchanges"][0]["response"]
        assert ("text" in response) == (kind == "html") and ("body" in response) == (kind == "json"), response
