"""The HTML review page: escaping, overlapping highlights, run folder reading, and the page in Chromium."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import shutil
import struct
import time
from collections import defaultdict
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By

from extractor.cli import main
from extractor.digest import DIGEST_FILE, Digest, build_digest, load_current_digest
from extractor.errors import StoreError
from extractor.grounding.normalize import _STRIP as GROUNDING_STRIP
from extractor.models import (
    Article,
    ArticleResult,
    ChunkError,
    ErrorInfo,
    GroundedEvent,
    GroundedQuote,
    GroundedStance,
    Rejected,
    Span,
    Usage,
)
from extractor.review import (
    CSP,
    Mark,
    Segment,
    article_anchors,
    build_segments,
    in_page_order,
    render_report,
    write_report,
)
from extractor.store import ResultsWriter, iter_results, write_article_text, write_json_atomic
from tests.browser import ARTIFACTS, SKIP_REASON, chromium

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = files("extractor.review") / "templates"
CSS_FILE, DIGEST_CSS_FILE = TEMPLATES / "page.css", TEMPLATES / "digest.css"
XSS = '<script>window.__pwned=1</script> and <img src=x onerror="window.__pwned=1"> & "quotes"'

# --------------------------------------------------------------------------- building results


def span_of(text: str, needle: str, status: str = "exact") -> Span:
    start = text.index(needle)
    return Span(status=status, start=start, end=start + len(needle), pieces=[(start, start + len(needle))])


def elided_span(text: str, *parts: str) -> Span:
    pieces = []
    pos = 0
    for part in parts:
        start = text.index(part, pos)
        pieces.append((start, start + len(part)))
        pos = start + len(part)
    return Span(status="elided", start=pieces[0][0], end=pieces[-1][1], pieces=pieces)


def quote(text: str, q: str, speaker: str = "the minister", status: str = "exact") -> GroundedQuote:
    return GroundedQuote(text=q, speaker=speaker, cue=None, span=span_of(text, q, status))


def stance(
    text: str, evidence: str, holder: str = "the minister", polarity: str = "oppose"
) -> GroundedStance:
    return GroundedStance(
        holder=holder,
        target="the plan",
        polarity=polarity,
        evidence=evidence,
        span=span_of(text, evidence),
    )


def event(text: str, evidence: str, event_type: str = "CONSULT") -> GroundedEvent:
    return GroundedEvent(
        summary="Ministers met.",
        event_type=event_type,
        date="2026-01-06",
        date_text="January 6",
        location="Paris",
        actors=["France", "Italy"],
        evidence=evidence,
        span=span_of(text, evidence),
    )


def result(article: Article, **fields: Any) -> ArticleResult:
    base: dict[str, Any] = {
        "article_id": article.id,
        "source": f"{article.id}.txt",
        "sha256": article.sha256,
        "status": "ok",
    }
    return ArticleResult(**(base | fields))


OVERLAP_TEXT = (
    "\nMinisters met in Paris on January 6. 🇫🇷 The minister said: “We will not send troops, not now "
    "and not ever, to that front.” He repeated it twice. Italy opposes the plan, officials said."
)


def overlap_result() -> tuple[Article, ArticleResult]:
    """Overlaps of every kind: a quote inside a stance, an event and a stance on one span, elided pieces."""
    text = OVERLAP_TEXT
    article = Article.from_text(text, id="overlap")
    ev_text = "Ministers met in Paris on January 6."
    st_text = "The minister said: “We will not send troops, not now and not ever, to that front.”"
    q_text = "We will not send troops, not now and not ever, to that front."
    elided = GroundedQuote(
        text="We will not send troops ... to that front",
        speaker="the minister",
        cue="said",
        span=elided_span(text, "We will not send troops", "to that front"),
    )
    res = result(
        article,
        events=[event(text, ev_text), event(text, "Italy opposes the plan", "REJECT")],
        quotes=[quote(text, q_text), elided, quote(text, "not now and not ever", status="normalized")],
        stances=[stance(text, st_text), stance(text, "Italy opposes the plan", holder="Italy")],
        rejected=[
            Rejected(
                kind="quote",
                field="text",
                item={"text": "We shall never surrender", "speaker": "<b>Churchill</b>", "cue": None},
                reason="not found: no passage <script>alert(1)</script> matches",
            )
        ],
        usage=Usage(prompt_tokens=1200, completion_tokens=300, http_calls=1),
        model="gpt-test",
        latency_s=1.25,
    )
    return article, res


def xss_result() -> tuple[Article, ArticleResult]:
    text = f"Breaking: {XSS}\nThe mayor said “no <b>bold</b> moves” today."
    article = Article.from_text(text, id="xss-article", title='"><script>window.__pwned=1</script>')
    res = result(
        article,
        title=article.title,
        quotes=[
            quote(
                text,
                "no <b>bold</b> moves",
                speaker='<img src=x onerror="window.__pwned=1">',
            )
        ],
        stances=[stance(text, XSS, holder="<script>window.__pwned=1</script>")],
    )
    return article, res


def error_result() -> ArticleResult:
    return ArticleResult(
        article_id="broken-one",
        source="in/broken.txt",
        sha256="0" * 64,
        status="error",
        error=ErrorInfo(type="LLMError", message="model refused: <img src=x onerror=alert(1)>"),
    )


def make_run(
    tmp: Path, pairs: list[tuple[Article | None, ArticleResult]], summary: dict[str, Any] | None
) -> Path:
    run = tmp / "run"
    with ResultsWriter(run) as writer:
        for article, res in pairs:
            writer.write(res)
            if article is not None:
                write_article_text(run, article.sha256, article.text)
    if summary is not None:
        write_json_atomic(run / "run.json", summary)
    return run


def feature_run(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A run with overlaps, an XSS article, an error, a duplicate and a rejected item."""
    over_article, over = overlap_result()
    xss_article, xss = xss_result()
    dup = result(over_article, article_id="overlap-copy", source="in/copy.txt", duplicate_of="overlap")
    pairs: list[tuple[Article | None, ArticleResult]] = [
        (over_article, over),
        (xss_article, xss),
        (None, error_result()),
        (over_article, dup),
    ]
    summary = {"articles": 4, "ok": 3, "errors": 1, "duplicates": 1, "cost_usd": 0.0123, "wall_s": 2.5}
    texts = {a.sha256: a.text for a, _ in pairs if a is not None}
    return make_run(tmp, pairs, summary), texts


# --------------------------------------------------------------------------- reading the HTML back


