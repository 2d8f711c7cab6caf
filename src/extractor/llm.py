"""The LLM stage: the only module that imports openai and instructor.

``OpenAIProvider.complete(messages, ...)`` sends one extraction request through instructor and returns the
validated ``ArticleExtraction`` with its usage. What happens on failure:

- transport (429, 5xx, timeouts, connection errors): retried below the openai client by
  extractor.transport.RetryingTransport (openai's own retries are off);
- an unusable answer (not JSON, not an object with the three lists), items that fail the schema even
  after repair, and grounding failures reported by the caller's ``check``: re-asked by instructor
  (``max_retries=settings.reasks``; the check travels in the validation ``context=``). Drift the
  validator repairs (extractor.models.repair_item) is no failure and costs no call. A re-ask lists
  at most ``reask_max_listed`` failures and carries only the latest failed answer, so its size is capped.
  If only item failures (schema or grounding) remain after the last re-ask (or the re-ask failed in
  transport), the latest usable answer is returned anyway: its valid items are kept and the caller
  rejects the others, never silently dropped.
  Otherwise ParseError, naming the failing field paths;
- ``finish_reason == "length"``: one retry with ``settings.max_tokens_retry``, then TruncatedOutputError;
- an endpoint that no request has ever had an HTTP answer from, failing to connect (refused, unknown
  host) after every retry:
  ConfigError, which stops a batch with one line; once it has answered, a connection failure is that
  article's TransportError.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import instructor
import openai
from instructor.core.exceptions import IncompleteOutputException, InstructorRetryException
from pydantic import ValidationError

from extractor.config import Settings
from extractor.errors import (
    ConfigError,
    ExtractorError,
    ParseError,
    TransportError,
    TruncatedOutputError,
)
from extractor.models import (
    GROUNDING_ERROR_PREFIX,
    SCHEMA_ERROR_PREFIX,
    ArticleExtraction,
    Usage,
    describe_validation_error,
)
from extractor.ratelimit import RateLimiter
from extractor.transport import CallStats, RetryingTransport, track_calls

__all__ = ["Completion", "OpenAIProvider", "Provider", "raw_answer_json"]

MODES: dict[str, instructor.Mode] = {
    "tools": instructor.Mode.TOOLS,
    "json_schema": instructor.Mode.JSON_SCHEMA,
    "json": instructor.Mode.JSON,
    "md_json": instructor.Mode.MD_JSON,
}

GroundingCheck = Callable[[ArticleExtraction], list[str]]


@dataclass(frozen=True)
class Completion:
    """A validated answer with the tokens spent on it (every attempt, re-asks included)."""

    extraction: ArticleExtraction
    usage: Usage
    model: str
    attempts: int


class Provider(Protocol):
    """Anything that turns chat messages into an ArticleExtraction (the OpenAI client, a test fake)."""

    async def complete(
        self, messages: list[dict[str, str]], *, key: str, article_id: str, check: GroundingCheck | None
    ) -> Completion: ...

    async def aclose(self) -> None: ...


logging.getLogger("instructor").setLevel(logging.CRITICAL)  # we report failures ourselves


class ValidationContext(dict[str, Any]):
    """What the validators need (``context=``), falsy on purpose: instructor 1.17 renders every message
    as a Jinja template when ``context`` is truthy, which would rewrite article text (``{{ x }}``,
    ``{% ... %}``, dedented lines). tests/test_llm.py guards this."""

    def __bool__(self) -> bool:
        return False


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def raw_answer_json(completion: Any) -> str | None:
    """The answer's JSON text from a chat completion, whatever the mode (tool call or content)."""
    try:
        message = completion.choices[0].message
    except (AttributeError, IndexError):
        return None
    if message.tool_calls:
        return str(message.tool_calls[0].function.arguments)
    content = message.content or ""
    fenced = _FENCE.search(content)
    return fenced.group(1) if fenced else content


