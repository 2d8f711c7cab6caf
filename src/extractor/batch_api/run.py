"""One ``extractor run --batch-api`` (steps 1-5 of the package docstring): ``run_batch_api``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from extractor import errors
from extractor.batch import BatchReporter, NullReporter, RunSummary, _load, run_batch
from extractor.batch_api.client import TERMINAL, BatchClient, BatchInfo, BatchPollTimeout
from extractor.batch_api.inputs import InputWriter, custom_id_of, read_output
from extractor.batch_api.store import REQUESTS_DB, STATE_DIR, Requests, Row, State
from extractor.config import Settings
from extractor.errors import ConfigError, ExtractorError, ParseError, TransportError
from extractor.grounding import SourceIndex
from extractor.inflight import InFlight
from extractor.llm import Completion, GroundingCheck, OpenAIProvider, judge_answer, request_body
from extractor.models import Article, ArticleExtraction, Usage, add_cost
from extractor.pipeline import Extractor, grounding_check
from extractor.store import RESULTS_FILE, RUN_FILE, lock_run_folder, write_json_atomic

__all__ = ["run_batch_api"]

Log = Callable[[str], None]


@dataclass
class _Spent:
    """Tokens the final pass took from batch answers and from direct re-asks (for the price)."""

    batch: Usage
    direct: Usage


class _BatchAnswers:
    """A Provider answering from the batches' answers (no network): what run_batch extracts with."""

    def __init__(self, settings: Settings, rows: Requests, spent: _Spent) -> None:
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


def _cut_off(settings: Settings, row: Row) -> str:
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
        self.state = State(self.folder)
        self.rows = Requests(self.folder / REQUESTS_DB)
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
            for key, answer, message in read_output(path, name, self.rows):
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
        writer = InputWriter(self.folder, round_no, self.settings.batch_max_requests, self.state.names())
        direct: dict[int, OpenAIProvider] = {}  # by max_tokens
        flight = InFlight[str, None](self.settings.concurrency)
        checks: dict[str, GroundingCheck] = {}
        try:
            for article, chunk, chunks, messages, key in self._requests():
                custom_id = custom_id_of(article, chunk, chunks)
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
                    flight.add(self._direct(provider, key, asked, article.id, checks[article.sha256]), key)
                    while flight.full:
                        for _, finished in await flight.next_done():
                            finished.result()
                    continue
                name = writer.write(custom_id, request_body(settings, asked))
                if name:
                    self.rows.submit(key, custom_id, name, round_no, max_tokens)
            while flight:
                for _, finished in await flight.next_done():
                    finished.result()
        finally:
            await flight.aclose()
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
    wait_lock: bool = False,
) -> RunSummary:
    """Extract every article under ``paths`` into ``out_dir`` through the Batch API; see the package
    docstring. ``log`` receives one line per batch event (submitted, status changes, resumed). The
    folder's lock is held for the whole run, polling included (FolderBusyError, or wait with
    ``wait_lock``), so two runs never submit the same requests."""
    settings = extractor.settings
    if settings.replay_dir is not None or settings.record_dir is not None:
        raise ConfigError("--batch-api needs a live endpoint: it cannot replay or record exchanges")
    out = Path(out_dir)
    say = log or (lambda line: None)
    with lock_run_folder(out, wait=wait_lock, reentrant=True):
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
                paths, out, final, force=force, reporter=_PricedReporter(reporter or NullReporter(), price)
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
    total: float | None = 0.0
    for usage, price in ((spent.batch, settings.batch_price()), (spent.direct, settings.price())):
        if usage.prompt_tokens or usage.completion_tokens:
            total = add_cost(total, usage.cost(price))
    return total
