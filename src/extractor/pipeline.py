"""The orchestrator of one article: prompt -> cache or LLM -> parse -> ground -> ArticleResult.

Long articles are split on paragraph boundaries with overlap (``extractor.chunking``); each chunk is its
own request (and cache entry); every item is grounded against the WHOLE article, and duplicates from the
overlaps are merged. A chunk whose request fails does not fail the article while another chunk
succeeds: the result is ``ok`` with the failed chunks in ``chunk_errors`` (a partial result). A cache hit
makes no HTTP call but validates (repair, per-item schema check) and grounds the stored answer again, so
a validator fix applies to old answers and a hit keeps and rejects the same items as the call did.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from extractor.articles import sanitize_id
from extractor.cache import AnswerCache, cache_key, open_cache
from extractor.chunking import Chunk, ground_extraction, split_chunks, with_schema_rejects
from extractor.closing import Closing
from extractor.config import Settings, answer_settings
from extractor.errors import ConfigError, ExtractorError, redact
from extractor.grounding import SourceIndex
from extractor.inflight import InFlight
from extractor.llm import Completion, OpenAIProvider, Provider
from extractor.models import (
    Article,
    ArticleExtraction,
    ArticleResult,
    ChunkError,
    ErrorInfo,
    LoadError,
    Usage,
)
from extractor.prompts import PromptSet, cap_events, load_prompts
from extractor.ratelimit import RateLimiter
from extractor.replay import RecordingTransport, ReplayTransport, load_recorded_settings

__all__ = [
    "Extractor",
    "grounding_check",
    "load_error_id",
    "load_error_result",
    "open_extractor",
    "replay_settings",
]


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


def _message(exc: Exception, secrets: Iterable[str]) -> str:
    """``exc`` on one line without the configured credentials (its type when it says nothing)."""
    return redact(" ".join(str(exc).split()), *secrets) or type(exc).__name__


def _chunk_error(chunk: Chunk, exc: Exception, secrets: Iterable[str]) -> ChunkError:
    message = _message(exc, secrets)
    return ChunkError(
        chunk=chunk.index, start=chunk.start, end=chunk.end, type=type(exc).__name__, message=message
    )


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


class Extractor(Closing):
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
                "from Python: extractor.open_extractor(settings, DIR))"
            )

    # ------------------------------------------------------------------ one article

    def _chunks(self, article: Article) -> list[Chunk]:
        return split_chunks(article.text, self.settings.chunk_chars, self.settings.chunk_overlap_chars)

    def _answer_key(self, article: Article, chunk: Chunk, n: int) -> tuple[Any, str]:
        messages = self.prompts.render(
            article,
            article.text[chunk.start : chunk.end],
            chunk.index,
            n,
            max_events=self.settings.max_events,
            output_language=self.settings.output_language,
        )
        return messages, cache_key(self.settings, messages, self.schema, self.prompts.version)

    def requests(self, article: Article) -> list[tuple[list[dict[str, str]], str]]:
        """The rendered messages and cache (and recording) key of each request this article needs,
        one per chunk."""
        chunks = self._chunks(article)
        return [self._answer_key(article, chunk, len(chunks)) for chunk in chunks]

    async def aextract(self, article: Article | str) -> ArticleResult:
        """Extract one article. Any failure gives an error result; only ConfigError is raised. When some
        chunks of a long article fail and others succeed, the result is ``ok`` with ``chunk_errors``."""
        if isinstance(article, str):
            article = Article.from_text(article)
        started = time.perf_counter()
        usage = Usage()
        model: str | None = None
        hits = 0
        chunks = self._chunks(article)
        chunk_errors: list[ChunkError] = []
        first_error: Exception | None = None
        try:
            index = SourceIndex(article.text)
            check = grounding_check(index)
            extractions: list[ArticleExtraction] = []
            answered: list[Chunk] = []
            for chunk in chunks:
                messages, key = self._answer_key(article, chunk, len(chunks))
                try:
                    extraction, spent, served = await self._answer(messages, key, article, check)
                except ConfigError:
                    raise
                except Exception as exc:  # this chunk only: the other chunks are still worth having
                    if isinstance(exc, ExtractorError) and isinstance(exc.usage, Usage):
                        usage = usage + exc.usage
                    first_error = first_error or exc
                    chunk_errors.append(_chunk_error(chunk, exc, self.settings.secrets))
                    continue
                if spent is None:
                    hits += 1
                else:
                    usage = usage + spent
                model = model or served
                extractions.append(extraction)
                answered.append(chunk)
            if first_error is not None and not extractions:  # every chunk failed: the article did
                return self._error_result(article, first_error, usage, model, started, len(chunks))
            events, quotes, stances, rejected = ground_extraction(extractions, article.text, index, answered)
            rejected = with_schema_rejects(rejected, extractions)
            events, over_max = cap_events(events, self.settings.max_events)
            rejected += over_max
        except ConfigError:
            raise
        except Exception as exc:  # an unexpected failure in one article must not end a batch
            return self._error_result(article, exc, usage, model, started, len(chunks))
        return ArticleResult.for_article(
            article,
            status="ok",
            events=events,
            quotes=quotes,
            stances=stances,
            rejected=rejected,
            usage=usage,
            cache_hit=hits == len(chunks),
            model=self.settings.model,
            served_model=model,
            prompt_version=self.prompts.version,
            latency_s=round(time.perf_counter() - started, 4),
            chunks=len(chunks),
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
            error=ErrorInfo(type=type(exc).__name__, message=_message(exc, self.settings.secrets)),
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
        flight = InFlight[Article, ArticleResult](concurrency or self.settings.concurrency)
        try:
            for article in articles:
                if isinstance(article, LoadError):
                    model, version = self.settings.model, self.prompts.version
                    yield load_error_result(article, load_error_id(article), model, version)
                    continue
                flight.add(self.aextract(article), article)
                while flight.full:
                    for _, task in await flight.next_done():
                        yield task.result()
            while flight:
                for _, task in await flight.next_done():
                    yield task.result()
        finally:
            await flight.aclose()  # a consumer that stops early leaves nothing running

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


# --------------------------------------------------------------------------- live or replayed


def replay_settings(settings: Settings, recordings: Path | str, *, keep: Collection[str] = ()) -> Settings:
    """``settings`` for replaying the recordings folder ``recordings``: the answer settings they were
    recorded with (``config.answer_settings``, saved beside them) except those named in ``keep`` (e.g.
    the flags a user gave), and no response cache (it could answer with something the recordings no
    longer say)."""
    recorded = load_recorded_settings(recordings)
    unknown = sorted(set(recorded) - set(answer_settings(settings)))
    if unknown:
        raise ConfigError(f"recordings {recordings}: unknown recorded setting(s): {', '.join(unknown)}")
    taken = {name: value for name, value in recorded.items() if name not in keep}
    return settings.replace(**taken, replay_dir=Path(recordings), use_cache=False)


def open_extractor(
    settings: Settings,
    replay: Path | str | None = None,
    *,
    fallback: Path | str | None = None,
    keep: Collection[str] = (),
) -> tuple[Extractor, Path | None]:
    """The Extractor a run uses, live or replaying recordings, and the recordings it falls back on.

    With ``replay`` (a recordings folder) it replays them (``replay_settings``, ``keep`` as there);
    else it is live when ``settings`` has an API key; else it replays ``fallback`` (e.g. the source
    checkout's fixtures), returned beside the extractor so that the caller can say the answers are
    recorded ones (None when it did not fall back). ConfigError when there is no folder to replay."""
    fell_back: Path | None = None
    if replay is None and not settings.api_key:
        if fallback is None:
            raise ConfigError(
                "no API key: set OPENAI_API_KEY, or replay recordings with --replay DIR (the recorded "
                "fixtures come with the source checkout, not with the installed package)"
            )
        if not Path(fallback).is_dir():
            raise ConfigError(
                "no API key: set OPENAI_API_KEY, or replay recordings with --replay DIR "
                f"(no recorded fixtures at {fallback})"
            )
        replay = fell_back = Path(fallback)
    if replay is not None:
        if not Path(replay).is_dir():
            raise ConfigError(f"--replay {replay}: no recordings folder there")
        settings = replay_settings(settings, replay, keep=keep)
    return Extractor(settings), fell_back