def _usage_of(calls: CallStats) -> Usage:
    return Usage(
        prompt_tokens=calls.prompt_tokens,
        completion_tokens=calls.completion_tokens,
        http_calls=calls.http_calls,
    )


def _only_item_failures(exc: BaseException | None) -> bool:
    """The answer was usable: it failed only because some items did not fit the schema or the article."""
    if not isinstance(exc, ValidationError):
        return False
    prefixes = (GROUNDING_ERROR_PREFIX, SCHEMA_ERROR_PREFIX)
    return all(any(p in str(err.get("msg", "")) for p in prefixes) for err in exc.errors())


def _keep_last_reask_only(*_: Any, **kwargs: Any) -> None:
    """Before each attempt: keep the prompt and only the latest failed answer with its errors.

    instructor appends (answer, errors) for every re-ask; without this the context grows with each one.
    The list is trimmed in place because it is the very list instructor is about to send.
    """
    messages = kwargs.get("messages")
    if not isinstance(messages, list):
        return
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    first_user = next((i for i, role in enumerate(roles) if role == "user"), None)
    if first_user is None:
        return
    # The last answer and everything after it (its tool results / error message) stay together.
    last_answer = max((i for i, role in enumerate(roles) if role == "assistant"), default=None)
    if last_answer is not None and last_answer > first_user + 1:
        del messages[first_user + 1 : last_answer]


def _explain_status(exc: openai.APIStatusError, endpoint: str) -> str:
    status = exc.status_code
    detail = exc.message.splitlines()[0][:300] if exc.message else ""
    if status in (401, 403):
        return f"the API key was rejected by {endpoint} (HTTP {status}); check OPENAI_API_KEY"
    if status == 404:
        return f"{endpoint} answered 404 ({detail}); check OPENAI_BASE_URL and EXTRACTOR_MODEL"
    return f"{endpoint} answered HTTP {status} after every retry: {detail}"


