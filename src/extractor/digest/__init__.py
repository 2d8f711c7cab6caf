"""Cross-article digest of a run: canonical entities, event clusters with conflicts, a stance table and
quote variants -- deterministic string work (no model): the same results give the same digest, in the
same order, whatever order the articles arrive in.

``model`` (what digest.json holds), ``entities`` (with ``names``, ``mentions``, ``people``: who is who),
``events`` (clusters, counts, conflicts), ``voices`` (stances, quote variants), ``build`` (build_digest,
digest.json and its staleness); gazetteers and alias tables are data files
in ``data/`` (``tables``). Date phrases are read by ``extractor.dates``.
"""

from __future__ import annotations

from extractor.dates import date_label, precision_label
from extractor.digest.build import (
    build_digest,
    ensure_digest,
    load_current_digest,
    results_fingerprint,
    write_digest,
)
from extractor.digest.events import COUNT_TOLERANCE, UNDATED_MIN_JACCARD, UNDATED_MIN_SHARED
from extractor.digest.model import (
    ClusterLink,
    Conflict,
    ConflictValue,
    CountMention,
    Digest,
    DigestSource,
    Entity,
    EntityLink,
    EventCluster,
    EventReport,
    MentionInfo,
    MergeRecord,
    PossibleMatch,
    QuoteGroup,
    QuoteMember,
    SkippedArticle,
    StanceRow,
    StanceSupport,
)
from extractor.digest.names import BUILTIN_ALIAS_TABLE, NAME_JW_MIN, builtin_aliases, load_aliases
from extractor.digest.tables import DEFAULT_ALIASES
from extractor.digest.voices import QUOTE_MIN_CONTAINMENT, QUOTE_MIN_SIMILARITY
from extractor.store import DIGEST_FILE

__all__ = [
    "BUILTIN_ALIAS_TABLE",
    "COUNT_TOLERANCE",
    "DEFAULT_ALIASES",
    "DIGEST_FILE",
    "NAME_JW_MIN",
    "QUOTE_MIN_CONTAINMENT",
    "QUOTE_MIN_SIMILARITY",
    "UNDATED_MIN_JACCARD",
    "UNDATED_MIN_SHARED",
    "ClusterLink",
    "Conflict",
    "ConflictValue",
    "CountMention",
    "Digest",
    "DigestSource",
    "Entity",
    "EntityLink",
    "EventCluster",
    "EventReport",
    "MentionInfo",
    "MergeRecord",
    "PossibleMatch",
    "QuoteGroup",
    "QuoteMember",
    "SkippedArticle",
    "StanceRow",
    "StanceSupport",
    "build_digest",
    "builtin_aliases",
    "date_label",
    "ensure_digest",
    "load_aliases",
    "load_current_digest",
    "precision_label",
    "results_fingerprint",
    "write_digest",
]
