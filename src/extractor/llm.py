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
- answers that no other article would fare better with are a ConfigError too: a rejected key (401, 403),
  an unknown model ("model not found: NAME", whatever the status), an exhausted quota; and, until the
  endpoint has given one OpenAI-shaped answer, a 404 or an answer that is not an OpenAI chat completion
  (a web page with status 200: "did not answer as an OpenAI-compatible API (content-type, first bytes)").
  After that first good answer those two are the one article's TransportError.

Every message is built from scrubbed text (``extractor.errors.redact``): an upstream error page that
echoes the request's ``Authorization`` header cannot put the key in a message.
"""

from __future__ import annotations

import copy
import json
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
    redact,
)
from extractor.models import (
    GROUNDING_ERROR_PREFIX,
    SCHEMA_ERROR_PREFIX,
    ArticleExtraction,
    Usage,
    describe_validation_error,
)
from extractor.ratelimit import RateLimiter
from extractor.transport import RETRY_STATUSES, CallStats, RetryingTransport, track_calls

__all__ = [
    "Completion",
    "Judgement",
    "OpenAIProvider",
    "Provider",
    "judge_answer",
    "raw_answer_json",
    "request_body",
]

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


_DETAIL_CHARS = 200
_HEAD_CHARS = 60
_MODEL_MISSING = re.compile(
    r"\b(?:model|deployment)\b[^.]{0,80}?\b(?:does not exist|not found)\b|\bunknown model\b", re.IGNORECASE
)


def _one_line(text: str, secrets: tuple[str, ...], limit: int) -> str:
    """``text`` scrubbed, on one line, at most ``limit`` characters (scrubbed before it is cut, so no
    half of a secret survives the cut)."""
    flat = redact(" ".join(text[: limit * 20].split()), *secrets)
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def _error_fields(exc: openai.APIStatusError) -> tuple[str, str]:
    """(message, code) of an error answer: OpenAI's ``{"error": {...}}``, vLLM's flat error object, or the
    body's text."""
    body: Any = exc.body  # openai keeps the "error" object of a JSON body, else the whole body
    message: Any = body.get("message") if isinstance(body, dict) else body
    code: Any = body.get("code") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        message = exc.response.text if exc.response is not None else ""
    return str(message or ""), str(code or "")


def _explain_status(
    exc: openai.APIStatusError, settings: Settings, *, answered: bool
) -> ConfigError | TransportError:
    """The error for an HTTP error answer: a ConfigError (stops a batch) when every other request would
    get the same answer, else the article's TransportError. One line, scrubbed, capped."""
    status, endpoint = exc.status_code, settings.public_endpoint
    message, code = _error_fields(exc)
    detail = _one_line(message, settings.secrets, _DETAIL_CHARS) or "no details"
    if code in ("model_not_found", "DeploymentNotFound") or (
        status in (403, 404) and _MODEL_MISSING.search(message)
    ):
        return ConfigError(
            f"model not found: {settings.model} at {endpoint} (HTTP {status}: {detail}); "
            "check EXTRACTOR_MODEL or --model (on Azure: the deployment name)"
        )
    if status in (401, 403):
        return ConfigError(
            f"the API key was rejected by {endpoint} (HTTP {status}: {detail}); check OPENAI_API_KEY"
        )
    if code == "insufficient_quota":
        return ConfigError(
            f"{endpoint} says the quota is exhausted (HTTP {status}: {detail}); check your plan"
        )
    if status == 404 and not answered:
        return ConfigError(
            f"{endpoint} answered HTTP 404 ({detail}); check OPENAI_BASE_URL (it usually ends in /v1) "
            "and EXTRACTOR_MODEL"
        )
    retried = " after every retry" if status in RETRY_STATUSES else ""
    return TransportError(f"{endpoint} answered HTTP {status}{retried}: {detail}")


