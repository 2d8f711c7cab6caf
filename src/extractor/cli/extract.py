"""The commands that send articles to the model: run (local, Ray or Batch API), batches, watch, record,
fixtures check and prompt show."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from extractor.cli import common
from extractor.cli.options import extractor_for, load_settings, replay_settings
from extractor.errors import ConfigError


def cmd_run(args: argparse.Namespace) -> int:
    from extractor.batch import run_batch
    from extractor.cli.progress import reporter_for

    if args.batch_api:
        return _run_batch_api(args)
    extractor = extractor_for(args)
    with extractor:
        if args.engine == "ray":
            from extractor.ray_engine import run_ray

            summary, _ = run_ray(
                args.paths,
                args.out,
                extractor.settings,
                actors=args.ray_actors,
                address=args.ray_address,
                force=args.force,
                budget=args.ray_budget,
                wait_lock=args.wait_lock,
                reporter=reporter_for(args),
            )
        else:
            paths, reporter, force, lock = args.paths, reporter_for(args), args.force, args.wait_lock
            summary = run_batch(paths, args.out, extractor, force=force, reporter=reporter, wait_lock=lock)
    _said_where(args)
    if summary.interrupted:
        how = "stopped by SIGTERM" if summary.stopped_by == "SIGTERM" else "interrupted"
        print(f"extractor: {how}; run the same command again to finish the rest", file=sys.stderr)
        return 143 if summary.stopped_by == "SIGTERM" else 130
    return 1 if summary.failed else 0


def _run_batch_api(args: argparse.Namespace) -> int:
    from extractor.batch_api import run_batch_api
    from extractor.cli.progress import reporter_for
    from extractor.pipeline import Extractor

    if args.replay:
        raise ConfigError("--batch-api needs a live endpoint; it cannot be combined with --replay")
    settings = load_settings(args)
    with Extractor(settings) as extractor:
        summary = run_batch_api(
            args.paths,
            args.out,
            extractor,
            force=args.force,
            reask_direct=args.reask_direct,
            reporter=reporter_for(args),
            wait_lock=args.wait_lock,
            log=None if args.quiet else lambda line: print(line, file=sys.stderr, flush=True),
        )
    _said_where(args)
    return 1 if summary.failed else 0


def _said_where(args: argparse.Namespace) -> None:
    """Where a run's results and summary are; with --html, the review page written now."""
    from extractor.store import RunFolder

    folder = RunFolder(Path(args.out))
    print(f"results: {folder.results_path}  summary: {folder.run_json}")
    if args.html:
        print(f"review page: {common.write_report(Path(args.out))}")


def cmd_batches(args: argparse.Namespace) -> int:
    from extractor.batch_api import cancel_batches, list_batches

    settings = load_settings(args)
    if args.action == "list":
        if args.ids:
            raise ConfigError("batches list takes no ids (use --out DIR for a run folder's batches)")
        infos = list_batches(settings, args.out, limit=args.limit)
    else:
        infos = cancel_batches(settings, args.ids, args.out)
    for info in infos:
        name = f"  {info.submission}" if info.submission else ""
        print(f"{info.id}  {info.status:<11} {info.completed}/{info.total} done, {info.failed} failed{name}")
    if not infos:
        print("no batches")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from extractor.batch import watch
    from extractor.cli.progress import reporter_for

    extractor = extractor_for(args)
    with extractor:
        reporter, every, lock = reporter_for(args), args.interval, args.wait_lock
        summary = watch(args.drop, args.out, extractor, interval_s=every, reporter=reporter, wait_lock=lock)
    return 1 if summary.failed else 0


