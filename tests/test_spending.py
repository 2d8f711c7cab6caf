"""What an article costs, summed one way everywhere: ``Usage.cost`` and ``add_cost`` behind the run
summary, the Batch API run and a service job's earlier passes (``_scan_results``), messy lines included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from extractor.batch import RunSummary
from extractor.models import Article, ArticleResult, Usage, add_cost
from extractor.serve.jobs import _scan_results
from extractor.store import RESULTS_FILE

PRICE = (0.15, 0.60)  # USD per 1M tokens (input, output)
_TOKENS = {"prompt_tokens": 100, "completion_tokens": 50}


def test_cost_is_the_tokens_at_the_price_and_unknown_without_one() -> None:
    usage = Usage(prompt_tokens=2_000_000, completion_tokens=500_000, http_calls=3)
    assert usage.cost(PRICE) == pytest.approx(0.30 + 0.30)
    assert usage.cost(None) is None
    assert Usage().cost(PRICE) == 0.0


def test_a_total_stays_unknown_once_any_part_is() -> None:
    assert add_cost(1.0, 0.5) == 1.5
    assert add_cost(None, 0.5) is None
    assert add_cost(1.0, None) is None


def _result(n: int, prompt: int, completion: int) -> ArticleResult:
    article = Article(id=f"a{n}", text=f"text {n}", source=f"a{n}.txt")
    usage = Usage(prompt_tokens=prompt, completion_tokens=completion, http_calls=1)
    return ArticleResult.for_article(article, status="ok", usage=usage)


def test_run_summary_adds_each_article_and_loses_the_cost_to_an_unpriced_one() -> None:
    summary = RunSummary()
    summary.add(_result(1, 100, 50), PRICE)
    summary.add(_result(2, 300, 10), PRICE)
    assert (summary.prompt_tokens, summary.completion_tokens, summary.http_calls) == (400, 60, 2)
    assert summary.cost_usd == pytest.approx((400 * 0.15 + 60 * 0.60) / 1e6)
    summary.add(_result(3, 1, 1), None)
    assert summary.cost_usd is None and summary.prompt_tokens == 401


def test_a_jobs_earlier_spending_is_read_from_its_lines_skipping_what_is_not_a_usage(tmp_path: Path) -> None:
    lines = [
        json.dumps({"article_id": "a", "usage": {**_TOKENS, "http_calls": 1}}),
        json.dumps({"article_id": "b", "usage": {"prompt_tokens": "200", "completion_tokens": 0}}),
        json.dumps({"article_id": "c", "usage": ["not", "a", "usage"]}),
        json.dumps({"article_id": "d", "usage": {"prompt_tokens": "lots"}}),
        json.dumps(["a", "list", "line"]),
        json.dumps({"article_id": "e"}),
        '{"article_id": "f", "usage": {"prompt_tok',  # torn by a kill
    ]
    (tmp_path / RESULTS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")

    base = _scan_results(tmp_path, PRICE)

    assert base.lines == 7
    assert base.usage == Usage(prompt_tokens=300, completion_tokens=50, http_calls=1)
    assert base.cost_usd == pytest.approx((300 * 0.15 + 50 * 0.60) / 1e6)
    assert _scan_results(tmp_path, None).cost_usd is None
    assert _scan_results(tmp_path / "none", PRICE).lines == 0
