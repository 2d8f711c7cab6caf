"""A local OpenAI-compatible chat-completions server for benchmarks and fixture recording.

Binds 127.0.0.1 only. ``POST /v1/chat/completions`` (or ``/chat/completions``) answers the body the
``openai`` client sends through ``instructor`` with a full ``chat.completion`` object, in the shape
instructor's mode expects, detected from the request:

- ``tools`` present (Mode.TOOLS / TOOLS_STRICT): ``message.tool_calls[0].function.arguments`` is the JSON
  string, ``function.name`` the requested tool, ``content`` null, ``finish_reason`` "tool_calls".
- ``response_format.type == "json_schema"`` (JSON_SCHEMA) or ``"json_object"`` (JSON): ``content`` is the
  JSON text, ``finish_reason`` "stop".
- neither (MD_JSON): ``content`` is the JSON inside a ```` ```json ```` fence, ``finish_reason`` "stop".

The article is the text between a line ``<article_text>`` and a line ``</article_text>`` in the first
user message that has such a block (the last block of that message); the system prompt's worked example
is never used. The answer is either synthetic (default: a valid ``ArticleExtraction`` built from the
article so that grounding succeeds) or, with ``--answers DIR --articles DIR``, the answer file
``DIR/<article id>.json`` of the article whose text the request carries (matched by sha256 of the text;
no match is a 404).

Latency (``--latency``, ``--jitter``), sliding-window rate limits (``--rpm``, ``--tpm``; 429 with
``Retry-After``/``retry-after-ms``; ``x-ratelimit-*`` headers on every response while a limit is set;
``--window-s`` enforces them over a shorter sliding window, ``rpm * window_s / 60`` requests in any
``window_s`` seconds, the way providers quantise a per-minute limit) and fault injection on first
attempts (``--fault-rate``, ``--faults``) make it a stand-in for the real API.
``GET /stats`` returns counters; ``POST /stats/reset`` resets counters, first-attempt memory and the
rate-limit windows.

    python benchmarks/fake_server.py --port 0 --latency 1.5 --rpm 500
    # prints: listening on http://127.0.0.1:PORT   (use base_url http://127.0.0.1:PORT/v1)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import json
import re
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from extractor.articles import load_articles
from extractor.models import Article, ArticleExtraction, LoadError, text_sha256

__all__ = [
    "FAULT_KINDS",
    "HOST",
    "FakeServer",
    "ServerConfig",
    "extract_article_text",
    "load_answers",
    "main",
    "run_in_thread",
    "start_server",
    "synthetic_extraction",
]

HOST = "127.0.0.1"
WINDOW_S = 60.0
FAULT_KINDS: tuple[str, ...] = ("429", "500", "503", "timeout", "malformed", "truncated", "schema-invalid")
DEFAULT_FAULTS: tuple[str, ...] = ("429", "500", "503", "timeout", "malformed", "truncated")
OPEN_TAG = "<article_text>"
CLOSE_TAG = "</article_text>"

Mode = Literal["tools", "json_schema", "json", "md_json"]

_ARTICLE_BLOCK = re.compile(r"^<article_text>\n(?:(.*?)\n)?</article_text>$", re.MULTILINE | re.DOTALL)


class RequestError(Exception):
    """A request the server answers with an OpenAI-style error body."""

    def __init__(
        self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code


@dataclass(frozen=True)
class ServerConfig:
    """Everything the server does; ``port=0`` picks a free port."""

    port: int = 0
    host: str = HOST
    model_name: str | None = None
    answers_dir: Path | None = None
    articles_dir: Path | None = None
    latency: float = 0.0
    jitter: float = 0.0
    rpm: int | None = None
    tpm: int | None = None
    window_s: float = WINDOW_S
    fault_rate: float = 0.0
    faults: tuple[str, ...] = DEFAULT_FAULTS
    fault_seed: int = 0
    fault_retry_after: float = 1.0
    timeout_hold: float = 30.0
    created: int | None = None
    shutdown_timeout: float = 1.0

    def __post_init__(self) -> None:
        if self.host != HOST:
            raise ValueError(f"the fake server binds {HOST} only, not {self.host!r}")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"bad port {self.port}")
        if self.latency < 0 or self.jitter < 0 or self.timeout_hold < 0 or self.fault_retry_after < 0:
            raise ValueError("latency, jitter, timeout_hold and fault_retry_after must be >= 0")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be within [0, 1], got {self.fault_rate}")
        if self.fault_rate > 0 and not self.faults:
            raise ValueError("fault_rate > 0 needs at least one fault kind")
        unknown = sorted(set(self.faults) - set(FAULT_KINDS))
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(FAULT_KINDS)}")
        for name in ("rpm", "tpm"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0 (omit it for no limit)")
        if not 0 < self.window_s <= WINDOW_S:
            raise ValueError(f"window_s must be within (0, {WINDOW_S:g}], got {self.window_s}")
        if (self.answers_dir is None) != (self.articles_dir is None):
            raise ValueError("answers_dir and articles_dir go together")


# --------------------------------------------------------------------------- content


def extract_article_text(messages: Any) -> str | None:
    """The article text of a chat request (see the module docstring), or None if there is none."""
    if not isinstance(messages, list):
        return None
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        parts: list[str] = []
        if isinstance(content, str):
            parts = [content]
        elif isinstance(content, list):
            parts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        for part in parts:
            matches = list(_ARTICLE_BLOCK.finditer(part))
            if matches:
                return matches[-1].group(1) or ""
    return None


def _neutralise(text: str) -> str:
    """What extractor.prompts does to an article before it goes between the delimiters."""
    return text.replace(CLOSE_TAG, "</article-text>").replace(OPEN_TAG, "<article-text>")


_SENTENCE_END = re.compile(r"[.!?…][\"”’)\]]*(?=\s|$)")
_QUOTED = re.compile(r"“([^”\n]{1,2000})”|\"([^\"\n]{1,2000})\"")
_NAME = re.compile(r"\b[A-Z][\w’'.-]*(?:\s+(?:of\s+|the\s+)?[A-Z][\w’'.-]*)+")
_ISO_DATE = re.compile(r"\b(\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]))\b")
_EVENT_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind)
    for pattern, kind in (
        (r"\b(?:meet|meeting|met|talks|summit)\b", "CONSULT"),
        (r"\bagree", "AGREE"),
        (r"\bsanction", "SANCTION"),
        (r"\b(?:reject|rule[sd]? out)", "REJECT"),
        (r"\battack", "ASSAULT"),
        (r"\bprotest", "PROTEST"),
    )
)
_NAME_STOPWORDS = frozenset(
    {"A", "An", "The", "At", "In", "On", "As", "After", "Before", "While", "When", "But"}
)
_MAX_EVIDENCE = 300


def _first_sentence(text: str) -> str | None:
    """The article's first sentence (verbatim, at most ~300 characters), or None for a blank text."""
    stripped = text.lstrip()
    if not stripped:
        return None
    start = len(text) - len(stripped)
    line_end = text.find("\n", start)
    line_end = len(text) if line_end < 0 else line_end
    match = _SENTENCE_END.search(text, start, line_end)
    end = match.end() if match else line_end
    if end - start > _MAX_EVIDENCE:
        cut = text.rfind(" ", start, start + _MAX_EVIDENCE)
        end = cut if cut > start else start + _MAX_EVIDENCE
    return text[start:end].rstrip()


