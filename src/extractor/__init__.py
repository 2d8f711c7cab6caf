"""extractor: news articles -> events, verbatim-grounded direct quotes, and stances.

    from extractor import Extractor, load_articles

    ex = Extractor.from_env()
    for item in load_articles(["seeds/"]):
        res = ex.extract(item)          # ArticleResult; every quote proven verbatim (res.quotes[i].span)

Data flows one way: article -> prompt -> LLM -> parse -> ground -> store (one module per stage).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from extractor.articles import load_articles
    from extractor.batch import RunSummary, run_batch, watch
    from extractor.config import Settings
    from extractor.errors import (
        CacheError,
        ConfigError,
        ExtractorError,
        FolderBusyError,
        LLMError,
        ParseError,
        ReplayError,
        StoreError,
        TransportError,
        TruncatedOutputError,
    )
    from extractor.grounding import Grounding, SourceIndex, ground
    from extractor.models import (
        Article,
        ArticleExtraction,
        ArticleResult,
        Event,
        LoadError,
        Quote,
        Rejected,
        Span,
        Stance,
        Usage,
    )
    from extractor.pipeline import Extractor, open_extractor
    from extractor.store import iter_results

# The public names are imported on first use (PEP 562), so that ``import extractor.client`` (httpx +
# pydantic only) or ``extractor.models`` does not pull in openai, instructor, trafilatura and the rest.
_HOME: dict[str, str] = {
    "load_articles": "articles",
    "RunSummary": "batch",
    "run_batch": "batch",
    "watch": "batch",
    "Settings": "config",
    "CacheError": "errors",
    "ConfigError": "errors",
    "ExtractorError": "errors",
    "FolderBusyError": "errors",
    "LLMError": "errors",
    "ParseError": "errors",
    "ReplayError": "errors",
    "StoreError": "errors",
    "TransportError": "errors",
    "TruncatedOutputError": "errors",
    "Grounding": "grounding",
    "SourceIndex": "grounding",
    "ground": "grounding",
    "Article": "models",
    "ArticleExtraction": "models",
    "ArticleResult": "models",
    "Event": "models",
    "LoadError": "models",
    "Quote": "models",
    "Rejected": "models",
    "Span": "models",
    "Stance": "models",
    "Usage": "models",
    "Extractor": "pipeline",
    "open_extractor": "pipeline",
    "iter_results": "store",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'extractor' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"extractor.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})


__version__ = "0.1.0"

__all__ = [
    "Article",
    "ArticleExtraction",
    "ArticleResult",
    "CacheError",
    "ConfigError",
    "Event",
    "Extractor",
    "ExtractorError",
    "FolderBusyError",
    "Grounding",
    "LLMError",
    "LoadError",
    "ParseError",
    "Quote",
    "Rejected",
    "ReplayError",
    "RunSummary",
    "Settings",
    "SourceIndex",
    "Span",
    "Stance",
    "StoreError",
    "TransportError",
    "TruncatedOutputError",
    "Usage",
    "__version__",
    "ground",
    "iter_results",
    "load_articles",
    "open_extractor",
    "run_batch",
    "watch",
]
