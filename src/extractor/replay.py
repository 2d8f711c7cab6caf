"""Record and replay model exchanges in the OpenAI wire format.

A recording is ``<dir>/<key>.json`` where ``key`` is the request's cache key (extractor.cache), holding
every answered exchange made for it in order (the first request, then any re-ask): the request body and
the response status, body (its text when it was not JSON) and a few harmless headers. Failed attempts
(non-200) are retried live and not stored, so a request that never got an answer leaves no recording
and its replay says so. Request headers are never stored, so neither
``Authorization`` nor ``api-key`` / organization / project headers can land in a fixture; keys in URL
query strings are removed; a response body that is not JSON, or that echoes the request's key, is stored
scrubbed (``extractor.errors.redact``). ``<dir>/settings.json`` keeps the settings the recordings were
made with, so a replay computes the same keys.

``ReplayTransport`` answers the openai client's HTTP from recordings and never touches the network. A
request with no recording, or a recording that is malformed or does not hold this request, fails that
article with a ReplayError naming the article, key or file.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from extractor.config import scrub_url as scrub_text_url
from extractor.errors import ReplayError, redact

__all__ = [
    "KEY_HEADER",
    "RecordingTransport",
    "ReplayTransport",
    "load_recorded_settings",
    "mismatched_recordings",
    "save_recorded_settings",
    "scrub_url",
    "stale_recordings",
]

KEY_HEADER = "x-extractor-key"
ARTICLE_HEADER = "x-extractor-article"
SETTINGS_FILE = "settings.json"
_KEEP_RESPONSE_HEADERS = ("content-type", "retry-after", "retry-after-ms")
_KEY_RE = re.compile(r"^[0-9a-f]{64}$")


def scrub_url(url: httpx.URL) -> str:
    """The URL without credentials or secret-looking query parameters."""
    return scrub_text_url(str(url))


def _answer_text(message: Mapping[str, Any]) -> str:
    """What a model answer said: its content and every tool call's arguments."""
    calls = message.get("tool_calls") or []
    args = [c.get("function", {}).get("arguments") for c in calls if isinstance(c, dict)]
    return json.dumps([message.get("content") or "", args], ensure_ascii=False)


def _fingerprint(body: dict[str, Any]) -> str:
    """What must match for a recorded exchange to answer a request: everything but the re-ask turns'
    wording (which embeds library error text), plus how many turns there are and the earlier answers
    the re-ask carries (a second re-ask has as many turns as the first; only its answer differs)."""
    messages = body.get("messages") or []
    stable = {k: v for k, v in body.items() if k != "messages"}
    answers = [_answer_text(m) for m in messages[2:] if isinstance(m, dict) and m.get("role") == "assistant"]
    return json.dumps([stable, messages[:2], len(messages), answers], sort_keys=True, ensure_ascii=False)


def _request_key(request: httpx.Request) -> tuple[str, str]:
    key = request.headers.get(KEY_HEADER, "")
    if not _KEY_RE.match(key):
        raise ReplayError(f"request to {request.url.path} carries no extractor key; cannot replay it")
    return key, request.headers.get(ARTICLE_HEADER, "?")