class OpenAIProvider:
    """openai + instructor client for any OpenAI-compatible chat-completions endpoint."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        if not settings.api_key:
            raise ConfigError(
                "no API key: set OPENAI_API_KEY (or api_key in extractor.toml); any non-empty value works "
                "for local OpenAI-compatible servers"
            )
        self.settings = settings
        self.limiter = limiter or RateLimiter(rpm=settings.rpm, tpm=settings.tpm, window_safe=True)
        retrying = RetryingTransport(
            transport or httpx.AsyncHTTPTransport(),
            self.limiter,
            attempts=settings.transport_attempts,
            max_wait_s=settings.transport_max_wait_s,
        )
        if sleep is not None:
            retrying.sleep = sleep
        self._http = httpx.AsyncClient(
            transport=retrying,
            timeout=httpx.Timeout(settings.timeout_s, connect=min(10.0, settings.timeout_s)),
        )
        self._openai = openai.AsyncOpenAI(
            api_key=settings.api_key,
            base_url=settings.endpoint,
            http_client=self._http,
            max_retries=0,
        )
        self._client = instructor.from_openai(self._openai, mode=MODES[settings.mode])
        self._client.on("completion:kwargs", _keep_last_reask_only)
        self._reached = False  # has any request had an HTTP answer (any status) from the endpoint?

    async def aclose(self) -> None:
        await self._openai.close()
        await self._http.aclose()

    async def complete(
        self,
        messages: list[dict[str, str]],
        *,
        key: str,
        article_id: str,
        check: GroundingCheck | None = None,
    ) -> Completion:
        with track_calls() as calls:
            try:
                return await self._complete_or_explain(messages, key, article_id, check, calls)
            except ExtractorError as exc:
                exc.usage = _usage_of(calls)
                raise
            finally:
                self._reached = self._reached or bool(calls.statuses)

    async def _complete_or_explain(
        self,
        messages: list[dict[str, str]],
        key: str,
        article_id: str,
        check: GroundingCheck | None,
        calls: CallStats,
    ) -> Completion:
        try:
            return await self._complete(messages, key, article_id, check, calls)
        except ExtractorError:
            raise
        except openai.APIStatusError as exc:
            raise TransportError(_explain_status(exc, self.settings.public_endpoint)) from exc
        except openai.APITimeoutError as exc:
            raise TransportError(
                f"{self.settings.public_endpoint} timed out after {self.settings.timeout_s:g} s "
                f"on every one of {calls.http_calls} attempts"
            ) from exc
        except openai.APIConnectionError as exc:
            cause = exc.__cause__
            if isinstance(cause, ExtractorError):
                raise cause from None
            kind = type(cause).__name__ if cause else "error"
            message = (
                f"cannot reach {self.settings.public_endpoint} ({kind}: {cause or exc}); "
                "check OPENAI_BASE_URL and the network"
            )
            if not (self._reached or calls.statuses) and isinstance(cause, httpx.ConnectError):
                # A wrong endpoint (refused, unknown host), not a blip: stop now, not fail every article.
                raise ConfigError(message + " (no request has reached it yet)") from exc
            raise TransportError(message) from exc

    async def _complete(
        self,
        messages: list[dict[str, str]],
        key: str,
        article_id: str,
        check: GroundingCheck | None,
        calls: CallStats,
    ) -> Completion:
        max_tokens = self.settings.max_tokens
        for budget_attempt in range(2):
            try:
                result, completion = await self._client.chat.completions.create_with_completion(
                    model=self.settings.model,
                    messages=list(messages),  # type: ignore[arg-type]
                    response_model=ArticleExtraction,
                    max_retries=self.settings.reasks,
                    context=ValidationContext(
                        grounding_check=check, reask_items=True, max_listed=self.settings.reask_max_listed
                    ),
                    temperature=self.settings.temperature,
                    max_tokens=max_tokens,
                    extra_headers={"x-extractor-key": key, "x-extractor-article": article_id},
                )
            except IncompleteOutputException as exc:
                if budget_attempt == 0 and self.settings.max_tokens_retry > max_tokens:
                    max_tokens = self.settings.max_tokens_retry
                    continue
                raise TruncatedOutputError(
                    f"the model's answer was cut off at max_tokens={max_tokens} (finish_reason=length) "
                    "even after one retry with more tokens; raise max_tokens or lower chunk_chars"
                ) from exc
            except InstructorRetryException as exc:
                return self._accept_or_fail(exc, calls)
            return Completion(
                extraction=result,
                usage=_usage_of(calls),
                model=str(getattr(completion, "model", None) or self.settings.model),
                attempts=max(1, calls.statuses.get(200, 0)),
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def _accept_or_fail(self, exc: InstructorRetryException, calls: CallStats) -> Completion:
        final = exc.__cause__
        failures = exc.failed_attempts or []
        # The latest usable answer, its valid items kept, even when a re-ask then failed in transport.
        for attempt in reversed(failures):
            if not _only_item_failures(attempt.exception):
                continue
            raw = raw_answer_json(attempt.completion)
            if raw is None:
                continue
            try:
                extraction = ArticleExtraction.model_validate_json(raw)  # no context: lenient
            except ValidationError:
                continue
            return Completion(
                extraction=extraction,
                usage=_usage_of(calls),
                model=str(getattr(attempt.completion, "model", None) or self.settings.model),
                attempts=exc.n_attempts,
            )
        if isinstance(final, openai.APIError | httpx.HTTPError | ExtractorError):
            raise final  # the last attempt failed in transport (e.g. a re-ask got a 503 after retries)
        last = failures[-1] if failures else None
        cause = last.exception if last is not None else final
        listed = self.settings.reask_max_listed
        if isinstance(cause, ValidationError):
            summary = describe_validation_error(cause, listed, root="the answer")
        else:
            summary = " ".join(str(cause or exc).split())[:300]
        raise ParseError(
            f"no usable answer after {exc.n_attempts} attempt(s) ({self.settings.reasks} re-ask(s)): "
            + summary
        ) from exc
