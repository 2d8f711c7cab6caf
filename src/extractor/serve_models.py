"""The service's request and response bodies (pydantic only, shared by the server and the client).

``ArticleResult`` (extractor.models) is what ``POST /v1/extract`` answers and what each line of a job's
results holds; these are the rest of the API's vocabulary.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "FINAL_STATES",
    "ArticleIn",
    "ErrorBody",
    "Health",
    "JobList",
    "JobPaths",
    "JobState",
    "JobStatus",
    "Readiness",
]

JobState = Literal["queued", "running", "cancelling", "done", "cancelled", "failed"]
FINAL_STATES: frozenset[str] = frozenset({"done", "cancelled", "failed"})


def _check_unicode(value: str | None) -> str | None:
    if value is not None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"not valid Unicode (a lone surrogate at character {exc.start})") from None
    return value


def _parse_date(value: Any) -> Any:
    """An ISO datetime is taken as its date, as the file loader does."""
    if isinstance(value, str) and len(value) > 10 and value[:10].count("-") == 2:
        with contextlib.suppress(ValueError):
            return dt.datetime.fromisoformat(value.strip()).date()
    return value


class ArticleIn(BaseModel):
    """One article, as ``POST /v1/extract`` takes it and as each element / line of a job. Fields the
    file loader knows but the API does not (e.g. ``source``) are ignored."""

    model_config = ConfigDict(extra="ignore")

    id: str | int | None = Field(
        default=None,
        description="Your id; sanitised to [A-Za-z0-9._-] (at most 200 characters). Default: from the text.",
    )
    text: str = Field(min_length=1, description="The article text; offsets in the result refer to it.")
    title: str | None = None
    url: str | None = None
    published: dt.date | None = Field(default=None, description="ISO date (or datetime, of which the date)")

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a string or an integer")
        if isinstance(value, str):
            _check_unicode(value)
        return value

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        _check_unicode(value)
        if not value.strip():
            raise ValueError("contains only whitespace")
        if "\x00" in value:
            raise ValueError("contains a NUL character")
        return value

    @field_validator("title", "url")
    @classmethod
    def _strings(cls, value: str | None) -> str | None:
        return _check_unicode(value)

    @field_validator("published", mode="before")
    @classmethod
    def _published(cls, value: Any) -> Any:
        return _parse_date(value)

    def to_line(self) -> bytes:
        """The article as one line of a job's input.jsonl (read back by the file loader)."""
        data = self.model_dump(mode="json", exclude_none=True)
        return json.dumps(data, ensure_ascii=False).encode("utf-8")


class JobPaths(BaseModel):
    """A job over files and folders on the server, relative to its ``--allow-paths`` folder."""

    model_config = ConfigDict(extra="forbid")

    paths: list[str] = Field(min_length=1, description="files or folders under the allowed folder")


class JobStatus(BaseModel):
    """What ``GET /v1/jobs/{id}`` answers: state, counts, tokens, cost and progress."""

    id: str
    state: JobState
    created: str
    started: str | None = None
    finished: str | None = None
    articles: int | None = None  # inputs in the job, once known (a paths job counts them when it starts)
    done: int = 0  # articles with a result: extracted, failed, duplicate, or already done before a restart
    ok: int = 0
    failed: int = 0
    duplicates: int = 0
    cache_hits: int = 0
    results: int = 0  # lines of the job's results (GET .../results)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    http_calls: int = 0
    cost_usd: float | None = 0.0  # None when the model has no known price
    progress: float | None = None  # done / articles
    resumed: int = 0  # times the job was resumed by a restarted server
    error: str | None = None

    @property
    def finished_state(self) -> bool:
        """The job will change no more (done, cancelled or failed)."""
        return self.state in FINAL_STATES


class JobList(BaseModel):
    """What ``GET /v1/jobs`` answers: a page of jobs, newest first."""

    jobs: list[JobStatus]
    next_cursor: str | None = Field(
        default=None, description="pass as ?cursor= for the next page; null on the last page"
    )


class ErrorBody(BaseModel):
    """Every error but 422: what was wrong, in one line."""

    detail: str


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    detail: str