def _names(text: str, limit: int) -> list[str]:
    found: list[str] = []
    for match in _NAME.finditer(text):
        words = match.group(0).rstrip(".’'-").split()
        while words and (words[0] in _NAME_STOPWORDS or words[0].islower()):
            words.pop(0)
        name = " ".join(words)
        if len(words) >= 2 and name not in found:
            found.append(name)
        if len(found) == limit:
            break
    return found


@functools.lru_cache(maxsize=4096)
def synthetic_extraction(text: str) -> str:
    """A deterministic, schema-valid ``ArticleExtraction`` JSON whose quotes and evidence are verbatim.

    One event and one stance whose evidence is the first sentence; one quote per text inside “ ” or
    " " (the first three)."""
    events: list[dict[str, Any]] = []
    stances: list[dict[str, Any]] = []
    sentence = _first_sentence(text)
    if sentence:
        actors = _names(sentence, 3)
        event_type = next((kind for pattern, kind in _EVENT_WORDS if pattern.search(sentence)), "OTHER")
        date = _ISO_DATE.search(sentence)
        events.append(
            {
                "summary": sentence[:200].rstrip(),
                "event_type": event_type,
                "date": date.group(1) if date else None,
                "date_text": date.group(1) if date else None,
                "location": None,
                "actors": actors,
                "evidence": sentence,
            }
        )
        stances.append(
            {
                "holder": actors[0] if actors else "the article",
                "target": "what the first sentence reports",
                "polarity": "neutral",
                "evidence": sentence,
            }
        )
    quotes: list[dict[str, Any]] = []
    for match in _QUOTED.finditer(text):
        quoted = match.group(1) if match.group(1) is not None else match.group(2)
        if not quoted.strip():
            continue
        line_start = text.rfind("\n", 0, match.start()) + 1
        line_end = text.find("\n", match.end())
        context = (
            text[line_start : match.start()]
            + " "
            + text[match.end() : len(text) if line_end < 0 else line_end]
        )
        speakers = _names(context, 1)
        quotes.append({"text": quoted, "speaker": speakers[0] if speakers else "unknown", "cue": None})
        if len(quotes) == 3:
            break
    extraction = ArticleExtraction.model_validate({"events": events, "quotes": quotes, "stances": stances})
    return extraction.model_dump_json()


