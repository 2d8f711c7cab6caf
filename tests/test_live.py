"""Against a real model: run with `pytest -m live` and OPENAI_API_KEY (+ OPENAI_BASE_URL) set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from extractor import Extractor, Settings, load_articles
from extractor.models import Article
from tests.conftest import SEEDS

pytestmark = pytest.mark.live


@pytest.fixture
def live_settings(tmp_path: Path) -> Settings:
    if not os.environ.get("OPENAI_API_KEY"):
        pytest.skip("set OPENAI_API_KEY (and OPENAI_BASE_URL for a local server) to run live tests")
    return Settings.load(use_cache=False, cache_dir=tmp_path)


def test_a_seed_against_a_live_model(live_settings: Settings) -> None:
    article = next(a for a in load_articles([SEEDS / "001_7026c964f11f0189.txt"]) if isinstance(a, Article))
    with Extractor(live_settings) as ex:
        res = ex.extract(article)
    assert res.status == "ok", res.error
    assert res.quotes, "seed 001 has six direct quotes"
    for quote in res.quotes:
        assert quote.span.start is not None and quote.span.end is not None
    assert res.usage.prompt_tokens > 0
