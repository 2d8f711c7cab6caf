"""ASGI middleware of the service: the body-size limit (413) and the access log (one JSON line and the
request metrics per request)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import HTTPException
from fastapi.responses import JSONResponse

from extractor.serve.service import Service

__all__ = ["AccessLog", "BodyLimit"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class BodyLimit:
    """413 for a body over the limit: at once by Content-Length, else when the stream passes it."""

    def __init__(self, app: ASGIApp, limit: Callable[[Scope], int | None]) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit(scope) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        detail = f"request body over the limit of {limit:,} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                response = JSONResponse({"detail": detail}, status_code=413)
                await response(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, limited, send)


class AccessLog:
    """One JSON log line and the request metrics per HTTP request (after a stream, when it ends)."""

    def __init__(self, app: ASGIApp, service: Callable[[], Service | None]) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self.service()
        if scope["type"] != "http" or service is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        sent = 0

        async def counting(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, counting)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope.get("method", "")
            if method not in _METHODS:  # label values stay a small set, whatever clients send
                method = "other"
            service.metrics.requests.labels(route, method, str(status)).inc()
            service.metrics.latency.labels(route, method).observe(elapsed)
            extra = dict(scope.get("state", {}).get("log", {}))
            job = extra.pop("job", None) or scope.get("path_params", {}).get("job_id")
            service.log(
                "request",
                method=method,
                route=route,
                status=status,
                latency_ms=round(elapsed * 1000, 2),
                bytes=sent,
                job=job,
                **extra,
            )