def load_answers(answers_dir: Path, articles_dir: Path) -> dict[str, str]:
    """Map sha256(article text as it appears in a prompt) -> answer JSON, pairing ``answers_dir/<id>.json``
    with the article of that id loaded from ``articles_dir`` by extractor.articles.

    Raises ValueError for an answer that is not a valid ArticleExtraction or has no article."""
    articles: dict[str, Article] = {}
    for item in load_articles([articles_dir]):
        if isinstance(item, LoadError):
            print(f"fake_server: skipping {item}", file=sys.stderr, flush=True)
        else:
            articles[item.id] = item
    answers: dict[str, str] = {}
    paths = sorted(answers_dir.glob("*.json"))
    if not paths:
        raise ValueError(f"no answer files (*.json) in {answers_dir}")
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            ArticleExtraction.model_validate(data)
        except ValueError as exc:
            raise ValueError(f"{path} is not a valid ArticleExtraction: {exc}") from exc
        article = articles.get(path.stem)
        if article is None:
            raise ValueError(f"{path}: no article with id {path.stem!r} in {articles_dir}")
        answer = json.dumps(data, ensure_ascii=False)
        text = _neutralise(article.text)
        answers[text_sha256(text)] = answer
        answers.setdefault(text_sha256(text.strip()), answer)
    return answers


# --------------------------------------------------------------------------- rate limits


def _fmt_seconds(seconds: float) -> str:
    """'0.8', '12', '0.001' - for Retry-After."""
    return f"{max(seconds, 0.001):.3f}".rstrip("0").rstrip(".")


def _fmt_reset(seconds: float) -> str:
    """OpenAI's reset format: '850ms', '1.2s', '1m0s'."""
    if seconds <= 0:
        return "0s"
    if seconds < 1:
        return f"{max(1, round(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)}m{rest:.0f}s"


def _window_share(per_minute: int | None, window_s: float) -> int | None:
    """What a per-minute limit allows in any ``window_s`` seconds (at least 1)."""
    return None if per_minute is None else max(1, int(per_minute * window_s / WINDOW_S))


