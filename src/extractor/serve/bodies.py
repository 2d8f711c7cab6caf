"""Request bodies of the service: articles as JSON or NDJSON, parsed into 422 errors that name the field
(never echoing the input), and the ``Article`` the pipeline extracts."""

from __future__ import annotations

import json
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from extractor.articles import normalize_text, sanitize_id
from extractor.models import Article, text_sha256
from extractor.serve_models import ArticleIn

__all__ = [
    "ARTICLE",
    "ARTICLES",
    "NDJSON",
    "article_of",
    "error",
    "json_body",
    "ndjson_articles",
    "validation_errors",
]

NDJSON = "application/x-ndjson"


def article_of(item: ArticleIn) -> Article:
    """The Article the pipeline extracts (text normalised as the file loader does)."""
    text = normalize_text(item.text)
    sha = text_sha256(text)
    article_id = sanitize_id(str(item.id), sha) if item.id is not None else sha[:16]
    title, url = (item.title or "").strip() or None, (item.url or "").strip() or None
    return Article(
        id=article_id, text=text, title=title, url=url, published=item.published, source="api", sha256=sha
    )


ARTICLES = TypeAdapter(list[ArticleIn])
ARTICLE = TypeAdapter(ArticleIn)


def validation_errors(exc: ValidationError, prefix: tuple[Any, ...]) -> list[dict[str, Any]]:
    """Pydantic errors as FastAPI's 422 shows them (``loc`` from ``body``), without echoing the input."""
    return [
        {"type": e["type"], "loc": [*prefix, *e["loc"]], "msg": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def error(loc: tuple[Any, ...], msg: str, kind: str = "value_error") -> dict[str, Any]:
    return {"type": kind, "loc": list(loc), "msg": msg}


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        pos = getattr(exc, "pos", 0)
        raise RequestValidationError(
            [error(("body", pos), f"JSON decode error: {exc}", "json_invalid")]
        ) from None


def ndjson_articles(body: bytes) -> list[ArticleIn]:
    articles: list[ArticleIn] = []
    errors: list[dict[str, Any]] = []
    for number, raw in enumerate(body.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            articles.append(ARTICLE.validate_json(raw))
        except ValidationError as exc:
            errors.extend(validation_errors(exc, ("body", f"line {number}")))
        if len(errors) >= 50:
            break
    if errors:
        raise RequestValidationError(errors)
    if not articles:
        raise RequestValidationError([error(("body",), "no article: the body has no non-blank line")])
    return articles