class PageParser(HTMLParser):
    """Collects, per article section, the text of the body and of every highlight piece."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.section: str | None = None
        self.in_txt = False
        self.stack: list[tuple[str, str, int, int]] = []
        self.bodies: dict[str, str] = defaultdict(str)
        self.pieces: dict[tuple[str, str, int, int, int], str] = defaultdict(str)
        self.mark_attrs: list[dict[str, str | None]] = []
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.all_attrs: list[tuple[str, str, str | None]] = []
        self._raw: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.all_attrs.extend((tag, k, v) for k, v in attrs)
        if tag == "section" and "art" in (a.get("class") or ""):
            self.section = a.get("id")
        elif tag == "div" and a.get("class") == "txt":
            self.in_txt = True
        elif tag == "mark" and self.in_txt:
            self.mark_attrs.append(a)
            self.stack.append(
                (
                    a["data-kind"] or "",
                    a["data-item"] or "",
                    int(a["data-start"] or 0),
                    int(a["data-end"] or 0),
                )
            )
        elif tag in ("script", "style"):
            self._raw = tag

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark" and self.in_txt:
            self.stack.pop()
        elif tag == "div" and self.in_txt:
            self.in_txt = False
        elif tag in ("script", "style"):
            self._raw = None

    def handle_data(self, data: str) -> None:
        if self._raw == "script":
            self.scripts.append(data)
        elif self._raw == "style":
            self.styles.append(data)
        if not self.in_txt or self.section is None:
            return
        self.bodies[self.section] += data
        for kind, item, start, end in self.stack:
            self.pieces[(self.section, kind, int(item), start, end)] += data


def parse(page: str) -> PageParser:
    parser = PageParser()
    parser.feed(page)
    parser.close()
    return parser


def expected_pieces(res: ArticleResult) -> set[tuple[str, int, int, int]]:
    out: set[tuple[str, int, int, int]] = set()
    spans = {
        "event": [x.span for x in res.events],
        "quote": [x.span for x in res.quotes],
        "stance": [x.span for x in res.stances],
    }
    for kind, kind_spans in spans.items():
        for i, span in enumerate(kind_spans):
            ranges = span.pieces if span.status == "elided" and span.pieces else [(span.start, span.end)]
            out.update((kind, i, a, b) for a, b in ranges if a is not None and b is not None)
    return out


# --------------------------------------------------------------------------- unit tests: segments


def mk(kind: str, item: int, start: int, end: int) -> Mark:
    return Mark(kind, item, start, end, "exact", f"{kind}{item}")


def test_segments_split_at_every_boundary_with_outer_marks_first() -> None:
    stance_mark, quote_mark, same = mk("stance", 0, 0, 10), mk("quote", 0, 5, 15), mk("event", 0, 5, 15)
    segments = build_segments(20, [quote_mark, stance_mark, same])
    assert segments == [
        Segment(0, 5, (stance_mark,)),
        Segment(5, 10, (stance_mark, same, quote_mark)),
        Segment(10, 15, (same, quote_mark)),
        Segment(15, 20, ()),
    ]


def test_segments_cover_the_text_exactly_once() -> None:
    marks = [mk("quote", i, a, b) for i, (a, b) in enumerate([(3, 9), (0, 4), (4, 4), (9, 12), (2, 12)])]
    segments = build_segments(12, marks)
    assert [(s.start, s.end) for s in segments] == [(0, 2), (2, 3), (3, 4), (4, 9), (9, 12)]
    for seg in segments:
        assert {m.item for m in seg.marks} == {
            m.item for m in marks if m.start <= seg.start and seg.end <= m.end
        }
    assert build_segments(0, []) == []
    assert build_segments(5, []) == [Segment(0, 5, ())]


def test_segments_reject_marks_outside_the_text() -> None:
    with pytest.raises(ValueError, match="outside"):
        build_segments(10, [mk("quote", 0, 5, 11)])
    with pytest.raises(ValueError, match="outside"):
        build_segments(10, [mk("quote", 0, 6, 5)])


# --------------------------------------------------------------------------- unit tests: page


def test_overlapping_and_elided_highlights_reassemble_to_the_grounded_text() -> None:
    article, res = overlap_result()
    page = parse(render_report([res], {article.sha256: article.text}))
    assert page.bodies["a1"] == article.text  # the leading newline and the flag survive
    got = {(kind, item, a, b): text for (_sec, kind, item, a, b), text in page.pieces.items()}
    assert set(got) == expected_pieces(res)
    for (_kind, _item, a, b), text in got.items():
        assert text == article.text[a:b]
    # the elided quote is highlighted piece by piece, the gap between its pieces is not
    (p1, p2) = res.quotes[1].span.pieces or []
    assert got[("quote", 1, *p1)] == "We will not send troops"
    assert got[("quote", 1, *p2)] == "to that front"
    assert ("quote", 1, p1[0], p2[1]) not in got
    elided = [m for m in page.mark_attrs if m["data-kind"] == "quote" and m["data-item"] == "1"]
    assert elided
    assert all("sl" in (m["class"] or "").split() for m in elided)
    normalized = [m for m in page.mark_attrs if m["data-kind"] == "quote" and m["data-item"] == "2"]
    assert normalized
    assert all("sn" in (m["class"] or "").split() for m in normalized)
    assert ">normalized</span>" in render_report([res], {article.sha256: article.text})
    # an event and a stance on the very same span are both there
    same = res.events[1].span
    assert ("event", 1, same.start, same.end) in got
    assert ("stance", 1, same.start, same.end) in got


def test_hover_titles_name_speaker_type_and_polarity() -> None:
    article, res = overlap_result()
    page = parse(render_report([res], {article.sha256: article.text}))
    titles = "\n".join(m.get("title") or "" for m in page.mark_attrs)
    assert "speaker: the minister" in titles
    assert "CONSULT" in titles
    assert "Italy · oppose · the plan" in titles
    assert "elided match" in titles


def test_article_text_and_model_output_are_escaped() -> None:
    article, res = xss_result()
    html_page = render_report([res, error_result()], {article.sha256: article.text})
    assert html_page.count("<script") == 1  # ours only
    assert "<img" not in html_page
    assert "<b>bold</b>" not in html_page
    assert "no &lt;b&gt;bold&lt;/b&gt; moves" in html_page
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html_page
    page = parse(html_page)
    assert page.bodies["a2"] == article.text  # after broken-one, by article id
    assert not any(k.startswith("on") for _tag, k, _v in page.all_attrs)
    assert not any(k == "style" for _tag, k, _v in page.all_attrs)
    for (_sec, _kind, _item, a, b), text in page.pieces.items():
        assert text == article.text[a:b]


def test_quotes_are_escaped_as_always_and_entities_in_the_data_stay_text() -> None:
    text = 'He said "no" & it\'s &#39;final&#34; <b>.'
    article = Article.from_text(text, id="q&#39;1")
    res = result(article, title='Title "x" it\'s &#34;')
    page = render_report([res], {article.sha256: text})
    assert "Title &quot;x&quot; it&#x27;s &amp;#34;" in page and "q&amp;#39;1" in page
    assert "&#34;" not in page.replace("&amp;#34;", "") and "&#39;" not in page.replace("&amp;#39;", "")
    assert parse(page).bodies["a1"] == text


def test_csp_allows_exactly_the_inline_script_and_style_by_hash() -> None:
    article, res = overlap_result()
    html_page = render_report([res], {article.sha256: article.text})
    page = parse(html_page)
    assert len(page.scripts) == 1
    assert len(page.styles) == 1

    def digest(source: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"

    meta = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html_page)
    assert meta
    policy = meta.group(1).replace("&#x27;", "'")
    assert policy == CSP
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == digest(page.scripts[0])
    assert directives["style-src"] == digest(page.styles[0])
    assert html_page.index("Content-Security-Policy") < html_page.index("<style>")
    # no external resources of any kind
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html_page)
    assert "@import" not in html_page
    assert "url(" not in page.styles[0]


def test_rejected_items_are_listed_under_their_article_with_the_reason() -> None:
    article, res = overlap_result()
    other = Article.from_text("Nothing to see.", id="other")
    html_page = render_report([result(other), res], {article.sha256: article.text, other.sha256: other.text})
    section = html_page[html_page.index('id="a2"') :]
    assert "Rejected (1)" in section
    assert "We shall never surrender" in section
    assert "&lt;b&gt;Churchill&lt;/b&gt;" in section
    assert "reason: not found: no passage &lt;script&gt;alert(1)&lt;/script&gt; matches" in section
    assert "Rejected" not in html_page[html_page.index('id="a1"') : html_page.index('id="a2"')]


def test_unattributed_quotes_schema_rejects_and_partial_articles_are_shown() -> None:
    text = "A sign on the door read “closed until spring” and the mayor agreed."
    article = Article.from_text(text, id="messy")
    unattributed = GroundedQuote(
        text="closed until spring", speaker=None, cue=None, span=span_of(text, "closed until spring")
    )
    bad_date = Rejected(
        kind="event",
        field="date",
        item={"summary": "s", "event_type": "AGREE", "date": "2025-13-45", "evidence": "the mayor agreed"},
        reason="schema: date: String should match pattern '^\\d{4}...'",
    )
    chunk = ChunkError(chunk=2, start=40, end=67, type="TransportError", message="HTTP 503 after 6 attempts")
    res = result(article, quotes=[unattributed], rejected=[bad_date], chunks=2, chunk_errors=[chunk])
    html_page = render_report([res], {article.sha256: text})
    section = html_page[html_page.index('id="a1"') :]
    assert '<i class="sm">(unattributed)</i>' in section and "speaker: (unattributed)" in section
    assert "(date)" in section and "<q>2025-13-45</q>" in section and "reason: schema: date:" in section
    assert '<span class="st error">partial</span>' in section
    assert (
        "Partial: chunk 2 of 2 (characters 40–67) failed" in section
        and "HTTP 503 after 6 attempts" in section
    )


def test_error_results_show_type_and_message_and_duplicates_link_to_the_first() -> None:
    article, res = overlap_result()
    dup = result(article, article_id="copy", duplicate_of="overlap")
    lost = result(article, article_id="copy2", duplicate_of="gone-away")
    html_page = render_report([res, error_result(), dup, lost], {article.sha256: article.text})
    # by article id: broken-one, copy, copy2, overlap
    err = html_page[html_page.index('id="a1"') : html_page.index('id="a2"')]
    assert "<b>LLMError</b>: model refused: &lt;img src=x onerror=alert(1)&gt;" in err
    assert 'data-f="e"' in err
    dup_section = html_page[html_page.index('id="a2"') : html_page.index('id="a3"')]
    assert 'Duplicate of <a href="#a4">overlap</a>' in dup_section
    assert "gone-away <span class='sm'>(not in this report)</span>" in html_page
    assert "<td>error</td>" in html_page
    assert "<td>duplicate</td>" in html_page


def test_empty_results_render_a_valid_page() -> None:
    html_page = render_report([], {})
    assert "No results in this run." in html_page
    assert "Articles (0)" in html_page
    assert html_page.startswith("<!DOCTYPE html>")
    assert html_page.endswith("</html>")


def test_missing_text_and_bad_offsets_still_list_the_items() -> None:
    article, res = overlap_result()
    page = parse(render_report([res], lambda sha: None))
    assert not page.pieces
    html_page = render_report([res], lambda sha: None)
    assert "The article text is not stored with this run" in html_page
    assert "evidence:</span> <q>Ministers met in Paris on January 6.</q>" in html_page

    bad = res.model_copy(deep=True)
    bad.quotes[0].span.end = len(article.text) + 5
    html_page = render_report([bad], {article.sha256: article.text})
    assert "offsets outside the text" in html_page
    page = parse(html_page)
    assert all(kind != "quote" or item != 0 for (_s, kind, item, _a, _b) in page.pieces)
    assert page.bodies["a1"] == article.text


def test_summary_shows_every_key_that_is_there() -> None:
    summary = {
        "articles": 1200,
        "cost_usd": 0.01234,
        "wall_s": 12.5,
        "tokens": {"prompt": 10, "completion": 5},
        "some_new_key": "<i>x</i>",
    }
    html_page = render_report([], {}, summary)
    assert "<td>articles</td><td>1,200</td>" in html_page
    assert "<td>cost usd</td><td>$0.0123</td>" in html_page
    assert "<td>wall s</td><td>12.50 s</td>" in html_page
    assert "<td>tokens</td><td>prompt 10 · completion 5</td>" in html_page
    assert "<td>some new key</td><td>&lt;i&gt;x&lt;/i&gt;</td>" in html_page
    assert "run.json" not in render_report([], {})


def test_chart_and_toc_count_grounded_and_rejected() -> None:
    article, res = overlap_result()
    html_page = render_report([res], {article.sha256: article.text})
    assert "<title>quotes rejected: 1</title>" in html_page
    assert "<title>quotes elided: 1</title>" in html_page
    row = re.search(r"<tr><td class=\"n\">1</td>.*?</tr>", html_page)
    assert row
    cells = re.findall(r"<td class='n'>(\d+)</td>", row.group(0))
    assert cells == ["2", "3", "2", "7", "1"]  # E Q S grounded rejected
    assert '<rect class="r" x="7" width="1"' in row.group(0)


def test_write_report_reads_the_run_folder(tmp_path: Path) -> None:
    run, texts = feature_run(tmp_path)
    out = write_report(run)
    assert out == run / "report.html"
    html_page = out.read_text(encoding="utf-8")
    assert "<td>cost usd</td><td>$0.0123</td>" in html_page
    page = parse(html_page)
    # By article id: broken-one (no text stored), overlap, overlap-copy (a duplicate), xss-article.
    assert set(page.bodies) == {"a2", "a4"}
    assert page.bodies["a4"] == next(t for t in texts.values() if t.startswith("Breaking"))
    assert f"<title>Extraction review — 4 articles — {run.resolve()}</title>" in html_page
    custom = write_report(str(run), tmp_path / "elsewhere" / "r.html")
    assert custom.read_text(encoding="utf-8") == html_page


def test_write_report_without_results_raises_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot read results"):
        write_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_write_report_embeds_the_digest_section_with_its_css_under_the_csp(tmp_path: Path) -> None:
    run, _ = feature_run(tmp_path)
    digest = build_digest(iter_results(run))
    html_page = write_report(run, digest=digest, digest_note="a <note>").read_text(encoding="utf-8")
    assert html_page.index('<section id="digest" class="dg">') < html_page.index('<section id="articles">')
    assert '<p class="dg-note">a &lt;note&gt;</p>' in html_page
    policy = html.unescape(re.search(r'Content-Security-Policy" content="([^"]+)"', html_page).group(1))  # type: ignore[union-attr]
    style = re.search(r"<style>(.*?)</style>", html_page, re.S).group(1)  # type: ignore[union-attr]
    assert style == CSS_FILE.read_text(encoding="utf-8") + DIGEST_CSS_FILE.read_text(encoding="utf-8")
    expected = "'sha256-" + base64.b64encode(hashlib.sha256(style.encode()).digest()).decode() + "'"
    assert f"style-src {expected}" in policy
    bare = write_report(run).read_text(encoding="utf-8")
    assert '<section id="digest"' not in bare
    assert 'href="#digest"' not in bare


def test_render_report_takes_a_text_function() -> None:
    article, res = overlap_result()
    html_page = render_report(iter([res]), lambda sha: article.text if sha == article.sha256 else None, None)
    assert parse(html_page).bodies["a1"] == article.text


def test_articles_are_shown_sorted_by_article_id_with_consistent_navigation() -> None:
    made = {i: Article.from_text(f"Text of article {i}.", id=i) for i in ("001", "002", "000", "003")}
    # results.jsonl order is completion order; 003 is a duplicate of 000, and 002 appears twice.
    results = [
        result(made["001"]),
        result(made["002"]),
        result(made["000"]),
        result(made["003"], duplicate_of="000"),
        result(made["002"], title="second 002"),
    ]
    texts = {a.sha256: a.text for a in made.values()}
    html_page = render_report(results, texts)
    order = re.findall(r'<h3><a href="#(a\d+)">\d+\. ([^<]+)</a>', html_page)
    assert order == [("a1", "000"), ("a2", "001"), ("a3", "002"), ("a4", "002"), ("a5", "003")]
    assert "second 002" in html_page[html_page.index('id="a4"') : html_page.index('id="a5"')]  # stable
    toc = re.findall(r'<td class="n">(\d+)</td><td><a href="#(a\d+)">([^<]+)</a>', html_page)
    assert toc == [
        ("1", "a1", "000"),
        ("2", "a2", "001"),
        ("3", "a3", "002"),
        ("4", "a4", "002"),
        ("5", "a5", "003"),
    ]
    assert article_anchors(results) == {"000": "a1", "001": "a2", "002": "a3", "003": "a5"}
    assert [r.article_id for r in in_page_order(results)] == ["000", "001", "002", "002", "003"]
    page = parse(html_page)
    assert [page.bodies[f"a{i}"] for i in (1, 2, 3)] == [texts[made[x].sha256] for x in ("000", "001", "002")]
    assert 'Duplicate of <a href="#a1">000</a>' in html_page
    second = html_page[html_page.index('id="a2"') : html_page.index('id="a3"')]
    assert '<a data-step="-1" href="#a1">← prev</a><a data-step="1" href="#a3">next →</a>' in second


def noop_run_summary() -> dict[str, Any]:
    """run.json after a second run that found everything done: all zeros but skipped."""
    return {
        "articles": 5,
        "ok": 0,
        "errors": 0,
        "skipped": 5,
        "events": 0,
        "wall_s": 0.003,
        "articles_per_min": 1.0e5,
        "rate_limiter": {"acquired": 0, "waits": 0, "limit_rpm": None, "effective_tpm": None},
    }


def test_summary_comes_from_the_results_and_the_last_run_is_collapsed() -> None:
    article, res = overlap_result()
    html_page = render_report([res, error_result()], {article.sha256: article.text}, noop_run_summary())
    top = html_page[
        html_page.index("<h3>This folder (results.jsonl)</h3>") : html_page.index("<h3>Grounded vs")
    ]
    cells = dict(re.findall(r"<tr><td>([^<]+)</td><td>([^<]*)</td></tr>", top))
    assert cells == {
        "articles": "2",
        "ok / failed": "1 / 1",
        "quotes": "1 exact · 1 normalized · 1 elided · 1 rejected",
        "events": "2 · 0 rejected",
        "stances": "2 · 0 rejected",
        "tokens": "1,500 (1,200 prompt + 300 completion)",
        "model": "gpt-test",
    }
    # the folder and the last run, each labelled, above the tables
    lines = re.search(r'<p class="runs">(.*?)</p>', html_page)
    assert lines, "no labelled folder / last-run lines"
    assert lines.group(1) == (
        "<b>This folder</b>: 2 articles · 1 ok · 1 failed<br>"
        "<b>Last run</b>: 5 articles · 0 ok · 5 skipped as already done · 0 failed · 0.00 s"
    )
    # run.json in full: in a collapsed block after the summary and chart, before the contents and articles.
    last = re.search(
        r'<details class="last" id="last-run"><summary>(.*?)</summary>(.*?)</details>', html_page
    )
    assert last, "no collapsed run.json block"
    assert last.group(1) == "Last run in full (run.json)"
    assert "<td>rate limiter</td><td>acquired 0 · waits 0 · limit_rpm — · effective_tpm —</td>" in last.group(
        2
    )
    assert "<td>articles per min</td><td>1e+05</td>" in last.group(2)
    assert html_page.count("rate limiter") == 1 and "skipped as already done count as skipped" in last.group(
        2
    )
    positions = [
        html_page.index(x)
        for x in (
            '<p class="runs">',
            "<h3>This folder (results.jsonl)</h3>",
            '<svg class="chart"',
            'id="last-run"',
            '<table id="toc"',
            'id="a1"',
        )
    ]
    assert positions == sorted(positions)
    assert '<details class="last" id="last-run" open' not in html_page


def test_a_rerun_folder_says_its_totals_and_the_last_run_and_lists_the_runs(tmp_path: Path) -> None:
    """Two offline runs of the seeds into one folder: the second skips all five."""
    out = tmp_path / "out"
    for _ in range(2):
        assert main(["run", str(ROOT / "seeds"), "--out", str(out), "-q"]) == 0
    page = write_report(out).read_text(encoding="utf-8")
    lines = re.search(r'<p class="runs">(.*?)</p>', page)
    assert lines
    folder, last = lines.group(1).split("<br>")
    assert folder == "<b>This folder</b>: 5 articles · 5 ok · 0 failed — the results of 2 runs"
    assert re.fullmatch(
        r"<b>Last run</b>, finished \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: 5 articles · 0 ok · "
        r"5 skipped as already done · 0 failed · \d+\.\d\d s",
        last,
    ), last
    block = re.search(r'<details class="last" id="last-run"><summary>(.*?)</summary>(.*?)</details>', page)
    assert block and block.group(1) == (
        "Run history (2 runs, runs.jsonl) and the last run in full (run.json)"
    )
    rows = re.findall(r'<tr class="run">(.*?)</tr>', block.group(2))
    assert len(rows) == 2
    cells = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in rows]
    # articles, ok, skipped, failed
    assert [c[1:5] for c in cells] == [["5", "5", "0", "0"], ["5", "0", "5", "0"]]


def test_title_names_the_number_of_articles_and_the_folder() -> None:
    _article, res = overlap_result()
    assert "<title>Extraction review — 1 article</title>" in render_report([res], {})
    page = render_report([res, error_result()], {}, folder="/runs/<x>")
    assert "<title>Extraction review — 2 articles — /runs/&lt;x&gt;</title>" in page
    assert "<h1>Extraction review — 2 articles — /runs/&lt;x&gt;</h1>" in page
    assert "<title>Mine</title>" in render_report([res], {}, title="Mine")


def test_nested_highlights_fill_only_the_innermost_and_the_legend_says_so() -> None:
    article, res = overlap_result()
    html_page = render_report([res], {article.sha256: article.text})
    body = html_page[html_page.index('<div class="txt">') :]
    opened = re.findall(r'<mark class="([^"]+)"[^>]*>(?=(<mark)?)', body)
    assert any("o" in cls.split() for cls, _ in opened)
    for cls, followed_by_mark in opened:
        # an outer mark ("o") is directly followed by the mark nested in it; the innermost by text
        assert ("o" in cls.split()) == bool(followed_by_mark), cls
    # The quote inside the stance's evidence is filled as a quote; the stance around it is underlined.
    q0 = res.quotes[0].span
    inner = re.search(
        rf'<mark class="ks o[^"]*" data-kind="stance" data-item="0"[^>]*>'
        rf'<mark class="kq( f)?" data-kind="quote" data-item="0" data-start="{q0.start}"',
        body,
    )
    assert inner, "quote 0 is not the filled mark inside stance 0"
    legend = html_page[html_page.index('<span class="lg">') :]
    assert '<mark class="ks o">stance with a <mark class="kq">quote</mark> in it</mark>' in legend
    assert "inner item filled, outer ones underlined" in legend


# --------------------------------------------------------------------------- seeds, through the pipeline


@pytest.fixture
def seeds_run_dir(tmp_path: Path) -> Path:
    """A real run folder for the five seeds: the offline main job (replayed recordings)."""
    from extractor import Extractor, Settings, run_batch
    from extractor.cli.progress import LogReporter
    from extractor.pipeline import replay_settings

    settings = replay_settings(Settings(cache_dir=tmp_path / "c"), ROOT / "fixtures" / "recorded")
    run = tmp_path / "seeds-run"
    with Extractor(settings) as ex:
        summary = run_batch([ROOT / "seeds"], run, ex, reporter=LogReporter(quiet=True))
    assert summary.ok == 5
    return run


def page_ids_and_links(html_page: str) -> tuple[set[str], list[str]]:
    """Every element id of a page, and every in-page link target (``href="#..."``) of its digest section."""
    ids = {html.unescape(i) for i in re.findall(r' id="([^"]+)"', html_page)}
    start, end = html_page.index('<section id="digest"'), html_page.index('<section id="articles"')
    assert html_page.index('<table id="toc"') < start  # the contents come first
    links = [html.unescape(h) for h in re.findall(r' href="#([^"]*)"', html_page[start:end])]
    return ids, links


def test_report_rebuilds_a_digest_built_before_more_results_arrived(
    seeds_run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "growing"
    run.mkdir()
    shutil.copytree(seeds_run_dir / "articles", run / "articles")
    lines = (seeds_run_dir / "results.jsonl").read_bytes().splitlines(keepends=True)
    (run / "results.jsonl").write_bytes(b"".join(lines[:3]))
    assert main(["digest", str(run)]) == 0
    assert len(json.loads((run / "digest.json").read_text(encoding="utf-8"))["articles"]) == 3
    with (run / "results.jsonl").open("ab") as fh:
        fh.write(b"".join(lines[3:]))
    capsys.readouterr()

    assert main(["report", str(run)]) == 0
    assert "rebuilt" in capsys.readouterr().err
    html_page = (run / "report.html").read_text(encoding="utf-8")
    digest_part = html_page[
        html_page.index('<section id="digest"') : html_page.index('<section id="articles"')
    ]
    assert "<h2>Digest (5 articles)</h2>" in digest_part
    new = ", ".join(sorted(ArticleResult.model_validate_json(line).article_id for line in lines[3:]))
    assert (
        f"digest.json was built before results.jsonl changed (3 → 5 results: new {new}); "
        "rebuilt: 5 article(s)"
    ) in digest_part
    assert len(json.loads((run / "digest.json").read_text(encoding="utf-8"))["articles"]) == 5
    # Every digest link lands on an anchor of the page, and each article's links on its own section.
    ids, links = page_ids_and_links(html_page)
    assert links and set(links) <= ids
    results = in_page_order(ArticleResult.model_validate_json(line) for line in lines)
    anchors = article_anchors(results)
    assert anchors == {r.article_id: f"a{i}" for i, r in enumerate(results, start=1)}
    assert [r.article_id for r in results] == sorted(r.article_id for r in results)
    for pos, r in enumerate(results, start=1):
        assert f'<a class="dg-art" href="#a{pos}">{r.article_id}</a>' in digest_part
        assert f'<section class="art" id="a{pos}"' in html_page
        assert f'<h3><a href="#a{pos}">{pos}. {r.article_id}</a>' in html_page
    # The seeds' 6 January meeting (3 articles) is an open cluster; one-article events are collapsed.
    assert re.search(
        r'<details class="dg-cluster" id="dg-E1" open><summary><strong>E1</strong> CONSULT', digest_part
    )
    assert re.search(r'<details class="dg-more"><summary>\d+ events reported by one article', digest_part)

    # Up to date now: written again without a rebuild or a note.
    before = (run / "digest.json").read_bytes()
    assert main(["report", str(run)]) == 0
    assert "rebuilt" not in capsys.readouterr().err
    assert (run / "digest.json").read_bytes() == before
    assert 'class="dg-note"' not in (run / "report.html").read_text(encoding="utf-8")


def test_report_before_digest_builds_and_saves_the_digest(
    seeds_run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not (seeds_run_dir / DIGEST_FILE).exists()
    capsys.readouterr()
    assert main(["report", str(seeds_run_dir)]) == 0
    err = capsys.readouterr().err
    assert "note: no digest.json yet: built from results.jsonl with the built-in alias table" in err
    saved = Digest.model_validate_json((seeds_run_dir / DIGEST_FILE).read_text(encoding="utf-8"))
    assert saved.source is not None and saved.source.aliases == {} and len(saved.articles) == 5
    assert load_current_digest(seeds_run_dir) == (saved, None)
    html_page = (seeds_run_dir / "report.html").read_text(encoding="utf-8")
    digest_part = html_page[
        html_page.index('<section id="digest"') : html_page.index('<section id="articles"')
    ]
    assert "<h2>Digest (5 articles)</h2>" in digest_part
    assert '<p class="dg-note">no digest.json yet: built from results.jsonl' in digest_part
    assert '<a href="#digest">digest</a>' in html_page
    ids, links = page_ids_and_links(html_page)
    assert links and set(links) <= ids
    # The second time it is current: used as it is, without a note.
    before = (seeds_run_dir / DIGEST_FILE).read_bytes()
    assert main(["report", str(seeds_run_dir)]) == 0
    assert "note:" not in capsys.readouterr().err
    assert (seeds_run_dir / DIGEST_FILE).read_bytes() == before
    assert 'class="dg-note"' not in (seeds_run_dir / "report.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- in the browser

MARKS_JS = """
return [...document.querySelectorAll('.txt mark[data-kind]')].map(m => [m.closest('section.art').id,
  m.dataset.kind, +m.dataset.item, +m.dataset.start, +m.dataset.end, m.textContent]);
