"""Prompt templates: load prompts/*.j2, render chat messages, and version them by content hash.

The version (``PromptSet.version``) is the first 12 hex digits of a sha256 over every template's and
every example's name and bytes; it enters the cache key and every result, so editing a prompt (or an
example) invalidates old answers. The system message also carries two settings, ``max_events`` and
``output_language``; they change the rendered messages, hence the cache key, not the version.

The worked examples are files in ``prompts/examples/``: ``NAME.txt`` (the article) and ``NAME.json``
(``{"note": why, "answer": an ArticleExtraction}``), rendered in name order into the system message.
Every quote, cue, evidence and date_text of an answer must be verbatim in its article (checked on load).

``cap_events`` enforces the prompt's "at most ``max_events``" in code, after the chunk answers are
merged: the events over the limit are rejected with a specific reason, never dropped silently.

``estimate_tokens`` counts tokens offline (no tokenizer's vocabulary is available without the network):
an upper-bound estimate, see its docstring.

Everything an article supplies is data, and none of it may forge the message's structure. The body is
rendered between ``<article_text>`` lines with any delimiter-like tag inside it defused (``_`` becomes
``-``; any case, spaces inside the brackets). The metadata (``title``, ``url``, ``source``,
``published``) is rendered outside that block, so it is also folded onto one line (every line break,
other control character and whitespace run becomes one space) and cut to ``METADATA_MAX_CHARS``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2

from extractor.errors import ConfigError
from extractor.models import OVER_LIMIT_REASON, Article, ArticleExtraction, GroundedEvent, Rejected
from extractor.resources import data_dir

__all__ = [
    "DEFAULT_MAX_EVENTS",
    "DEFAULT_OUTPUT_LANGUAGE",
    "DEFAULT_PROMPT_DIR",
    "OPEN_TAG",
    "Example",
    "PromptSet",
    "cap_events",
    "estimate_tokens",
    "load_examples",
    "load_prompts",
    "verbatim_problems",
]

# The package's templates (the repository's prompts/, carried in the wheel; see extractor.resources).
DEFAULT_PROMPT_DIR = data_dir("prompts")
OPEN_TAG = "<article_text>"
CLOSE_TAG = "</article_text>"
METADATA_MAX_CHARS = 500
_TEMPLATES = ("system.j2", "user.j2")
EXAMPLES_DIR = "examples"
DEFAULT_MAX_EVENTS = 10
DEFAULT_OUTPUT_LANGUAGE = "English"
_WORD = re.compile(r"\w+|[^\w\s]+")
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


def estimate_tokens(text: str) -> int:
    """An offline, deliberately high estimate of the tokens ``text`` costs a BPE tokenizer (cl100k /
    o200k): a run of punctuation or symbols costs one token per 2 characters, a word one token per 4
    characters (ASCII) or per 2 characters (any other script), each rounded up, and the spaces between
    them nothing (BPE merges a space into the next piece). Real tokenizers also merge common words and
    longer punctuation runs into one token, so they count fewer."""
    total = 0
    for piece in _WORD.findall(text):
        if piece[0].isalnum() or piece[0] == "_":
            total += math.ceil(len(piece) / (4 if piece.isascii() else 2))
        else:
            total += math.ceil(len(piece) / 2)
    return total


def cap_events(events: list[GroundedEvent], max_events: int) -> tuple[list[GroundedEvent], list[Rejected]]:
    """The first ``max_events`` events, in the model's order (most important first), and each one after
    them as a rejected item (the event as the model gave it; reason "over max_events (N)")."""
    reason = f"{OVER_LIMIT_REASON} ({max_events})"
    over = [
        Rejected(kind="event", field="evidence", item=event.model_dump(exclude={"span"}), reason=reason)
        for event in events[max_events:]
    ]
    return events[:max_events], over


@dataclass(frozen=True)
class Example:
    """One worked example: the article, the answer (compact JSON) and why it is so."""

    name: str
    text: str
    answer: str
    note: str


def _verbatim_fields(answer: ArticleExtraction) -> list[tuple[str, str]]:
    found = [("quote text", q.text) for q in answer.quotes]
    found += [("quote cue", q.cue) for q in answer.quotes if q.cue is not None]
    found += [("event evidence", e.evidence) for e in answer.events]
    found += [("event date_text", e.date_text) for e in answer.events if e.date_text is not None]
    found += [("stance evidence", s.evidence) for s in answer.stances]
    return found


def verbatim_problems(answer: ArticleExtraction, text: str) -> list[str]:
    """Each field of ``answer`` that must be copied verbatim (quote text and cue, event evidence and
    date_text, stance evidence) but is not in ``text``, as "<field> <value>"; [] when all are."""
    return [f"{field} {value!r}" for field, value in _verbatim_fields(answer) if value not in text]


def load_examples(folder: Path) -> tuple[Example, ...]:
    """The worked examples in ``folder`` (none when it does not exist), in name order. Each answer must
    be a valid ArticleExtraction whose verbatim fields are all in its article: a ConfigError otherwise."""
    if not folder.is_dir():
        return ()
    examples = []
    for path in sorted(folder.glob("*.json")):
        article = path.with_suffix(".txt")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            text = article.read_text(encoding="utf-8").strip("\n")
        except (OSError, ValueError) as exc:
            raise ConfigError(f"prompt example {path.stem}: unreadable ({exc})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("note"), str) or "answer" not in data:
            raise ConfigError(f'prompt example {path}: expected {{"note": "...", "answer": {{...}}}}')
        try:
            answer = ArticleExtraction.model_validate(data["answer"])
        except ValueError as exc:
            raise ConfigError(f"prompt example {path}: the answer is not a valid extraction: {exc}") from exc
        problems = verbatim_problems(answer, text)
        if problems:
            raise ConfigError(f"prompt example {path.stem}: {problems[0]} is not in {article.name}")
        compact = json.dumps(data["answer"], ensure_ascii=False, separators=(",", ":"))
        examples.append(Example(name=path.stem, text=text, answer=compact, note=data["note"]))
    return tuple(examples)


@dataclass(frozen=True)
class PromptSet:
    """The system and user templates of one prompt version, with its worked examples."""

    system: jinja2.Template
    user: jinja2.Template
    version: str
    directory: Path
    examples: tuple[Example, ...]
    system_text: str  # the system message with the default settings

    def system_message(
        self, max_events: int = DEFAULT_MAX_EVENTS, output_language: str = DEFAULT_OUTPUT_LANGUAGE
    ) -> str:
        """The system message for these settings (it holds no article-supplied value)."""
        if max_events == DEFAULT_MAX_EVENTS and output_language == DEFAULT_OUTPUT_LANGUAGE:
            return self.system_text
        return _render_system(self.system, self.examples, max_events, output_language)

    def render(
        self,
        article: Article,
        text: str | None = None,
        chunk_index: int = 1,
        chunk_total: int = 1,
        *,
        max_events: int = DEFAULT_MAX_EVENTS,
        output_language: str = DEFAULT_OUTPUT_LANGUAGE,
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
            {"role": "system", "content": self.system_message(max_events, output_language)},
            {"role": "user", "content": user.strip("\n")},
        ]


def _render_system(
    template: jinja2.Template, examples: tuple[Example, ...], max_events: int, output_language: str
) -> str:
    return template.render(
        examples=examples, max_events=max_events, output_language=_metadata(output_language)
    ).strip()


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
    examples_dir = folder / EXAMPLES_DIR
    for path in sorted(p for p in examples_dir.glob("*") if p.is_file()):
        digest.update(f"{EXAMPLES_DIR}/{path.name}".encode() + b"\0" + path.read_bytes() + b"\0")
    examples = load_examples(examples_dir)
    system = env.get_template("system.j2")
    return PromptSet(
        system=system,
        examples=examples,
        system_text=_render_system(system, examples, DEFAULT_MAX_EVENTS, DEFAULT_OUTPUT_LANGUAGE),
        user=env.get_template("user.j2"),
        version=digest.hexdigest()[:12],
        directory=folder,
    )
