"""A self-contained HTML review page for a run: article texts with grounded items highlighted.

The page has no external assets: CSS and JS are inline and a Content-Security-Policy meta tag allows
only those two blocks (by sha256 hash), so even markup smuggled into the page by an escaping bug could
not run a script. Every piece of text that comes from an article, the model or the run is escaped.

Highlights are built by splitting the article text at every item boundary; each segment is wrapped in
one nested ``<mark>`` per item covering it, so overlapping items (a quote inside a stance's evidence,
two items on the same span) render correctly. Only the innermost mark of a segment is filled with its
kind's colour; the marks around it (class ``o``) are drawn as solid underlines in their own colours, so
nested highlights never blend into a third colour. Each ``<mark>`` carries ``data-kind``, ``data-item``,
``data-start`` and ``data-end`` (the grounded range of the piece it belongs to): concatenating the text
of the marks of one piece gives back ``text[start:end]``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, NamedTuple

from extractor.errors import StoreError
from extractor.models import ArticleResult, GroundedEvent, GroundedQuote, GroundedStance, Span
from extractor.store import REPORT_FILE, RUN_FILE, RunFolder, read_runs

__all__ = [
    "CSP",
    "REPORT_FILE",
    "Mark",
    "Segment",
    "article_anchors",
    "build_segments",
    "in_page_order",
    "render_report",
    "write_report",
]

UNATTRIBUTED = "(unattributed)"  # a quote whose speaker the article does not name

KINDS: tuple[str, ...] = ("event", "quote", "stance")
_KIND_ORDER = {kind: i for i, kind in enumerate(KINDS)}
_KIND_LETTER = {"event": "E", "quote": "Q", "stance": "S"}
# Pages with more articles than this start with every article body collapsed.
OPEN_LIMIT = 20

TextSource = Mapping[str, str] | Callable[[str], str | None]
Item = GroundedEvent | GroundedQuote | GroundedStance


@dataclass(frozen=True, slots=True)
class Mark:
    """One highlighted range (a whole span, or one piece of an elided span) of one item."""

    kind: str
    item: int
    start: int
    end: int
    status: str
    title: str
    first: bool = True  # the item's first piece: carries the item's anchor and label


class Segment(NamedTuple):
    """A stretch of text between two consecutive boundaries, with the marks covering all of it."""

    start: int
    end: int
    marks: tuple[Mark, ...]


def _nesting_key(mark: Mark) -> tuple[int, int, int, int, int]:
    # Outermost first: earlier start, then longer range; ties broken by kind and item.
    return (mark.start, -mark.end, _KIND_ORDER.get(mark.kind, 99), mark.item, mark.end)


def build_segments(length: int, marks: Iterable[Mark]) -> list[Segment]:
    """Split ``[0, length)`` at every mark boundary; each segment lists its covering marks, outermost first.

    Raises ValueError for a mark outside ``[0, length]`` or with ``start > end``. Empty marks are ignored.
    """
    starts: dict[int, list[Mark]] = defaultdict(list)
    ends: dict[int, list[Mark]] = defaultdict(list)
    bounds = {0, length}
    for mark in marks:
        if not 0 <= mark.start <= mark.end <= length:
            raise ValueError(f"mark {mark.kind}#{mark.item} [{mark.start}, {mark.end}) outside [0, {length})")
        if mark.start == mark.end:
            continue
        starts[mark.start].append(mark)
        ends[mark.end].append(mark)
        bounds.update((mark.start, mark.end))
    active: list[Mark] = []
    segments: list[Segment] = []
    for a, b in pairwise(sorted(bounds)):
        if a in ends:
            gone = ends[a]
            active = [m for m in active if not any(m is g for g in gone)]
        if a in starts:
            active = sorted([*active, *starts[a]], key=_nesting_key)
        segments.append(Segment(a, b, tuple(active)))
    return segments


# --------------------------------------------------------------------------- static assets

_CSS = """
:root{--e:rgba(255,176,0,.38);--q:rgba(40,130,255,.30);--s:rgba(30,170,80,.30);--r:#c62828;
--ec:#b26a00;--qc:#1565c0;--sc:#1b7f3b;--mut:#666;--bd:#ddd}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1400px;
padding:0 16px 40px;color:#1d1d1d;background:#fafafa}
h1{font-size:22px;margin:16px 0 4px}h2{font-size:18px;margin:20px 0 8px}h3{font-size:15px;margin:0}
table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;border-bottom:1px solid var(--bd)}
th{background:#f0f0f0;position:sticky;top:0}td.n,th.n{text-align:right}
.kv td:first-child{color:var(--mut)}.sum{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.chart text{font-size:11px;fill:#333}.chart .ex{fill:#2e7d32}.chart .no{fill:#f9a825}.chart .el{fill:#8e24aa}
.chart .rj,.mb .r{fill:var(--r)}.mb .g{fill:#2e7d32}.mb{width:120px;height:10px;vertical-align:middle;
background:#eee}
.tools{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:8px 0;position:sticky;top:0;
background:#fafafa;padding:6px 0;z-index:2;border-bottom:1px solid var(--bd)}
#q{width:360px;padding:4px 6px}#n{color:var(--mut)}
.toc{max-height:360px;overflow:auto;border:1px solid var(--bd);background:#fff}
.art{background:#fff;border:1px solid var(--bd);border-radius:6px;margin:12px 0;padding:10px 12px;
content-visibility:auto;contain-intrinsic-size:auto 120px}
.art:target{outline:2px solid var(--qc)}
.meta{color:var(--mut);margin:2px 0 6px;font-size:12px}.meta a{margin-left:6px}
.bad{background:#fdecea;border-left:4px solid var(--r);padding:6px 8px;margin:6px 0}
.dup{background:#eef3fb;border-left:4px solid var(--qc);padding:6px 8px;margin:6px 0}
summary{cursor:pointer;color:#333;font-weight:600;margin:4px 0}
.cols{display:grid;grid-template-columns:minmax(0,3fr) minmax(0,2fr);gap:16px}
@media (max-width:900px){.cols{grid-template-columns:1fr}}
.txt{white-space:pre-wrap;overflow-wrap:anywhere;font:15px/1.6 Georgia,serif;margin:0}
.missing{color:var(--mut);font-style:italic}
mark{color:inherit;border-radius:2px;padding:1px 0}
mark.ke{background:var(--e)}mark.kq{background:var(--q)}mark.ks{background:var(--s)}
mark.o{background:none;border-radius:0;border-bottom:2px solid;padding-bottom:4px}
mark.o2{padding-bottom:7px}mark.o3{padding-bottom:10px}
mark.ke.o{border-bottom-color:var(--ec)}mark.kq.o{border-bottom-color:var(--qc)}
mark.ks.o{border-bottom-color:var(--sc)}
mark.sn,mark.sl{text-decoration:underline dashed 2px;text-underline-offset:3px}
mark.f::before{content:attr(data-l);font:bold 9px/1 system-ui,sans-serif;vertical-align:super;
padding:0 1px;color:#fff;border-radius:2px;margin-right:1px}
mark.ke.f::before{background:var(--ec)}mark.kq.f::before{background:var(--qc)}
mark.ks.f::before{background:var(--sc)}
mark:target{outline:2px solid #000}
.items{list-style:none;padding:0;margin:0;font-size:13px}
.items li{padding:4px 0;border-bottom:1px dotted var(--bd)}
.lb{display:inline-block;min-width:26px;text-align:center;color:#fff;border-radius:3px;font-weight:700;
font-size:11px;text-decoration:none;margin-right:4px}
.ke .lb,.lb.ke{background:var(--ec)}.kq .lb,.lb.kq{background:var(--qc)}.ks .lb,.lb.ks{background:var(--sc)}
.bd{display:inline-block;font-size:10px;padding:0 4px;border-radius:8px;border:1px dashed #555;
margin-left:4px;color:#333}.bd.x{border-color:var(--r);color:var(--r)}
.rej{margin-top:8px}.rej h4{margin:4px 0;color:var(--r);font-size:13px}
.rej li{margin:2px 0}.rej .why{color:var(--r)}
.lg{display:flex;gap:10px;flex-wrap:wrap;font-size:12px;align-items:center}
.lg mark{padding:0 4px}.lg mark.o{padding:0 4px 3px}.lg mark.o mark{padding:0 2px}
.st{font-size:11px;padding:0 5px;border-radius:8px;background:#eee}
.st.error{background:#fdecea;color:var(--r)}.st.dp{background:#eef3fb;color:var(--qc)}
q{font-style:italic}.sm{color:var(--mut)}
[id]{scroll-margin-top:64px}.sub{color:var(--mut);margin:0 0 8px}.sub a{margin-right:10px}
.last{margin:10px 0;border:1px solid var(--bd);background:#fff;border-radius:6px;padding:2px 10px}
.last summary{font-weight:400}.last .kv{margin:6px 0}.last h3{margin:10px 0 4px}
.runs{margin:4px 0 10px;line-height:1.6}
"""

_JS = r"""
(()=>{const $=s=>[...document.querySelectorAll(s)];const arts=$('section.art'),rows=$('#toc tbody tr'),
q=document.getElementById('q'),k=document.getElementById('k'),n=document.getElementById('n');
const fold=s=>s.normalize('NFD').replace(/[\u0300-\u036f]/g,'').toLowerCase();let keys=null;
function key(a){const t=a.querySelector('.txt');return fold(a.dataset.s+'\n'+(t?t.textContent:''));}
function filt(){const w=fold(q.value).split(/\s+/).filter(Boolean),f=k.value;if(w.length&&!keys)
keys=arts.map(key);let c=0;arts.forEach((a,i)=>{
const h=!!((w.length&&!w.every(x=>keys[i].includes(x)))||(f&&!a.dataset.f.includes(f)));a.hidden=h;
if(rows[i])rows[i].hidden=h;if(!h)c++;});n.textContent=c+' of '+arts.length+' articles shown';}
q.addEventListener('input',filt);k.addEventListener('change',filt);
function go(){const id=decodeURIComponent(location.hash.slice(1)),t=id&&document.getElementById(id);
if(!t)return;const d=t.closest('details')||t.querySelector('details');if(d)d.open=true;t.scrollIntoView();}
window.addEventListener('hashchange',go);go();
document.addEventListener('click',e=>{const a=e.target.closest('a[data-step]');if(!a)return;
e.preventDefault();const s=+a.dataset.step;for(let j=arts.indexOf(a.closest('section.art'))+s;
j>=0&&j<arts.length;j+=s){if(!arts[j].hidden){location.hash=arts[j].id;return;}}});
document.getElementById('ex').addEventListener('click',()=>arts.forEach(a=>{
if(!a.hidden)a.querySelectorAll('details').forEach(d=>d.open=true);}));
document.getElementById('co').addEventListener('click',()=>$('section.art details').forEach(d=>d.open=false));
filt();})();
"""


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode() + "'"


def content_security_policy(css: str = _CSS) -> str:
    """The page's CSP: only our own inline script and the given inline style may run."""
    return (
        "default-src 'none'; "
        f"script-src {_csp_hash(_JS)}; "
        f"style-src {_csp_hash(css)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )


CSP = content_security_policy()


# --------------------------------------------------------------------------- helpers


def _e(value: object) -> str:
    """Escape for element content and (double-quoted) attribute values."""
    return html.escape(str(value), quote=True)


def _text(value: str) -> str:
    # A literal CR would be turned into LF by the HTML parser; a character reference survives.
    return html.escape(value, quote=False).replace("\r", "&#13;")


def _shorten(value: str, limit: int = 200) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _item_title(kind: str, index: int, item: Item) -> str:
    parts = [f"{kind.capitalize()} {index + 1}"]
    if isinstance(item, GroundedQuote):
        parts.append(f"speaker: {item.speaker or UNATTRIBUTED}")
        if item.cue:
            parts.append(f"cue: {item.cue}")
    elif isinstance(item, GroundedEvent):
        parts.append(item.event_type)
        parts.extend(x for x in (item.date or item.date_text, item.location) if x)
    else:
        parts.extend((item.holder, item.polarity, item.target))
    if item.span.status in ("normalized", "elided"):
        parts.append(f"{item.span.status} match")
    return " · ".join(parts)


def _ranges(span: Span) -> list[tuple[int, int]]:
    if span.status == "not_found":
        return []
    if span.status == "elided" and span.pieces:
        return [(int(a), int(b)) for a, b in span.pieces]
    if span.start is None or span.end is None:
        return []
    return [(span.start, span.end)]


def _items(result: ArticleResult) -> list[tuple[str, int, Item]]:
    out: list[tuple[str, int, Item]] = []
    out.extend(("event", i, x) for i, x in enumerate(result.events))
    out.extend(("quote", i, x) for i, x in enumerate(result.quotes))
    out.extend(("stance", i, x) for i, x in enumerate(result.stances))
    return out


def _marks(items: list[tuple[str, int, Item]], length: int | None) -> tuple[list[Mark], set[tuple[str, int]]]:
    """Marks for the items that can be shown, and the (kind, index) of items whose offsets are unusable."""
    marks: list[Mark] = []
    broken: set[tuple[str, int]] = set()
    for kind, index, item in items:
        ranges = _ranges(item.span)
        if length is None or not ranges:
            continue
        if any(not 0 <= a <= b <= length for a, b in ranges):
            broken.add((kind, index))
            continue
        title = _item_title(kind, index, item)
        marks.extend(
            Mark(kind, index, a, b, item.span.status, title, first=(n == 0))
            for n, (a, b) in enumerate(ranges)
        )
    return marks, broken


def _label(kind: str, index: int) -> str:
    return f"{_KIND_LETTER[kind]}{index + 1}"


def _render_text(text: str, marks: list[Mark], anchor: str) -> str:
    out: list[str] = []
    opened: set[tuple[str, int, int]] = set()
    anchored: set[tuple[str, int]] = set()
    for seg in build_segments(len(text), marks):
        chunk = _text(text[seg.start : seg.end])
        if not seg.marks:
            out.append(chunk)
            continue
        title = "\n".join(dict.fromkeys(m.title for m in reversed(seg.marks)))
        for depth, m in enumerate(seg.marks):
            cls = f"k{m.kind[0]}"
            inside = len(seg.marks) - 1 - depth  # marks nested inside this one here
            if inside:
                # Only the innermost mark is filled, so a quote inside a stance keeps the quote's colour;
                # each mark around it is a solid underline in its own colour, outer ones lower.
                cls += " o" + (f" o{min(inside, 3)}" if inside > 1 else "")
            if m.status == "normalized":
                cls += " sn"
            elif m.status == "elided":
                cls += " sl"
            attrs = ""
            key = (m.kind, m.item, m.start)
            if key not in opened:
                opened.add(key)
                cls += " f"
                label = _label(m.kind, m.item) + {"normalized": "≈", "elided": "…"}.get(m.status, "")
                attrs += f' data-l="{_e(label)}"'
                if m.first and (m.kind, m.item) not in anchored:
                    anchored.add((m.kind, m.item))
                    attrs += f' id="{anchor}-{m.kind[0]}{m.item}"'
            if depth == len(seg.marks) - 1:
                attrs += f' title="{_e(title)}"'
            out.append(
                f'<mark class="{cls}" data-kind="{m.kind}" data-item="{m.item}" '
                f'data-start="{m.start}" data-end="{m.end}"{attrs}>'
            )
        out.append(chunk)
        out.append("</mark>" * len(seg.marks))
    return "".join(out)


def _status_badge(status: str) -> str:
    if status in ("normalized", "elided"):
        return f' <span class="bd">{status}</span>'
    if status == "not_found":
        return ' <span class="bd x">not found</span>'
    return ""


def _render_item(kind: str, index: int, item: Item, anchor: str, shown: bool, broken: bool) -> str:
    label = _label(kind, index)
    href = f' href="#{anchor}-{kind[0]}{index}"' if shown else ""
    head = f'<a class="lb"{href}>{label}</a>'
    if isinstance(item, GroundedQuote):
        body = f"<b>{_e(item.speaker)}</b>" if item.speaker else f'<i class="sm">{UNATTRIBUTED}</i>'
        if item.cue:
            body += f' <span class="sm">({_e(item.cue)})</span>'
        # The full quote is highlighted in the text; the list only needs enough to recognise it.
        body += f": <q>{_e(_shorten(item.text, 90 if shown else 400))}</q>"
    elif isinstance(item, GroundedEvent):
        bits = [f"<b>{_e(item.event_type)}</b>"]
        if item.date or item.date_text:
            when = _e(item.date or "no ISO date")
            if item.date_text:
                when += f" <span class='sm'>(“{_e(item.date_text)}”)</span>"
            bits.append(when)
        if item.location:
            bits.append(_e(item.location))
        if item.actors:
            bits.append("actors: " + _e(", ".join(item.actors)))
        body = " · ".join(bits) + f"<br>{_e(item.summary)}"
    else:
        body = f"<b>{_e(item.holder)}</b> — <b>{_e(item.polarity)}</b> — {_e(item.target)}"
    body += _status_badge(item.span.status)
    if item.span.occurrences > 1:
        body += f' <span class="bd">occurs {item.span.occurrences}×</span>'
    if broken:
        body += ' <span class="bd x">offsets outside the text</span>'
    if not shown and not isinstance(item, GroundedQuote):
        body += f'<br><span class="sm">evidence:</span> <q>{_e(_shorten(item.evidence, 400))}</q>'
    return f'<li class="k{kind[0]}">{head}{body}</li>'


def _render_rejected(result: ArticleResult) -> str:
    if not result.rejected:
        return ""
    rows = []
    for rej in result.rejected:
        item = rej.item
        who = next(
            (str(item[k]) for k in ("speaker", "holder", "event_type") if isinstance(item.get(k), str)), ""
        )
        what = item.get(rej.field)
        extra = []
        if isinstance(item.get("polarity"), str):
            extra.append(f"{item['polarity']} — {item.get('target', '')}")
        if isinstance(item.get("summary"), str):
            extra.append(item["summary"])
        rows.append(
            f"<li><b>{_e(rej.kind)}</b> ({_e(rej.field)})"
            + (f" <b>{_e(who)}</b>" if who else "")
            + (f": <q>{_e(what)}</q>" if isinstance(what, str) else f": {_e(json.dumps(item, default=str))}")
            + "".join(f' <span class="sm">{_e(x)}</span>' for x in extra)
            + f'<br><span class="why">reason: {_e(rej.reason)}</span></li>'
        )
    return (
        f'<div class="rej"><h4>Rejected ({len(result.rejected)}) — not in the article, or not valid</h4>'
        f"<ul>{''.join(rows)}</ul></div>"
    )


@dataclass(slots=True)
class _Counts:
    events: int = 0
    quotes: int = 0
    stances: int = 0
    grounded: int = 0
    rejected: int = 0
    fuzzy: int = 0


def _counts(result: ArticleResult) -> _Counts:
    items = _items(result)
    statuses = [x.span.status for _, _, x in items]
    return _Counts(
        events=len(result.events),
        quotes=len(result.quotes),
        stances=len(result.stances),
        grounded=sum(s != "not_found" for s in statuses),
        rejected=len(result.rejected),
        fuzzy=sum(s in ("normalized", "elided") for s in statuses),
    )


def _search_key(result: ArticleResult) -> str:
    words = [result.article_id, result.title or "", result.source, result.status]
    if result.error:
        words += [result.error.type, result.error.message]
    if result.duplicate_of:
        words += ["duplicate", result.duplicate_of]
    if result.chunk_errors:
        words += ["partial", *(f"{c.type} {c.message}" for c in result.chunk_errors)]
    # The page's filter also searches the article text (read from the DOM); this adds what is not in it.
    words += [q.speaker or UNATTRIBUTED for q in result.quotes]
    words += [x for s in result.stances for x in (s.holder, s.polarity, s.target)]
    for e in result.events:
        words += [e.event_type, *e.actors, e.location or "", e.date or ""]
    if result.rejected:
        words.append("rejected")
    return " ".join(words).lower()


def _flags(result: ArticleResult, counts: _Counts) -> str:
    return (
        ("r" if counts.rejected else "")
        + ("e" if result.status == "error" else "")
        + ("d" if result.duplicate_of else "")
        + ("n" if counts.fuzzy else "")
    )


def _meta(result: ArticleResult) -> str:
    bits = [f"source: {_e(result.source)}"]
    if result.published:
        bits.append(f"published {result.published.isoformat()}")
    if result.model:
        bits.append(f"model {_e(result.model)}")
    if result.prompt_version:
        bits.append(f"prompt {_e(result.prompt_version)}")
    if result.usage.total_tokens:
        bits.append(f"{result.usage.total_tokens:,} tokens")
    if result.latency_s:
        bits.append(f"{result.latency_s:.2f} s")
    if result.cache_hit:
        bits.append("cache hit")
    if result.chunks > 1:
        bits.append(f"{result.chunks} chunks")
    bits.append(f"sha256 {result.sha256[:12]}")
    return " · ".join(bits)


def _render_article(
    pos: int,
    total: int,
    result: ArticleResult,
    text: str | None,
    counts: _Counts,
    targets: Mapping[str, int],
    open_body: bool,
) -> str:
    anchor = f"a{pos}"
    status = ""
    if result.status == "error":
        status = ' <span class="st error">error</span>'
    elif result.duplicate_of:
        status = ' <span class="st dp">duplicate</span>'
    elif result.chunk_errors:
        status = ' <span class="st error">partial</span>'
    title = f" <span class='sm'>{_e(result.title)}</span>" if result.title else ""
    nav = (f'<a data-step="-1" href="#a{pos - 1}">← prev</a>' if pos > 1 else "") + (
        f'<a data-step="1" href="#a{pos + 1}">next →</a>' if pos < total else ""
    )
    parts = [
        f'<section class="art" id="{anchor}" data-s="{_e(_search_key(result))}" '
        f'data-f="{_flags(result, counts)}">',
        f'<h3><a href="#{anchor}">{pos}. {_e(result.article_id)}</a>{title}{status}</h3>',
        f'<p class="meta">{_meta(result)} {nav}<a href="#toc">↑ contents</a></p>',
    ]
    if result.status == "error":
        err = result.error
        etype, emsg = (err.type, err.message) if err else ("error", "(no error details recorded)")
        parts.append(f'<div class="bad"><b>{_e(etype)}</b>: {_e(emsg)}</div>')
    for ce in result.chunk_errors:
        parts.append(
            f'<div class="bad">Partial: chunk {ce.chunk} of {result.chunks} (characters {ce.start:,}–'
            f"{ce.end:,}) failed, its items are missing: <b>{_e(ce.type)}</b>: {_e(ce.message)}</div>"
        )
    if result.duplicate_of:
        target = targets.get(result.duplicate_of)
        link = (
            f'<a href="#a{target}">{_e(result.duplicate_of)}</a>'
            if target is not None and target != pos
            else f"{_e(result.duplicate_of)} <span class='sm'>(not in this report)</span>"
        )
        parts.append(f'<div class="dup">Duplicate of {link}; its extraction is shown there.</div>')
    items = _items(result)
    if items or (text is not None and not result.duplicate_of):
        marks, broken = _marks(items, None if text is None else len(text))
        shown = {(m.kind, m.item) for m in marks}
        body = (
            f'<div class="txt">{_render_text(text, marks, anchor)}</div>'
            if text is not None
            else '<p class="missing">The article text is not stored with this run; '
            "offsets cannot be shown.</p>"
        )
        listing = "".join(
            _render_item(k, i, x, anchor, (k, i) in shown, (k, i) in broken) for k, i, x in items
        )
        side = f'<ol class="items">{listing}</ol>' if listing else '<p class="sm">No grounded items.</p>'
        summary = (
            f"Text and items — {counts.events} events · {counts.quotes} quotes · {counts.stances} stances"
            + (f" · {counts.fuzzy} inexact" if counts.fuzzy else "")
        )
        parts.append(
            f"<details{' open' if open_body else ''}><summary>{summary}</summary>"
            f'<div class="cols">{body}<aside>{side}</aside></div></details>'
        )
    parts.append(_render_rejected(result))
    parts.append("</section>")
    return "".join(parts)


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if "cost" in key or key.endswith("usd"):
            return f"${value:,.4f}"
        if key.endswith("_s") or key.endswith("seconds"):
            return f"{value:,.2f} s"
        return f"{value:,.4g}"
    if isinstance(value, Mapping) and all(not isinstance(v, Mapping | list) for v in value.values()):
        return " · ".join(f"{k} {_fmt(str(k), v)}" for k, v in value.items())
    if isinstance(value, Mapping | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def _kv_table(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _chart(results: Sequence[ArticleResult]) -> str:
    """Inline SVG: per item kind, grounded (exact / normalized / elided) vs rejected."""
    rows: list[tuple[str, list[int]]] = []
    for kind in KINDS:
        statuses = [x.span.status for r in results for k, _, x in _items(r) if k == kind]
        rejected = sum(rej.kind == kind for r in results for rej in r.rejected)
        grounded = [statuses.count(s) for s in ("exact", "normalized", "elided")]
        rows.append((kind, [*grounded, rejected]))
    classes = ("ex", "no", "el", "rj")
    names = ("exact", "normalized", "elided", "rejected")
    top = max((sum(v) for _, v in rows), default=0) or 1
    width, left, bar = 360, 60, 18
    out = [
        f'<svg class="chart" width="{left + width + 170}" height="{len(rows) * (bar + 8) + 26}" '
        f'role="img" aria-label="grounded and rejected items per kind">'
    ]
    for n, (kind, values) in enumerate(rows):
        y = n * (bar + 8)
        out.append(f'<text x="0" y="{y + 13}">{kind}s</text>')
        x = float(left)
        for cls, name, v in zip(classes, names, values, strict=True):
            if v:
                w = v / top * width
                out.append(
                    f'<rect class="{cls}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar}">'
                    f"<title>{kind}s {name}: {v}</title></rect>"
                )
                x += w
        label = f"{sum(values[:3])} grounded, {values[3]} rejected"
        out.append(f'<text x="{left + width + 6}" y="{y + 13}">{label}</text>')
    y = len(rows) * (bar + 8) + 12
    x = left
    for cls, name in zip(classes, names, strict=True):
        out.append(f'<rect class="{cls}" x="{x}" y="{y}" width="10" height="10"></rect>')
        out.append(f'<text x="{x + 14}" y="{y + 9}">{name}</text>')
        x += 90
    out.append("</svg>")
    return "".join(out)


def _computed(results: Sequence[ArticleResult], counts: Sequence[_Counts]) -> list[tuple[str, str]]:
    """The summary of the results on the page (whatever run, or runs, produced them)."""

    def kind_line(kind: str, total: int) -> str:
        statuses = [x.span.status for r in results for k, _, x in _items(r) if k == kind]
        rejected = sum(rej.kind == kind for r in results for rej in r.rejected)
        parts = [f"{statuses.count(st):,} {st}" for st in ("exact", "normalized", "elided")]
        if kind != "quote" and not any(statuses.count(st) for st in ("normalized", "elided")):
            parts = [f"{total:,}"]
        return " · ".join([*parts, f"{rejected:,} rejected"])

    ok = sum(r.status == "ok" for r in results)
    failed = sum(r.status == "error" for r in results)
    duplicates = sum(r.duplicate_of is not None for r in results)
    prompt = sum(r.usage.prompt_tokens for r in results)
    completion = sum(r.usage.completion_tokens for r in results)
    rows = [
        ("articles", f"{len(results):,}"),
        ("ok / failed", f"{ok:,} / {failed:,}" + (f" · {duplicates:,} duplicates" if duplicates else "")),
        ("quotes", kind_line("quote", sum(c.quotes for c in counts))),
        ("events", kind_line("event", sum(c.events for c in counts))),
        ("stances", kind_line("stance", sum(c.stances for c in counts))),
        ("tokens", f"{prompt + completion:,} ({prompt:,} prompt + {completion:,} completion)"),
    ]
    models = sorted({r.model for r in results if r.model})
    if models:
        rows.append(("model", ", ".join(models)))
    return rows


def _runs_word(n: int) -> str:
    return f"{n:,} run{'' if n == 1 else 's'}"


def _when(stamp: object) -> str | None:
    """``2026-01-06T10:00:00Z`` as ``2026-01-06 10:00:00 UTC``."""
    if not isinstance(stamp, str) or not stamp.endswith("Z") or "T" not in stamp:
        return None
    return stamp[:-1].replace("T", " ") + " UTC"


def _run_lines(
    results: Sequence[ArticleResult], summary: Mapping[str, Any] | None, history: Sequence[Mapping[str, Any]]
) -> str:
    """Two labelled lines: what the folder holds (the results on this page, and how many runs made
    them) and what the last run did (run.json: articles it skipped as done are not counted as ok)."""
    ok = sum(r.status == "ok" for r in results)
    failed = sum(r.status == "error" for r in results)
    duplicates = sum(r.duplicate_of is not None for r in results)
    folder = f"{len(results):,} articles · {ok:,} ok · {failed:,} failed"
    if duplicates:
        folder += f" · {duplicates:,} duplicate{'' if duplicates == 1 else 's'}"
    recorded = summary.get("folder") if summary else None
    runs = len(history) or (recorded.get("runs") if isinstance(recorded, Mapping) else None)
    if isinstance(runs, int) and runs:
        folder += f" — the results of {_runs_word(runs)}"
    lines = [f"<b>This folder</b>: {_e(folder)}"]
    if summary:
        failed_key = "failed" if "failed" in summary else "errors"
        gist = [
            f"{_fmt(key, summary[key])} {label}".strip()
            for key, label in (
                ("articles", "articles"),
                ("ok", "ok"),
                ("skipped", "skipped as already done"),
                (failed_key, "failed"),
                ("wall_s", ""),
            )
            if key in summary
        ]
        if summary.get("stopped_by"):
            gist.append(f"stopped by {summary['stopped_by']}")
        elif summary.get("interrupted"):
            gist.append("interrupted")
        finished = _when(summary.get("finished_at"))
        label = "<b>Last run</b>" + (f", finished {_e(finished)}" if finished else "")
        lines.append(f"{label}: {_e(' · '.join(gist) or 'no figures in run.json')}")
    return f'<p class="runs">{"<br>".join(lines)}</p>'


_HISTORY_SHOWN = 20
_HISTORY_COLUMNS = (
    ("articles", "articles"),
    ("ok", "ok"),
    ("skipped", "skipped"),
    ("failed", "failed"),
    ("http_calls", "HTTP calls"),
    ("tokens", "tokens"),
    ("wall_s", "wall"),
)


def _history_table(history: Sequence[Mapping[str, Any]]) -> str:
    """The last runs of runs.jsonl, newest last."""
    shown = history[-_HISTORY_SHOWN:]
    head = "".join(f"<th class='n'>{_e(label)}</th>" for _, label in _HISTORY_COLUMNS)
    rows = []
    for run in shown:
        cells = "".join(f"<td class='n'>{_e(_fmt(key, run.get(key)))}</td>" for key, _ in _HISTORY_COLUMNS)
        note = f"stopped by {run['stopped_by']}" if run.get("stopped_by") else ""
        finished = _e(_when(run.get("finished_at")) or "—")
        rows.append(f'<tr class="run"><td>{finished}</td>{cells}<td>{_e(note)}</td></tr>')
    more = (
        f"<p class='sm'>The last {len(shown):,} of {_runs_word(len(history))}.</p>"
        if len(history) > len(shown)
        else ""
    )
    return (
        f"<h3>Runs, oldest first</h3>{more}<table class='kv'><thead><tr><th>finished</th>{head}"
        f"<th></th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _last_run(summary: Mapping[str, Any] | None, history: Sequence[Mapping[str, Any]]) -> str:
    """run.json in full (the figures of the last ``extractor run`` only) and the run history, as a
    collapsed block."""
    title = "Last run in full (run.json)" if summary else "Run history"
    if summary and history:
        title = f"Run history ({_runs_word(len(history))}, runs.jsonl) and the last run in full (run.json)"
    body = _history_table(history) if history else ""
    if summary:
        rows = ((k.replace("_", " "), _fmt(k, v)) for k, v in summary.items())
        body += (
            "<h3>Last run</h3><p class='sm'>What the last <code>extractor run</code> on this folder did: "
            "articles it skipped as already done count as skipped, not ok, and its rates and rate-limiter "
            "figures are that run's alone; <i>folder</i> is the folder's totals after it. The summary "
            f"above counts the results themselves.</p>{_kv_table(rows)}"
        )
    return f'<details class="last" id="last-run"><summary>{_e(title)}</summary>{body}</details>'


def _toc(results: Sequence[ArticleResult], counts: Sequence[_Counts]) -> str:
    top = max((c.grounded + c.rejected for c in counts), default=0) or 1
    rows = []
    for pos, (result, c) in enumerate(zip(results, counts, strict=True), start=1):
        state = "error" if result.status == "error" else "duplicate" if result.duplicate_of else "ok"
        title = f" <span class='sm'>{_e(_shorten(result.title, 60))}</span>" if result.title else ""
        bar = (
            f'<svg class="mb" viewBox="0 0 {top} 1" preserveAspectRatio="none">'
            f'<rect class="g" width="{c.grounded}" height="1"></rect>'
            f'<rect class="r" x="{c.grounded}" width="{c.rejected}" height="1"></rect></svg>'
        )
        rows.append(
            f'<tr><td class="n">{pos}</td><td><a href="#a{pos}">{_e(result.article_id)}</a>{title}</td>'
            f"<td>{state}</td><td class='n'>{c.events}</td><td class='n'>{c.quotes}</td>"
            f"<td class='n'>{c.stances}</td><td class='n'>{c.grounded}</td><td class='n'>{c.rejected}</td>"
            f"<td>{bar}</td></tr>"
        )
    head = (
        "<thead><tr><th class='n'>#</th><th>article</th><th>status</th><th class='n'>E</th>"
        "<th class='n'>Q</th><th class='n'>S</th><th class='n'>grounded</th><th class='n'>rejected</th>"
        "<th>grounded / rejected</th></tr></thead>"
    )
    return f'<div class="toc"><table id="toc">{head}<tbody>{"".join(rows)}</tbody></table></div>'


_TOOLS = (
    '<div class="tools"><input id="q" type="search" '
    'placeholder="Filter: id, title, person, type or any word of the text" aria-label="filter articles">'
    '<select id="k" aria-label="show only">'
    '<option value="">all articles</option><option value="r">with rejected items</option>'
    '<option value="n">with normalized / elided matches</option><option value="e">errors</option>'
    '<option value="d">duplicates</option></select>'
    '<button id="ex" type="button">Expand all</button><button id="co" type="button">Collapse all</button>'
    '<span id="n"></span><span class="lg"><mark class="ke">event</mark><mark class="kq">quote</mark>'
    '<mark class="ks">stance</mark><mark class="ks o">stance with a <mark class="kq">quote</mark> in it'
    '</mark><span class="sm">(inner item filled, outer ones underlined)</span>'
    '<mark class="kq sn">dashed: normalized / elided</mark></span></div>'
)


def in_page_order(results: Iterable[ArticleResult]) -> list[ArticleResult]:
    """The results in the order of the page: by article id (stable, so a repeated id keeps its order)."""
    return sorted(results, key=lambda r: r.article_id)


def article_anchors(results: Iterable[ArticleResult]) -> dict[str, str]:
    """Article id -> the id of its section on the page ``render_report`` makes of ``results`` (``aN``).

    Sections are numbered from 1 in page order (``in_page_order``: by article id, whatever order
    results.jsonl has); an id that occurs twice links to its first section.
    """
    anchors: dict[str, str] = {}
    for pos, r in enumerate(in_page_order(results), start=1):
        anchors.setdefault(r.article_id, f"a{pos}")
    return anchors


def render_report(
    results: Iterable[ArticleResult],
    texts: TextSource,
    summary: Mapping[str, Any] | None = None,
    extra_sections: Sequence[str] = (),
    *,
    extra_css: str = "",
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
    (runs.jsonl, oldest first). ``extra_sections`` are trusted, already-escaped HTML fragments (e.g. the
    digest) inserted after the contents table, before the articles, styled by ``extra_css``. Article bodies
    start open when there are at most ``open_limit`` articles. ``title`` defaults to "Extraction review
    — N articles — ``folder``".
    """
    lookup: Callable[[str], str | None] = texts.get if isinstance(texts, Mapping) else texts
    items = in_page_order(results)
    if title is None:
        title = f"Extraction review — {len(items):,} article{'' if len(items) == 1 else 's'}" + (
            f" — {folder}" if folder else ""
        )
    counts = [_counts(r) for r in items]
    targets: dict[str, int] = {}
    for pos, r in enumerate(items, start=1):
        targets.setdefault(r.article_id, pos)
    for pos, r in enumerate(items, start=1):
        if r.duplicate_of is None:
            targets.setdefault(r.sha256, pos)
    open_body = len(items) <= open_limit
    articles = [
        _render_article(pos, len(items), r, lookup(r.sha256), c, targets, open_body)
        for pos, (r, c) in enumerate(zip(items, counts, strict=True), start=1)
    ]
    css = _CSS + extra_css
    head = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_e(content_security_policy(css))}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{css}</style></head><body>"
    )
    jumps = [("#summary", "summary"), ("#toc", "contents")]
    if extra_sections:
        jumps.append(("#digest", "digest"))
    if items:
        jumps.append(("#a1", "first article"))
    body = [
        f"<h1>{_e(title)}</h1>",
        '<p class="sub">' + "".join(f'<a href="{h}">{label}</a>' for h, label in jumps) + "</p>",
        '<section id="summary"><h2>Summary</h2>',
        _run_lines(items, summary, history),
        '<div class="sum">',
        f"<div><h3>This folder (results.jsonl)</h3>{_kv_table(_computed(items, counts))}</div>",
        f"<div><h3>Grounded vs rejected</h3>{_chart(items)}</div></div>",
        _last_run(summary, history) if summary or history else "",
        "</section>",
        f'<div id="main"><h2 id="contents">Articles ({len(items)})</h2>{_TOOLS}',
        _toc(items, counts) if items else '<p class="missing">No results in this run.</p>',
        *extra_sections,
        '<section id="articles">',
        *articles,
        "</section></div>",
        f"<script>{_JS}</script></body></html>",
    ]
    return head + "".join(body)


def _read_summary(run_dir: RunFolder) -> dict[str, Any] | None:
    path = run_dir.run_json
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {RUN_FILE: f"unreadable: {exc}"}
    return data if isinstance(data, dict) else {RUN_FILE: data}


def _read_history(run_dir: RunFolder) -> list[dict[str, Any]]:
    try:
        return read_runs(run_dir.path)
    except StoreError:
        return []


def write_report(
    run_dir: RunFolder | Path | str,
    out_path: Path | str | None = None,
    extra_sections: Sequence[str] = (),
    extra_css: str = "",
) -> Path:
    """Write the review page for a run folder (default ``run_dir/report.html``) and return its path.

    Reads results.jsonl, run.json and runs.jsonl (if present) and articles/<sha256>.txt; ``extra_sections`` /
    ``extra_css`` as in ``render_report`` (the CLI always passes the digest section). The title names
    the number of articles and the folder. A RunFolder passed in lends the results it has read.
    """
    folder = RunFolder.of(run_dir)
    out = Path(out_path) if out_path is not None else folder.report

    def lookup(sha256: str) -> str | None:
        try:
            return folder.article_text(sha256)
        except StoreError:
            return None

    page = render_report(
        folder.results(),
        lookup,
        _read_summary(folder),
        extra_sections,
        extra_css=extra_css,
        folder=str(folder.path.resolve()),
        history=_read_history(folder),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_bytes(page.encode("utf-8", errors="replace"))
    os.replace(tmp, out)
    return out
