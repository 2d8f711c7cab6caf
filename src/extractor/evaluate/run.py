"""Scoring a run: ``evaluate`` (results and gold in memory) and ``evaluate_path`` (a run folder)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from extractor.errors import StoreError
from extractor.evaluate.gold import GoldArticle, check_gold_offsets, load_gold
from extractor.evaluate.match import _score_article
from extractor.evaluate.scores import ArticleScores, EvalReport, GroundingStats, Scores
from extractor.models import ArticleResult, GroundedEvent, GroundedQuote, GroundedStance
from extractor.store import RunFolder


def _grounding(results: Iterable[ArticleResult]) -> GroundingStats:
    stats = GroundingStats()
    for result in results:
        if result.status != "ok":
            continue
        kept: tuple[tuple[str, Sequence[GroundedEvent | GroundedQuote | GroundedStance]], ...] = (
            ("event", result.events),
            ("quote", result.quotes),
            ("stance", result.stances),
        )
        for kind, items in kept:
            for item in items:
                stats.add(kind, item.span.status)
        for rejected in result.rejected:
            stats.add(rejected.kind, "rejected")
    return stats


def evaluate(
    results: Iterable[ArticleResult],
    gold: Mapping[str, GoldArticle],
    *,
    texts: Mapping[str, str] | None = None,
) -> EvalReport:
    """Score ``results`` against ``gold``; ``texts`` (sha256 -> article text) is optional, see module doc."""
    latest: dict[str, ArticleResult] = {}
    warnings: list[str] = []
    for result in results:
        if result.article_id in latest:
            warnings.append(f"{result.article_id}: more than one result; the last one is scored")
        latest[result.article_id] = result
    texts = texts or {}
    rows: list[ArticleScores] = []
    for article_id in sorted(gold):
        gold_article = gold[article_id]
        found = latest.get(article_id)
        if found is not None and found.sha256 != gold_article.sha256:
            warnings.append(
                f"{article_id}: result sha256 differs from the gold sha256; offsets may not agree"
            )
        gold_text = texts.get(gold_article.sha256)
        if gold_text is not None:
            warnings.extend(f"{article_id}: gold {p}" for p in check_gold_offsets(gold_article, gold_text))
        text = texts.get(found.sha256) if found is not None else None
        rows.append(_score_article(gold_article, found, text))
    totals = Scores()
    for row in rows:
        totals = totals + row
    return EvalReport(
        totals=totals,
        articles=rows,
        unscored=sorted(set(latest) - set(gold)),
        missing=[r.article_id for r in rows if r.status == "missing"],
        errors=[r.article_id for r in rows if r.status == "error"],
        warnings=warnings,
        grounding=_grounding(latest.values()),
    )


def evaluate_path(results: Path | str, gold_dir: Path | str) -> EvalReport:
    """Score a run folder (or a results.jsonl path) against the gold files in ``gold_dir``."""
    gold = load_gold(gold_dir)
    path = Path(results)
    folder = RunFolder(path)
    loaded = folder.results()
    texts: dict[str, str] = {}
    scored = {r.sha256 for r in loaded if r.article_id in gold}  # the texts evaluate() looks up
    for sha256 in scored | {g.sha256 for g in gold.values()}:
        try:
            text = folder.article_text(sha256)
        except StoreError:
            continue
        if text is not None:
            texts[sha256] = text
    report = evaluate(loaded, gold, texts=texts)
    report.results = str(path)
    report.gold = str(gold_dir)
    return report