def _not_an_answer(body: bytes, content_type: str) -> bool:
    """True unless ``body`` is a chat completion with at least one choice. A JSON answer cut off in
    transit is still an answer (the re-ask path handles it); a page of another type is not."""
    try:
        data = json.loads(body)
    except ValueError:
        return not (content_type == "application/json" and body.lstrip().startswith(b"{"))
    choices = data.get("choices") if isinstance(data, dict) else None
    return not (isinstance(choices, list) and choices)


def _scrub(exc: ExtractorError, secrets: tuple[str, ...]) -> ExtractorError:
    """``exc`` with its message scrubbed (in place, so its type and usage stay)."""
    text = str(exc)
    clean = redact(text, *secrets)
    if clean != text:
        exc.args = (clean,)
    return exc


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
            event_hooks={"response": [self._check_answer]},
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
        self._answered = False  # has any request had an OpenAI chat completion from it?

    async def _check_answer(self, response: httpx.Response) -> None:
        """A 200 that is not a chat completion (a web page, another API) is no answer to re-ask: say
        what came instead. Until one real answer has come, that means a wrong base URL: ConfigError."""
        if response.status_code != 200:
            return
        body = await response.aread()
        kind = response.headers.get("content-type", "none").split(";")[0].strip() or "none"
        if not _not_an_answer(body, kind):
            self._answered = True
            return
        head = _one_line(body[:2000].decode("utf-8", "replace"), self.settings.secrets, _HEAD_CHARS)
        message = (
            f"{self.settings.public_endpoint} did not answer as an OpenAI-compatible API (content-type "
            f"{kind}, starts with '{head}'); check OPENAI_BASE_URL (it usually ends in /v1)"
        )
        if self._answered:
            raise TransportError(message)
        raise ConfigError(message + " (no request has had an API answer yet)")

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
                return await self._complete(messages, key, article_id, check, calls)
            except (openai.APIStatusError, openai.APIConnectionError) as exc:  # timeouts included
                failure = self._explain(exc, calls)
            except ExtractorError as exc:
                failure = exc
            finally:
                self._reached = self._reached or bool(calls.statuses)
            # every message leaves scrubbed, whoever built it
            _scrub(failure, self.settings.secrets).usage = calls.usage.model_copy()
            raise failure from None

    def _explain(
        self, exc: openai.APIStatusError | openai.APIConnectionError, calls: CallStats
    ) -> ExtractorError:
        """What an HTTP status, timeout or connection failure means for the user, as an ExtractorError."""
        if isinstance(exc, openai.APIStatusError):
            return _explain_status(exc, self.settings, answered=self._answered)
        if isinstance(exc, openai.APITimeoutError):
            return TransportError(
                f"{self.settings.public_endpoint} timed out after {self.settings.timeout_s:g} s "
                f"on every one of {calls.usage.http_calls} attempts"
            )
        cause = exc.__cause__
        if isinstance(cause, ExtractorError):
            return cause
        kind = type(cause).__name__ if cause else "error"
        message = (
            f"cannot reach {self.settings.public_endpoint} ({kind}: {cause or exc}); "
            "check OPENAI_BASE_URL and the network"
        )
        if not (self._reached or calls.statuses) and isinstance(cause, httpx.ConnectError):
            # A wrong endpoint (refused, unknown host), not a blip: stop now, not fail every article.
            return ConfigError(message + " (no request has reached it yet)")
        return TransportError(message)

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
                    messages=list(messages),  # type: ignore[arg-type]
                    response_model=ArticleExtraction,
                    max_retries=self.settings.reasks,
                    context=ValidationContext(
                        grounding_check=check, reask_items=True, max_listed=self.settings.reask_max_listed
                    ),
                    extra_headers={"x-extractor-key": key, "x-extractor-article": article_id},
                    **_model_settings(self.settings, max_tokens),
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
                usage=calls.usage.model_copy(),
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
                usage=calls.usage.model_copy(),
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


# --------------------------------------------------------------------------- the Batch API's requests


