"""``extractor run --engine ray``: extraction on a Ray cluster with Ray Data, same results folder.

Two phases, so that everything the local engine guarantees about the run folder holds unchanged:

1. **Extract on the cluster.** The driver lists and loads the drop with the project's loader (the same
   ``Article | LoadError`` records), keeps the texts that still need an answer — not already extracted
   ``ok`` into this folder with the same model and prompt version, not extracted earlier in this run
   (a scratch store, see below), and each text once — and turns them, a wave of ``wave`` articles at a
   time, into a Ray Dataset. ``map_batches`` runs them over an actor pool of ``actors`` actors, each
   holding one ``Extractor``. Results come back to the driver, which writes each into the scratch store
   ``DIR/.ray-results.sqlite`` (keyed by the text's sha256: a batch Ray retries after a worker died is
   written once — ``INSERT OR IGNORE``).
2. **Write the folder.** ``batch.run_batch`` then runs over the same drop with an ``Extractor`` whose
   answers come from the scratch store: ids, skips, duplicates, load errors, results.jsonl (flushed per
   article, compacted), run.json, article texts and the progress lines are exactly the local engine's.
   An article the scratch store lacks (a file added in between) is extracted locally. The scratch store
   is removed when the run completes; a run stopped before keeps it, so the next run sends nothing again
   for what was already answered.

The whole run holds the folder's lock (``store.lock_run_folder``, as ``run_batch`` does): while another
run or watch writes the folder it raises FolderBusyError, or waits with ``wait_lock``.

One budget: ``--rpm`` / ``--tpm`` are account-wide. ``budget="shared"`` (the default) keeps the one
window-safe limiter in a Ray actor (``_Budget``) that every worker asks: a worker books send slots there
(``RateLimiter.reserve``), up to ``permits`` at a time for the requests it has waiting, and sends each
at its slot's time (the actor paces ``CLUSTER_PACE`` below the limits to absorb the spread of those
times); token corrections and ``x-ratelimit-*`` headers travel with its next booking, a 429 at once.
``budget="split"`` gives each actor ``1/actors`` of each limit (rounded down) and its own limiter
instead. Either way the endpoint never sees more than the limit.

One cache: with ``cache_url`` every worker reads and writes the shared JSON store (``extractor.fscache``);
diskcache in ``cache_dir`` is safe only when every actor runs on this host.

``address``: ``None`` starts a local Ray instance (``num_cpus`` CPUs, no dashboard); ``"auto"`` or
``ray://host:10001`` joins an existing cluster. Ray is imported here only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TextIO

from extractor.articles import load_articles
from extractor.batch import BatchReporter, RunSummary, run_batch
from extractor.config import Settings
from extractor.errors import ConfigError
from extractor.models import Article, ArticleResult, LoadError
from extractor.pipeline import Extractor
from extractor.ratelimit import RateLimiter, rate_limit_headers
from extractor.store import RAY_SCRATCH_FILE, RESULTS_FILE, iter_results, lock_run_folder, write_article_text

__all__ = [
    "BUDGETS",
    "CLUSTER_PACE",
    "SCRATCH_FILE",
    "Budget",
    "RayPlan",
    "SharedLimiter",
    "actor_settings",
    "run_ray",
]

SCRATCH_FILE = RAY_SCRATCH_FILE
Budget = Literal["shared", "split"]
BUDGETS: tuple[Budget, ...] = ("shared", "split")
# A booked slot no request took within this long after its time is given back, not sent late in a bunch.
_STALE_SLOT_S = 0.1
# The shared budget paces this much below the limits: a worker sends at its slot's time give or take an
# RPC's and a busy event loop's delay, and a server may enforce its per-minute limit over a few seconds
# (24 in any 6 s at 240 RPM); 3 % more room absorbs about 0.3 s of such spread there (0.1 s without).
CLUSTER_PACE = 0.97


def actor_settings(settings: Settings, actors: int) -> Settings:
    """One actor's settings: the account-wide ``rpm`` / ``tpm`` split evenly (rounded down, at least 1)."""

    def share(limit: int | None) -> int | None:
        return None if limit is None else max(1, limit // actors)

    return settings.model_copy(update={"rpm": share(settings.rpm), "tpm": share(settings.tpm)})


class _Budget:
    """The Ray actor holding the cluster's one rate limiter (``budget="shared"``)."""

    def __init__(self, rpm: int | None, tpm: int | None) -> None:
        def paced(limit: int | None) -> float | None:
            return None if limit is None else limit * CLUSTER_PACE

        self.limiter = RateLimiter(rpm=paced(rpm), tpm=paced(tpm), window_safe=True)

    def book(
        self, needs: list[int], corrections: list[tuple[int, int]], headers: dict[str, str] | None
    ) -> list[tuple[float, float]]:
        """Apply a worker's token corrections (estimated, actual) and latest rate-limit headers, then book
        one slot per need: (seconds from now until it may be sent, grant time on this actor's clock)."""
        for estimated, actual in corrections:
            self.limiter.reconcile(estimated, actual)
        if headers:
            self.limiter.observe_headers(headers)
        now = time.monotonic()
        return [(wait, now + wait) for wait in map(self.limiter.reserve, needs)]

    def rate_limited(self, retry_after_s: float | None, sent_at: float | None) -> None:
        self.limiter.on_rate_limited(retry_after_s, sent_at=sent_at)

    def stats(self) -> dict[str, Any]:
        return dict(self.limiter.stats())


class SharedLimiter(RateLimiter):
    """A worker's side of the shared budget: ``acquire`` takes a slot booked in the ``_Budget`` actor
    (``budget``, its handle), booking up to ``permits`` at a time for the requests waiting, and sleeps
    until the slot's time. Token corrections and rate-limit headers go with the next booking; a 429 goes
    at once and drops the slots in hand (the actor's pause then holds every worker back)."""

    def __init__(self, budget: Any, permits: int = 8) -> None:
        super().__init__()
        if permits < 1:
            raise ConfigError(f"permits must be positive, got {permits}")
        self._budget, self._permits = budget, permits
        self._slots: deque[tuple[float, int, float]] = deque()  # (send at on this loop, tokens, granted)
        self._booking = asyncio.Lock()
        self._waiting = 0
        self._corrections: list[tuple[int, int]] = []
        self._headers: dict[str, str] | None = None

    async def acquire(self, tokens: int = 0) -> float:
        loop = asyncio.get_running_loop()
        self._waiting += 1
        try:
            while (slot := self._next_slot(loop.time())) is None:
                async with self._booking:
                    if not self._slots:
                        await self._book(loop, tokens)
        finally:
            self._waiting -= 1
        send_at, booked, granted = slot
        if booked != tokens:
            self._corrections.append((booked, tokens))
        delay = send_at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        return granted

    def _next_slot(self, now: float) -> tuple[float, int, float] | None:
        while self._slots:
            slot = self._slots.popleft()
            if slot[0] >= now - _STALE_SLOT_S:
                return slot
            self._corrections.append((slot[1], 0))
        return None

    async def _book(self, loop: asyncio.AbstractEventLoop, tokens: int) -> None:
        count = max(1, min(self._permits, self._waiting))
        corrections, self._corrections = self._corrections, []
        headers, self._headers = self._headers, None
        ref = self._budget.book.remote([tokens] * count, corrections, headers)
        booked: list[tuple[float, float]] = await asyncio.wrap_future(ref.future())
        now = loop.time()
        self._slots.extend((now + wait, tokens, granted) for wait, granted in booked)

    def observe_headers(self, headers: Mapping[str, str]) -> None:
        found = rate_limit_headers(headers)
        if found:
            self._headers = found

    def on_rate_limited(self, retry_after_s: float | None = None, *, sent_at: float | None = None) -> None:
        self._budget.rate_limited.remote(retry_after_s, sent_at)
        self._corrections.extend((tokens, 0) for _, tokens, _ in self._slots)
        self._slots.clear()

    def reconcile(self, estimated: int, actual: int) -> None:
        if estimated != actual:
            self._corrections.append((estimated, actual))

    def release_unused(self, tokens: int) -> None:
        if tokens > 0:
            self._corrections.append((tokens, 0))


class _Scratch:
    """Answers extracted on the cluster, by text sha256, in a sqlite file in the run folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.executescript(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
            "CREATE TABLE IF NOT EXISTS answers (sha TEXT PRIMARY KEY, ok INTEGER, result TEXT NOT NULL)"
            " WITHOUT ROWID;"
            # an error is asked again by the next run, as the local engine retries earlier errors
            "DELETE FROM answers WHERE ok = 0;"
        )

    def __contains__(self, sha: str) -> bool:
        return self._db.execute("SELECT 1 FROM answers WHERE sha = ?", (sha,)).fetchone() is not None

    def add(self, rows: Iterable[tuple[str, bool, str]]) -> int:
        """Store results (sha, ok, ArticleResult JSON); one already stored for a sha is kept (a batch
        Ray ran twice is stored once). Returns how many were new."""
        before = self._db.total_changes
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR IGNORE INTO answers VALUES (?, ?, ?)", rows)
        self._db.execute("COMMIT")
        return self._db.total_changes - before

    def get(self, sha: str) -> ArticleResult | None:
        row = self._db.execute("SELECT result FROM answers WHERE sha = ?", (sha,)).fetchone()
        return None if row is None else ArticleResult.model_validate_json(row[0])

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM answers").fetchone()[0])

    def close(self, remove: bool = False) -> None:
        self._db.close()
        if remove:
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(f"{self.path}{suffix}")


class _ScratchExtractor(Extractor):
    """An Extractor that answers from the scratch store (phase 2); anything else is extracted here."""

    def __init__(self, settings: Settings, scratch: _Scratch) -> None:
        super().__init__(settings)
        self._scratch = scratch
        self.from_cluster = 0

    async def aextract(self, article: Article | str) -> ArticleResult:
        if isinstance(article, Article):
            found = self._scratch.get(article.sha256)
            if found is not None:
                self.from_cluster += 1
                return found.retold(article)
        return await super().aextract(article)


# ----------------------------------------------------------------------------------------------- actors


class _ExtractBatch:
    """A Ray Data actor: one Extractor, one event loop in a thread, so that the batches Ray hands this
    actor concurrently share the loop, the HTTP client and the rate limiter."""

    def __init__(
        self, settings: dict[str, Any], concurrency: int, budget: Any = None, permits: int = 8
    ) -> None:
        limiter = None if budget is None else SharedLimiter(budget, permits)
        self.extractor = Extractor(Settings(**settings), limiter=limiter)
        self.concurrency = concurrency
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="extract-loop", daemon=True)
        self.thread.start()
        self.gate = asyncio.Semaphore(concurrency)

    async def _one(self, article: Article) -> ArticleResult:
        async with self.gate:
            return await self.extractor.aextract(article)

    async def _all(self, articles: list[Article]) -> list[ArticleResult]:
        return list(await asyncio.gather(*(self._one(a) for a in articles)))

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        articles = [Article.model_validate_json(raw) for raw in batch["article"]]
        future = asyncio.run_coroutine_threadsafe(self._all(articles), self.loop)
        results = future.result()
        return {
            "sha256": [a.sha256 for a in articles],
            "ok": [r.status == "ok" for r in results],
            "result": [r.model_dump_json() for r in results],
            "pid": [os.getpid()] * len(results),
        }


# ----------------------------------------------------------------------------------------------- driver


@dataclasses.dataclass
class RayPlan:
    """What phase 1 did: articles loaded, already done, sent to the cluster, answered, and timings."""

    loaded: int = 0
    done_before: int = 0
    reused: int = 0
    sent: int = 0
    answered: int = 0
    waves: int = 0
    start_s: float = 0.0
    extract_s: float = 0.0
    actor_pids: set[int] = dataclasses.field(default_factory=set)
    budget_stats: dict[str, Any] = dataclasses.field(default_factory=dict)


def _exclude_out(out_dir: Path) -> Callable[[str, str], bool]:
    """Walked files inside the output folder are not inputs (unless the walk itself is inside it)."""
    inside = os.path.join(os.path.realpath(out_dir), "")

    def exclude(real: str, folder: str) -> bool:
        return real.startswith(inside) and not os.path.join(folder, "").startswith(inside)

    return exclude


def _done_before(out_dir: Path, model: str, version: str) -> set[str]:
    if not (out_dir / RESULTS_FILE).exists():
        return set()
    return {
        r.sha256
        for r in iter_results(out_dir)
        if r.status == "ok" and r.sha256 and r.model == model and r.prompt_version == version
    }


def _to_extract(
    paths: Iterable[str | Path], out_dir: Path, scratch: _Scratch, done: set[str], plan: RayPlan
) -> Iterator[Article]:
    seen: set[str] = set()
    for item in load_articles(paths, exclude=_exclude_out(out_dir)):
        if isinstance(item, LoadError):
            continue
        plan.loaded += 1
        if item.sha256 in seen:
            continue
        seen.add(item.sha256)
        if item.sha256 in done:
            plan.done_before += 1
        elif item.sha256 in scratch:
            plan.reused += 1
        else:
            write_article_text(out_dir, item.sha256, item.text)
            yield item


def _start_ray(address: str | None, num_cpus: int | None) -> Callable[[], None]:
    import ray

    if ray.is_initialized():
        return lambda: None
    env = {"env_vars": {"RAY_DATA_DISABLE_PROGRESS_BARS": "1"}}
    if address:
        ray.init(address=address, runtime_env=env, log_to_driver=False)
    else:
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            runtime_env=env,
            log_to_driver=False,
        )
    shutdown: Callable[[], None] = ray.shutdown
    return shutdown


@dataclasses.dataclass(frozen=True)
class _Pool:
    """How a wave is extracted: the actors, their settings and the shared budget actor (or None)."""

    actors: int
    batch_size: int
    settings: Settings
    budget: Any
    permits: int


def _pool(settings: Settings, actors: int, batch_size: int, budget: Budget, permits: int) -> _Pool:
    """The pool's settings; with ``budget="shared"`` and a limit set, also the one ``_Budget`` actor."""
    if budget == "split" or (settings.rpm is None and settings.tpm is None):
        return _Pool(actors, batch_size, actor_settings(settings, actors), None, permits)
    import ray

    handle = ray.remote(num_cpus=0)(_Budget).remote(settings.rpm, settings.tpm)
    return _Pool(actors, batch_size, settings, handle, permits)


def _extract_wave(articles: list[Article], pool: _Pool, scratch: _Scratch, plan: RayPlan) -> None:
    import ray

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.verbose_stats_logs = False
    rows = [{"article": a.model_dump_json()} for a in articles]
    actors, batch_size, settings = pool.actors, pool.batch_size, pool.settings
    fields = dict(settings)
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), actors * 8)))
    answered = dataset.map_batches(
        _ExtractBatch,
        fn_constructor_kwargs={
            "settings": fields,
            "concurrency": settings.concurrency,
            "budget": pool.budget,
            "permits": pool.permits,
        },
        batch_size=batch_size,
        # a fixed pool; two batches at a time per actor (threads sharing the actor's one event loop, so
        # one batch's slow tail does not idle the actor). Ray Data restarts a dead actor and retries its
        # batches (max_restarts / max_task_retries default to -1 for actor pools).
        compute=ray.data.ActorPoolStrategy(
            size=actors, max_concurrent_calls_per_actor=2, enable_true_multi_threading=True
        ),
        num_cpus=0.5,
    )
    pending: list[tuple[str, bool, str]] = []
    for row in answered.iter_rows():
        pending.append((str(row["sha256"]), bool(row["ok"]), str(row["result"])))
        plan.actor_pids.add(int(row["pid"]))
        if len(pending) >= batch_size:
            plan.answered += scratch.add(pending)
            pending.clear()
    plan.answered += scratch.add(pending)


