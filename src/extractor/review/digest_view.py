"""The digest as the review page shows it (the section's data) and as ``extractor digest`` prints it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from extractor.dates import date_label, precision_label
from extractor.digest import Digest

T = TypeVar("T")

__all__ = ["SINGLE_CLUSTERS_SHOWN", "as_digest", "digest_context", "render_digest_text", "value_label"]

SINGLE_CLUSTERS_SHOWN = 40  # the text summary lists one-report clusters up to this many

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


def value_label(value: str, field_name: str) -> str:
    """A conflicting value as shown: dates and date precisions in words, other values as they are."""
    if field_name == "date":
        return date_label(value)
    if field_name == "date_precision":
        return precision_label(value)
    return value


def as_digest(digest: Digest | Mapping[str, Any]) -> Digest:
    """The digest itself, or one validated from its JSON form (digest.json)."""
    return digest if isinstance(digest, Digest) else Digest.model_validate(digest)


def digest_context(
    digest: Digest | Mapping[str, Any], anchors: Mapping[str, str] | None = None, note: str | None = None
) -> dict[str, Any]:
    """The data of the page's digest section (template ``digest.html.j2``).

    ``anchors`` maps article ids to the ids of their sections on the page: article references become
    links to them. Parts spanning several articles are listed first and open; one-article ones collapsed.
    """
    d = as_digest(digest)
    notable, other = _split(
        d.entities,
        lambda e: (
            len(e.articles) > 1
            or len(e.mentions) > 1
            or bool(e.possible_same_as or e.notes)
            or e.kind == "person"
        ),
    )
    kinds = Counter(e.kind for e in d.entities)
    by_kind = ", ".join(
        f"{n} {_KIND_NAMES.get(kind, (kind, kind + 's'))[n != 1]}"
        for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    entity_summary = f"Entities ({len(d.entities)}: {by_kind})"
    if other:
        entity_summary += (
            f" — {len(notable)} listed: people and entities with several forms or in several articles"
        )
    shared, other_stances = _split(d.stances, lambda s: len(s.articles) > 1 or s.mixed_across_articles)
    multi, single = _split(d.event_clusters, lambda c: len(c.articles) > 1)
    return {
        "digest": d,
        "anchors": anchors or {},
        "note": note,
        "notable": notable,
        "other_entities": other,
        "entity_summary": entity_summary,
        "multi": multi,
        "single": single,
        "shared_stances": shared,
        "other_stances": other_stances,
    }


def _split(items: Iterable[T], first: Callable[[T], bool]) -> tuple[list[T], list[T]]:
    """``items`` in two lists, in their order: those ``first`` holds for, and the others."""
    yes: list[T] = []
    no: list[T] = []
    for item in items:
        (yes if first(item) else no).append(item)
    return yes, no


def render_digest_text(digest: Digest | Mapping[str, Any]) -> str:
    """A plain-text terminal summary: merged entities, event clusters with conflicts, quote variants."""
    d = as_digest(digest)
    lines = [f"Digest of {len(d.articles)} article(s)" + (f", {len(d.skipped)} skipped" if d.skipped else "")]
    merged = [e for e in d.entities if len(e.mentions) > 1 or e.merges]
    lines.append(f"\nEntities: {len(d.entities)} ({len(merged)} with merged forms)")
    for e in merged:
        forms = ", ".join(f"{m.surface!r}" for m in e.mentions)
        lines.append(f"  {e.name} [{e.kind}]: {forms}")
        for merge in e.merges:
            lines.append(f"      {merge.surface!r} -> {merge.matched!r}: {merge.reason}")
    possible = [
        f"  {e.name} ({', '.join(e.articles)}) ~ {x.target_name}: {x.reason}"
        for e in d.entities
        for x in e.possible_same_as
    ]
    linked = [
        f"  {e.name} [{e.kind}]: " + ", ".join(f"{link.relation} {link.target_name}" for link in e.linked_to)
        for e in d.entities
        if e.linked_to
    ]
    for heading, rows in (("Possibly the same (not merged):", possible), ("Links (not merged):", linked)):
        if rows:
            lines += [f"\n{heading}", *rows]
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
                f"{value_label(v.value, conflict.field)} ({', '.join(v.articles)})" for v in conflict.values
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
