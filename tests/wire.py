"""Builders of OpenAI wire-format chat completions for respx-mocked tests."""

from __future__ import annotations

import json
from typing import Any

import httpx

API = "https://api.test.invalid/v1"
CHAT = f"{API}/chat/completions"


def tool_completion(
    arguments: dict[str, Any] | str,
    *,
    finish_reason: str = "tool_calls",
    prompt_tokens: int = 100,
    completion_tokens: int = 40,
    model: str = "gpt-test",
) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1767700000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "ArticleExtraction", "arguments": args},
                        }
                    ],
                },
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def ok(arguments: dict[str, Any] | str, **kwargs: Any) -> httpx.Response:
    return httpx.Response(200, json=tool_completion(arguments, **kwargs))


def error(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"message": f"test error {status}", "type": "server_error", "code": None}}
    return httpx.Response(status, json=body, headers=headers or {})


def extraction(
    quotes: list[tuple[str, str]] = (),  # type: ignore[assignment]
    events: list[dict[str, Any]] | None = None,
    stances: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "events": events or [],
        "quotes": [{"text": t, "speaker": s, "cue": None} for t, s in quotes],
        "stances": stances or [],
    }


def event(evidence: str, event_type: str = "CONSULT", date: str | None = None) -> dict[str, Any]:
    return {
        "summary": "Something happened.",
        "event_type": event_type,
        "date": date,
        "date_text": None,
        "location": None,
        "actors": ["Someone"],
        "evidence": evidence,
    }


def stance(evidence: str, holder: str = "Italy", polarity: str = "oppose") -> dict[str, Any]:
    return {"holder": holder, "target": "deploying troops", "polarity": polarity, "evidence": evidence}