def run_ray(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    settings: Settings,
    *,
    actors: int = 2,
    address: str | None = None,
    num_cpus: int | None = None,
    force: bool = False,
    batch_size: int = 32,
    wave: int = 20_000,
    budget: Budget = "shared",
    permits: int = 8,
    wait_lock: bool = False,
    reporter: BatchReporter | None = None,
    log: TextIO | None = None,
) -> tuple[RunSummary, RayPlan]:
    """Extract ``paths`` into ``out_dir`` on Ray (see the module docstring); returns the run summary
    (as run.json has it) and what the cluster phase did. ``budget``: "shared" (one limiter actor, workers
    book ``permits`` slots at a time) or "split" (each actor its share)."""
    if actors < 1:
        raise ConfigError(f"--ray-actors must be positive, got {actors}")
    if batch_size < 1 or wave < 1 or permits < 1:
        raise ConfigError("batch_size, wave and permits must be positive")
    if budget not in BUDGETS:
        raise ConfigError(f"unknown Ray budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("--engine ray needs Ray: pip install 'extractor[ray]'") from exc
    out = Path(out_dir)
    paths = list(paths)
    checker = Extractor(settings.model_copy(update={"use_cache": False}))
    checker.check_ready()
    stream = log or sys.stderr
    with lock_run_folder(out, wait=wait_lock, reentrant=True):
        plan = RayPlan()
        scratch = _Scratch(out / SCRATCH_FILE)
        completed = False
        stop: Callable[[], None] | None = None
        pool: _Pool | None = None
        try:
            done = set() if force else _done_before(out, settings.model, checker.prompts.version)
            todo = _to_extract(paths, out, scratch, done, plan)
            started = time.perf_counter()
            while True:
                chunk = [a for _, a in zip(range(wave), todo, strict=False)]
                if not chunk:
                    break
                if pool is None:  # the first wave: start Ray and the actors
                    stop = _start_ray(address, num_cpus)
                    plan.start_s = round(time.perf_counter() - started, 3)
                    print(f"ray: started in {plan.start_s:.1f} s; {actors} actor(s)", file=stream, flush=True)
                    pool = _pool(settings, actors, batch_size, budget, permits)
                plan.sent += len(chunk)
                plan.waves += 1
                _extract_wave(chunk, pool, scratch, plan)
            plan.extract_s = round(time.perf_counter() - started - plan.start_s, 3)
            if pool is not None and pool.budget is not None:
                plan.budget_stats = ray.get(pool.budget.stats.remote())
                ray.kill(pool.budget)
            if stop is not None:
                stop()
                stop = None
            print(
                f"ray: {plan.sent} article(s) extracted on the cluster, {plan.reused} answered by an earlier "
                f"stopped run, {plan.done_before} already done",
                file=stream,
                flush=True,
            )
            with _ScratchExtractor(settings, scratch) as extractor:
                summary = run_batch(paths, out, extractor, force=force, reporter=reporter)
            completed = not summary.interrupted
            return summary, plan
        finally:
            if stop is not None:
                stop()
            scratch.close(remove=completed)
