"""Voices: the stance table and quote variants.

Stances are grouped by canonical holder and normalised target (casefold, no articles or punctuation); a
row whose articles disagree on polarity is flagged ``mixed_across_articles``.

Quote variants group quotes whose content-word Dice coefficient (stopwords dropped, words cut to 5 letters
so inflections meet) is >= ``QUOTE_MIN_SIMILARITY``, or whose shorter side (>= 4 content words) is
``QUOTE_MIN_CONTAINMENT`` contained in the longer, and whose speakers are compatible (the same entity, or
sharing a linked country when at least one is not a person). Groups with one wording from one article are
mere repeats and are left out. Unattributed quotes (``speaker`` null) have no speaker to be compatible
with, so they are in no group and no entity.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

from extractor.digest.entities import _Entities
from extractor.digest.model import ClusterLink, Entity, QuoteGroup, QuoteMember, StanceRow, StanceSupport
from extractor.digest.tables import _DETERMINERS, _STOPWORDS
from extractor.digest.text import _fold, _norm_key
from extractor.digest.unionfind import _UnionFind
from extractor.models import ArticleResult

QUOTE_MIN_SIMILARITY = 0.4
QUOTE_MIN_CONTAINMENT = 0.8
QUOTE_MIN_CONTAINED_WORDS = 4


def _target_key(target: str) -> str:
    """Grouping key of a stance target: folded, no articles, possessives or punctuation."""
    words = [w for w in re.findall(r"\w+", re.sub(r"'s\b", "", _fold(target))) if w not in _DETERMINERS]
    return " ".join(words)


def _stance_rows(results: Sequence[ArticleResult], ents: _Entities) -> list[StanceRow]:
    groups: dict[tuple[str, str], list[tuple[str, Any]]] = defaultdict(list)
    for result in results:
        for stance in result.stances:
            holder = ents.entity_id(result.article_id, stance.holder)
            groups[(holder, _target_key(stance.target))].append((result.article_id, stance))
    rows: list[StanceRow] = []
    for (holder, key), items in groups.items():
        polarities: dict[str, set[str]] = defaultdict(set)
        targets: Counter[str] = Counter()
        supports: list[StanceSupport] = []
        for article_id, stance in items:
            polarities[stance.polarity].add(article_id)
            targets[stance.target] += 1
            supports.append(
                StanceSupport(
                    article_id=article_id,
                    polarity=stance.polarity,
                    target=stance.target,
                    evidence=stance.evidence,
                    start=stance.span.start,
                    end=stance.span.end,
                    span_status=stance.span.status,
                )
            )
        articles = sorted({a for a, _ in items})
        distinct = sorted(polarities)
        rows.append(
            StanceRow(
                holder_id=holder,
                holder=ents.name_of(holder),
                target=min(targets, key=lambda t: (-targets[t], t)),
                target_key=key,
                polarity=distinct[0] if len(distinct) == 1 else "mixed",
                polarities={p: sorted(a) for p, a in sorted(polarities.items())},
                mixed_across_articles=len(distinct) > 1 and len(articles) > 1,
                articles=articles,
                supports=sorted(supports, key=lambda s: (s.article_id, s.start or 0, s.target)),
            )
        )
    rows.sort(key=lambda r: (r.holder, r.target_key, r.holder_id))
    return rows


def _content_words(text: str) -> list[str]:
    return [w[:5] for w in re.findall(r"\w+", _fold(text)) if w not in _STOPWORDS]


def _set_similarity(wa: frozenset[str], wb: frozenset[str], a: str, b: str) -> tuple[float, str]:
    if not wa or not wb:
        return (1.0, "identical") if _norm_key(a) == _norm_key(b) else (0.0, "no content words")
    shared = len(wa & wb)
    dice = 2 * shared / (len(wa) + len(wb))
    small = min(len(wa), len(wb))
    containment = shared / small
    if small >= QUOTE_MIN_CONTAINED_WORDS and containment >= QUOTE_MIN_CONTAINMENT and containment > dice:
        return round(containment, 3), f"containment {containment:.2f} of {small} content words"
    return round(dice, 3), f"content-word dice {dice:.2f}"


def _quote_candidates(words: Mapping[str, frozenset[str]], texts: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every pair that can reach the quote thresholds, found without comparing all pairs (prefix filtering).

    Words are ordered rarest first. Dice >= 0.4 implies an overlap >= a quarter of each set, so the two
    sets' prefixes (all but that quarter, minus one) share a word; containment >= 0.8 of a set S implies
    S's prefix of |S| - ceil(0.8|S|) + 1 words meets the other set. Common words thus never pair quotes.
    """
    df: Counter[str] = Counter(w for ws in words.values() for w in ws)
    order = {ref: sorted(ws, key=lambda w: (df[w], w)) for ref, ws in words.items()}
    dice_index: dict[str, list[str]] = defaultdict(list)
    full_index: dict[str, list[str]] = defaultdict(list)
    pairs: set[tuple[str, str]] = set()
    by_text: dict[str, list[str]] = defaultdict(list)
    for ref, ws in order.items():
        if not ws:
            by_text[_norm_key(texts[ref])].append(ref)
            continue
        overlap = math.ceil(len(ws) * QUOTE_MIN_SIMILARITY / (2 - QUOTE_MIN_SIMILARITY))
        for w in ws[: len(ws) - overlap + 1]:
            dice_index[w].append(ref)
        for w in ws:
            full_index[w].append(ref)
    for postings in (*dice_index.values(), *by_text.values()):
        pairs.update(combinations(sorted(postings), 2))
    for ref, ws in order.items():
        if len(ws) < QUOTE_MIN_CONTAINED_WORDS:
            continue
        need = math.ceil(len(ws) * QUOTE_MIN_CONTAINMENT)
        for w in ws[: len(ws) - need + 1]:
            for other in full_index[w]:
                if other != ref and len(order[other]) >= len(ws):
                    pairs.add((min(ref, other), max(ref, other)))
    return sorted(pairs)


