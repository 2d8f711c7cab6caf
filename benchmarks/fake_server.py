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

With ``--messy`` the answers drift the way real models' do (``messy_answer``: unattributed quotes, enum case
and whitespace, extra and missing keys; for about half of the articles also an impossible date and an
invented quote; re-asks get the same answer) and first attempts meet transport faults (``messy_fault``: a
503, or the connection dropped without an answer).

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
    "messy_answer",
    "messy_fault",
    "run_in_thread",
    "start_server",
    "synthetic_extraction",
]

HOST = "127.0.0.1"
WINDOW_S = 60.0
FAULT_KINDS: tuple[str, ...] = (
    "429",
    "500",
    "503",
    "timeout",
    "malformed",
    "truncated",
    "schema-invalid",
    "ungrounded",
)
DEFAULT_FAULTS: tuple[str, ...] = ("429", "500", "503", "timeout", "malformed", "truncated")
OPEN_TAG = "<article_text>"
CLOSE_TAG = "</article_text>"

Mode = Literal["tools", "json_schema", "json", "md_json"]
BatchOutcome = Literal["completed", "expired", "failed"]
UNGROUNDED_QUOTE = "words this article never printed (injected fault)"

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
    messy: bool = False
    shutdown_timeout: float = 1.0
    batch_steps: int = 1
    batch_outcome: BatchOutcome = "completed"

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
        if self.batch_steps < 0:
            raise ValueError("batch_steps must be >= 0")
        if self.batch_outcome not in ("completed", "expired", "failed"):
            raise ValueError(f"unknown batch_outcome {self.batch_outcome!r}")
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
            rejects = ArticleExtraction.model_validate(data).schema_rejects
            if rejects:
                raise ValueError("; ".join(f"{r.kind} {r.field}: {r.reason}" for r in rejects))
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


# --------------------------------------------------------------------------- messy answers

MESSY_BAD_DATE = "2025-13-45"
MESSY_INVENTED_QUOTE = "We will never accept any of this, whatever it costs us"
# One harmless drift per item, in turn; each is what ArticleExtraction's repair must undo.
_MESSY_DRIFT: dict[str, tuple[str, ...]] = {
    "events": ("event_type_case", "extra_key", "date_text_missing", "location_empty"),
    "quotes": ("speaker_null", "cue_missing", "extra_key", "speaker_empty", "cue_null_text"),
    "stances": ("polarity_case", "extra_key"),
}
_MESSY_FIELD = {
    "event_type_case": "event_type",
    "polarity_case": "polarity",
    "extra_key": "confidence",
    "date_text_missing": "date_text",
    "location_empty": "location",
    "speaker_null": "speaker",
    "speaker_empty": "speaker",
    "cue_missing": "cue",
    "cue_null_text": "cue",
}


@dataclass(frozen=True)
class MessyChange:
    """One change ``messy_answer`` made to item ``index`` of list ``key`` (``index`` None: an added item)."""

    key: str
    index: int | None
    change: str
    field: str
    bad: bool  # no repair can save the item: it must end in ``rejected``


