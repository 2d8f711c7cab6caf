"""Runs through OpenAI's Batch API (``extractor run --batch-api``): half the price, answers within 24 h.

Also served by Azure OpenAI and by vLLM's batch runner (any endpoint with ``/files`` and ``/batches``).
One run goes through these steps, each resumable from what it keeps in ``OUT/batch_api/``
(``state.json``: the submissions and their batch ids; ``requests.sqlite``: one row per request with its
latest answer; the input, output and error files):

1. resume: batches an earlier, stopped run submitted are polled to their end and read in -- never
   submitted again (a submission that was being created when the run stopped is looked up by its
   metadata before it is created);
2. collect and submit: every request the drop needs (one per chunk, rendered as the direct path renders
   it, body built by ``extractor.llm.request_body``) that the response cache, results.jsonl and earlier
   batches do not answer is written to an input JSONL (``custom_id`` = the article's sha256, with ``-N``
   for chunk N of a chunked article), uploaded and submitted, at most ``batch_max_requests`` per batch;
3. poll with backoff (first after ``batch_poll_s``, then each wait ``batch_poll_backoff`` times longer,
   up to ``batch_poll_max_s``) until every batch has ended (completed, expired, failed or cancelled),
   then download its output and error files. With ``batch_poll_timeout_s`` the run gives up once its
   waits add up to that long (BatchPollTimeout): the batches keep running, the next run resumes them;
4. re-asks: answers that fail validation or grounding are re-asked with instructor's re-ask messages in
   one follow-up batch per round (at most ``reasks`` rounds), or directly (``reask_direct``). An answer
   cut off at max_tokens (``finish_reason: "length"``) is asked again as the direct path does: the same
   request with ``max_tokens_retry`` (kept for that request's later re-asks), in the next round or
   directly; with no round left, or cut off again, its article fails with a TruncatedOutputError that
   names finish_reason=length;
5. the normal run (``extractor.batch.run_batch``) with a provider that answers from the batches, so
   parsing, grounding, rejects, the cache, results.jsonl and run.json are the direct path's. run.json's
   cost prices batch tokens at ``Settings.batch_price()`` and direct re-asks at the direct price.

A request whose batch failed or expired before it was answered gets an error result; the next run
submits it again (error results are retried).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from extractor import errors
from extractor.batch import BatchReporter, LogReporter, RunSummary, _load, run_batch
from extractor.config import Settings
from extractor.errors import ConfigError, ExtractorError, ParseError, TransportError, redact
from extractor.grounding import SourceIndex
from extractor.llm import Completion, GroundingCheck, OpenAIProvider, judge_answer, request_body
from extractor.models import Article, ArticleExtraction, Usage
from extractor.pipeline import Extractor, grounding_check
from extractor.ratelimit import RateLimiter
from extractor.store import RESULTS_FILE, RUN_FILE, write_json_atomic
from extractor.transport import RetryingTransport

__all__ = [
    "STATE_DIR",
    "TERMINAL",
    "BatchClient",
    "BatchInfo",
    "BatchPollTimeout",
    "cancel_batches",
    "list_batches",
    "run_batch_api",
]

STATE_DIR = "batch_api"
STATE_FILE = "state.json"
REQUESTS_DB = "requests.sqlite"
TERMINAL = frozenset({"completed", "expired", "failed", "cancelled"})
CHAT_URL = "/v1/chat/completions"
_MAX_FILE_BYTES = 190 * 1024**2  # OpenAI takes input files of up to 200 MB
_STATE_FORMAT = 1

Log = Callable[[str], None]


class BatchPollTimeout(TransportError):
    """The batches did not end within ``batch_poll_timeout_s``; they keep running and the next run over
    the same folder resumes polling them."""


# --------------------------------------------------------------------------- the API


@dataclass(frozen=True)
class BatchInfo:
    """One batch as the API describes it (and, for a run folder's batch, its submission name)."""

    id: str
    status: str
    created_at: int | None
    total: int
    completed: int
    failed: int
    submission: str | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any], submission: str | None = None) -> BatchInfo:
        counts = data.get("request_counts") or {}
        metadata = data.get("metadata") or {}
        return cls(
            id=str(data.get("id")),
            status=str(data.get("status")),
            created_at=data.get("created_at"),
            total=int(counts.get("total") or 0),
            completed=int(counts.get("completed") or 0),
            failed=int(counts.get("failed") or 0),
            submission=submission or metadata.get("extractor_submission"),
        )