class SlidingWindow:
    """Requests and tokens over the last ``window_s`` seconds (60 by default), each dimension allowed its
    per-minute limit scaled to the window; None limits are not enforced.

    Headers give the per-minute limit (what a provider states) and what is left in the window enforced."""

    def __init__(self, rpm: int | None, tpm: int | None, window_s: float = WINDOW_S) -> None:
        self.rpm = rpm
        self.tpm = tpm
        self.window_s = window_s
        self.max_requests = _window_share(rpm, window_s)
        self.max_tokens = _window_share(tpm, window_s)
        self._entries: deque[tuple[float, int]] = deque()
        self._tokens = 0

    def _expire(self, now: float) -> None:
        while self._entries and self._entries[0][0] + self.window_s <= now:
            self._tokens -= self._entries.popleft()[1]

    def admit(self, now: float, tokens: int) -> tuple[float, str] | None:
        """Record the request and return None, or return (seconds to wait, "requests"|"tokens")."""
        self._expire(now)
        window = self.window_s
        if self.max_requests is not None and len(self._entries) >= self.max_requests:
            wait = self._entries[len(self._entries) - self.max_requests][0] + window - now
            return wait, "requests"
        if self.max_tokens is not None and self._tokens + tokens > self.max_tokens:
            if tokens > self.max_tokens:
                return window, "tokens"
            excess = self._tokens + tokens - self.max_tokens
            for stamp, used in self._entries:
                excess -= used
                if excess <= 0:
                    return stamp + window - now, "tokens"
        self._entries.append((now, tokens))
        self._tokens += tokens
        return None

    def headers(self, now: float) -> dict[str, str]:
        self._expire(now)
        reset = self._entries[0][0] + self.window_s - now if self._entries else 0.0
        out: dict[str, str] = {}
        if self.rpm is not None and self.max_requests is not None:
            out["x-ratelimit-limit-requests"] = str(self.rpm)
            out["x-ratelimit-remaining-requests"] = str(max(0, self.max_requests - len(self._entries)))
            out["x-ratelimit-reset-requests"] = _fmt_reset(reset)
        if self.tpm is not None and self.max_tokens is not None:
            out["x-ratelimit-limit-tokens"] = str(self.tpm)
            out["x-ratelimit-remaining-tokens"] = str(max(0, self.max_tokens - self._tokens))
            out["x-ratelimit-reset-tokens"] = _fmt_reset(reset)
        return out


# --------------------------------------------------------------------------- server


def _tokens(chars: int) -> int:
    return max(1, -(-chars // 4))


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class Stats:
    requests: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_mode: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    started: float = field(default_factory=time.monotonic)
    first_request: float | None = None  # monotonic time the first chat request arrived
    last_response: float | None = None  # ... and the last one was answered

    def as_json(self, articles_seen: int) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": dict(self.by_status),
            "by_mode": dict(self.by_mode),
            "faults": dict(self.faults),
            "faults_total": sum(self.faults.values()),
            "rate_limited": self.rate_limited,
            "tokens": {
                "prompt": self.prompt_tokens,
                "completion": self.completion_tokens,
                "total": self.prompt_tokens + self.completion_tokens,
            },
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "articles_seen": articles_seen,
            "uptime_s": round(time.monotonic() - self.started, 3),
            # first chat request in to last answer out: the run's time as the server saw it
            "active_s": None
            if self.first_request is None or self.last_response is None
            else round(self.last_response - self.first_request, 3),
        }


def _detect_mode(body: dict[str, Any]) -> tuple[Mode, str | None]:
    """The instructor mode the request was made in and, for tools, the function name to call."""
    tools = body.get("tools")
    if tools:
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            return "tools", str(choice["function"].get("name"))
        try:
            return "tools", str(tools[0]["function"]["name"])
        except (KeyError, IndexError, TypeError) as exc:
            raise RequestError(400, "tools[0].function.name is missing") from exc
    response_format = body.get("response_format")
    if isinstance(response_format, dict):
        kind = response_format.get("type")
        if kind == "json_schema":
            return "json_schema", None
        if kind == "json_object":
            return "json", None
        if kind not in (None, "text"):
            raise RequestError(400, f"unsupported response_format type {kind!r}")
    return "md_json", None


def _prompt_chars(body: dict[str, Any]) -> int:
    chars = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content) + 16
        elif content is not None:
            chars += len(json.dumps(content, ensure_ascii=False)) + 16
    for key in ("tools", "response_format"):
        if body.get(key):
            chars += len(json.dumps(body[key], ensure_ascii=False))
    return chars