def messy_answer(payload: str, sha: str) -> tuple[str, list[MessyChange]]:
    """``payload`` (a clean answer's JSON) as a drifting model sends it, and what was changed.

    Every item gets one harmless drift, in turn (``_MESSY_DRIFT``: an enum value lower-cased with a
    leading space or capitalised, an extra ``confidence`` key, an optional key missing, ``""`` or
    ``"null"``, an unattributed quote), and the answer an extra top-level key. About half of the articles
    (by ``sha``) also get an impossible date on their last event and an invented quote. Deterministic."""
    data = json.loads(payload)
    changes: list[MessyChange] = []
    turn = int(_unit("messy-turn", sha) * 997)
    for key, drifts in _MESSY_DRIFT.items():
        for index, item in enumerate(data.get(key) or []):
            change = drifts[(index + turn) % len(drifts)]
            field_name = _MESSY_FIELD[change]
            if change in ("event_type_case", "polarity_case"):
                value = str(item[field_name])
                item[field_name] = " " + value.lower() if change == "event_type_case" else value.capitalize()
            elif change == "extra_key":
                item["confidence"] = 0.8
            elif change in ("date_text_missing", "cue_missing"):
                item.pop(field_name, None)
            elif change in ("location_empty", "speaker_empty"):
                item[field_name] = ""
            elif change == "speaker_null":
                item[field_name] = None
            else:  # cue_null_text
                item[field_name] = "null"
            changes.append(MessyChange(key, index, change, field_name, bad=False))
    if _unit("messy-bad", sha) < 0.5:
        if data.get("events"):
            last = len(data["events"]) - 1
            data["events"][last]["date"] = MESSY_BAD_DATE
            changes.append(MessyChange("events", last, "impossible_date", "date", bad=True))
        data.setdefault("quotes", []).append(
            {"text": MESSY_INVENTED_QUOTE, "speaker": "a minister", "cue": None}
        )
        changes.append(MessyChange("quotes", None, "invented_quote", "text", bad=True))
    data["notes"] = "extracted carefully"
    return json.dumps(data, ensure_ascii=False), changes


def messy_fault(sha: str) -> str | None:
    """The transport fault ``--messy`` gives an article's first attempt: "503", "drop" or None."""
    unit = _unit("messy-fault", sha)
    return "503" if unit < 0.2 else "drop" if unit < 0.4 else None


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


def _faulty(body: dict[str, Any], mode: Mode, payload: str, fault: str | None) -> tuple[str, str]:
    """The answer text and finish_reason after a content fault (and the request's max_tokens)."""
    finish_reason = "tool_calls" if mode == "tools" else "stop"
    if fault == "malformed":
        payload = payload[1:]  # no opening brace: not JSON
    elif fault == "schema-invalid":
        data = json.loads(payload)
        data.pop("quotes", None)
        payload = json.dumps(data, ensure_ascii=False)
    elif fault == "ungrounded":
        data = json.loads(payload)
        data["quotes"] = [*data["quotes"], {"text": UNGROUNDED_QUOTE, "speaker": "Nobody", "cue": None}]
        payload = json.dumps(data, ensure_ascii=False)
    if fault == "truncated":
        payload = payload[: len(payload) // 2]
        finish_reason = "length"
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int) and limit > 0 and _tokens(len(payload)) > limit:
        payload = payload[: limit * 4]
        finish_reason = "length"
    return payload, finish_reason


