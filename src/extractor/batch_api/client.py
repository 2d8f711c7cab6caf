"""The Batch API's HTTP side: the ``/files`` and ``/batches`` routes (``BatchClient``) and what a batch
looks like (``BatchInfo``)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from extractor.config import Settings
from extractor.errors import ConfigError, ExtractorError, TransportError, redact
from extractor.ratelimit import RateLimiter
from extractor.transport import RetryingTransport

__all__ = ["CHAT_URL", "TERMINAL", "BatchClient", "BatchInfo", "BatchPollTimeout"]

TERMINAL = frozenset({"completed", "expired", "failed", "cancelled"})
CHAT_URL = "/v1/chat/completions"


class BatchPollTimeout(TransportError):
    """The batches did not end within ``batch_poll_timeout_s``; they keep running and the next run over
    the same folder resumes polling them."""


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
