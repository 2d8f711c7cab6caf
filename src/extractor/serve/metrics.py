"""The service's Prometheus metrics: requests, latency, articles, LLM calls, tokens, cache hits, and the
values read at scrape time (queue depths, the rate limiter's 429 count)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from extractor.models import ArticleResult

__all__ = ["Metrics"]


class Metrics:
    """The service's Prometheus registry (one per app, so tests can run several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "extractor_http_requests",
            "HTTP requests by route and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "extractor_http_request_duration_seconds",
            "HTTP request latency by route (a results stream: until it ends)",
            ["route", "method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=r,
        )
        self.articles = Counter(
            "extractor_articles", "Articles extracted (requests and jobs)", ["status"], registry=r
        )
        self.llm_calls = Counter("extractor_llm_calls", "HTTP calls to the LLM endpoint", registry=r)
        self.tokens = Counter("extractor_llm_tokens", "Tokens spent, by kind", ["kind"], registry=r)
        self.cache_hits = Counter(
            "extractor_cache_hits", "Articles answered from the response cache", registry=r
        )

    def result(self, result: ArticleResult) -> None:
        """Count one extracted article (a request's or a job's)."""
        self.articles.labels(result.status).inc()
        self.llm_calls.inc(result.usage.http_calls)
        self.tokens.labels("prompt").inc(result.usage.prompt_tokens)
        self.tokens.labels("completion").inc(result.usage.completion_tokens)
        if result.cache_hit:
            self.cache_hits.inc()

    def read_live(self, depths: Callable[[], Mapping[str, int]], rate_limited: Callable[[], int]) -> None:
        """Also report ``depths()`` (queue name -> work waiting or running) and ``rate_limited()`` (429
        answers so far), read at each scrape."""
        self.registry.register(_LiveCollector(depths, rate_limited))


class _LiveCollector(Collector):
    def __init__(self, depths: Callable[[], Mapping[str, int]], rate_limited: Callable[[], int]) -> None:
        self.depths = depths
        self.rate_limited = rate_limited

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "extractor_queue_depth", "Work waiting or running, by queue", labels=["queue"]
        )
        for queue, value in self.depths().items():
            depth.add_metric([queue], value)
        yield depth
        limited = CounterMetricFamily("extractor_llm_rate_limited", "429 answers from the LLM endpoint")
        limited.add_metric([], self.rate_limited())
        yield limited