def cmd_record(args: argparse.Namespace) -> int:
    from extractor.batch import run_batch
    from extractor.cli.progress import reporter_for
    from extractor.config import answer_settings
    from extractor.pipeline import Extractor
    from extractor.replay import save_recorded_settings

    args.fixtures = common.checkout_default(
        args.fixtures, common.DEFAULT_FIXTURES, "fixtures/recorded", "--fixtures"
    )
    settings = load_settings(args, record_dir=Path(args.fixtures), use_cache=False)
    if not settings.api_key:
        raise ConfigError(
            "record needs a live model: set OPENAI_API_KEY (and OPENAI_BASE_URL for local servers)"
        )
    Path(args.fixtures).mkdir(parents=True, exist_ok=True)
    save_recorded_settings(args.fixtures, answer_settings(settings))
    with Extractor(settings) as extractor:
        summary = run_batch(
            args.paths, args.out, extractor, force=True, reporter=reporter_for(args), wait_lock=args.wait_lock
        )
    print(f"recorded {summary.http_calls} exchange(s) into {args.fixtures}")
    return 1 if summary.failed else 0


def cmd_fixtures(args: argparse.Namespace) -> int:
    from extractor.articles import load_articles
    from extractor.models import Article
    from extractor.pipeline import Extractor
    from extractor.replay import mismatched_recordings, stale_recordings

    fixtures = Path(
        common.checkout_default(args.fixtures, common.DEFAULT_FIXTURES, "fixtures/recorded", "--fixtures")
    )
    if not args.paths:
        args.paths = [common.checkout_default(None, common.DEFAULT_SEEDS, "seeds/", "PATHS")]
    settings = replay_settings(args, load_settings(args, use_cache=False), fixtures)
    extractor = Extractor(settings)
    keys: dict[str, str] = {}
    rendered: dict[str, tuple[str, list[dict[str, str]]]] = {}
    inputs = load_articles(
        args.paths, follow_symlinks=settings.follow_symlinks, max_input_bytes=settings.max_input_bytes
    )
    for item in inputs:
        if isinstance(item, Article):
            for messages, key in extractor.requests(item):
                keys[key] = item.id
                rendered[key] = (settings.model, messages)
    missing = sorted({aid for key, aid in keys.items() if not (fixtures / f"{key}.json").exists()})
    stale = stale_recordings(fixtures, keys)
    for path in stale:
        print(f"stale: {path} (no current request renders key {path.stem[:12]}…)")
    exact = settings.mode in ("tools", "json_schema")  # the other modes add to the messages
    for path, reason in mismatched_recordings(fixtures, rendered, exact=exact):
        print(f"stale: {path} ({keys[path.stem]}: {reason})")
        stale.append(path)
    for aid in missing:
        print(f"missing: no recording for {aid} with the current prompt {extractor.prompts.version}")
    print(f"{len(keys)} request(s) checked: {len(stale)} stale recording(s), {len(missing)} missing")
    return 1 if stale or missing else 0


def cmd_prompt(args: argparse.Namespace) -> int:
    """Print the exact messages one article's requests send, and their (estimated) token counts."""
    from extractor.articles import load_articles
    from extractor.models import Article
    from extractor.pipeline import Extractor
    from extractor.prompts import estimate_tokens

    settings = load_settings(args, use_cache=False)
    extractor = Extractor(settings)
    inputs = load_articles(
        [args.article], follow_symlinks=settings.follow_symlinks, max_input_bytes=settings.max_input_bytes
    )
    articles = [item for item in inputs if isinstance(item, Article)]
    if not articles:
        raise ConfigError(f"{args.article}: no article to render (see `extractor run` for accepted inputs)")
    print(f"# prompt version {extractor.prompts.version}; tokens are an offline upper-bound estimate")
    for article in articles:
        bare = extractor.prompts.render(
            article, "", max_events=settings.max_events, output_language=settings.output_language
        )
        fixed = sum(estimate_tokens(m["content"]) for m in bare)  # everything but the article's text
        for number, (messages, _key) in enumerate(extractor.requests(article), start=1):
            total = sum(estimate_tokens(m["content"]) for m in messages)
            head = f"## {article.id} request {number}: ~{total} tokens"
            print(f"{head} (fixed prompt ~{fixed}, the article the rest)")
            for m in messages:
                print(f"--- {m['role']} ({estimate_tokens(m['content'])} tokens)")
                print(m["content"])
    return 0
