"""Prompt templates: load prompts/*.j2, render chat messages, and version them by content hash.

The version (``PromptSet.version``) is the first 12 hex digits of a sha256 over every template's name
and bytes; it enters the cache key and every result, so editing a prompt invalidates old answers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2

from extractor.errors import ConfigError
from extractor.models import Article
from extractor.resources import data_dir

__all__ = ["DEFAULT_PROMPT_DIR", "OPEN_TAG", "PromptSet", "load_prompts"]

# The package's templates (the repository's prompts/, carried in the wheel; see extractor.resources).
DEFAULT_PROMPT_DIR = data_dir("prompts")
OPEN_TAG = "<article_text>"
CLOSE_TAG = "</article_text>"
_TEMPLATES = ("system.j2", "user.j2")


def _neutralise(text: str) -> str:
    """Keep the article from closing (or reopening) its own delimiters."""
    return text.replace(CLOSE_TAG, "</article-text>").replace(OPEN_TAG, "<article-text>")


@dataclass(frozen=True)
class PromptSet:
    """The system and user templates of one prompt version."""

    system: jinja2.Template
    user: jinja2.Template
    version: str
    directory: Path
    system_text: str  # the system message takes no variables: rendered once

    def render(
        self, article: Article, text: str | None = None, chunk_index: int = 1, chunk_total: int = 1
    ) -> list[dict[str, str]]:
        """Chat messages for ``article`` (or one chunk ``text`` of it)."""
        body = _neutralise(article.text if text is None else text)
        user = self.user.render(
            text=body,
            title=article.title,
            published=article.published.isoformat() if article.published else None,
            chunk_index=chunk_index,
            chunk_total=chunk_total,
        )
        return [
            {"role": "system", "content": self.system_text},
            {"role": "user", "content": user.strip("\n")},
        ]


@cache
def load_prompts(directory: Path | str | None = None) -> PromptSet:
    """Load and compile the templates in ``directory`` (default: the package's prompts/)."""
    folder = Path(directory) if directory is not None else DEFAULT_PROMPT_DIR
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - plain-text chat messages, not HTML
        keep_trailing_newline=True,
    )
    digest = hashlib.sha256()
    for name in _TEMPLATES:
        path = folder / name
        try:
            digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        except OSError as exc:
            raise ConfigError(f"prompt template {path} is missing or unreadable") from exc
    system = env.get_template("system.j2")
    return PromptSet(
        system=system,
        system_text=system.render().strip(),
        user=env.get_template("user.j2"),
        version=digest.hexdigest()[:12],
        directory=folder,
    )
