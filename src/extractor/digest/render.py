"""The digest as text (``extractor digest``) and as an HTML section of the review page."""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from extractor.dates import date_label, precision_label
from extractor.digest.model import Digest, Entity, EventCluster, StanceRow

SINGLE_CLUSTERS_SHOWN = 40  # the text summary lists one-report clusters up to this many


def _value_label(field_name: str, value: str) -> str:
    if field_name == "date":
        return date_label(value)
    if field_name == "date_precision":
        return precision_label(value)
    return value


def _as_digest(digest: Digest | Mapping[str, Any]) -> Digest:
    return digest if isinstance(digest, Digest) else Digest.model_validate(digest)


def render_digest_text(digest: Digest | Mapping[str, Any]) -> str:
    """A plain-text terminal summary: merged entities, event clusters with conflicts, quote variants."""
    d = _as_digest(digest)
    lines = [f"Digest of {len(d.articles)} article(s)" + (f", {len(d.skipped)} skipped" if d.skipped else "")]
    merged = [e for e in d.entities if len(e.mentions) > 1 or e.merges]
    lines.append(f"\nEntities: {len(d.entities)} ({len(merged)} with merged forms)")
    for e in merged:
        forms = ", ".join(f"{m.surface!r}" for m in e.mentions)
        lines.append(f"  {e.name} [{e.kind}]: {forms}")
        for merge in e.merges:
            lines.append(f"      {merge.surface!r} -> {merge.matched!r}: {merge.reason}")
    possible = [e for e in d.entities if e.possible_same_as]
    if possible:
        lines.append("\nPossibly the same (not merged):")
        for e in possible:
            for x in e.possible_same_as:
                lines.append(f"  {e.name} ({', '.join(e.articles)}) ~ {x.target_name}: {x.reason}")
    linked = [e for e in d.entities if e.linked_to]
    if linked:
        lines.append("\nLinks (not merged):")
        for e in linked:
            targets = ", ".join(f"{link.relation} {link.target_name}" for link in e.linked_to)
            lines.append(f"  {e.name} [{e.kind}]: {targets}")
    singles = [c for c in d.event_clusters if len(c.reports) == 1]
    lines.append(f"\nEvent clusters: {len(d.event_clusters)} ({len(singles)} reported by one article)")
    for c in d.event_clusters:
        where = c.location or "unknown place"
        head = f"  {c.id} {'/'.join(c.event_types)} {date_label(c.date_value)} at {where}"
        if len(c.reports) == 1:
            if len(singles) <= SINGLE_CLUSTERS_SHOWN:
                lines.append(f"{head}: {c.reports[0].ref}: {c.reports[0].summary}")
            continue
        lines.append(f"{head}: {len(c.reports)} reports from {', '.join(c.articles)}")
        for r in c.reports:
            lines.append(f"      {r.ref}: {r.summary}")
        for conflict in c.conflicts:
            vals = "; ".join(
                f"{_value_label(conflict.field, v.value)} ({', '.join(v.articles)})" for v in conflict.values
            )
            verdict = "compatible" if conflict.compatible else "disagree"
            lines.append(f"      conflict {conflict.field}: {vals} [{verdict}: {conflict.note}]")
    mixed = [s for s in d.stances if s.mixed_across_articles]
    lines.append(f"\nStances: {len(d.stances)} holder/target rows, {len(mixed)} with mixed polarity")
    for s in mixed:
        lines.append(f"  {s.holder} on {s.target!r}: {s.polarities}")
    lines.append(f"\nQuote variant groups: {len(d.quote_groups)}")
    for g in d.quote_groups:
        lines.append(f"  {g.id} {', '.join(g.speakers)} ({', '.join(g.articles)}):")
        for m in g.members:
            lines.append(f"      {m.ref}: “{m.text[:100]}{'…' if len(m.text) > 100 else ''}”")
    return "\n".join(lines)