def _model_settings(settings: Settings, max_tokens: int) -> dict[str, Any]:
    """The model settings of every request, direct or batched."""
    return {"model": settings.model, "temperature": settings.temperature, "max_tokens": max_tokens}


def request_body(settings: Settings, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat-completions request body the direct path sends for ``messages``: instructor's own request
    shaping for the mode (``tools``/``tool_choice``, ``response_format``, or the schema in the system
    prompt) and the same model settings. A Batch API input line carries it as its ``body``."""
    from instructor.processing.response import handle_response_model  # loaded by the batch path only

    _, body = handle_response_model(
        ArticleExtraction,
        mode=MODES[settings.mode],
        messages=copy.deepcopy(messages),
        **_model_settings(settings, settings.max_tokens),
    )
    return body


@dataclass(frozen=True)
class Judgement:
    """What one answer (a chat completion from a batch output file) is worth.

    ``extraction`` is the validated answer, or, when only grounding failed, the answer as it stands (its
    ungrounded items are rejected later); None when it is unusable. ``problem`` says why it needs a
    re-ask and ``reask`` holds the messages instructor appends for one (the answer, then the errors)."""

    extraction: ArticleExtraction | None
    usage: Usage
    model: str | None
    problem: str | None = None
    reask: list[dict[str, Any]] | None = None


def _first_problem(exc: Exception) -> str:
    """The first failure of ``exc`` on one line (a ValidationError's first error, not its header)."""
    errors = exc.errors() if isinstance(exc, ValidationError) else []
    text = str(errors[0].get("msg", "")) if errors else str(exc)
    return " ".join(text.split())[:300] or type(exc).__name__


def judge_answer(
    settings: Settings, messages: list[dict[str, Any]], answer: Any, check: GroundingCheck | None
) -> Judgement:
    """Parse and validate ``answer`` (a chat completion as JSON data) with instructor's parser for the
    mode, the same validators and grounding check as the direct path. Raises ParseError for something
    that is not a chat completion and TruncatedOutputError for an answer cut off at max_tokens."""
    from instructor.processing.response import handle_reask_kwargs, process_response
    from openai.types.chat import ChatCompletion

    try:
        completion = ChatCompletion.model_validate(answer)
    except ValidationError as exc:
        raise ParseError(f"the answer is not a chat completion ({exc.error_count()} error(s))") from None
    usage = Usage(
        prompt_tokens=completion.usage.prompt_tokens if completion.usage else 0,
        completion_tokens=completion.usage.completion_tokens if completion.usage else 0,
    )
    mode = MODES[settings.mode]
    context = ValidationContext(grounding_check=check, max_listed=settings.reask_max_listed)
    try:
        extraction = process_response(
            completion, response_model=ArticleExtraction, stream=False, validation_context=context, mode=mode
        )
    except IncompleteOutputException:
        raise TruncatedOutputError(
            f"the model's answer was cut off at max_tokens={settings.max_tokens} (finish_reason=length); "
            "raise max_tokens or lower chunk_chars"
        ) from None
    except Exception as exc:  # a schema, JSON or grounding failure: what instructor would re-ask
        shaped = request_body(settings, messages)
        asked = handle_reask_kwargs(copy.deepcopy(shaped), mode, completion, exc)
        tail = [dict(m) for m in asked["messages"][len(shaped["messages"]) :]]
        kept: ArticleExtraction | None = None
        raw = raw_answer_json(completion)
        if _only_item_failures(exc) and raw is not None:
            try:
                kept = ArticleExtraction.model_validate_json(raw)
            except ValidationError:
                kept = None
        return Judgement(kept, usage, completion.model, problem=_first_problem(exc), reask=tail)
    if not isinstance(extraction, ArticleExtraction):  # pragma: no cover - instructor's contract
        raise ParseError(f"instructor returned {type(extraction).__name__}, not an ArticleExtraction")
    return Judgement(extraction, usage, completion.model)
