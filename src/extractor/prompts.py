"""Prompt templates: load prompts/*.j2, render chat messages, and version them by content hash.

The version (``PromptSet.version``) is the first 12 hex digits of a sha256 over every template's name
and bytes; it enters the cache key and every result, so editing a prompt invalidates old answers.

Everything an article supplies is data, and none of it may forge the message's structure. The body is
rendered between ``<article_text>`` lines with any delimiter-like tag inside it defused (``_`` becomes
``-``; any case, spaces inside the brackets). The metadata (``title``, ``url``, ``source``,
``published``) is rendered outside that block, so it is also folded onto one line (every line break,
other control character and whitespace run becomes one space) and cut to ``METADATA_MAX_CHARS``.
"""

from __future__ import annotations

import hashlib
import re
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
METADATA_MAX_CHARS = 500
_TEMPLATES = ("system.j2", "user.j2")
_TAG_LIKE = re.compile(r"<\s*/?\s*article_text\s*/?\s*>", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _neutralise(text: str) -> str:
    """Keep the article from closing (or reopening) its own delimiters, in any case or spacing. The
    length is kept: ``</article_text>`` becomes ``</article-text>``."""
    return _TAG_LIKE.sub(lambda m: m.group(0).replace("_", "-"), text)


def _metadata(value: str | None) -> str | None:
    """A metadata value made safe to render outside the data block: neutralised like the body, on one
    line, at most ``METADATA_MAX_CHARS`` characters. None (or nothing left) stays None."""
    if value is None:
        return None
    folded = " ".join(_CONTROL.sub(" ", value).split())
    if len(folded) > METADATA_MAX_CHARS:
        folded = folded[: METADATA_MAX_CHARS - 1].rstrip() + "…"
    return _neutralise(folded) or None


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
        """Chat messages for ``article`` (or one chunk ``text`` of it). Every article-supplied value is
        neutralised (see the module docstring); ``url`` and ``source`` are offered to the template too,
        though the default one does not show them."""
        body = _neutralise(article.text if text is None else text)
        user = self.user.render(
            text=body,
            title=_metadata(article.title),
            url=_metadata(article.url),
            source=_metadata(article.source),
            published=_metadata(article.published.isoformat() if article.published else None),
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