DIGEST_CSS = """
.dg table{margin:6px 0 14px}.dg-kind,.dg-rule{font-size:11px;padding:0 5px;border-radius:8px;background:#eee}
.dg-merge{color:#555;font-size:12px}.dg-conflict{background:#fff4e5}.dg-ok{color:#2e7d32}
.dg-mixed{background:#fdecea}.dg-note{background:#fff4e5;border-left:4px solid #b26a00;padding:6px 8px}
.dg-part{margin:8px 0}.dg-part>summary{font-size:15px}.dg-more{margin:4px 0 10px 12px}
.dg-cluster{border:1px solid #ddd;border-radius:6px;padding:6px 10px;margin:8px 0;background:#fff}
.dg-cluster>summary{font-weight:400}.dg-ev{font-size:12px;color:#555}.dg-quote{font-style:italic}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _table(cls: str, head: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    thead = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{thead}</tr></thead><tbody>{body}</tbody></table>'


def _details(cls: str, summary: str, body: str, *, open_: bool, ident: str | None = None) -> str:
    attrs = f' id="{_e(ident)}"' if ident else ""
    opened = " open" if open_ else ""
    return f'<details class="{cls}"{attrs}{opened}><summary>{summary}</summary>{body}</details>'


class _Links:
    """Article ids as links to their sections of the review page (``anchors``: article id -> element id)."""

    def __init__(self, anchors: Mapping[str, str] | None) -> None:
        self.anchors = anchors or {}

    def article(self, article_id: str, label: str | None = None) -> str:
        text = _e(label if label is not None else article_id)
        anchor = self.anchors.get(article_id)
        return f'<a class="dg-art" href="#{_e(anchor)}">{text}</a>' if anchor else text

    def articles(self, article_ids: Iterable[str]) -> str:
        return ", ".join(self.article(a) for a in article_ids)


def _entity_html(d: Digest, links: _Links) -> str:
    def row(ent: Entity) -> list[str]:
        mentions = "<br>".join(
            f'{_e(m.surface)} <span class="dg-ev">×{m.count} in {links.articles(m.articles)}</span>'
            for m in ent.mentions
        )
        merges = "<br>".join(
            f'<span class="dg-merge"><span class="dg-rule">{_e(r.rule)}</span> {_e(r.surface)} → '
            f"{_e(r.matched)} ({r.score:.2f}): {_e(r.reason)}</span>"
            for r in ent.merges
        )
        maybe = "<br>".join(
            f'<span class="dg-merge"><span class="dg-rule">{_e(x.rule)}</span> '
            f'<a href="#dg-ent-{_e(x.target)}">{_e(x.target_name)}</a>: {_e(x.reason)}</span>'
            for x in ent.possible_same_as
        )
        linked = "<br>".join(f"{_e(link.relation)} {_e(link.target_name)}" for link in ent.linked_to)
        notes = "<br>".join(_e(n) for n in ent.notes)
        return [
            f'<span id="dg-ent-{_e(ent.id)}">{_e(ent.name)}</span>',
            f'<span class="dg-kind">{_e(ent.kind)}</span>',
            mentions,
            merges,
            maybe,
            linked,
            notes,
        ]

    head = ["Entity", "Kind", "Mentions", "Merged because", "Possibly the same as", "Linked to", "Notes"]
    notable = [
        e
        for e in d.entities
        if len(e.articles) > 1 or len(e.mentions) > 1 or e.possible_same_as or e.notes or e.kind == "person"
    ]
    rest = [e for e in d.entities if e not in notable]
    body = _table("dg-entities", head, map(row, notable))
    if rest:
        body += _details(
            "dg-more",
            f"{len(rest)} other entities (one form, one article)",
            _table("dg-entities", head, map(row, rest)),
            open_=False,
        )
    kinds = Counter(e.kind for e in d.entities)
    by_kind = ", ".join(
        f"{n} {_KIND_NAMES.get(kind, (kind, kind + 's'))[n != 1]}"
        for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    summary = f"Entities ({len(d.entities)}: {by_kind})"
    if rest:
        summary += f" — {len(notable)} listed: people and entities with several forms or in several articles"
    return _details("dg-part", _e(summary), body, open_=True, ident="dg-entities")


_KIND_NAMES: dict[str, tuple[str, str]] = {
    "person": ("person", "people"),
    "name": ("bare surname", "bare surnames"),
    "country": ("country", "countries"),
    "place": ("place", "places"),
    "institution": ("institution", "institutions"),
    "source": ("source", "sources"),
    "group": ("group", "groups"),
    "role": ("role", "roles"),
    "other": ("other", "other"),
}


def _cluster_html(c: EventCluster, links: _Links) -> str:
    summary = (
        f"<strong>{_e(c.id)}</strong> {_e('/'.join(c.event_types))} · {_e(date_label(c.date_value))} "
        f"· {_e(c.location or 'location unknown')} · {len(c.reports)} reports from "
        f"{links.articles(c.articles)}"
    )
    rows = [
        [
            links.article(r.article_id, r.ref),
            _e(r.event_type),
            _e(r.date or r.date_text or "—"),
            _e(r.location or "—"),
            _e(", ".join(r.actors)),
            f'{_e(r.summary)}<div class="dg-ev">{_e(r.evidence)}</div>',
        ]
        for r in c.reports
    ]
    body = _table("dg-reports", ["Report", "Type", "Date", "Location", "Actors", "Summary / evidence"], rows)
    if c.conflicts:
        crows = [
            [
                _e(cf.field),
                "<br>".join(
                    f"{_e(_value_label(cf.field, v.value))} — {links.articles(v.articles)}" for v in cf.values
                ),
                _e("compatible" if cf.compatible else "disagree"),
                _e(cf.note),
            ]
            for cf in c.conflicts
        ]
        body += _table("dg-conflicts dg-conflict", ["Field", "Values (articles)", "Verdict", "Note"], crows)
    if c.links:
        body += (
            '<div class="dg-ev">'
            + "<br>".join(f"{_e(k.a)} ~ {_e(k.b)}: {_e(k.reason)}" for k in c.links)
            + "</div>"
        )
    return _details("dg-cluster", summary, body, open_=True, ident=f"dg-{c.id}")


def _events_html(d: Digest, links: _Links) -> str:
    multi = [c for c in d.event_clusters if len(c.articles) > 1]
    single = [c for c in d.event_clusters if len(c.articles) <= 1]
    body = "".join(_cluster_html(c, links) for c in multi)
    if single:
        rows = "".join(
            f'<tr id="dg-{_e(c.id)}"><td>{_e(c.id)}</td><td>{_e("/".join(c.event_types))}</td>'
            f"<td>{_e(date_label(c.date_value))}</td><td>{_e(c.location or '—')}</td>"
            f"<td>{'<br>'.join(links.article(r.article_id, r.ref) for r in c.reports)}</td>"
            f"<td>{'<br>'.join(_e(r.summary) for r in c.reports)}</td></tr>"
            for c in single
        )
        head = "".join(f"<th>{h}</th>" for h in ("Cluster", "Type", "Date", "Location", "Report", "Summary"))
        body += _details(
            "dg-more",
            f"{len(single)} events reported by one article",
            f'<table class="dg-singles"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>',
            open_=not multi,
        )
    summary = f"Event clusters ({len(d.event_clusters)}; {len(multi)} reported by several articles)"
    return _details("dg-part", _e(summary), body, open_=True, ident="dg-events")


def _stances_html(d: Digest, links: _Links) -> str:
    def row(s: StanceRow) -> list[str]:
        return [
            _e(s.holder),
            _e(s.target),
            f'<span class="{"dg-mixed" if s.mixed_across_articles else "dg-ok"}">{_e(s.polarity)}</span>',
            "<br>".join(
                f"{links.article(x.article_id)} [{_e(x.start)}–{_e(x.end)}] {_e(x.polarity)}: "
                f"{_e(x.evidence)}"
                for x in s.supports
            ),
        ]

    head = ["Holder", "Target", "Polarity", "Evidence (article, span)"]
    shared = [s for s in d.stances if len(s.articles) > 1 or s.mixed_across_articles]
    rest = [s for s in d.stances if s not in shared]
    body = _table("dg-stances", head, map(row, shared)) if shared else ""
    if rest:
        body += _details(
            "dg-more",
            f"{len(rest)} stances held in one article",
            _table("dg-stances", head, map(row, rest)),
            open_=not shared,
        )
    summary = f"Stances ({len(d.stances)}; {len(shared)} across articles)"
    return _details("dg-part", _e(summary), body, open_=True, ident="dg-stances")


def _quotes_html(d: Digest, links: _Links) -> str:
    rows = [
        [
            _e(g.id),
            _e(", ".join(g.speakers)),
            "<br>".join(
                f"{links.article(m.article_id, m.ref)} ({_e(m.speaker)}): "
                f'<span class="dg-quote">“{_e(m.text)}”</span>'
                for m in g.members
            ),
        ]
        for g in d.quote_groups
    ]
    body = _table("dg-quotes", ["Group", "Speakers", "Wordings"], rows)
    return _details(
        "dg-part", _e(f"Quote variants ({len(d.quote_groups)})"), body, open_=True, ident="dg-quotes"
    )


def digest_html_section(
    digest: Digest | Mapping[str, Any], anchors: Mapping[str, str] | None = None, note: str | None = None
) -> str:
    """An HTML fragment (a ``<section>``) of the digest for the review page; every value is escaped.

    ``anchors`` maps article ids to the ids of their sections on the page (``report.article_anchors``):
    article references become links to them. ``note`` (e.g. "rebuilt because ...") is shown on top. Parts
    are collapsible ``<details>``: clusters, stances and quote groups spanning several articles start
    open, one-article ones are collapsed. Uses only ``dg-`` classes, no scripts, no inline styles and no
    external assets; ``DIGEST_CSS`` holds optional styles for them.
    """
    d = _as_digest(digest)
    links = _Links(anchors)
    parts = [f'<section id="digest" class="dg"><h2>Digest ({len(d.articles)} articles)</h2>']
    if note:
        parts.append(f'<p class="dg-note">{_e(note)}</p>')
    parts.append(_entity_html(d, links))
    parts.append(_events_html(d, links))
    parts.append(_stances_html(d, links))
    parts.append(_quotes_html(d, links))
    if d.skipped:
        parts.append(
            '<p class="dg-ev">Skipped: '
            + "; ".join(f"{links.article(s.article_id)} ({_e(s.reason)})" for s in d.skipped)
            + "</p>"
        )
    parts.append("</section>")
    return "".join(parts)