def _speakers_compatible(
    a: str,
    b: str,
    countries: Mapping[str, frozenset[str]],
    kinds: Mapping[str, str],
    possible: Mapping[str, str] | None = None,
) -> str | None:
    if a == b:
        return "same speaker"
    if possible and (possible.get(a) == b or possible.get(b) == a):
        # A bare surname whose only full-name match is in another article: not merged, but the wordings
        # of one statement may still be grouped (each member keeps its own speaker).
        return "speaker possibly the same person (the only full name with that surname)"
    if kinds[a] == "person" and kinds[b] == "person":
        return None
    shared = countries[a] & countries[b]
    return f"speakers linked via {', '.join(sorted(shared))}" if shared else None


def _quote_groups(
    results: Sequence[ArticleResult], ents: _Entities, entities: list[Entity]
) -> list[QuoteGroup]:
    kinds = {e.id: e.kind for e in entities}
    possible = {
        e.id: e.possible_same_as[0].target
        for e in entities
        if len(e.possible_same_as) == 1 and e.possible_same_as[0].rule == "surname-in-other-article"
    }
    members: dict[str, QuoteMember] = {}
    for result in results:
        for i, q in enumerate(result.quotes):
            if q.speaker is None:
                continue  # unattributed: no speaker to compare
            ref = f"{result.article_id}#q{i}"
            members[ref] = QuoteMember(
                ref=ref,
                article_id=result.article_id,
                index=i,
                speaker=q.speaker,
                speaker_id=ents.entity_id(result.article_id, q.speaker),
                text=q.text,
                cue=q.cue,
                start=q.span.start,
                end=q.span.end,
            )
    refs = sorted(members)
    words = {ref: frozenset(_content_words(members[ref].text)) for ref in refs}
    all_speakers = {m.speaker_id for m in members.values()}
    countries = {ident: frozenset(ents.countries_by_id(ident)) for ident in all_speakers}
    uf = _UnionFind(refs)
    links: list[ClusterLink] = []
    # Speakers must be compatible, so only quotes sharing a speaker or a linked country are compared.
    blocks: dict[str, list[str]] = defaultdict(list)
    for ref in refs:
        speaker = members[ref].speaker_id
        also = (f"s:{possible[speaker]}",) if speaker in possible else ()
        for block in (f"s:{speaker}", *also, *(f"c:{c}" for c in countries[speaker])):
            blocks[block].append(ref)
    texts = {ref: m.text for ref, m in members.items()}
    candidates: set[tuple[str, str]] = set()
    for block_refs in blocks.values():
        candidates.update(_quote_candidates({ref: words[ref] for ref in block_refs}, texts))
    for a, b in sorted(candidates):
        ma, mb = members[a], members[b]
        speakers = _speakers_compatible(ma.speaker_id, mb.speaker_id, countries, kinds, possible)
        if speakers is None:
            continue
        score, how = _set_similarity(words[a], words[b], ma.text, mb.text)
        if score < QUOTE_MIN_SIMILARITY:
            continue
        uf.union(a, b)
        links.append(ClusterLink(a=a, b=b, score=score, reason=f"{how}; {speakers}"))
    links_by_root: dict[str, list[ClusterLink]] = defaultdict(list)
    for link in links:
        links_by_root[uf.find(link.a)].append(link)
    groups: list[QuoteGroup] = []
    for root, refs_in in uf.groups().items():
        ms = [members[r] for r in refs_in]
        articles = sorted({m.article_id for m in ms})
        wordings = len({_norm_key(m.text) for m in ms})
        if len(ms) < 2 or (wordings < 2 and len(articles) < 2):
            continue
        speaker_ids = sorted({m.speaker_id for m in ms})
        groups.append(
            QuoteGroup(
                id="",
                speaker_ids=speaker_ids,
                speakers=sorted({m.speaker for m in ms}),
                articles=articles,
                wordings=wordings,
                members=ms,
                links=links_by_root[root],
            )
        )
    groups.sort(key=lambda g: (-len(g.articles), g.members[0].ref))
    return [g.model_copy(update={"id": f"Q{i}"}) for i, g in enumerate(groups, start=1)]
