"""extractor: news articles -> events, verbatim-grounded direct quotes, and stances.

    from extractor import Extractor, load_articles

    ex = Extractor.from_env()
    for item in load_articles(["seeds/"]):
        res = ex.extract(item)          # ArticleResult; every quote proven verbatim (res.quotes[i].span)

Data flows one way: article -> prompt -> LLM -> parse -> ground -> store (one module per stage).
"""

from extractor.articles import DuplicateTracker, load_articles
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
from extractor.pipeline import Extractor
from extractor.store import iter_results

__version__ = "0.1.0"

__all__ = [
    "Article",
    "ArticleExtraction",
    "ArticleResult",
    "CacheError",
    "ConfigError",
    "DuplicateTracker",
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
    "run_batch",
    "watch",
]
