"""The offline main job on the five seeds: replayed fixtures against hand-checked gold."""

from __future__ import annotations

import calendar
import json
from pathlib import Path

import pytest

from extractor import ArticleResult, Extractor, Settings, ground, load_articles
from extractor.models import Article
from extractor.replay import load_recorded_settings
from tests.conftest import FIXTURES, SEEDS

RECORDED = FIXTURES / "recorded"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Article, ArticleResult]]:
    recorded = load_recorded_settings(RECORDED)
    settings = Settings(
        **recorded, replay_dir=RECORDED, use_cache=False, cache_dir=tmp_path_factory.mktemp("c")
    )
    out: dict[str, tuple[Article, ArticleResult]] = {}
    with Extractor(settings) as ex:
        for item in load_articles([SEEDS]):
            assert isinstance(item, Article), item
            out[item.id] = (item, ex.extract(item))
    return out


def gold(article_id: str) -> dict[str, list[dict[str, object]]]:
    data: dict[str, list[dict[str, object]]] = json.loads(
        (FIXTURES / "gold" / f"{article_id}.json").read_text(encoding="utf-8")
    )
    return data


def test_every_seed_replays_ok_without_network(replayed: dict[str, tuple[Article, ArticleResult]]) -> None:
    assert sorted(replayed) == sorted(p.stem for p in SEEDS.glob("*.txt"))
    for article_id, (_, result) in replayed.items():
        assert result.status == "ok", (article_id, result.error)
        assert result.model == "reference-fixture" and result.served_model == "reference-fixture"
        assert result.usage.http_calls >= 1 and result.usage.prompt_tokens > 0


def test_every_gold_quote_is_found_at_its_gold_offsets(
    replayed: dict[str, tuple[Article, ArticleResult]],
) -> None:
    for article_id, (_, result) in replayed.items():
        spans = {(q.span.start, q.span.end) for q in result.quotes}
        for quote in gold(article_id)["quotes"]:
            assert (quote["start"], quote["end"]) in spans, (article_id, quote["text"])


def test_every_kept_item_slices_to_its_text(replayed: dict[str, tuple[Article, ArticleResult]]) -> None:
    for article, result in replayed.values():
        for quote in result.quotes:
            assert quote.span.start is not None and quote.span.end is not None
            found = article.text[quote.span.start : quote.span.end]
            if quote.span.status == "exact":
                assert found == quote.text
            else:
                assert ground(quote.text, found).status in ("normalized", "exact")
        for item in [*result.events, *result.stances]:
            assert item.span.start is not None and item.span.end is not None
            assert ground(item.evidence, article.text).found


def test_every_rejected_item_really_is_absent(replayed: dict[str, tuple[Article, ArticleResult]]) -> None:
    rejected = [(article, r) for article, result in replayed.values() for r in result.rejected]
    assert rejected, "the fixtures carry one paraphrased quote"
    for article, item in rejected:
        text = str(item.item[item.field])
        assert text not in article.text
        assert ground(text, article.text).status == "not_found"
        assert item.reason


def test_the_paraphrase_is_rejected_and_the_straight_quote_normalized(
    replayed: dict[str, tuple[Article, ArticleResult]],
) -> None:
    statuses = [q.span.status for _, r in replayed.values() for q in r.quotes]
    assert statuses.count("normalized") == 1
    rejected = [r for _, res in replayed.values() for r in res.rejected]
    assert [(r.kind, r.item["text"]) for r in rejected] == [
        ("quote", "Italy will not send troops to Ukraine")
    ]
    # the paraphrase was re-asked once (two recorded exchanges) before it was rejected
    assert replayed["002_0277cc05516288b5"][1].usage.http_calls == 2


def test_nothing_is_extracted_from_the_similar_news_footer(
    replayed: dict[str, tuple[Article, ArticleResult]],
) -> None:
    article, result = replayed["003_7ee454be139f98c4"]
    footer = article.text.index("SHARE NEWS")
    for item in [*result.quotes, *result.events, *result.stances]:
        assert item.span.end is not None and item.span.end <= footer


def test_no_year_is_invented(replayed: dict[str, tuple[Article, ArticleResult]]) -> None:
    """A replayed date says only what the article says: its year is printed in the article, and its month
    (if it has one) is named in the event's own date words or evidence."""
    dated = 0
    for article, result in replayed.values():
        for event in result.events:
            if event.date is None:
                continue
            dated += 1
            assert event.date[:4] in article.text, (article.id, event.date)
            if len(event.date) >= 7:
                month = calendar.month_name[int(event.date[5:7])]
                said = f"{event.date_text or ''} {event.evidence}".casefold()
                assert month.casefold() in said, (article.id, event.date, event.date_text, event.evidence)
    assert dated, "003's two March 2025 events carry a date"


def test_recordings_hold_no_secret() -> None:
    for path in Path(RECORDED).glob("*.json"):
        text = path.read_text(encoding="utf-8").lower()
        assert "authorization" not in text and "bearer" not in text and "sk-" not in text, path