"""
BODIES_JS = """
return Object.fromEntries([...document.querySelectorAll('section.art')]
  .filter(s => s.querySelector('.txt')).map(s => [s.id, s.querySelector('.txt').textContent]));
"""
VISIBLE_JS = "return [...document.querySelectorAll('section.art')].filter(s => !s.hidden).map(s => s.id);"


@pytest.fixture(scope="module")
def driver() -> Iterator[WebDriver]:
    if SKIP_REASON:
        pytest.skip(SKIP_REASON)
    with chromium() as d:
        yield d


def load(driver: WebDriver, path: Path) -> float:
    """Open a page and return the seconds until its load event."""
    driver.get_log("browser")  # type: ignore[no-untyped-call]  # drop earlier messages
    t0 = time.perf_counter()
    driver.get(path.resolve().as_uri())
    return time.perf_counter() - t0


def check_highlights(driver: WebDriver, results: list[ArticleResult], texts: dict[str, str]) -> int:
    """Every highlight piece, reassembled from its segments in the DOM, equals the source at its offsets."""
    results = in_page_order(results)
    pieces: dict[tuple[str, str, int, int, int], str] = defaultdict(str)
    for sec, kind, item, start, end, text in driver.execute_script(MARKS_JS):
        pieces[(sec, kind, item, start, end)] += text
    bodies = driver.execute_script(BODIES_JS)
    expected: set[tuple[str, str, int, int, int]] = set()
    for pos, res in enumerate(results, start=1):
        text = texts.get(res.sha256)
        if text is None or (res.duplicate_of and not expected_pieces(res)):
            assert f"a{pos}" not in bodies  # no text, or a duplicate whose text is shown with the first
            continue
        assert bodies[f"a{pos}"] == text
        expected.update((f"a{pos}", *p) for p in expected_pieces(res))
    assert set(pieces) == expected
    for (sec, _kind, _item, start, end), text in pieces.items():
        pos = int(sec[1:])
        assert text == texts[results[pos - 1].sha256][start:end]
    return len(pieces)


def check_exact_texts(driver: WebDriver, results: list[ArticleResult]) -> int:
    """Each ``exact`` item's highlight reads exactly as the quote's text / the evidence the model gave.

    (Grounding rule 0 strips surrounding whitespace and quotation marks from the candidate first, but
    keeps a mark that pairs with one inside the candidate.)
    """
    results = in_page_order(results)
    pieces: dict[tuple[str, str, int, int, int], str] = defaultdict(str)
    for sec, kind, item, start, end, text in driver.execute_script(MARKS_JS):
        pieces[(sec, kind, item, start, end)] += text
    checked = 0
    for pos, res in enumerate(results, start=1):
        groups: list[tuple[str, list[GroundedEvent] | list[GroundedQuote] | list[GroundedStance]]] = [
            ("event", res.events),
            ("quote", res.quotes),
            ("stance", res.stances),
        ]
        for kind, items in groups:
            for i, x in enumerate(items):
                if x.span.status != "exact":
                    continue
                claimed = x.text if isinstance(x, GroundedQuote) else x.evidence
                key = (f"a{pos}", kind, i, x.span.start or 0, x.span.end or 0)
                # A mark at an end stays when it pairs with one inside (grounding rule 0), else not.
                assert pieces.get(key) in {claimed.strip(), claimed.strip(GROUNDING_STRIP)}, key
                checked += 1
    return checked


NESTING_JS = """
const css = v => getComputedStyle(document.documentElement).getPropertyValue(v).trim();
const probe = document.createElement('i'); document.body.append(probe);
const rgb = v => { probe.style.color = css(v); return getComputedStyle(probe).color; };
const fill = {event: rgb('--e'), quote: rgb('--q'), stance: rgb('--s')};
const line = {event: rgb('--ec'), quote: rgb('--qc'), stance: rgb('--sc')};
probe.remove();
return [...document.querySelectorAll('.txt mark[data-kind]')].map(m => {
  const st = getComputedStyle(m), inner = !m.querySelector('mark');
  const outer = m.parentElement.closest('mark');
  return [m.dataset.kind, inner, st.backgroundColor, st.borderBottomStyle, st.borderBottomColor,
          fill[m.dataset.kind], line[m.dataset.kind], outer ? outer.dataset.kind : null];
});
"""


def check_nested_colours(driver: WebDriver) -> int:
    """Only the innermost highlight of a stretch is filled, in its own kind's colour; every highlight
    around it is transparent with a solid underline in its own colour (no blended third colour)."""
    nested = 0
    for kind, inner, bg, style, border, fill, line, outer in driver.execute_script(NESTING_JS):
        if inner:
            assert bg == fill, (kind, bg, fill)
            nested += outer is not None
        else:
            assert bg == "rgba(0, 0, 0, 0)", (kind, bg)
            assert (style, border) == ("solid", line), (kind, style, border, line)
    return nested


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def full_page_screenshot(driver: WebDriver, path: Path, width: int = 1400) -> tuple[int, int]:
    """The whole page in one PNG: the viewport is grown to the document's height until that is stable.

    (Article sections use ``content-visibility:auto``, so a capture beyond the viewport would show the
    off-screen ones blank; with everything inside the viewport everything is rendered.)
    """
    height = 0
    try:
        for _ in range(8):
            now = min(int(driver.execute_script("return document.documentElement.scrollHeight")), 40000)
            if now == height:
                break
            height = now
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
        else:
            raise AssertionError(f"page height never settled (last {height}px)")
        last = driver.execute_script(
            "return [...document.querySelectorAll('section.art')].pop().getBoundingClientRect().bottom"
        )
        assert last <= height, (last, height)  # the last article is inside the capture
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path.write_bytes(base64.b64decode(shot["data"]))
    return png_size(path)


def severe_console_messages(driver: WebDriver) -> list[str]:
    return [
        str(e["message"])
        for e in driver.get_log("browser")  # type: ignore[no-untyped-call]
        if e["level"] == "SEVERE"
    ]


@pytest.mark.browser
def test_page_in_chromium_highlights_escapes_filters_and_navigates(driver: WebDriver, tmp_path: Path) -> None:
    run, texts = feature_run(tmp_path)
    results = list(map(ArticleResult.model_validate_json, (run / "results.jsonl").read_text().splitlines()))
    page = write_report(run)
    load(driver, page)

    # nothing from the article ran, and it is shown literally
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
    assert driver.find_elements(By.CSS_SELECTOR, ".txt img, .txt script, .txt b, aside img, h3 script") == []
    assert "<script>window.__pwned=1</script>" in driver.find_element(By.CSS_SELECTOR, "#a4 .txt").text
    assert severe_console_messages(driver) == []  # our own script and style pass the CSP

    assert check_highlights(driver, results, texts) == 10  # 8 pieces in overlap, 2 in the xss article
    quote_bg = driver.execute_script(
        "return getComputedStyle(document.querySelector('.txt mark.kq:not(.o)')).backgroundColor"
    )
    assert quote_bg not in ("rgba(0, 0, 0, 0)", "transparent")  # the hashed stylesheet applied
    check_nested_colours(driver)
    title = driver.find_element(By.CSS_SELECTOR, '#a4 mark[data-kind="quote"]').get_attribute("title")
    assert title is not None
    assert 'speaker: <img src=x onerror="window.__pwned=1">' in title

    # the script ran: counter, filter box, kind filter (sections by article id: a1 broken-one,
    # a2 overlap, a3 overlap-copy, a4 xss-article)
    assert [h.text.split(". ", 1)[1] for h in driver.find_elements(By.CSS_SELECTOR, "section.art h3 a")] == [
        "broken-one",
        "overlap",
        "overlap-copy",
        "xss-article",
    ]
    counter = driver.find_element(By.ID, "n")
    assert counter.text == "4 of 4 articles shown"
    box = driver.find_element(By.ID, "q")
    box.send_keys("xss")
    assert driver.execute_script(VISIBLE_JS) == ["a4"]
    assert counter.text == "1 of 4 articles shown"
    toc_rows = driver.find_elements(By.CSS_SELECTOR, "#toc tbody tr")
    assert [r.is_displayed() for r in toc_rows] == [False, False, False, True]
    box.clear()
    box.send_keys("LLMError")
    assert driver.execute_script(VISIBLE_JS) == ["a1"]
    box.clear()
    box.send_keys(" ")  # an 'input' event with an empty filter
    assert driver.execute_script(VISIBLE_JS) == ["a1", "a2", "a3", "a4"]
    driver.execute_script(
        "const k = document.getElementById('k'); k.value = 'd'; k.dispatchEvent(new Event('change'))"
    )
    assert driver.execute_script(VISIBLE_JS) == ["a3"]
    driver.execute_script(
        "const k = document.getElementById('k'); k.value = ''; k.dispatchEvent(new Event('change'))"
    )

    # the duplicate links to the first; next/prev skip articles hidden by the filter
    link = driver.find_element(By.CSS_SELECTOR, "#a3 .dup a")
    driver.execute_script("arguments[0].click()", link)
    assert driver.execute_script("return location.hash") == "#a2"
    box.clear()
    box.send_keys("overlap")  # a2 and a3 (its id and its duplicate_of mention overlap)
    assert driver.execute_script(VISIBLE_JS) == ["a2", "a3"]
    box.clear()
    box.send_keys("said")  # a word of the texts of a2 and a4 only
    assert driver.execute_script(VISIBLE_JS) == ["a2", "a4"]
    driver.execute_script(
        "arguments[0].click()", driver.find_element(By.CSS_SELECTOR, '#a2 a[data-step="1"]')
    )
    assert driver.execute_script("return location.hash") == "#a4"
    driver.execute_script(
        "arguments[0].click()", driver.find_element(By.CSS_SELECTOR, '#a4 a[data-step="-1"]')
    )
    assert driver.execute_script("return location.hash") == "#a2"
    box.clear()
    box.send_keys(" ")

    # a side-list label jumps to its highlight
    driver.execute_script(
        "arguments[0].click()", driver.find_element(By.CSS_SELECTOR, '#a2 aside a[href="#a2-q1"]')
    )
    target = driver.execute_script("return document.querySelector(':target')")
    assert target.get_attribute("data-kind") == "quote"
    assert target.get_attribute("data-item") == "1"

    driver.execute_script("window.scrollTo(0, 0); history.replaceState(null, '', location.pathname)")
    ARTIFACTS.mkdir(exist_ok=True)
    driver.set_window_size(1400, 1600)
    driver.get(page.resolve().as_uri())
    assert driver.save_screenshot(str(ARTIFACTS / "report.png"))
    driver.set_window_size(1400, 1000)
    assert severe_console_messages(driver) == []


@pytest.mark.browser
def test_csp_blocks_markup_that_escaped_escaping(driver: WebDriver, tmp_path: Path) -> None:
    article, res = overlap_result()
    leak = '<script>window.__pwned=2</script><img src="x" onerror="window.__pwned=3"><div id="ok">shown</div>'
    page = tmp_path / "leak.html"
    html_page = render_report([res], {article.sha256: article.text})
    # What an escaping bug would let through, written into the page as the digest section would be.
    html_page = html_page.replace('<section id="articles">', leak + '<section id="articles">', 1)
    page.write_text(html_page, encoding="utf-8")
    load(driver, page)
    assert driver.find_element(By.ID, "ok").text == "shown"
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
    messages = severe_console_messages(driver)
    assert any("Content Security Policy" in m for m in messages), messages
    assert driver.find_element(By.ID, "n").text == "1 of 1 articles shown"  # ours still ran


def _fold(text: str) -> str:
    import unicodedata

    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)).lower()


def filter_to(driver: WebDriver, words: str) -> list[str]:
    box = driver.find_element(By.ID, "q")
    box.clear()
    box.send_keys(words)
    shown: list[str] = driver.execute_script(VISIBLE_JS)
    rows = driver.execute_script(
        "return [...document.querySelectorAll('#toc tbody tr')].filter(r => !r.hidden)"
        ".map(r => r.querySelector('a').getAttribute('href').slice(1))"
    )
    assert rows == shown  # the contents follow the filter
    return shown


@pytest.mark.browser
def test_filter_matches_people_event_types_and_the_article_text(
    driver: WebDriver, seeds_run_dir: Path, tmp_path: Path
) -> None:
    # The feature run: what the model said (actors, types, speakers) is searchable too, not only the text.
    run, _ = feature_run(tmp_path)
    load(driver, write_report(run))
    assert "france" not in OVERLAP_TEXT.lower()
    assert filter_to(driver, "France") == ["a2"]  # an event actor of overlap (a2)
    assert filter_to(driver, "consult") == ["a2"]  # an event type
    assert filter_to(driver, "onerror") == ["a1", "a4"]  # an error message, a speaker / the xss text
    assert filter_to(driver, "ITALY OPPOSES") == ["a2"]  # case-insensitive, words of the text
    assert filter_to(driver, "troops minister") == ["a2"]  # every word, anywhere
    assert filter_to(driver, "troops mayor") == []
    assert driver.find_element(By.ID, "n").text == "0 of 4 articles shown"
    assert severe_console_messages(driver) == []  # the new script is still allowed by its hash

    # The seeds: people named in the text are found in every article that mentions them.
    assert main(["report", str(seeds_run_dir)]) == 0
    load(driver, seeds_run_dir / "report.html")
    results = in_page_order(
        ArticleResult.model_validate_json(line)
        for line in (seeds_run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    )
    texts = [
        _fold((seeds_run_dir / "articles" / f"{r.sha256}.txt").read_text(encoding="utf-8")) for r in results
    ]

    def mentioning(word: str) -> list[str]:
        return [f"a{i}" for i, t in enumerate(texts, start=1) if _fold(word) in t]

    for word in ("Witkoff", "Zelensky", "Kushner"):
        expected = mentioning(word)
        assert expected and len(expected) < 5, word
        assert filter_to(driver, word) == expected, word
        assert filter_to(driver, word.upper()) == expected, word
    # Accents do not matter: "elysee" finds "Élysée" and "Elysee".
    assert filter_to(driver, "elysee") == mentioning("elysee") and len(mentioning("elysee")) >= 2
    raw = [(seeds_run_dir / "articles" / f"{r.sha256}.txt").read_text(encoding="utf-8") for r in results]
    assert any("Élysée" in t for t in raw) and any("Elysee" in t for t in raw)
    assert filter_to(driver, "Élysée") == mentioning("elysee")
    # A speaker's name as the model gave it (a quote speaker of 001) finds its article.
    speaker = next(q.speaker for r in results for q in r.quotes if r.article_id.startswith("001"))
    assert "a2" in filter_to(driver, speaker)
    filter_to(driver, " ")
    assert driver.find_element(By.ID, "n").text == "5 of 5 articles shown"
    assert severe_console_messages(driver) == []


def big_run(n: int) -> tuple[list[ArticleResult], dict[str, str]]:
    paragraph = (
        "Ministers from {n} countries met in City{i} on Tuesday to discuss the ceasefire plan. "
        "“We will keep supporting them for as long as it takes,” said Minister{i}. "
        "Officials said the talks were difficult but useful, and a declaration was signed. "
        "Critics warned that “nothing has really changed on the ground” since the last meeting. "
    )
    results: list[ArticleResult] = []
    texts: dict[str, str] = {}
    for i in range(n):
        text = "".join(paragraph.format(n=k + 3, i=i) for k in range(6))
        article = Article.from_text(text, id=f"art-{i:04d}", title=f"Talks in City{i}")
        if i % 97 == 5:
            results.append(error_result().model_copy(update={"article_id": article.id}))
            continue
        quotes = []
        for k, q in enumerate(re.finditer(r"“([^”]+)”", text)):
            start, end = q.span(1)
            status = "normalized" if k % 5 == 4 else "exact"
            quotes.append(
                GroundedQuote(
                    text=q.group(1),
                    speaker=f"Minister{i}",
                    cue="said",
                    span=Span(status=status, start=start, end=end, pieces=[(start, end)]),
                )
            )
        sentence = re.search(r"“We will keep[^.]+\.", text)
        assert sentence
        stances = [
            GroundedStance(
                holder=f"Minister{i}",
                target="supporting them",
                polarity="support",
                evidence=sentence.group(0),
                span=Span(status="exact", start=sentence.start(), end=sentence.end()),
            )
        ]
        evidence = f"Ministers from 3 countries met in City{i} on Tuesday"
        events = [event(text, evidence)]
        rejected = (
            [
                Rejected(
                    kind="quote", field="text", item={"text": "invented", "speaker": "X"}, reason="not found"
                )
            ]
            if i % 3 == 0
            else []
        )
        res = result(
            article, title=article.title, quotes=quotes, stances=stances, events=events, rejected=rejected
        )
        if i % 50 == 49:
            res = res.model_copy(update={"duplicate_of": "art-0000"})
        results.append(res)
        texts[article.sha256] = text
    return results, texts


@pytest.mark.browser
@pytest.mark.slow
def test_500_article_page_renders_and_filters(driver: WebDriver, tmp_path: Path) -> None:
    results, texts = big_run(500)
    t0 = time.perf_counter()
    html_page = render_report(results, texts, {"articles": 500})
    render_s = time.perf_counter() - t0
    page = tmp_path / "big.html"
    page.write_text(html_page, encoding="utf-8")
    size_mb = page.stat().st_size / 1e6
    load_s = load(driver, page)
    nav = driver.execute_script(
        "const e = performance.getEntriesByType('navigation')[0];"
        "return [e.domContentLoadedEventEnd, e.loadEventEnd];"
    )
    print(
        f"\n500 articles: render {render_s:.2f} s, {size_mb:.2f} MB, driver.get {load_s:.2f} s, "
        f"DOMContentLoaded {nav[0] / 1000:.2f} s, load {nav[1] / 1000:.2f} s"
    )
    assert size_mb < 8
    assert severe_console_messages(driver) == []
    assert driver.find_element(By.ID, "n").text == "500 of 500 articles shown"
    assert driver.execute_script("return document.querySelectorAll('section.art details[open]').length") == 0
    pieces = check_highlights(driver, results, texts)
    assert pieces > 500 * 10

    box = driver.find_element(By.ID, "q")
    t0 = time.perf_counter()
    box.send_keys("art-0421")
    assert driver.execute_script(VISIBLE_JS) == ["a422"]
    filter_s = time.perf_counter() - t0
    # Words of the article text (read from the page on the first search) are found as quickly.
    box.clear()
    t0 = time.perf_counter()
    box.send_keys("city421 TUESDAY")
    assert driver.execute_script(VISIBLE_JS) == ["a422"]
    box.clear()
    box.send_keys("minister421")  # a speaker and stance holder, also in the text
    assert driver.execute_script(VISIBLE_JS) == ["a422"]
    text_filter_s = time.perf_counter() - t0
    print(f"filter by id {filter_s:.2f} s, by text {text_filter_s:.2f} s")
    box.clear()
    box.send_keys(" ")
    assert len(driver.execute_script(VISIBLE_JS)) == 500
    link = driver.find_element(By.CSS_SELECTOR, '#toc a[href="#a250"]')
    driver.execute_script("arguments[0].click()", link)
    assert driver.find_element(By.CSS_SELECTOR, "#a250 details").get_attribute("open") is not None
    assert driver.find_element(By.CSS_SELECTOR, "#a250 .txt").is_displayed()


DIGEST_LINKS_JS = """
return [...document.querySelectorAll('#digest a[href^="#"]')].map(a => {
  const t = document.getElementById(decodeURIComponent(a.hash.slice(1)));
  return [a.getAttribute('href'), t ? t.tagName + (t.matches('section.art') ? '.art' : '') : null];
});
"""


@pytest.mark.browser
def test_seed_report_in_chromium(driver: WebDriver, seeds_run_dir: Path) -> None:
    # Through the CLI, as a reviewer makes it: the digest, then the page with its digest section.
    assert main(["digest", str(seeds_run_dir)]) == 0
    assert main(["report", str(seeds_run_dir)]) == 0
    page = seeds_run_dir / "report.html"
    results = [
        ArticleResult.model_validate_json(line)
        for line in (seeds_run_dir / "results.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    texts = {
        r.sha256: (seeds_run_dir / "articles" / f"{r.sha256}.txt").read_bytes().decode() for r in results
    }
    assert len(results) == 5
    load(driver, page)
    assert check_highlights(driver, results, texts) >= sum(len(r.quotes) for r in results) > 0
    exact = sum(x.span.status == "exact" for r in results for x in (*r.events, *r.quotes, *r.stances))
    assert check_exact_texts(driver, results) == exact > 0
    # Nothing from an article or the model ran or became markup; our own script did run.
    assert driver.execute_script("return typeof window.__pwned") == "undefined"
    assert (
        driver.execute_script("return document.querySelectorAll('.txt :not(mark), aside script').length") == 0
    )
    assert driver.execute_script("return document.scripts.length") == 1
    assert driver.find_element(By.ID, "n").text == "5 of 5 articles shown"
    assert severe_console_messages(driver) == []

    # The digest's links all land on the page: article references on the article's section.
    links = driver.execute_script(DIGEST_LINKS_JS)
    assert links and all(target is not None for _href, target in links), links
    article_links = [href for href, target in links if target == "SECTION.art"]
    assert set(article_links) == {f"#a{i}" for i in range(1, 6)}
    assert driver.execute_script("return document.querySelector('#dg-E1').open") is True
    link = driver.find_elements(By.CSS_SELECTOR, "#dg-E1 summary a.dg-art")[-1]
    href = link.get_attribute("href") or ""
    driver.execute_script("arguments[0].click()", link)
    target = href[href.index("#") :]
    assert driver.execute_script("return location.hash") == target
    assert driver.find_element(By.CSS_SELECTOR, f"{target} details").get_attribute("open") is not None
    assert link.text in driver.find_element(By.CSS_SELECTOR, f"{target} h3").text

    # Artefacts that show the highlights: the whole page, and the viewport at the first article.
    ARTIFACTS.mkdir(exist_ok=True)
    driver.execute_script("history.replaceState(null, '', location.pathname); window.scrollTo(0, 0)")
    full = ARTIFACTS / "report-seeds.png"
    width, height = full_page_screenshot(driver, full)
    assert width == 1400 and height > 3000
    assert full.stat().st_size > 200_000  # five article texts with their highlights, not a blank page
    driver.execute_script("location.hash = 'a1'")
    assert (
        driver.execute_script("return document.querySelector('#a1 .txt mark').getBoundingClientRect().top")
        < 1000
    )
    first = ARTIFACTS / "report-seeds-a1.png"
    assert driver.save_screenshot(str(first))
    assert png_size(first)[1] > 500 and first.stat().st_size > 50_000
    assert severe_console_messages(driver) == []
