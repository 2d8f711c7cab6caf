"""The page itself: the Jinja2 environment (templates shipped in ``templates/``, autoescape on), its
Content-Security-Policy, and ``render_report`` turning results into one self-contained HTML string.

The page has no external assets: CSS and JS are inline and a Content-Security-Policy meta tag allows
only those two blocks (by sha256 hash), so even markup smuggled into the page by an escaping bug could
not run a script. Every value a template writes is escaped (quotes as ``&quot;`` and ``&#x27;``, as the
page always had them); the article text keeps its quotes and writes a CR as ``&#13;``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from importlib.resources import files
from typing import Any

import jinja2
from markupsafe import Markup

from extractor.dates import date_label
from extractor.digest import Digest
from extractor.models import ArticleResult
from extractor.review.article import article_view, counts_of
from extractor.review.digest_view import digest_context, value_label
from extractor.review.summary import summary_context

__all__ = [
    "CSP",
    "OPEN_LIMIT",
    "article_anchors",
    "content_security_policy",
    "digest_html_section",
    "in_page_order",
    "render_report",
]

# Pages with more articles than this start with every article body collapsed.
OPEN_LIMIT = 20

TextSource = Mapping[str, str] | Callable[[str], str | None]

_TEMPLATES = files("extractor.review") / "templates"


class _Loader(jinja2.BaseLoader):
    """Templates from the package's ``templates/``. In ``.j2`` files a line break and the indentation after
    it are dropped, so the markup can be laid out in lines and still come out as the page always was;
    the page's CSS and JS are not templates: ``render_report`` puts them in as they are (their bytes are
    what the CSP hashes)."""

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        path = _TEMPLATES / template
        if not path.is_file():
            raise jinja2.TemplateNotFound(template)
        source = path.read_text(encoding="utf-8")
        if template.endswith(".j2"):
            source = re.sub(r"\n[ \t]*", "", source)
        return source, str(path), lambda: True


def _as_before(page: str) -> str:
    """Autoescape's quote entities (``&#34;``, ``&#39;``) spelt as ``html.escape`` spells them, as the page
    always had them. Exact: the templates hold neither, and escaping turns any in the data into ``&amp;#``."""
    return page.replace("&#34;", "&quot;").replace("&#39;", "&#x27;")


def _text(value: str) -> Markup:
    """The ``text`` filter: article text escaped for element content (quotes kept as they are). A literal
    CR would be turned into LF by the HTML parser; a character reference survives."""
    return Markup(html.escape(value, quote=False).replace("\r", "&#13;"))  # noqa: S704 (escaped here)


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=_Loader(),
        autoescape=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(text=_text, date_label=date_label, value_label=value_label)
    return env


@cache
def _asset(name: str) -> str:
    return (_TEMPLATES / name).read_text(encoding="utf-8")


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode() + "'"


def content_security_policy(css: str | None = None) -> str:
    """The page's CSP: only our own inline script and the given inline style (default: the page's
    own CSS, without the digest's) may run."""
    return (
        "default-src 'none'; "
        f"script-src {_csp_hash(_asset('page.js'))}; "
        f"style-src {_csp_hash(_asset('page.css') if css is None else css)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


CSP = content_security_policy()


def in_page_order(results: Iterable[ArticleResult]) -> list[ArticleResult]:
    """The results in the order of the page: by article id (stable, so a repeated id keeps its order)."""
    return sorted(results, key=lambda r: r.article_id)


def _anchors(ordered: Sequence[ArticleResult]) -> dict[str, str]:
    anchors: dict[str, str] = {}
    for pos, r in enumerate(ordered, start=1):
        anchors.setdefault(r.article_id, f"a{pos}")
    return anchors


def article_anchors(results: Iterable[ArticleResult]) -> dict[str, str]:
    """Article id -> the id of its section on the page ``render_report`` makes of ``results`` (``aN``).

    Sections are numbered from 1 in page order (``in_page_order``: by article id, whatever order
    results.jsonl has); an id that occurs twice links to its first section.
    """
    return _anchors(in_page_order(results))


def digest_html_section(
    digest: Digest | Mapping[str, Any], anchors: Mapping[str, str] | None = None, note: str | None = None
) -> str:
    """The digest's section of the review page alone (a ``<section id="digest">``); every value escaped.

    ``anchors`` maps article ids to the ids of their sections on the page (``article_anchors``): article
    references become links to them. ``note`` (e.g. "rebuilt because ...") is shown on top. Parts are
    collapsible ``<details>``: clusters, stances and quote groups spanning several articles start open,
    one-article ones collapsed. Uses only ``dg-`` classes (styled by ``templates/digest.css``).
    """
    template = _environment().get_template("digest.html.j2")
    return _as_before(template.render(dg=digest_context(digest, anchors, note)))


def render_report(
    results: Iterable[ArticleResult],
    texts: TextSource,
    summary: Mapping[str, Any] | None = None,
    *,
    digest: Digest | Mapping[str, Any] | None = None,
    digest_note: str | None = None,
    title: str | None = None,
    open_limit: int = OPEN_LIMIT,
    folder: str | None = None,
    history: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The review page as one self-contained HTML string.

    Articles are shown sorted by article id (``in_page_order``). ``texts`` maps an article's sha256 to
    its text (a mapping or a lookup function returning None when unknown). The summary on top is
    computed from the results and labelled "This folder"; ``summary`` is the last run's run.json, said
    in a labelled "Last run" line and shown collapsed below with every key it has, with ``history``
    (runs.jsonl, oldest first). ``digest`` (with ``digest_note`` on top) becomes a section after the
    contents table, its article references linked to the articles' sections. Article bodies start open
    when there are at most ``open_limit`` articles. ``title`` defaults to "Extraction review — N articles
    — ``folder``".
    """
    lookup: Callable[[str], str | None] = texts.get if isinstance(texts, Mapping) else texts
    items = in_page_order(results)
    if title is None:
        title = f"Extraction review — {len(items):,} article{'' if len(items) == 1 else 's'}" + (
            f" — {folder}" if folder else ""
        )
    counts = [counts_of(r) for r in items]
    targets: dict[str, int] = {}
    for pos, r in enumerate(items, start=1):
        targets.setdefault(r.article_id, pos)
    anchors = {article_id: f"a{pos}" for article_id, pos in targets.items()}  # as _anchors gives them
    for pos, r in enumerate(items, start=1):
        if r.duplicate_of is None:
            targets.setdefault(r.sha256, pos)
    open_body = len(items) <= open_limit
    articles = [
        article_view(pos, len(items), r, lookup(r.sha256), c, targets, open_body)
        for pos, (r, c) in enumerate(zip(items, counts, strict=True), start=1)
    ]
    css = _asset("page.css") + (_asset("digest.css") if digest is not None else "")
    script = _asset("page.js")
    context = summary_context(items, counts, summary, history)
    context.update(
        title=title,
        csp=content_security_policy(css),
        style=Markup(css),  # noqa: S704 (our own file, the bytes the CSP hashes)
        script=Markup(script),  # noqa: S704 (likewise)
        articles=articles,
        digest=digest is not None,
        dg=digest_context(digest, anchors, digest_note) if digest is not None else None,
    )
    return _as_before(_environment().get_template("page.html.j2").render(context))