def _error_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class FakeServer:
    """State and handlers of one server; ``app()`` builds the aiohttp application."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.answers: dict[str, str] | None = None
        if config.answers_dir is not None and config.articles_dir is not None:
            self.answers = load_answers(config.answers_dir, config.articles_dir)
        self.reset()

    def reset(self) -> None:
        """Forget counters, first attempts and rate-limit windows."""
        in_flight = getattr(self, "stats", Stats()).in_flight
        self.stats = Stats(in_flight=in_flight, max_in_flight=in_flight)
        self.window = SlidingWindow(self.config.rpm, self.config.tpm, self.config.window_s)
        self.attempts: Counter[str] = Counter()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024**2)
        app.router.add_post("/v1/chat/completions", self.chat_completions)
        app.router.add_post("/chat/completions", self.chat_completions)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/models", self.models)
        for prefix in ("", "/v1"):
            app.router.add_get(f"{prefix}/stats", self.get_stats)
            app.router.add_post(f"{prefix}/stats/reset", self.reset_stats)
        return app

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats.as_json(len(self.attempts)))

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response(self.stats.as_json(0))

    async def models(self, request: web.Request) -> web.Response:
        name = self.config.model_name or "fake-model"
        return web.json_response(
            {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "fake"}]}
        )

    # ----------------------------------------------------------------- chat completions

    def _respond(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> web.Response:
        self.stats.by_status[str(status)] += 1
        all_headers = self.window.headers(time.monotonic())
        all_headers["x-request-id"] = "req_" + hashlib.sha256(f"{time.time_ns()}".encode()).hexdigest()[:24]
        if headers:
            all_headers.update(headers)
        return web.json_response(
            body, status=status, headers=all_headers, dumps=functools.partial(json.dumps, ensure_ascii=False)
        )

    def _error(
        self,
        status: int,
        message: str,
        type_: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        return self._respond(status, _error_body(message, type_, code), headers)

    async def chat_completions(self, request: web.Request) -> web.Response:
        self.stats.requests += 1
        if self.stats.first_request is None:
            self.stats.first_request = time.monotonic()
        self.stats.in_flight += 1
        self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
        try:
            return await self._chat_completions(request)
        except RequestError as exc:
            return self._error(exc.status, exc.message, exc.type, exc.code)
        except asyncio.CancelledError:
            self.stats.by_status["disconnected"] += 1
            raise
        finally:
            self.stats.in_flight -= 1
            self.stats.last_response = time.monotonic()

    async def _chat_completions(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        try:
            body = await request.json()
        except ValueError as exc:
            raise RequestError(400, f"request body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise RequestError(400, "request body must be a JSON object")
        if body.get("stream"):
            raise RequestError(400, "stream=true is not supported by the fake server")
        mode, tool_name = _detect_mode(body)
        text = extract_article_text(body.get("messages"))
        if text is None:
            raise RequestError(400, f"no user message with a {OPEN_TAG} ... {CLOSE_TAG} block")
        sha = text_sha256(text)
        if self.answers is None:
            payload = synthetic_extraction(text)
        else:
            found = self.answers.get(sha) or self.answers.get(text_sha256(text.strip()))
            if found is None:
                raise RequestError(
                    404, f"no answer for the article with sha256 {sha}", code="answer_not_found"
                )
            payload = found

        prompt_tokens = _tokens(_prompt_chars(body))
        # counted at arrival, as a provider's gateway does, not after the answer was prepared
        blocked = self.window.admit(started, prompt_tokens + _tokens(len(payload)))
        if blocked is not None:
            wait, what = blocked
            self.stats.rate_limited += 1
            return self._rate_limited(wait, f"Rate limit reached for {what} per min (fake server).", what)

        self.attempts[sha] += 1
        attempt = self.attempts[sha]
        self.stats.by_mode[mode] += 1
        fault = self._fault_for(sha) if attempt == 1 else None
        if fault is not None:
            self.stats.faults[fault] += 1
        if fault == "429":
            return self._rate_limited(
                self.config.fault_retry_after, "Rate limit reached (injected fault).", "requests"
            )

        delay = self.config.latency
        if self.config.jitter:
            delay = max(0.0, delay + self.config.jitter * (2 * _unit("jitter", sha, attempt) - 1))
        if fault == "timeout":
            delay = max(delay, self.config.timeout_hold)
        if delay:
            await asyncio.sleep(delay)

        if fault in ("500", "503"):
            status = int(fault)
            message = "The server had an error while processing your request (injected fault)."
            return self._error(status, message, "server_error" if status == 500 else "service_unavailable")

        finish_reason = "tool_calls" if mode == "tools" else "stop"
        if fault == "malformed":
            payload = payload[1:]  # no opening brace: not JSON
        elif fault == "schema-invalid":
            data = json.loads(payload)
            data.pop("quotes", None)
            payload = json.dumps(data, ensure_ascii=False)
        if fault == "truncated":
            payload = payload[: len(payload) // 2]
            finish_reason = "length"
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and limit > 0 and _tokens(len(payload)) > limit:
            payload = payload[: limit * 4]
            finish_reason = "length"
        return self._completion(
            body, mode, tool_name, sha, attempt, payload, finish_reason, prompt_tokens, started
        )

    def _fault_for(self, sha: str) -> str | None:
        config = self.config
        if config.fault_rate <= 0 or _unit(config.fault_seed, "fault", sha) >= config.fault_rate:
            return None
        return config.faults[int(_unit(config.fault_seed, "kind", sha) * len(config.faults))]

    def _rate_limited(self, wait: float, message: str, what: str) -> web.Response:
        headers = {"retry-after": _fmt_seconds(wait), "retry-after-ms": str(max(1, round(wait * 1000)))}
        return self._error(429, message, what, "rate_limit_exceeded", headers)

    def _completion(
        self,
        body: dict[str, Any],
        mode: Mode,
        tool_name: str | None,
        sha: str,
        attempt: int,
        payload: str,
        finish_reason: str,
        prompt_tokens: int,
        started: float,
    ) -> web.Response:
        ident = hashlib.sha256(f"{sha}:{attempt}:{mode}".encode()).hexdigest()
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if mode == "tools":
            message["tool_calls"] = [
                {
                    "id": f"call_{ident[:24]}",
                    "type": "function",
                    "function": {"name": tool_name, "arguments": payload},
                }
            ]
        elif mode == "md_json":
            message["content"] = f"```json\n{payload}\n```"
        else:
            message["content"] = payload
        completion_tokens = _tokens(len(payload))
        self.stats.prompt_tokens += prompt_tokens
        self.stats.completion_tokens += completion_tokens
        result = {
            "id": f"chatcmpl-{ident[:29]}",
            "object": "chat.completion",
            "created": self.config.created if self.config.created is not None else int(time.time()),
            "model": self.config.model_name or str(body.get("model") or "fake-model"),
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_fake_server",
        }
        elapsed_ms = str(round((time.monotonic() - started) * 1000))
        return self._respond(200, result, {"openai-processing-ms": elapsed_ms})


# --------------------------------------------------------------------------- running it


async def start_server(config: ServerConfig) -> tuple[web.AppRunner, int]:
    """Start serving on 127.0.0.1 in the running loop; return the runner (``await runner.cleanup()`` to
    stop) and the bound port."""
    server = FakeServer(config)
    runner = web.AppRunner(
        server.app(), handler_cancellation=True, shutdown_timeout=config.shutdown_timeout, access_log=None
    )
    await runner.setup()
    site = web.TCPSite(runner, HOST, config.port, backlog=2048)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = int(runner.addresses[0][1])
    return runner, port


@contextlib.contextmanager
def run_in_thread(config: ServerConfig) -> Iterator[str]:
    """Serve in a background thread with its own event loop; yield the base URL ``http://127.0.0.1:PORT/v1``
    (stats at ``.../v1/stats``). The server stops when the block exits."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        runner, port = await start_server(config)
        state.update(loop=asyncio.get_running_loop(), stop=stop, port=port)
        ready.set()
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    def target() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:
            state["error"] = exc
        finally:
            ready.set()

    thread = threading.Thread(target=target, name="fake-openai-server", daemon=True)
    thread.start()
    ready.wait()
    if "error" in state:
        thread.join()
        raise RuntimeError("fake server failed to start") from state["error"]
    try:
        yield f"http://{HOST}:{state['port']}/v1"
    finally:
        loop: asyncio.AbstractEventLoop = state["loop"]
        stop: asyncio.Event = state["stop"]
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(stop.set)
        thread.join()


