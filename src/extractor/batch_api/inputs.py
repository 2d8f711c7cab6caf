"""The Batch API's files: input JSONL parts (``InputWriter``, ``custom_id_of``) and the lines of an output or
error file (``read_output``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from extractor.batch_api.client import CHAT_URL
from extractor.batch_api.store import Requests
from extractor.models import Article

__all__ = ["InputWriter", "custom_id_of", "read_output"]

_MAX_FILE_BYTES = 190 * 1024**2  # OpenAI takes input files of up to 200 MB


def custom_id_of(article: Article, chunk: int, chunks: int) -> str:
    return article.sha256 if chunks == 1 else f"{article.sha256}-{chunk}"


class InputWriter:
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


def read_output(
    path: Path, submission: str, rows: Requests
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
