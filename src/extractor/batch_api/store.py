"""What a Batch API run keeps in ``OUT/batch_api/``: ``state.json`` (``State``: the submissions and their
batch ids) and ``requests.sqlite`` (``Requests``: one row per request, its latest answer and cost)."""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extractor.errors import ConfigError
from extractor.llm import Completion
from extractor.models import Usage
from extractor.store import BATCH_API_DIR, write_json_atomic

__all__ = ["REQUESTS_DB", "STATE_DIR", "STATE_FILE", "Requests", "Row", "State"]

STATE_DIR = BATCH_API_DIR
STATE_FILE = "state.json"
REQUESTS_DB = "requests.sqlite"
_STATE_FORMAT = 1


class State:
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
class Row:
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


class Requests:
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
    def _row(found: Any) -> Row:
        return Row(
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

    def get(self, key: str) -> Row | None:
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