@dataclass
class _Recording:
    path: Path
    data: dict[str, Any]


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReplayError(f"recording {path} is unreadable: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("exchanges"), list):
        raise ReplayError(f"recording {path} has no exchanges list")
    for i, exchange in enumerate(data["exchanges"], start=1):
        problem = _exchange_problem(exchange)
        if problem:
            raise ReplayError(f"recording {path}: exchange {i} {problem}; re-record it (extractor record)")
    return data


def _exchange_problem(exchange: Any) -> str | None:
    """Why a stored exchange cannot be replayed, or None."""
    if not isinstance(exchange, dict):
        return "is not an object"
    request, response = exchange.get("request"), exchange.get("response")
    if not isinstance(request, dict) or not isinstance(request.get("body"), dict):
        return "has no request body"
    if not isinstance(response, dict):
        return "has no response"
    if not isinstance(response.get("status"), int) or isinstance(response.get("status"), bool):
        return f"has no integer response status (found {response.get('status')!r})"
    if not isinstance(response.get("headers", {}), dict):
        return "has response headers that are not an object"
    if "body" not in response and not isinstance(response.get("text"), str):
        return "has neither a response body nor a response text"
    return None


class ReplayTransport(httpx.AsyncBaseTransport):
    """Answers requests from ``<directory>/<key>.json``; nothing goes to the network."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ReplayError(f"no recordings folder at {self.directory}")
        self.served = 0
        self._turns: dict[tuple[str, str], int] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key, article = _request_key(request)
        path = self.directory / f"{key}.json"
        if not path.exists():
            raise ReplayError(
                f"no recorded response for {article} (key {key[:12]}…); record it with a live model: "
                f"extractor record PATHS --fixtures {self.directory}"
            )
        data = _load(path)
        body = json.loads(await request.aread() or b"{}")
        want = _fingerprint(body)
        matches = [e for e in data["exchanges"] if _fingerprint(e["request"]["body"]) == want]
        if matches:
            # The same request recorded twice (a re-ask whose answer repeated the one before): serve
            # the exchanges in the order they were made.
            turn = self._turns.get((key, want), 0)
            self._turns[(key, want)] = turn + 1
            response = matches[turn % len(matches)]["response"]
            self.served += 1
            if "body" in response:
                content = json.dumps(response["body"]).encode("utf-8")
            else:  # a response that was not JSON, served as it came
                content = response["text"].encode("utf-8")
            return httpx.Response(
                status_code=response["status"],
                headers={"content-type": "application/json", **response.get("headers", {})},
                content=content,
                request=request,
            )
        raise ReplayError(
            f"recording {path.name} for {article} is stale: no recorded request matches this one "
            f"(turn {len(body.get('messages') or [])}); re-record it (extractor record)"
        )


def _credentials(request: httpx.Request) -> list[str]:
    """The secrets a request carries in its headers (the key without its auth scheme)."""
    found = []
    for name in ("authorization", "api-key", "x-api-key"):
        value = request.headers.get(name, "")
        scheme, _, token = value.partition(" ")
        found.append(token if token and scheme.lower() in ("bearer", "basic") else value)
    return [v for v in found if v]


def _stored_body(content: bytes, secrets: list[str]) -> dict[str, Any]:
    """A response body as stored: ``{"body": json}``, or ``{"text": ...}`` when it is not JSON; scrubbed
    (``redact``) when it is not JSON (an error page may echo the request's headers) or holds one of
    ``secrets``."""
    text = content.decode("utf-8", "replace")
    try:
        body = json.loads(content)
    except ValueError:
        return {"text": redact(text, *secrets)}
    if any(secret in text for secret in secrets):  # an answer that echoes the key: scrub, keep the shape
        try:
            return {"body": json.loads(redact(text, *secrets))}
        except ValueError:
            return {"text": redact(text, *secrets)}
    return {"body": body}


class RecordingTransport(httpx.AsyncBaseTransport):
    """Passes requests to a live endpoint and appends each exchange to ``<directory>/<key>.json``."""

    def __init__(self, directory: Path | str, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.inner = inner or httpx.AsyncHTTPTransport()
        self._lock = asyncio.Lock()
        self._fresh: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key, article = _request_key(request)
        body = json.loads(await request.aread() or b"{}")
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        stored: dict[str, Any] = {
            "status": response.status_code,
            "headers": {h: response.headers[h] for h in _KEEP_RESPONSE_HEADERS if h in response.headers},
            **_stored_body(content, _credentials(request)),
        }
        exchange = {
            "request": {"method": request.method, "url": scrub_url(request.url), "body": body},
            "response": stored,
        }
        if response.status_code == 200:  # failed attempts are retried live, not replayed
            async with self._lock:
                path = self.directory / f"{key}.json"
                if key not in self._fresh or not path.exists():
                    # A key's first exchange in this run replaces what an earlier recording held.
                    data: dict[str, Any] = {"key": key, "article_id": article, "exchanges": []}
                    self._fresh.add(key)
                else:
                    data = _load(path)
                data["exchanges"].append(exchange)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
                os.replace(tmp, path)
        return httpx.Response(
            status_code=response.status_code, headers=response.headers, content=content, request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def save_recorded_settings(directory: Path | str, settings: dict[str, Any]) -> None:
    """Remember the settings that enter the key (``config.answer_settings``)."""
    path = Path(directory) / SETTINGS_FILE
    path.write_text(json.dumps(settings, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def load_recorded_settings(directory: Path | str) -> dict[str, Any]:
    """The settings saved by ``save_recorded_settings`` ({} when none)."""
    path = Path(directory) / SETTINGS_FILE
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReplayError(f"{path} is unreadable: {exc}") from exc
    return data if isinstance(data, dict) else {}


def stale_recordings(directory: Path | str, current_keys: Iterable[str]) -> list[Path]:
    """Recordings whose key no request the current prompt renders would use."""
    keys = set(current_keys)
    return sorted(p for p in Path(directory).glob("*.json") if p.name != SETTINGS_FILE and p.stem not in keys)


def mismatched_recordings(
    directory: Path | str,
    expected: Mapping[str, tuple[str, list[dict[str, str]]]],
    *,
    exact: bool = True,
) -> list[tuple[Path, str]]:
    """Recordings under a current key whose content does not answer that request: unreadable, no
    exchanges, another model, or a first request whose messages differ from the rendered ones
    (``expected``: key -> (model, messages)). Each with a one-line reason.

    ``exact=False`` for modes where instructor adds to the messages (the schema in the system
    message, a formatting line in the user's): each rendered message must then be contained in the
    sent message of the same role and place."""
    found: list[tuple[Path, str]] = []
    for key, (model, messages) in sorted(expected.items()):
        path = Path(directory) / f"{key}.json"
        if not path.exists():
            continue
        try:
            data = _load(path)
        except ReplayError as exc:
            found.append((path, str(exc)))
            continue
        if not data["exchanges"]:
            found.append((path, "holds no exchanges"))
            continue
        body = data["exchanges"][0].get("request", {}).get("body", {})
        sent = [{"role": m.get("role"), "content": m.get("content")} for m in body.get("messages") or []]
        turn = _first_difference(sent, messages, exact)
        if body.get("model") != model:
            found.append((path, f"recorded for model {body.get('model')!r}, not {model!r}"))
        elif turn is not None:
            found.append((path, f"its first request differs from the rendered prompt at message {turn + 1}"))
    return found


def _first_difference(sent: list[dict[str, Any]], rendered: list[dict[str, str]], exact: bool) -> int | None:
    for i, want in enumerate(rendered):
        got = sent[i] if i < len(sent) else {}
        content = got.get("content")
        if exact and got != want:
            return i
        if got.get("role") != want["role"] or not isinstance(content, str) or want["content"] not in content:
            return i
    return None
