"""Building a run's digest, and keeping digest.json current.

digest.json records (``source``) the sha256 and size of the results.jsonl it was built from and the user's
aliases; ``load_current_digest`` rebuilds a digest whose results have changed since (the review page does).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from extractor.dates import date_value, event_date
from extractor.digest.entities import _Entities
from extractor.digest.events import (
    _TYPE_FAMILY,
    UNDATED_MIN_JACCARD,
    UNDATED_MIN_SHARED,
    WEAK_DATE_MIN_JACCARD,
    _cluster_events,
    _counts,
    _location,
    _Report,
)
from extractor.digest.mentions import _Mention, _parse
from extractor.digest.model import Digest, DigestSource, EventReport, SkippedArticle
from extractor.digest.names import (
    BUILTIN_ALIAS_TABLE,
    NAME_JW_MIN,
    _AliasTable,
    _Parsed,
    builtin_aliases,
    load_aliases,
)
from extractor.digest.voices import QUOTE_MIN_CONTAINMENT, QUOTE_MIN_SIMILARITY, _quote_groups, _stance_rows
from extractor.models import ArticleResult, Event
from extractor.store import DIGEST_FILE, RESULTS_FILE, RunFolder, write_json_atomic

# The fields of an EventReport that are the event's own, as the article's result has them.
_AS_REPORTED = set(Event.model_fields)


def build_digest(results: Iterable[ArticleResult], aliases: Mapping[str, str] | None = None) -> Digest:
    """Canonical entities, event clusters with conflicts, a stance table and quote variants of a run.

    ``aliases`` ("variant" -> "canonical") are laid over ``DEFAULT_ALIASES``; map a name to itself to
    switch a default off. Error results and duplicates (``duplicate_of``) are listed as skipped.
    """
    table = _AliasTable.build(aliases)
    usable: list[ArticleResult] = []
    skipped: list[SkippedArticle] = []
    seen: set[str] = set()
    for result in sorted(results, key=lambda r: r.article_id):
        if result.status != "ok":
            reason = f"error: {result.error.type}" if result.error else "error"
            skipped.append(SkippedArticle(article_id=result.article_id, reason=reason))
        elif result.duplicate_of is not None:
            skipped.append(
                SkippedArticle(article_id=result.article_id, reason=f"duplicate of {result.duplicate_of}")
            )
        elif result.article_id in seen:
            skipped.append(SkippedArticle(article_id=result.article_id, reason="repeated article id"))
        else:
            seen.add(result.article_id)
            usable.append(result)

    parse_cache: dict[str, _Parsed] = {}

    def parsed(surface: str) -> _Parsed:
        if surface not in parse_cache:
            parse_cache[surface] = _parse(surface, table)
        return parse_cache[surface]

    mentions: list[_Mention] = []
    for result in usable:
        for event in result.events:
            mentions.extend(_Mention(result.article_id, a, "actor", parsed(a)) for a in event.actors)
        mentions.extend(
            _Mention(result.article_id, q.speaker, "speaker", parsed(q.speaker))
            for q in result.quotes
            if q.speaker is not None
        )
        mentions.extend(
            _Mention(result.article_id, s.holder, "holder", parsed(s.holder)) for s in result.stances
        )
    ents = _Entities(mentions, table)
    entities = ents.to_models()
    names = {e.id: e.name for e in entities}

    reports: list[_Report] = []
    for result in usable:
        for i, event in enumerate(result.events):
            date = event_date(event.date, event.date_text)
            value, precision = date_value(date)
            place = _location(event.location)
            actor_ids = sorted({ents.entity_id(result.article_id, a) for a in event.actors})
            model = EventReport(
                **event.model_dump(mode="json", include=_AS_REPORTED),
                ref=f"{result.article_id}#e{i}",
                article_id=result.article_id,
                index=i,
                date_value=value,
                date_precision=precision,
                location_key=place.key if place else None,
                actor_ids=actor_ids,
                start=event.span.start,
                end=event.span.end,
                counts=_counts(event.evidence, event.summary),
            )
            family = _TYPE_FAMILY.get(event.event_type, event.event_type)
            reports.append(_Report(model, family, date, place, frozenset(actor_ids)))

    return Digest(
        articles=[r.article_id for r in usable],
        skipped=skipped,
        parameters={
            "name_jaro_winkler_min": NAME_JW_MIN,
            "undated_min_shared_actors": UNDATED_MIN_SHARED,
            "undated_min_actor_jaccard": UNDATED_MIN_JACCARD,
            "partial_date_min_actor_jaccard": WEAK_DATE_MIN_JACCARD,
            "quote_min_similarity": QUOTE_MIN_SIMILARITY,
            "quote_min_containment": QUOTE_MIN_CONTAINMENT,
            "event_type_families": "COOPERATE~CONSULT",
        },
        entities=entities,
        event_clusters=_cluster_events(reports, names),
        stances=_stance_rows(usable, ents),
        quote_groups=_quote_groups(usable, ents, entities),
    )


def results_fingerprint(run_dir: RunFolder | Path | str) -> tuple[str, int]:
    """(sha256, size) of a run's results.jsonl up to its last complete line, as recorded in digest.json."""
    return RunFolder.of(run_dir).fingerprint()


