"""The orchestrator of one article: prompt -> cache or LLM -> parse -> ground -> ArticleResult.

Long articles are split on paragraph boundaries with overlap (``split_chunks``); each chunk is its own
request (and cache entry); every item is grounded against the WHOLE article, and duplicates from the
overlaps are merged. A chunk whose request fails does not fail the article while another chunk
succeeds: the result is ``ok`` with the failed chunks in ``chunk_errors`` (a partial result). A cache hit
makes no HTTP call but validates (repair, per-item schema check) and grounds the stored answer again, so
a validator fix applies to old answers and a hit keeps and rejects the same items as the call did.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncGenerator, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from extractor.articles import sanitize_id
from extractor.cache import AnswerCache, cache_key, open_cache
from extractor.config import Settings
from extractor.errors import ConfigError, ExtractorError, redact
from extractor.grounding import Grounding, SourceIndex
from extractor.llm import Completion, OpenAIProvider, Provider
from extractor.matching import names_match, target_similarity
from extractor.models import (
    Article,
    ArticleExtraction,
    ArticleResult,
    ChunkError,
    ErrorInfo,
    Event,
    GroundedEvent,
    GroundedQuote,
    GroundedStance,
    LoadError,
    Rejected,
    Span,
    Stance,
    Usage,
)
from extractor.prompts import PromptSet, cap_events, load_prompts
from extractor.ratelimit import RateLimiter
from extractor.replay import RecordingTransport, ReplayTransport

__all__ = [
    "Extractor",
    "ground_extraction",
    "grounding_check",
    "load_error_id",
    "load_error_result",
    "split_chunks",
]

_Item = TypeVar("_Item", GroundedEvent, GroundedQuote, GroundedStance)


def split_chunks(text: str, max_chars: int, overlap: int) -> list[tuple[int, int]]:
    """(start, end) windows of at most ``max_chars``, cut at paragraph (else line, else sentence, else
    space) breaks in the second half of the window, else hard at ``max_chars``; each starts ``overlap``
    characters or less before the previous one's end, and at least half a window (rounded up) after the
    previous one's start, whatever the overlap and the text."""
    if len(text) <= max_chars:
        return [(0, len(text))]
    chunks: list[tuple[int, int]] = []
    step = (max_chars + 1) // 2  # end - start > max_chars // 2 >= step - 1, so no gap
    start = 0
    while start < len(text):
        limit = start + max_chars
        if limit >= len(text):
            chunks.append((start, len(text)))
            break
        end = -1
        for sep in ("\n\n", "\n", ". ", " "):
            cut = text.rfind(sep, start + max_chars // 2, limit)
            if cut != -1:
                end = cut + len(sep)
                break
        if end == -1:
            end = limit
        chunks.append((start, end))
        next_start = max(end - overlap, start + step)
        para = text.find("\n", next_start, end)
        start = para + 1 if para != -1 and para + 1 < end else next_start
    return chunks


def _span(g: Grounding) -> Span:
    pieces = [tuple(p) for p in g.pieces] if g.status == "elided" else None
    return Span(status=g.status, start=g.start, end=g.end, pieces=pieces, occurrences=g.occurrences)


def _ground_at(index: SourceIndex, candidate: str, start_at: int, taken: set[tuple[int, int]]) -> Grounding:
    """Ground ``candidate``: the first occurrence at or after ``start_at`` (its chunk) that no item with
    the same text has taken yet, so a statement quoted twice gets both places; else the first.
    ``occurrences`` stays the count in the whole article. Each step searches the one index from an
    offset, so placing many repeats costs one pass each, not an index per earlier occurrence."""
    first = index.ground(candidate)
    if first.status not in ("exact", "normalized") or (first.occurrences < 2 and start_at == 0):
        return first
    found = first if start_at == 0 else index.ground(candidate, start=start_at)
    while found.status in ("exact", "normalized") and found.start is not None and found.end is not None:
        if (found.start, found.end) not in taken:
            return dataclasses.replace(found, occurrences=first.occurrences)
        found = index.ground(candidate, start=found.end)  # occurrences never overlap
    return first


def ground_extraction(
    extractions: Iterable[ArticleExtraction],
    source: str,
    index: SourceIndex | None = None,
    windows: Iterable[tuple[int, int]] | None = None,
) -> tuple[list[GroundedEvent], list[GroundedQuote], list[GroundedStance], list[Rejected]]:
    """Ground every quote text and event/stance evidence in ``source``; split kept from rejected.

    ``windows`` gives the (start, end) of the chunk each extraction came from, so an item is placed in
    its own chunk. Items from two overlapping chunks at the same span are one item, kept once in its
    fuller wording (see ``_same_item``); each earlier item absorbs at most one later one."""
    idx = index or SourceIndex(source)
    events: list[GroundedEvent] = []
    quotes: list[GroundedQuote] = []
    stances: list[GroundedStance] = []
    rejected: list[Rejected] = []
    rejected_seen: set[str] = set()
    placed: set[tuple[str, int, int]] = set()
    # (kind, start, end) -> [chunk, position in its list, merged yet] of each item kept at that span
    by_span: dict[tuple[str, int, int], list[list[int]]] = {}

    def place(
        kind: str,
        field: str,
        item: BaseModel,
        candidate: str,
        out: list[_Item],
        cls: type[_Item],
        start_at: int,
        taken: dict[tuple[str, str], set[tuple[int, int]]],
    ) -> None:
        fingerprint = kind + item.model_dump_json()
        used = taken.setdefault((kind, candidate), set())
        g = _ground_at(idx, candidate, start_at, used)
        if not g.found or g.start is None or g.end is None:
            if fingerprint not in rejected_seen:
                rejected_seen.add(fingerprint)
                reason = g.reason or "not in the article"
                rejected.append(
                    Rejected.model_validate(
                        {"kind": kind, "field": field, "item": item.model_dump(), "reason": reason}
                    )
                )
            return
        used.add((g.start, g.end))
        if (fingerprint, g.start, g.end) in placed:
            return  # the same item at the same place: an overlap duplicate
        placed.add((fingerprint, g.start, g.end))
        grounded = cls(**item.model_dump(), span=_span(g))
        kept = by_span.setdefault((kind, g.start, g.end), [])
        for entry in kept:  # the same item told by an earlier, overlapping chunk: merge once
            if entry[0] != chunk and not entry[2] and _same_item(out[entry[1]], grounded):
                entry[2] = 1
                if _fullness(grounded) > _fullness(out[entry[1]]):
                    out[entry[1]] = grounded
                return
        kept.append([chunk, len(out), 0])
        out.append(grounded)

    starts = [w[0] for w in windows] if windows is not None else None
    for chunk, extraction in enumerate(extractions):  # ``place`` reads ``chunk``
        start_at = starts[chunk] if starts is not None else 0
        taken: dict[tuple[str, str], set[tuple[int, int]]] = {}
        for event in extraction.events:
            place("event", "evidence", event, event.evidence, events, GroundedEvent, start_at, taken)
        for quote in extraction.quotes:
            place("quote", "text", quote, quote.text, quotes, GroundedQuote, start_at, taken)
        for stance in extraction.stances:
            place("stance", "evidence", stance, stance.evidence, stances, GroundedStance, start_at, taken)
    return events, quotes, stances, rejected


def load_error_result(error: LoadError, article_id: str, model: str, version: str) -> ArticleResult:
    """The error result that stands for an input that could not be loaded."""
    return ArticleResult(
        article_id=article_id,
        source=error.source,
        sha256="",
        status="error",
        error=ErrorInfo(type="LoadError", message=error.reason),
        model=model,
        prompt_version=version,
    )


def load_error_id(error: LoadError) -> str:
    """An id for an unloadable input: its file stem, with the line for a JSONL line."""
    stem = sanitize_id(Path(error.path).stem, "") or "input"
    return f"{stem}-{error.line}" if error.line is not None else stem


def _same_item(a: BaseModel, b: BaseModel) -> bool:
    """Two items at one span from two chunks say the same thing: a quote has one speaker; events
    need the same type and no conflicting date or place; stances the same polarity, holder and a
    similar target (half their words shared)."""
    if isinstance(a, Event) and isinstance(b, Event):
        return a.event_type == b.event_type and all(
            x is None or y is None or x.casefold() == y.casefold()
            for x, y in ((a.date, b.date), (a.location, b.location))
        )
    if isinstance(a, Stance) and isinstance(b, Stance):
        similar = target_similarity(a.target, b.target) >= 0.5
        return a.polarity == b.polarity and names_match(a.holder, b.holder) and similar
    return True


def _fullness(item: BaseModel) -> tuple[int, int]:
    """Which of two wordings of one item says more: non-empty fields, then characters."""
    values = [v for k, v in item.model_dump().items() if k != "span"]
    filled = [v for v in values if v not in (None, "", [])]
    return len(filled), sum(len(str(v)) for v in filled)


def _with_schema_rejects(
    rejected: list[Rejected], extractions: Iterable[ArticleExtraction]
) -> list[Rejected]:
    """The grounding rejects, then each extraction's schema rejects (the same item told by two
    overlapping chunks once)."""
    seen: set[str] = set()
    out = list(rejected)
    for extraction in extractions:
        for reject in extraction.schema_rejects:
            fingerprint = reject.model_dump_json()
            if fingerprint not in seen:
                seen.add(fingerprint)
                out.append(reject)
    return out


def _chunk_error(chunk: int, window: tuple[int, int], exc: Exception, secrets: Iterable[str]) -> ChunkError:
    message = redact(" ".join(str(exc).split()), *secrets) or type(exc).__name__
    return ChunkError(chunk=chunk, start=window[0], end=window[1], type=type(exc).__name__, message=message)


def grounding_check(index: SourceIndex) -> Any:
    """The check the answer's validators run (``context=``): one line per item not in the article."""

    def check(extraction: ArticleExtraction) -> list[str]:
        failures: list[str] = []
        for kind, field, items in (
            ("quote", "text", [(q.text, q.speaker or "unattributed") for q in extraction.quotes]),
            ("event", "evidence", [(e.evidence, e.summary) for e in extraction.events]),
            ("stance", "evidence", [(s.evidence, s.holder) for s in extraction.stances]),
        ):
            for candidate, label in items:
                if not index.ground(candidate).found:
                    failures.append(f"- {kind} ({label}): {field} {candidate!r}")
        return failures

    return check


class Extractor:
    """Extract events, quotes and stances from articles, with every quote proven verbatim.

    >>> ex = Extractor.from_env()
    >>> res = ex.extract("Full article text ...")
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        provider: Provider | None = None,
        cache: AnswerCache | None = None,
        prompts: PromptSet | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings or Settings.load()
        self.prompts = prompts or load_prompts()
        self.schema = json.dumps(ArticleExtraction.model_json_schema(), sort_keys=True, separators=(",", ":"))
        if cache is None and self.settings.use_cache:
            cache = open_cache(self.settings)
        self.cache = cache
        self.limiter = limiter or RateLimiter(rpm=self.settings.rpm, tpm=self.settings.tpm, window_safe=True)
        self._injected = provider
        self._providers: dict[int, Provider] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_env(cls, **overrides: Any) -> Extractor:
        """Settings from the environment / config file, with keyword overrides."""
        return cls(Settings.load(**overrides))

    # ------------------------------------------------------------------ provider per event loop

    def _provider(self) -> Provider:
        if self._injected is not None:
            return self._injected
        loop_id = id(asyncio.get_running_loop())
        provider = self._providers.get(loop_id)
        if provider is None:
            settings = self.settings
            transport: Any = None
            if settings.replay_dir is not None:
                transport = ReplayTransport(settings.replay_dir)
                if not settings.api_key:
                    settings = settings.replace(api_key="replay-no-key")
            elif settings.record_dir is not None:
                transport = RecordingTransport(settings.record_dir)
            provider = OpenAIProvider(settings, transport=transport, limiter=self.limiter)
            self._providers[loop_id] = provider
        return provider

    def check_ready(self) -> None:
        """Raise ConfigError now (not per article) when a live model is needed but no API key is set."""
        if self._injected is None and self.settings.replay_dir is None and not self.settings.api_key:
            raise ConfigError(
                "no API key: set OPENAI_API_KEY, or replay recordings (extractor run --replay DIR; "
                "from Python: Settings(replay_dir=DIR, ...))"
            )

    # ------------------------------------------------------------------ one article

    def _answer_key(self, article: Article, window: tuple[int, int], i: int, n: int) -> tuple[Any, str]:
        messages = self.prompts.render(
            article,
            article.text[window[0] : window[1]],
            i,
            n,
            max_events=self.settings.max_events,
            output_language=self.settings.output_language,
        )
        return messages, cache_key(self.settings, messages, self.schema, self.prompts.version)

    def requests(self, article: Article) -> list[tuple[list[dict[str, str]], str]]:
        """The rendered messages and cache (and recording) key of each request this article needs,
        one per chunk."""
        windows = split_chunks(article.text, self.settings.chunk_chars, self.settings.chunk_overlap_chars)
        return [self._answer_key(article, w, i, len(windows)) for i, w in enumerate(windows, start=1)]

    async def aextract(self, article: Article | str) -> ArticleResult:
        """Extract one article. Any failure gives an error result; only ConfigError is raised. When some
        chunks of a long article fail and others succeed, the result is ``ok`` with ``chunk_errors``."""
        if isinstance(article, str):
            article = Article.from_text(article)
        started = time.perf_counter()
        usage = Usage()
        model: str | None = None
        hits = 0
        windows = split_chunks(article.text, self.settings.chunk_chars, self.settings.chunk_overlap_chars)
        chunk_errors: list[ChunkError] = []
        first_error: Exception | None = None
        try:
            index = SourceIndex(article.text)
            check = grounding_check(index)
            extractions: list[ArticleExtraction] = []
            kept_windows: list[tuple[int, int]] = []
            for i, window in enumerate(windows, start=1):
                messages, key = self._answer_key(article, window, i, len(windows))
                try:
                    extraction, spent, served = await self._answer(messages, key, article, check)
                except ConfigError:
                    raise
                except Exception as exc:  # this chunk only: the other chunks are still worth having
                    if isinstance(exc, ExtractorError) and isinstance(exc.usage, Usage):
                        usage = usage + exc.usage
                    first_error = first_error or exc
                    chunk_errors.append(_chunk_error(i, window, exc, self.settings.secrets))
                    continue
                if spent is None:
                    hits += 1
                else:
                    usage = usage + spent
                model = model or served
                extractions.append(extraction)
                kept_windows.append(window)
            if first_error is not None and not extractions:  # every chunk failed: the article did
                return self._error_result(article, first_error, usage, model, started, len(windows))
            events, quotes, stances, rejected = ground_extraction(
                extractions, article.text, index, kept_windows
            )
            rejected = _with_schema_rejects(rejected, extractions)
            events, over_max = cap_events(events, self.settings.max_events)
            rejected += over_max
        except ConfigError:
            raise
        except Exception as exc:  # an unexpected failure in one article must not end a batch
            return self._error_result(article, exc, usage, model, started, len(windows))
        return ArticleResult.for_article(
            article,
            status="ok",
            events=events,
            quotes=quotes,
            stances=stances,
            rejected=rejected,
            usage=usage,
            cache_hit=hits == len(windows),
            model=self.settings.model,
            served_model=model,
            prompt_version=self.prompts.version,
            latency_s=round(time.perf_counter() - started, 4),
            chunks=len(windows),
            chunk_errors=chunk_errors,
        )

    async def _answer(
        self, messages: list[dict[str, str]], key: str, article: Article, check: Any
    ) -> tuple[ArticleExtraction, Usage | None, str | None]:
        """One chunk's extraction, the usage spent on it (None: a cache hit) and the served model name:
        from the cache, else from the model (then cached)."""
        cached = self.cache.get(key) if self.cache is not None else None
        if cached is not None:
            # "answer": the model's raw answer, validated again so that a hit keeps and rejects the same
            # items as the call did; "extraction": an entry written before answers were kept (valid).
            stored = cached.get("answer", cached.get("extraction"))
            try:
                extraction = ArticleExtraction.model_validate(stored)
            except ValidationError:
                pass  # unusable under today's rules: ask again
            else:
                served = cached.get("model")
                return extraction, None, served if isinstance(served, str) else None
        self.check_ready()
        completion = await self._provider().complete(messages, key=key, article_id=article.id, check=check)
        if self.cache is not None:
            self.cache.set(key, self._cache_value(completion, article))
        return completion.extraction, completion.usage, completion.model

    @staticmethod
    def _cache_value(completion: Completion, article: Article) -> dict[str, Any]:
        return {
            "answer": completion.extraction.answer,
            "model": completion.model,
            "usage": completion.usage.model_dump(),
            "attempts": completion.attempts,
            "article_sha256": article.sha256,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }

    def _error_result(
        self, article: Article, exc: Exception, usage: Usage, model: str | None, started: float, chunks: int
    ) -> ArticleResult:
        return ArticleResult.for_article(
            article,
            status="error",
            error=ErrorInfo(
                type=type(exc).__name__,
                message=redact(" ".join(str(exc).split()), *self.settings.secrets) or type(exc).__name__,
            ),
            usage=usage,
            model=self.settings.model,
            served_model=model,
            prompt_version=self.prompts.version,
            latency_s=round(time.perf_counter() - started, 4),
            chunks=chunks,
        )

    def extract(self, article: Article | str) -> ArticleResult:
        """Synchronous ``aextract``."""
        result: ArticleResult = self._run(self.aextract(article))
        return result

    # ------------------------------------------------------------------ many articles

    async def aextract_many(
        self, articles: Iterable[Article | LoadError], concurrency: int | None = None
    ) -> AsyncGenerator[ArticleResult, None]:
        """Results as they complete, at most ``concurrency`` articles in flight; input is consumed lazily.
        A ``LoadError`` (as ``load_articles`` yields for bad input) gives its error result at once."""
        limit = concurrency or self.settings.concurrency
        pending: set[asyncio.Task[ArticleResult]] = set()
        source = iter(articles)
        exhausted = False
        while True:
            while not exhausted and len(pending) < limit:
                try:
                    article = next(source)
                except StopIteration:
                    exhausted = True
                    break
                if isinstance(article, LoadError):
                    model, version = self.settings.model, self.prompts.version
                    yield load_error_result(article, load_error_id(article), model, version)
                    continue
                pending.add(asyncio.ensure_future(self.aextract(article)))
            if not pending:
                return
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                yield task.result()

    def extract_many(
        self, articles: Iterable[Article | LoadError], concurrency: int | None = None
    ) -> Iterator[ArticleResult]:
        """Synchronous ``aextract_many``: yields results as they complete."""
        agen = self.aextract_many(articles, concurrency)
        try:
            while True:
                try:
                    yield self._run(agen.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(agen.aclose())

    def _run(self, coro: Any) -> Any:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    async def aclose(self) -> None:
        """Close HTTP clients opened from the running loop."""
        loop_id = id(asyncio.get_running_loop())
        provider = self._providers.pop(loop_id, None)
        if provider is not None:
            await provider.aclose()

    def close(self) -> None:
        """Close clients and the cache."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.run_until_complete(self.aclose())
            self._loop.close()
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