def _parse_args(argv: Sequence[str] | None) -> ServerConfig:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default=HOST, help="must be 127.0.0.1 (the only address it binds)")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (default)")
    parser.add_argument("--model-name", help="model reported in every response (default: echo the request's)")
    parser.add_argument("--answers", "--answers-dir", type=Path, help="folder of <article id>.json answers")
    parser.add_argument(
        "--articles", "--articles-dir", type=Path, help="folder of the articles the answers are for"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--jitter", type=float, default=0.0, help="latency +/- up to this many seconds")
    parser.add_argument("--rpm", type=int, help="requests per 60-s sliding window")
    parser.add_argument("--tpm", type=int, help="tokens (prompt + completion) per 60-s sliding window")
    parser.add_argument(
        "--window-s",
        type=float,
        default=WINDOW_S,
        help="enforce --rpm/--tpm over this shorter sliding window: rpm * window_s / 60 requests in any "
        "window_s seconds (e.g. --window-s 6 --rpm 600: 60 in any 6 s)",
    )
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of first attempts that fail")
    parser.add_argument(
        "--faults",
        default=",".join(DEFAULT_FAULTS),
        help=f"comma-separated kinds from {','.join(FAULT_KINDS)}",
    )
    parser.add_argument("--fault-seed", type=int, default=0, help="changes which articles fail, and how")
    parser.add_argument("--fault-retry-after", type=float, default=1.0, help="Retry-After of injected 429s")
    parser.add_argument("--timeout-hold", type=float, default=30.0, help="seconds a 'timeout' fault holds")
    parser.add_argument("--created", type=int, help="fixed `created` timestamp (default: now)")
    args = parser.parse_args(argv)
    faults = tuple(kind.strip() for kind in args.faults.split(",") if kind.strip())
    try:
        return ServerConfig(
            port=args.port,
            host=args.host,
            model_name=args.model_name,
            answers_dir=args.answers,
            articles_dir=args.articles,
            latency=args.latency,
            jitter=args.jitter,
            rpm=args.rpm,
            tpm=args.tpm,
            window_s=args.window_s,
            fault_rate=args.fault_rate,
            faults=faults,
            fault_seed=args.fault_seed,
            fault_retry_after=args.fault_retry_after,
            timeout_hold=args.timeout_hold,
            created=args.created,
        )
    except ValueError as exc:
        parser.error(str(exc))


async def _serve_forever(config: ServerConfig) -> None:
    runner, port = await start_server(config)
    print(f"listening on http://{HOST}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    config = _parse_args(argv)
    try:
        asyncio.run(_serve_forever(config))
    except (OSError, ValueError) as exc:
        print(f"fake_server: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