def _build_from_run(
    run_dir: RunFolder, aliases: Mapping[str, str] | None, aliases_file: Path | str | None
) -> Digest:
    # The fingerprint is of the very bytes the results were parsed from.
    results, (sha, size) = run_dir.results(), run_dir.fingerprint()
    digest = build_digest(results, aliases)
    source = DigestSource(
        results_sha256=sha,
        results_bytes=size,
        results=len(results),
        aliases=dict(aliases or {}),
        aliases_file=None if aliases_file is None else str(aliases_file),
        builtin_aliases=builtin_aliases(aliases),
    )
    return digest.model_copy(update={"source": source})


def write_digest(
    run_dir: RunFolder | Path | str,
    aliases_file: Path | str | None = None,
    out_path: Path | str | None = None,
) -> Path:
    """Build the digest of a run folder and write it as JSON (default ``run_dir/digest.json``).

    The JSON records a fingerprint of the results.jsonl it was built from (``source``), so the review
    page can tell when the folder has changed since (``load_current_digest``).
    """
    folder = RunFolder.of(run_dir)
    aliases = load_aliases(aliases_file) if aliases_file is not None else None
    digest = _build_from_run(folder, aliases, aliases_file)
    out = Path(out_path) if out_path is not None else folder.digest
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out, digest.model_dump(mode="json"))
    return out


def load_current_digest(run_dir: RunFolder | Path | str) -> tuple[Digest | None, str | None]:
    """The digest of ``run_dir/digest.json`` if it matches the folder's current results, else rebuilt.

    Returns ``(None, None)`` when the folder has no digest.json. When digest.json was built from other
    results (its fingerprint differs, or it records none, or it cannot be read), or under another built-in
    alias table, the digest is rebuilt from the current results with the user aliases it recorded,
    written back to digest.json, and returned with a note saying what changed (the review page shows it).
    """
    folder = RunFolder.of(run_dir)
    path = folder.digest
    if not path.is_file():
        return None, None
    sha, size = folder.fingerprint()
    old: Digest | None = None
    try:
        old = Digest.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        why = f"{DIGEST_FILE} could not be read ({type(exc).__name__})"
    else:
        src = old.source
        if src is None:
            why = f"{DIGEST_FILE} records no fingerprint of the results it was built from"
        elif (src.results_sha256, src.results_bytes) != (sha, size):
            why = ""  # said below, once the new results are known
        elif src.builtin_aliases is not None and src.builtin_aliases != builtin_aliases(src.aliases):
            why = f"{DIGEST_FILE} was built with another {BUILTIN_ALIAS_TABLE}"
        else:
            return old, None
    src = old.source if old is not None else None
    digest = _build_from_run(folder, src.aliases if src else None, src.aliases_file if src else None)
    write_json_atomic(path, digest.model_dump(mode="json"))
    if not why and old is not None and src is not None and digest.source is not None:
        why = f"{DIGEST_FILE} was built before {RESULTS_FILE} changed ({_what_changed(old, digest)})"
    aliases = " with its recorded aliases" if src and src.aliases else ""
    used = f"{len(digest.articles)} article(s)" + (
        f", {len(digest.skipped)} skipped" if digest.skipped else ""
    )
    return digest, f"{why}; rebuilt{aliases}: {used}"


def _what_changed(old: Digest, new: Digest) -> str:
    """ "5 → 6 results: new 005 (skipped: error: LLMError)" -- what differs between two digests' inputs."""
    assert old.source is not None and new.source is not None
    before = dict.fromkeys(old.articles, "") | {s.article_id: s.reason for s in old.skipped}
    after = dict.fromkeys(new.articles, "") | {s.article_id: s.reason for s in new.skipped}
    bits: list[str] = []

    def listed(ids: Sequence[str], reasons: Mapping[str, str]) -> str:
        shown = [f"{a} (skipped: {reasons[a]})" if reasons[a] else a for a in ids[:5]]
        return ", ".join(shown) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")

    if added := sorted(after.keys() - before.keys()):
        bits.append(f"new {listed(added, after)}")
    if gone := sorted(before.keys() - after.keys()):
        bits.append(f"gone {listed(gone, before)}")
    both = sorted(before.keys() & after.keys())
    if skipped := [a for a in both if after[a] and before[a] != after[a]]:
        bits.append(f"now {listed(skipped, after)}")
    if usable := [a for a in both if before[a] and not after[a]]:
        bits.append(f"now extracted: {listed(usable, after)}")
    if not bits:
        bits.append("the same articles, re-extracted")
    return f"{old.source.results} → {new.source.results} results: " + "; ".join(bits)


def ensure_digest(run_dir: RunFolder | Path | str) -> tuple[Digest, str | None]:
    """The folder's current digest: ``load_current_digest``, or, with no digest.json yet, one built now.

    A new digest is built from results.jsonl (deterministic, no model) with the built-in aliases only, and
    written to digest.json; the note says so and how to use an alias file instead.
    """
    folder = RunFolder.of(run_dir)
    current, note = load_current_digest(folder)
    if current is not None:
        return current, note
    digest = _build_from_run(folder, None, None)
    write_json_atomic(folder.digest, digest.model_dump(mode="json"))
    note = (
        f"no {DIGEST_FILE} yet: built from {RESULTS_FILE} with the {BUILTIN_ALIAS_TABLE} and saved "
        f"(run `extractor digest {folder.path} --aliases FILE` to add your own aliases)"
    )
    return digest, note