class BatchClient:
    """The ``/files`` and ``/batches`` routes of an OpenAI-compatible endpoint, through the project's
    retrying transport (429/5xx/timeouts are retried; no rate limit is charged: batches have their own
    queue limits)."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not settings.api_key:
            raise ConfigError("the Batch API needs an API key: set OPENAI_API_KEY")
        self.settings = settings
        retrying = RetryingTransport(
            transport or httpx.AsyncHTTPTransport(),
            RateLimiter(),
            attempts=settings.transport_attempts,
            max_wait_s=settings.transport_max_wait_s,
        )
        self._http = httpx.AsyncClient(
            transport=retrying,
            base_url=settings.endpoint + "/",
            headers={"Authorization": f"Bearer {settings.api_key}"},
            timeout=httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def _fail(self, what: str, response: httpx.Response) -> ExtractorError:
        body: Any = None
        with contextlib.suppress(ValueError):
            body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        detail = redact(" ".join(str(message or response.text[:300]).split()), *self.settings.secrets)
        where = self.settings.public_endpoint
        status = response.status_code
        if status in (401, 403):
            return ConfigError(
                f"the API key was rejected by {where} (HTTP {status}: {detail}); check OPENAI_API_KEY"
            )
        if status == 404 and what in ("upload the batch input", "create a batch", "list batches"):
            return ConfigError(
                f"{where} does not serve the Batch API (HTTP 404 to {what}: {detail}); "
                "check OPENAI_BASE_URL, or run without --batch-api"
            )
        return TransportError(f"{where} could not {what} (HTTP {status}: {detail})")

    async def _call(self, what: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            cause = redact(str(exc) or type(exc).__name__, *self.settings.secrets)
            raise TransportError(
                f"cannot reach {self.settings.public_endpoint} to {what} ({type(exc).__name__}: {cause})"
            ) from None
        if response.status_code >= 400:
            raise self._fail(what, response)
        return response

    async def _json(self, what: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._call(what, method, path, **kwargs)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise TransportError(f"{self.settings.public_endpoint} answered {what} with something not JSON")
        return data

    async def upload(self, path: Path) -> str:
        """Upload a batch input file; its file id."""
        with path.open("rb") as fh:
            files = {"file": (path.name, fh, "application/jsonl")}
            data = await self._json(
                "upload the batch input", "POST", "files", data={"purpose": "batch"}, files=files
            )
        return str(data["id"])

    async def create(self, file_id: str, metadata: dict[str, str]) -> dict[str, Any]:
        body = {
            "input_file_id": file_id,
            "endpoint": CHAT_URL,
            "completion_window": self.settings.batch_window,
            "metadata": metadata,
        }
        return await self._json("create a batch", "POST", "batches", json=body)

    async def get(self, batch_id: str) -> dict[str, Any]:
        return await self._json(f"read batch {batch_id}", "GET", f"batches/{batch_id}")

    async def cancel(self, batch_id: str) -> dict[str, Any]:
        return await self._json(f"cancel batch {batch_id}", "POST", f"batches/{batch_id}/cancel")

    async def list(self, limit: int) -> list[dict[str, Any]]:
        data = await self._json("list batches", "GET", "batches", params={"limit": limit})
        items = data.get("data")
        return [b for b in items if isinstance(b, dict)] if isinstance(items, list) else []

    async def download(self, file_id: str, dest: Path) -> None:
        """Stream a file's content to ``dest`` (written whole, then renamed)."""
        tmp = dest.with_name(dest.name + ".part")
        what = f"download file {file_id}"
        try:
            async with self._http.stream("GET", f"files/{file_id}/content") as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise self._fail(what, response)
                with tmp.open("wb") as fh:
                    async for piece in response.aiter_bytes():
                        fh.write(piece)
        except httpx.HTTPError as exc:
            raise TransportError(
                f"cannot {what} from {self.settings.public_endpoint} ({type(exc).__name__})"
            ) from None
        tmp.replace(dest)


# --------------------------------------------------------------------------- what the run folder keeps