def _error_body(message: str, type_: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


class FakeServer:
    """State and handlers of one server; ``app()`` builds the aiohttp application."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.answers: dict[str, str] | None = None
        if config.answers_dir is not None and config.articles_dir is not None:
            self.answers = load_answers(config.answers_dir, config.articles_dir)
        # The Batch API's files and batches (kept by ``reset``).
        self.files: dict[str, tuple[str, str, bytes]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.batch_polls: Counter[str] = Counter()
        self._serial = 0
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
        self._add_batch_routes(app)
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
        if self.config.messy:
            messy = self._messy(request, sha, attempt, payload)
            if not isinstance(messy, str):
                return messy
            payload = messy
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

        payload, finish_reason = _faulty(body, mode, payload, fault)
        return self._completion(
            body, mode, tool_name, sha, attempt, payload, finish_reason, prompt_tokens, started
        )

    def _messy(self, request: web.Request, sha: str, attempt: int, payload: str) -> web.Response | str:
        """``--messy``: a first attempt's transport fault (a 503 response, or the connection dropped with
        no response), else the answer as a drifting model gives it (re-asks get the same)."""
        fault = messy_fault(sha) if attempt == 1 else None
        if fault is not None:
            self.stats.faults[fault] += 1
        if fault == "503":
            return self._error(503, "The server is overloaded (messy fault).", "service_unavailable")
        if fault == "drop":
            self.stats.by_status["dropped"] += 1
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)  # never reaches the client
        return messy_answer(payload, sha)[0]

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

    # ----------------------------------------------------------------- files and batches (Batch API)
    #
    # POST /v1/files (multipart: purpose, file), GET /v1/files/{id}/content, POST /v1/batches,
    # GET /v1/batches, GET /v1/batches/{id}, POST /v1/batches/{id}/cancel. Every GET of a batch moves it
    # on: ``batch_steps`` GETs in "validating", as many in "in_progress", then it ends as
    # ``batch_outcome``: "completed" (every line answered like a chat completion, first-attempt faults
    # included: transport faults go to the error file; "truncated" answers half the JSON with
    # finish_reason "length", and any answer longer than the line's max_tokens is cut the same way, so
    # a follow-up line with a larger max_tokens gets it whole), "expired" (the first half answered, the rest
    # in the error file with code batch_expired) or "failed" (no files, ``errors`` says why). An input
    # file with a bad line (not JSON, no custom_id, a repeated custom_id, another url) fails the batch.

    def _add_batch_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/files", self.upload_file)
        app.router.add_get("/v1/files/{file_id}/content", self.file_content)
        app.router.add_post("/v1/batches", self.create_batch)
        app.router.add_get("/v1/batches", self.list_batches)
        app.router.add_get("/v1/batches/{batch_id}", self.get_batch)
        app.router.add_post("/v1/batches/{batch_id}/cancel", self.cancel_batch)

    def _new_id(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-{hashlib.sha256(f'{prefix}{self._serial}'.encode()).hexdigest()[:24]}"

    def _add_file(self, name: str, purpose: str, data: bytes) -> str:
        file_id = self._new_id("file")
        self.files[file_id] = (name, purpose, data)
        return file_id

    async def upload_file(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, web.FileField) or purpose != "batch":
            return self._error(
                400, "expected multipart fields purpose=batch and file", "invalid_request_error"
            )
        data = upload.file.read()
        file_id = self._add_file(upload.filename, "batch", data)
        return self._respond(
            200,
            {
                "id": file_id,
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": upload.filename,
                "purpose": "batch",
            },
        )

    async def file_content(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["file_id"])
        if found is None:
            return self._error(404, "No such file", "invalid_request_error")
        self.stats.by_status["200"] += 1
        return web.Response(body=found[2], content_type="application/octet-stream")

    async def create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        file_id = body.get("input_file_id")
        if file_id not in self.files:
            return self._error(404, f"No such file: {file_id}", "invalid_request_error")
        if body.get("endpoint") != "/v1/chat/completions" or body.get("completion_window") != "24h":
            return self._error(
                400, "endpoint must be /v1/chat/completions, completion_window 24h", "invalid_request_error"
            )
        batch_id = self._new_id("batch")
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "errors": None,
            "input_file_id": file_id,
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(time.time()),
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": body.get("metadata") or {},
        }
        return self._respond(200, self.batches[batch_id])

    async def list_batches(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "20"))
        data = sorted(self.batches.values(), key=lambda b: b["created_at"], reverse=True)[:limit]
        return self._respond(200, {"object": "list", "data": data, "has_more": len(self.batches) > limit})

    async def cancel_batch(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return self._error(404, "No such batch", "invalid_request_error")
        if batch["status"] in ("validating", "in_progress"):
            batch["status"] = "cancelling"
        return self._respond(200, batch)

    async def get_batch(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return self._error(404, "No such batch", "invalid_request_error")
        self._advance(batch)
        return self._respond(200, batch)

    def _advance(self, batch: dict[str, Any]) -> None:
        if batch["status"] == "cancelling":
            batch["status"] = "cancelled"
            return
        if batch["status"] not in ("validating", "in_progress"):
            return
        self.batch_polls[batch["id"]] += 1
        polls, steps = self.batch_polls[batch["id"]], self.config.batch_steps
        lines, problem = _batch_lines(self.files[batch["input_file_id"]][2])
        batch["request_counts"]["total"] = len(lines)
        if problem is not None or (self.config.batch_outcome == "failed" and polls > steps):
            batch["status"] = "failed"
            message = problem or "the batch failed (injected)"
            batch["errors"] = {"object": "list", "data": [{"code": "invalid_request", "message": message}]}
        elif polls <= steps:
            batch["status"] = "validating"
        elif polls <= 2 * steps:
            batch["status"] = "in_progress"
        else:
            self._finish_batch(batch, lines)

    def _finish_batch(self, batch: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        expired = self.config.batch_outcome == "expired"
        answered = lines[: len(lines) // 2] if expired else lines
        output: list[bytes] = []
        errors: list[bytes] = []
        for line in answered:
            status, body = self._batch_answer(line["body"])
            record = {
                "id": self._new_id("batch_req"),
                "custom_id": line["custom_id"],
                "response": {"status_code": status, "request_id": self._new_id("req"), "body": body},
                "error": None,
            }
            (output if status == 200 else errors).append(
                json.dumps(record, ensure_ascii=False).encode() + b"\n"
            )
        for line in lines[len(answered) :]:
            record = {
                "id": self._new_id("batch_req"),
                "custom_id": line["custom_id"],
                "response": None,
                "error": {
                    "code": "batch_expired",
                    "message": "This request could not be executed before the completion window expired.",
                },
            }
            errors.append(json.dumps(record).encode() + b"\n")
        if output:
            batch["output_file_id"] = self._add_file("batch_output.jsonl", "batch_output", b"".join(output))
        if errors:
            batch["error_file_id"] = self._add_file("batch_errors.jsonl", "batch_output", b"".join(errors))
        batch["request_counts"].update(completed=len(output), failed=len(errors))
        batch["status"] = "expired" if expired else "completed"

    def _batch_answer(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """(status, body) of one batch line, answered as a chat completion would be."""
        started = time.monotonic()
        self.stats.requests += 1
        try:
            mode, tool_name = _detect_mode(body)
        except RequestError as exc:
            return exc.status, _error_body(exc.message, exc.type, exc.code)
        text = extract_article_text(body.get("messages"))
        if text is None:
            return 400, _error_body(
                f"no user message with a {OPEN_TAG} ... {CLOSE_TAG} block", "invalid_request_error"
            )
        sha = text_sha256(text)
        payload = synthetic_extraction(text) if self.answers is None else self.answers.get(sha)
        if payload is None:
            return 404, _error_body(f"no answer for the article with sha256 {sha}", "invalid_request_error")
        self.attempts[sha] += 1
        attempt = self.attempts[sha]
        self.stats.by_mode[mode] += 1
        fault = self._fault_for(sha) if attempt == 1 else None
        if fault is not None:
            self.stats.faults[fault] += 1
        if fault in ("429", "500", "503", "timeout"):
            status = 504 if fault == "timeout" else int(fault)
            return status, _error_body(f"injected fault {fault}", "server_error")
        payload, finish_reason = _faulty(body, mode, payload, fault)
        prompt_tokens = _tokens(_prompt_chars(body))
        response = self._completion(
            body, mode, tool_name, sha, attempt, payload, finish_reason, prompt_tokens, started
        )
        assert isinstance(response.body, bytes)
        return 200, json.loads(response.body)


def _batch_lines(data: bytes) -> tuple[list[dict[str, Any]], str | None]:
    """The lines of a batch input file, or the first problem that fails the batch."""
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            return [], f"line {number} is not JSON"
        if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str):
            return [], f"line {number} has no custom_id"
        if line["custom_id"] in seen:
            return [], f"line {number}: custom_id {line['custom_id']!r} is not unique"
        if line.get("method") != "POST" or line.get("url") != "/v1/chat/completions":
            return [], f"line {number}: method must be POST and url /v1/chat/completions"
        if not isinstance(line.get("body"), dict):
            return [], f"line {number} has no body"
        seen.add(line["custom_id"])
        lines.append(line)
    return lines, None


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
    parser.add_argument(
        "--messy", action="store_true", help="drifting answers and transport faults (see messy_answer)"
    )
    parser.add_argument(
        "--batch-steps", type=int, default=1, help="batch GETs spent validating, then in progress"
    )
    parser.add_argument(
        "--batch-outcome",
        choices=["completed", "expired", "failed"],
        default="completed",
        help="how batches end",
    )
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
            messy=args.messy,
            batch_steps=args.batch_steps,
            batch_outcome=args.batch_outcome,
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
