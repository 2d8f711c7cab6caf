"""The digest's output models: what digest.json holds (``Digest.model_dump(mode="json")``)."""

from __future__ import annotations

from pydantic import BaseModel


class MentionInfo(BaseModel):
    """One surface form of an entity: where it appears and in which roles."""

    surface: str
    articles: list[str]
    count: int
    roles: list[str]


class MergeRecord(BaseModel):
    """Why a surface form or name was folded into an entity."""

    surface: str
    matched: str
    rule: str
    score: float
    reason: str


class EntityLink(BaseModel):
    """A non-merging relation, e.g. "the Italian government" -institution-of-> Italy."""

    target: str
    target_name: str
    relation: str
    articles: list[str]


class PossibleMatch(BaseModel):
    """A person an entity may be, recorded instead of merged (e.g. a bare surname whose only full-name
    match is in another article, or an initial that fits several people)."""

    target: str
    target_name: str
    rule: str
    score: float
    reason: str


class Entity(BaseModel):
    id: str
    name: str
    kind: str
    articles: list[str]
    mention_count: int
    mentions: list[MentionInfo]
    merges: list[MergeRecord]
    linked_to: list[EntityLink]
    notes: list[str]
    possible_same_as: list[PossibleMatch] = []


class CountMention(BaseModel):
    noun: str
    value: int
    approximate: bool
    surface: str
    qualifier: str | None = None  # "around", "nearly", "more than", ... as written (casefolded)


class EventReport(BaseModel):
    """One article's report of an event, with its normalised date and location."""

    ref: str
    article_id: str
    index: int
    event_type: str
    summary: str
    date: str | None
    date_text: str | None
    date_value: str
    date_precision: str
    location: str | None
    location_key: str | None
    actors: list[str]
    actor_ids: list[str]
    evidence: str
    start: int | None
    end: int | None
    counts: list[CountMention]


class ConflictValue(BaseModel):
    value: str
    articles: list[str]
    surfaces: list[str]


class Conflict(BaseModel):
    """Differing values of one field inside a cluster; ``compatible`` when they may still agree."""

    field: str
    values: list[ConflictValue]
    compatible: bool
    note: str


class ClusterLink(BaseModel):
    a: str
    b: str
    score: float
    reason: str


class EventCluster(BaseModel):
    id: str
    event_types: list[str]
    date_value: str
    date_precision: str
    location: str | None
    actor_ids: list[str]
    actors: list[str]
    articles: list[str]
    reports: list[EventReport]
    links: list[ClusterLink]
    conflicts: list[Conflict]


class StanceSupport(BaseModel):
    article_id: str
    polarity: str
    target: str
    evidence: str
    start: int | None
    end: int | None
    span_status: str


class StanceRow(BaseModel):
    holder_id: str
    holder: str
    target: str
    target_key: str
    polarity: str
    polarities: dict[str, list[str]]
    mixed_across_articles: bool
    articles: list[str]
    supports: list[StanceSupport]


class QuoteMember(BaseModel):
    ref: str
    article_id: str
    index: int
    speaker: str
    speaker_id: str
    text: str
    cue: str | None
    start: int | None
    end: int | None


class QuoteGroup(BaseModel):
    id: str
    speaker_ids: list[str]
    speakers: list[str]
    articles: list[str]
    wordings: int
    members: list[QuoteMember]
    links: list[ClusterLink]


class SkippedArticle(BaseModel):
    article_id: str
    reason: str


class DigestSource(BaseModel):
    """What a digest was built from, so a stale digest.json can be recognised and rebuilt the same way."""

    results_sha256: str  # of results.jsonl up to its last complete line
    results_bytes: int
    results: int  # result lines read
    aliases: dict[str, str]  # the user's alias table (laid over DEFAULT_ALIASES)
    aliases_file: str | None
    # The built-in alias table (DEFAULT_ALIASES) entries in effect; None in older digests.
    builtin_aliases: dict[str, str] | None = None


class Digest(BaseModel):
    """The cross-article digest of a run (``model_dump(mode="json")`` is what digest.json holds)."""

    version: int = 2
    source: DigestSource | None = None
    articles: list[str]
    skipped: list[SkippedArticle]
    parameters: dict[str, float | int | str]
    entities: list[Entity]
    event_clusters: list[EventCluster]
    stances: list[StanceRow]
    quote_groups: list[QuoteGroup]


# --------------------------------------------------------------------------- text helpers