class _State:
    """``state.json``: a random token naming this run folder's batches, and the submissions."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / STATE_FILE
        data: dict[str, Any] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"cannot read the Batch API state {self.path}: {exc}") from None
        if data and data.get("format") != _STATE_FORMAT:
            raise ConfigError(f"{self.path} has an unknown format {data.get('format')!r}")
        self.token: str = data.get("token") or secrets.token_hex(8)
        self.submissions: list[dict[str, Any]] = list(data.get("submissions") or [])

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(
            self.path, {"format": _STATE_FORMAT, "token": self.token, "submissions": self.submissions}
        )

    def open(self) -> list[dict[str, Any]]:
        return [s for s in self.submissions if not s.get("ingested")]

    def names(self) -> set[str]:
        return {str(s["name"]) for s in self.submissions}


@dataclass(frozen=True)
class _Row:
    key: str
    custom_id: str
    submission: str | None
    round: int
    answer: str | None
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    settled: bool
    direct: str | None
    direct_usage: Usage
    max_tokens: int | None  # of the latest request: set once it was asked again with max_tokens_retry
    answer_max_tokens: int | None  # of the request the answer came for


class _Requests:
    """``requests.sqlite``: one row per request (cache key), its latest answer and what it cost."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS requests (
                key TEXT PRIMARY KEY, custom_id TEXT NOT NULL, submission TEXT, round INTEGER NOT NULL,
                answer TEXT, error TEXT, prompt_tokens INTEGER NOT NULL DEFAULT 0,
                completion_tokens INTEGER NOT NULL DEFAULT 0, settled INTEGER NOT NULL DEFAULT 0,
                direct TEXT, direct_prompt INTEGER NOT NULL DEFAULT 0,
                direct_completion INTEGER NOT NULL DEFAULT 0, direct_calls INTEGER NOT NULL DEFAULT 0,
                max_tokens INTEGER, answer_max_tokens INTEGER);
            CREATE INDEX IF NOT EXISTS by_submission ON requests (submission, custom_id);
            """
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(requests)")}
        for column in ("max_tokens", "answer_max_tokens"):  # a folder from before the columns existed
            if column not in columns:
                self._db.execute(f"ALTER TABLE requests ADD COLUMN {column} INTEGER")

    def close(self) -> None:
        self._db.close()

    _SELECT = (
        "SELECT key, custom_id, submission, round, answer, error, prompt_tokens, completion_tokens, "
        "settled, direct, direct_prompt, direct_completion, direct_calls, max_tokens, answer_max_tokens "
        "FROM requests WHERE key = ?"
    )

    @staticmethod
    def _row(found: Any) -> _Row:
        return _Row(
            key=found[0],
            custom_id=found[1],
            submission=found[2],
            round=found[3],
            answer=found[4],
            error=found[5],
            prompt_tokens=found[6],
            completion_tokens=found[7],
            settled=bool(found[8]),
            direct=found[9],
            direct_usage=Usage(prompt_tokens=found[10], completion_tokens=found[11], http_calls=found[12]),
            max_tokens=found[13],
            answer_max_tokens=found[14],
        )

    def get(self, key: str) -> _Row | None:
        found = self._db.execute(self._SELECT, (key,)).fetchone()
        return None if found is None else self._row(found)

    def key_of(self, submission: str, custom_id: str) -> str | None:
        found = self._db.execute(
            "SELECT key FROM requests WHERE submission = ? AND custom_id = ?", (submission, custom_id)
        ).fetchone()
        return None if found is None else str(found[0])

    def submit(
        self, key: str, custom_id: str, submission: str, round_no: int, max_tokens: int | None = None
    ) -> None:
        """The request goes into ``submission`` (a new request, or a re-ask of an answered one), asked
        with ``max_tokens`` (None: the settings' own)."""
        self._db.execute(
            "INSERT INTO requests (key, custom_id, submission, round, max_tokens) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET custom_id = excluded.custom_id, "
            "submission = excluded.submission, round = excluded.round, error = NULL, "
            "max_tokens = excluded.max_tokens",
            (key, custom_id, submission, round_no, max_tokens),
        )

    def answer(self, key: str, answer: str, usage: Usage) -> None:
        self._db.execute(
            "UPDATE requests SET answer = ?, error = NULL, answer_max_tokens = max_tokens, "
            "prompt_tokens = prompt_tokens + ?, "
            "completion_tokens = completion_tokens + ? WHERE key = ?",
            (answer, usage.prompt_tokens, usage.completion_tokens, key),
        )

    def fail(self, key: str, message: str) -> None:
        """No answer came for the request's latest round: a re-ask keeps the answer it re-asked (and asks
        no more); a first request records the error (a later run submits it again)."""
        self._db.execute(
            "UPDATE requests SET error = CASE WHEN answer IS NULL THEN ? ELSE error END, "
            "settled = CASE WHEN answer IS NULL THEN settled ELSE 1 END WHERE key = ?",
            (message, key),
        )

    def unanswered(self, submission: str, answered: set[str]) -> Iterator[str]:
        rows = self._db.execute("SELECT key FROM requests WHERE submission = ?", (submission,)).fetchall()
        return (str(r[0]) for r in rows if str(r[0]) not in answered)

    def settle(self, key: str) -> None:
        self._db.execute("UPDATE requests SET settled = 1 WHERE key = ?", (key,))

    def direct(self, key: str, completion: Completion) -> None:
        value = {"extraction": completion.extraction.model_dump(mode="json"), "model": completion.model}
        self._db.execute(
            "UPDATE requests SET direct = ?, settled = 1, direct_prompt = ?, direct_completion = ?, "
            "direct_calls = ? WHERE key = ?",
            (
                json.dumps(value),
                completion.usage.prompt_tokens,
                completion.usage.completion_tokens,
                completion.usage.http_calls,
                key,
            ),
        )


# --------------------------------------------------------------------------- one run


def _custom_id(article: Article, chunk: int, chunks: int) -> str:
    return article.sha256 if chunks == 1 else f"{article.sha256}-{chunk}"


class _InputWriter:
    """Input JSONL files of one round, a new part every ``batch_max_requests`` lines (or 190 MB)."""

    def __init__(self, folder: Path, round_no: int, limit: int, taken: set[str]) -> None:
        self.folder, self.round, self.limit, self.taken = folder, round_no, limit, taken
        self.parts: list[tuple[str, int]] = []
        self._fh: BinaryIO | None = None
        self._lines = self._bytes = 0
        self._ids: set[str] = set()

    def name(self) -> str:
        part = len(self.parts) + 1
        while f"r{self.round}-{part}" in self.taken:
            part += 1
        return f"r{self.round}-{part}"

    def write(self, custom_id: str, body: dict[str, Any]) -> str:
        """Add one request; the submission (part) it went into, or "" for a custom_id already in it."""
        line = (
            json.dumps(
                {"custom_id": custom_id, "method": "POST", "url": CHAT_URL, "body": body}, ensure_ascii=False
            ).encode("utf-8")
            + b"\n"
        )
        if self._fh is None or self._lines >= self.limit or self._bytes + len(line) > _MAX_FILE_BYTES:
            self._close_part()
            name = self.name()
            self.taken.add(name)
            self._fh = (self.folder / f"{name}.input.jsonl").open("wb")
            self.parts.append((name, 0))
            self._ids = set()
        if custom_id in self._ids:
            return ""
        self._ids.add(custom_id)
        self._fh.write(line)
        self._lines += 1
        self._bytes += len(line)
        name, count = self.parts[-1]
        self.parts[-1] = (name, count + 1)
        return name

    def _close_part(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._lines = self._bytes = 0

    def close(self) -> list[tuple[str, int]]:
        self._close_part()
        return [(name, count) for name, count in self.parts if count]


@dataclass
class _Spent:
    """Tokens the final pass took from batch answers and from direct re-asks (for the price)."""

    batch: Usage
    direct: Usage


class _BatchAnswers:
    """A Provider answering from the batches' answers (no network): what run_batch extracts with."""

    def __init__(self, settings: Settings, rows: _Requests, spent: _Spent) -> None:
        self.settings, self.rows, self.spent = settings, rows, spent

    async def complete(
        self, messages: list[dict[str, str]], *, key: str, article_id: str, check: GroundingCheck | None
    ) -> Completion:
        row = self.rows.get(key)
        if row is None or (row.answer is None and row.direct is None):
            raise TransportError(
                (row.error if row is not None and row.error else "no Batch API answer for this request")
                + "; run the same command again to submit it"
            )
        batch = Usage(prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens)
        self.spent.batch = self.spent.batch + batch
        if row.direct is not None:
            self.spent.direct = self.spent.direct + row.direct_usage
            data = json.loads(row.direct)
            extraction = ArticleExtraction.model_validate(data["extraction"])
            return Completion(extraction, batch + row.direct_usage, str(data["model"]), row.round + 2)
        try:
            assert row.answer is not None
            settings = self.settings.replace(max_tokens=row.answer_max_tokens or self.settings.max_tokens)
            try:
                judged = judge_answer(settings, list(messages), json.loads(row.answer), check)
            except errors.TruncatedOutputError:
                raise errors.TruncatedOutputError(_cut_off(self.settings, row)) from None
            if judged.extraction is None:
                raise ParseError(
                    f"no valid answer after {row.round + 1} attempt(s) ({self.settings.reasks} re-ask(s)): "
                    f"{judged.problem}"
                )
        except ExtractorError as exc:
            exc.usage = batch
            raise
        return Completion(judged.extraction, batch, judged.model or self.settings.model, row.round + 1)

    async def aclose(self) -> None:
        return None


def _cut_off(settings: Settings, row: _Row) -> str:
    """Why a request whose latest batch answer was cut off at max_tokens gets no other."""
    if row.answer_max_tokens is not None:
        why = "even after one retry with more tokens"
    elif settings.max_tokens_retry <= settings.max_tokens:
        why = f"no retry: max_tokens_retry ({settings.max_tokens_retry}) is not larger"
    elif settings.reasks == 0:
        why = "no retry: reasks is 0, so there is no follow-up batch"
    else:
        why = "the retry with more tokens got no answer"
    limit = row.answer_max_tokens or settings.max_tokens
    return (
        f"the model's answer was cut off at max_tokens={limit} (finish_reason=length) in the Batch API, "
        f"{why}; raise max_tokens or lower chunk_chars"
    )


class _PricedReporter:
    """The run's reporter, with the cost set from batch and direct prices before the summary shows."""

    def __init__(self, inner: BatchReporter, price: Callable[[RunSummary], None]) -> None:
        self.inner, self.price = inner, price

    def start(self, out_dir: Path) -> None:
        self.inner.start(out_dir)

    def article(self, result: Any, outcome: str, summary: RunSummary) -> None:
        self.inner.article(result, outcome, summary)

    def finish(self, summary: RunSummary) -> None:
        self.price(summary)
        self.inner.finish(summary)


class _Run:
    """Steps 1-4 of the module docstring, in one event loop."""

    def __init__(
        self,
        paths: list[str | Path],
        out: Path,
        extractor: Extractor,
        *,
        force: bool,
        reask_direct: bool,
        log: Log,
        transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        self.paths, self.out, self.extractor = paths, out, extractor
        self.settings = extractor.settings
        self.folder = out / STATE_DIR
        self.folder.mkdir(parents=True, exist_ok=True)
        self.state = _State(self.folder)
        self.rows = _Requests(self.folder / REQUESTS_DB)
        self.force, self.reask_direct, self.log, self.transport = force, reask_direct, log, transport
        self.failed_now: set[str] = set()  # requests that failed in this run: not submitted again now

    def close(self) -> None:
        self.rows.close()

    # -- the drop

    def _done(self) -> set[str]:
        """sha256 of the texts results.jsonl already holds ``ok`` with this model and prompt version."""
        done: set[str] = set()
        path = self.out / RESULTS_FILE
        if self.force or not path.exists():
            return done
        model, version = self.settings.model, self.extractor.prompts.version
        with path.open("rb") as fh:
            for raw in fh:
                with contextlib.suppress(ValueError):
                    data = json.loads(raw)
                    if (
                        isinstance(data, dict)
                        and data.get("status") == "ok"
                        and data.get("model") == model
                        and data.get("prompt_version") == version
                    ):
                        done.add(str(data.get("sha256")))
        return done

    def _requests(self) -> Iterator[tuple[Article, int, int, list[dict[str, str]], str]]:
        """(article, chunk, chunks, messages, key) of every request the drop needs."""
        done = self._done()
        for item in _load(self.paths, self.out, self.extractor.settings):
            if isinstance(item, Article) and item.sha256 not in done:
                requests = self.extractor.requests(item)
                for chunk, (messages, key) in enumerate(requests, start=1):
                    yield item, chunk, len(requests), messages, key

    # -- submitting and polling

    async def _submit(self, client: BatchClient, sub: dict[str, Any]) -> None:
        name = str(sub["name"])
        if sub.get("file_id") is None:
            sub["file_id"] = await client.upload(self.folder / f"{name}.input.jsonl")
            self.state.save()
        if sub.get("batch_id") is None:
            mine = {"extractor_run": self.state.token, "extractor_submission": name}
            adopted = None
            if sub.get("creating"):  # a stopped run may have created it already
                listed = await client.list(100)
                adopted = next((b for b in listed if (b.get("metadata") or {}) == mine), None)
            sub["creating"] = True
            self.state.save()
            batch = adopted or await client.create(str(sub["file_id"]), mine)
            sub.update(batch_id=str(batch["id"]), status=str(batch.get("status")))
            self.state.save()
            self.log(f"submitted batch {sub['batch_id']} ({sub['requests']} request(s), {name})")

    async def _ingest(self, client: BatchClient, sub: dict[str, Any]) -> None:
        name, batch_id = str(sub["name"]), str(sub["batch_id"])
        answered: set[str] = set()
        for kind in ("output", "error"):
            file_id = sub.get(f"{kind}_file_id")
            if not file_id:
                continue
            path = self.folder / f"{batch_id}.{kind}.jsonl"
            if not path.exists():
                await client.download(str(file_id), path)
            for key, answer, message in _read_output(path, name, self.rows):
                answered.add(key)
                if answer is not None:
                    usage = answer.get("usage") or {}
                    self.rows.answer(
                        key,
                        json.dumps(answer, ensure_ascii=False),
                        Usage(
                            prompt_tokens=int(usage.get("prompt_tokens") or 0),
                            completion_tokens=int(usage.get("completion_tokens") or 0),
                        ),
                    )
                else:
                    self.rows.fail(key, f"batch {batch_id}: {message}")
                    self.failed_now.add(key)
        reasons = "; ".join(str(e.get("message", e)) for e in sub.get("errors") or [])[:300]
        why = f"batch {batch_id} ended '{sub['status']}' without answering this request" + (
            f" ({reasons})" if reasons else ""
        )
        for key in list(self.rows.unanswered(name, answered)):
            self.rows.fail(key, why)
            self.failed_now.add(key)
        sub["ingested"] = True
        self.state.save()

    async def _wait(self, client: BatchClient, sleep: Callable[[float], Any]) -> None:
        settings = self.settings
        delay, waited = settings.batch_poll_s, 0.0
        while True:
            for sub in self.state.open():
                await self._submit(client, sub)
                if sub.get("status") not in TERMINAL:
                    data = await client.get(str(sub["batch_id"]))
                    info = BatchInfo.from_api(data, str(sub["name"]))
                    errors = (
                        (data.get("errors") or {}).get("data")
                        if isinstance(data.get("errors"), dict)
                        else None
                    )
                    if info.status != sub.get("status"):
                        self.log(f"batch {info.id}: {info.status} ({info.completed}/{info.total} done)")
                    sub.update(
                        status=info.status,
                        output_file_id=data.get("output_file_id"),
                        error_file_id=data.get("error_file_id"),
                        counts={"total": info.total, "completed": info.completed, "failed": info.failed},
                        errors=errors or [],
                    )
                    self.state.save()
                if sub.get("status") in TERMINAL:
                    await self._ingest(client, sub)
            still = self.state.open()
            if not still:
                return
            limit = settings.batch_poll_timeout_s
            if limit is not None and waited + delay > limit:
                ids = ", ".join(str(s.get("batch_id") or s["name"]) for s in still)
                raise BatchPollTimeout(
                    f"gave up waiting for batch(es) {ids} after {waited:g} s of polling "
                    f"(batch_poll_timeout_s={limit:g}); they keep running: run the same command again "
                    "to resume polling them"
                )
            await sleep(delay)
            waited += delay
            delay = min(delay * settings.batch_poll_backoff, settings.batch_poll_max_s)

    # -- the rounds

    async def _round(self, client: BatchClient, round_no: int, sleep: Callable[[float], Any]) -> None:
        """Write and submit round ``round_no`` (0: first requests; N: re-asks of round N-1), then wait."""
        writer = _InputWriter(self.folder, round_no, self.settings.batch_max_requests, self.state.names())
        direct: dict[int, OpenAIProvider] = {}  # by max_tokens
        pending: set[asyncio.Task[None]] = set()
        checks: dict[str, GroundingCheck] = {}
        try:
            for article, chunk, chunks, messages, key in self._requests():
                custom_id = _custom_id(article, chunk, chunks)
                if round_no == 0:
                    if self._first(key):
                        name = writer.write(custom_id, request_body(self.settings, messages))
                        if name:
                            self.rows.submit(key, custom_id, name, 0)
                    continue
                if article.sha256 not in checks:
                    checks = {article.sha256: grounding_check(SourceIndex(article.text))}
                follow = self._reask(key, messages, round_no, checks[article.sha256])
                if follow is None:
                    continue
                asked, max_tokens = follow
                settings = self.settings.replace(max_tokens=max_tokens or self.settings.max_tokens)
                if self.reask_direct:
                    if settings.max_tokens not in direct:
                        reasks = self.settings.reasks - 1
                        direct[settings.max_tokens] = OpenAIProvider(settings.replace(reasks=reasks))
                    provider = direct[settings.max_tokens]
                    task = asyncio.ensure_future(
                        self._direct(provider, key, asked, article.id, checks[article.sha256])
                    )
                    pending.add(task)
                    if len(pending) >= self.settings.concurrency:
                        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                        for finished in done:
                            finished.result()
                    continue
                name = writer.write(custom_id, request_body(settings, asked))
                if name:
                    self.rows.submit(key, custom_id, name, round_no, max_tokens)
            if pending:
                done, pending = await asyncio.wait(pending)
                for finished in done:
                    finished.result()
        finally:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            parts = writer.close()
            for provider in direct.values():
                await provider.aclose()
        for name, count in parts:
            self.state.submissions.append(
                {"name": name, "round": round_no, "requests": count, "created": _now(), "file_id": None}
            )
        self.state.save()
        await self._wait(client, sleep)

    def _first(self, key: str) -> bool:
        """Whether the request needs a first submission."""
        cache = self.extractor.cache
        if cache is not None and cache.get(key) is not None:
            return False
        row = self.rows.get(key)
        if row is None:
            return True
        if row.answer is not None or row.direct is not None or key in self.failed_now:
            return False
        return row.submission not in self.state.names() or row.error is not None

    def _reask(
        self, key: str, messages: list[dict[str, str]], round_no: int, check: GroundingCheck
    ) -> tuple[list[dict[str, Any]], int | None] | None:
        """What to ask again for a request answered in round ``round_no - 1``: (messages, max_tokens or
        None for the settings' own). An answer that failed validation or grounding gets instructor's re-ask
        messages; one cut off at max_tokens the same messages with ``max_tokens_retry``, once. None when it
        needs nothing more (the row is then settled)."""
        row = self.rows.get(key)
        if row is None or row.settled or row.answer is None or row.round != round_no - 1:
            return None
        settings = self.settings
        try:
            asked = settings.replace(max_tokens=row.answer_max_tokens or settings.max_tokens)
            judged = judge_answer(asked, list(messages), json.loads(row.answer), check)
        except errors.TruncatedOutputError:
            if row.max_tokens is None and settings.max_tokens_retry > settings.max_tokens:
                return list(messages), settings.max_tokens_retry
            judged = None
        except ExtractorError:
            judged = None
        if judged is None or judged.problem is None or judged.reask is None:
            self.rows.settle(key)
            return None
        return list(messages) + judged.reask, row.max_tokens

    async def _direct(
        self,
        provider: OpenAIProvider,
        key: str,
        messages: list[dict[str, Any]],
        article_id: str,
        check: GroundingCheck,
    ) -> None:
        try:
            completion = await provider.complete(messages, key=key, article_id=article_id, check=check)
        except ConfigError:
            raise
        except ExtractorError as exc:  # the batch answer stands (its ungrounded items are rejected)
            self.log(f"direct re-ask for {article_id} failed ({type(exc).__name__}); the batch answer stands")
            self.rows.settle(key)
            return
        self.rows.direct(key, completion)

    async def prepare(self, sleep: Callable[[float], Any]) -> None:
        client = BatchClient(self.settings, transport=self.transport)
        try:
            if self.state.open():
                self.log(f"resuming {len(self.state.open())} batch(es) submitted earlier")
                await self._wait(client, sleep)
            await self._round(client, 0, sleep)
            for round_no in range(1, self.settings.reasks + 1):
                await self._round(client, round_no, sleep)
                if self.reask_direct:
                    break
        finally:
            await client.aclose()


def _read_output(
    path: Path, submission: str, rows: _Requests
) -> Iterator[tuple[str, dict[str, Any] | None, str]]:
    """(key, answer or None, error message) of each line of a batch output or error file."""
    with path.open("rb") as fh:
        for raw in fh:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(line, dict):
                continue
            key = rows.key_of(submission, str(line.get("custom_id")))
            if key is None:
                continue
            found = line.get("response")
            response: dict[str, Any] = found if isinstance(found, dict) else {}
            body = response.get("body")
            if response.get("status_code") == 200 and isinstance(body, dict) and body.get("choices"):
                yield key, body, ""
                continue
            error: dict[str, Any] = line["error"] if isinstance(line.get("error"), dict) else {}
            if not error and isinstance(body, dict) and isinstance(body.get("error"), dict):
                error = body["error"]
            message = str(error.get("message") or "no answer")
            code = error.get("code")
            status = response.get("status_code")
            prefix = f"HTTP {status}" if status else str(code or "error")
            yield key, None, " ".join(f"{prefix}: {message}".split())[:300]


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def run_batch_api(
    paths: list[str | Path],
    out_dir: str | Path,
    extractor: Extractor,
    *,
    force: bool = False,
    reask_direct: bool = False,
    reporter: BatchReporter | None = None,
    log: Log | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Callable[[float], Any] = asyncio.sleep,
) -> RunSummary:
    """Extract every article under ``paths`` into ``out_dir`` through the Batch API; see the module
    docstring. ``log`` receives one line per batch event (submitted, status changes, resumed)."""
    settings = extractor.settings
    if settings.replay_dir is not None or settings.record_dir is not None:
        raise ConfigError("--batch-api needs a live endpoint: it cannot replay or record exchanges")
    out = Path(out_dir)
    say = log or (lambda line: None)
    run = _Run(
        list(paths), out, extractor, force=force, reask_direct=reask_direct, log=say, transport=transport
    )
    try:
        try:
            asyncio.run(run.prepare(sleep))
        except KeyboardInterrupt:
            say(f"stopped; the batches keep running: run the same command again to resume ({run.folder})")
            raise
        spent = _Spent(Usage(), Usage())
        answers = _BatchAnswers(settings, run.rows, spent)
        final = Extractor(
            settings,
            provider=answers,
            cache=extractor.cache,
            prompts=extractor.prompts,
            limiter=extractor.limiter,
        )

        def price(summary: RunSummary) -> None:
            summary.cost_usd = _cost(settings, spent)

        summary = run_batch(
            paths, out, final, force=force, reporter=_PricedReporter(reporter or LogReporter(), price)
        )
    finally:
        run.close()
    data = summary.as_dict()
    data["batch_api"] = {
        "batches": [s.get("batch_id") for s in run.state.submissions],
        "batch_prompt_tokens": spent.batch.prompt_tokens,
        "batch_completion_tokens": spent.batch.completion_tokens,
        "direct_prompt_tokens": spent.direct.prompt_tokens,
        "direct_completion_tokens": spent.direct.completion_tokens,
        "batch_price_per_1m": settings.batch_price(),
        "direct_price_per_1m": settings.price(),
    }
    write_json_atomic(out / RUN_FILE, data)
    return summary


def _cost(settings: Settings, spent: _Spent) -> float | None:
    total = 0.0
    for usage, price in ((spent.batch, settings.batch_price()), (spent.direct, settings.price())):
        if usage.prompt_tokens or usage.completion_tokens:
            if price is None:
                return None
            total += (usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]) / 1e6
    return total


# --------------------------------------------------------------------------- batches list | cancel


def run_folder_batches(out_dir: str | Path) -> list[dict[str, Any]]:
    """The submissions a run folder's state records (name, round, batch id, status, counts)."""
    folder = Path(out_dir) / STATE_DIR
    if not (folder / STATE_FILE).exists():
        raise ConfigError(
            f"{out_dir} has no Batch API state ({STATE_DIR}/{STATE_FILE}); was it run with --batch-api?"
        )
    return _State(folder).submissions


def list_batches(
    settings: Settings,
    out_dir: str | Path | None = None,
    *,
    limit: int = 20,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[BatchInfo]:
    """The account's latest batches (``limit``), or those of the run folder ``out_dir`` as the API
    describes them now."""

    async def fetch() -> list[BatchInfo]:
        client = BatchClient(settings, transport=transport)
        try:
            if out_dir is None:
                return [BatchInfo.from_api(b) for b in await client.list(limit)]
            subs = [s for s in run_folder_batches(out_dir) if s.get("batch_id")]
            return [BatchInfo.from_api(await client.get(str(s["batch_id"])), str(s["name"])) for s in subs]
        finally:
            await client.aclose()

    return asyncio.run(fetch())


def cancel_batches(
    settings: Settings,
    batch_ids: list[str],
    out_dir: str | Path | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[BatchInfo]:
    """Cancel ``batch_ids``, and with ``out_dir`` every batch of that run folder that has not ended.
    A later ``run --batch-api`` reads what the cancelled batches answered and submits the rest again."""
    wanted = list(batch_ids)
    if out_dir is not None:
        wanted += [
            str(s["batch_id"])
            for s in run_folder_batches(out_dir)
            if s.get("batch_id") and s.get("status") not in TERMINAL and str(s["batch_id"]) not in wanted
        ]
    if not wanted:
        raise ConfigError("nothing to cancel: give batch ids, or --out DIR with batches still running")

    async def cancel() -> list[BatchInfo]:
        client = BatchClient(settings, transport=transport)
        try:
            return [BatchInfo.from_api(await client.cancel(batch_id)) for batch_id in wanted]
        finally:
            await client.aclose()

    return asyncio.run(cancel())
