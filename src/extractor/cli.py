"""The ``extractor`` command: a thin layer over the library.

Exit codes: 0 = everything ok, 1 = some articles (or checks) failed, 2 = usage or configuration error
(or the output folder is busy), 130 / 143 = a run stopped by Ctrl-C / SIGTERM before every article was
done.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from extractor.errors import ConfigError, ExtractorError, FolderBusyError, redact
from extractor.resources import checkout_path, checkout_root, data_dir

if TYPE_CHECKING:
    from extractor.config import Settings

__all__ = ["main"]

# Checkout-only defaults: the source checkout's folders, or None for a package installed from a wheel
# (which carries prompts/ and schemas/ but no seeds, recordings or gold annotations).
DEFAULT_FIXTURES = checkout_path("fixtures", "recorded")
DEFAULT_SEEDS = checkout_path("seeds")
DEFAULT_GOLD = checkout_path("fixtures", "gold")
# The JSON Schemas: the checkout's schemas/ (through the package-data symlink), or the installed copy.
SCHEMA_DIR = data_dir("schemas").resolve()


def _shown(path: Path | str) -> str:
    """``path`` as a note shows it: relative to the working folder when it lies inside it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _checkout_default(value: str | None, default: Path | None, what: str, flag: str) -> str:
    """``value`` when given; else the checkout's ``default``, said on stderr; else a usage error."""
    if value is not None:
        return value
    if default is None:
        raise ConfigError(
            f"{flag} is required: the default {what} comes with the source checkout, which this "
            "installed package does not have"
        )
    print(f"note: using the source checkout's {what}: {_shown(default)}", file=sys.stderr, flush=True)
    return str(default)


# Credentials of the settings this command loaded (a config file's key too): taken out of what it prints.
_SECRETS: set[str] = set()


def _error_line(exc: BaseException) -> str:
    """An error's message on one line, without any credential the environment or settings hold."""
    from extractor.config import url_secrets

    known = (os.environ.get("OPENAI_API_KEY"), *url_secrets(os.environ.get("OPENAI_BASE_URL")), *_SECRETS)
    return redact(" ".join(str(exc).split()), *known)


def _settings_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and limits (flags override env vars and the config file)")
    g.add_argument(
        "--config", metavar="FILE", help="TOML config file (default: $EXTRACTOR_CONFIG or ./extractor.toml)"
    )
    g.add_argument("--model", help="model name ($EXTRACTOR_MODEL)")
    g.add_argument("--base-url", dest="base_url", help="OpenAI-compatible endpoint ($OPENAI_BASE_URL)")
    g.add_argument("--mode", choices=["tools", "json_schema", "json", "md_json"], help="instructor mode")
    g.add_argument("--temperature", type=float)
    g.add_argument("--max-tokens", dest="max_tokens", type=int)
    g.add_argument("--timeout", dest="timeout_s", type=float, help="request timeout in seconds")
    g.add_argument("--reasks", type=int, help="re-asks on schema/grounding failure (default 1)")
    g.add_argument("--concurrency", type=int, help="articles in flight ($EXTRACTOR_CONCURRENCY, default 16)")
    g.add_argument("--rpm", type=int, help="requests/min limit ($EXTRACTOR_RPM)")
    g.add_argument("--tpm", type=int, help="tokens/min limit ($EXTRACTOR_TPM)")
    g.add_argument("--chunk-chars", dest="chunk_chars", type=int, help="split articles longer than this")
    g.add_argument(
        "--chunk-overlap", dest="chunk_overlap_chars", type=int, help="characters shared by adjacent chunks"
    )
    g.add_argument(
        "--max-events", dest="max_events", type=int, help="events per article, at most (default 10)"
    )
    g.add_argument(
        "--output-language", dest="output_language", help="language of summaries and stance targets (English)"
    )
    g.add_argument("--cache-dir", dest="cache_dir", help="response cache ($EXTRACTOR_CACHE_DIR)")
    g.add_argument(
        "--cache-url", dest="cache_url", help="shared JSON cache: folder or s3:// URL ($EXTRACTOR_CACHE_URL)"
    )
    g.add_argument(
        "--no-cache", dest="no_cache", action="store_true", help="neither read nor write the cache"
    )
    g.add_argument(
        "--follow-symlinks",
        dest="follow_symlinks",
        action="store_true",
        help="load symlinks that point outside the given paths (refused by default)",
    )
    g.add_argument(
        "--max-input-bytes",
        dest="max_input_bytes",
        type=int,
        help="size cap of one input file, of one line in JSONL (default 20000000)",
    )


def _wait_lock_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait-lock",
        dest="wait_lock",
        action="store_true",
        help="if another run or watch is writing the output folder, wait for it (default: exit 2)",
    )


def _load_settings(args: argparse.Namespace, **extra: Any) -> Settings:
    from extractor.config import Settings

    names = ["model", "base_url", "mode", "temperature", "max_tokens", "timeout_s", "reasks", "concurrency"]
    names += ["rpm", "tpm", "chunk_chars", "cache_dir", "cache_url", "chunk_overlap_chars"]
    names += ["max_input_bytes", "max_events", "output_language"]
    names += ["batch_poll_s", "batch_poll_max_s", "batch_poll_backoff", "batch_poll_timeout_s"]
    overrides = {n: getattr(args, n, None) for n in names}
    if getattr(args, "no_cache", False):
        overrides["use_cache"] = False
    if getattr(args, "follow_symlinks", False):
        overrides["follow_symlinks"] = True
    overrides.update(extra)
    settings = Settings.load(getattr(args, "config", None), **overrides)
    _SECRETS.update(settings.secrets)
    return settings


def _replay_settings(args: argparse.Namespace, settings: Settings, replay: Path) -> Settings:
    """Settings for replaying ``replay``: what the recordings were made with, unless flags say otherwise."""
    from extractor.config import Settings
    from extractor.replay import load_recorded_settings

    recorded = load_recorded_settings(replay)
    keep = {k: v for k, v in recorded.items() if getattr(args, k, None) is None}
    # Replays never use the response cache: it could answer with something the recordings no longer say.
    replay_only = {"replay_dir": replay, "use_cache": False}
    return Settings.load(getattr(args, "config", None), **{**settings.__dict__, **keep, **replay_only})


def _extractor_for(args: argparse.Namespace, out: TextIO | None = None) -> Any:
    from extractor.pipeline import Extractor

    settings = _load_settings(args)
    replay = getattr(args, "replay", None)
    if replay is None and not settings.api_key:
        if DEFAULT_FIXTURES is None:
            raise ConfigError(
                "no API key: set OPENAI_API_KEY, or replay recordings with --replay DIR (the recorded "
                "fixtures come with the source checkout, not with the installed package)"
            )
        replay = str(DEFAULT_FIXTURES)
        if not Path(replay).is_dir():
            raise ConfigError(
                "no API key: set OPENAI_API_KEY, or replay recordings with --replay DIR "
                f"(no recorded fixtures at {replay})"
            )
        note = f"no OPENAI_API_KEY set: replaying recorded responses from {_shown(replay)} (offline)"
        print(note, file=out or sys.stderr, flush=True)
    if replay is not None:
        if not Path(replay).is_dir():
            raise ConfigError(f"--replay {replay}: no recordings folder there")
        settings = _replay_settings(args, settings, Path(replay))
    return Extractor(settings)


def _reporter(args: argparse.Namespace) -> Any:
    from extractor.batch import LogReporter, RichReporter, count_inputs

    if not args.quiet and sys.stderr.isatty():
        paths = getattr(args, "paths", None)
        return RichReporter(total=count_inputs(paths, args.out) if paths else None)
    return LogReporter(quiet=args.quiet)


def cmd_run(args: argparse.Namespace) -> int:
    from extractor.batch import run_batch

    if args.batch_api:
        return _run_batch_api(args)
    extractor = _extractor_for(args)
    with extractor:
        if args.engine == "ray":
            from extractor.ray_engine import run_ray

            reporter, actors, address = _reporter(args), args.ray_actors, args.ray_address
            settings, force = extractor.settings, args.force
            summary, _ = run_ray(
                args.paths,
                args.out,
                settings,
                actors=actors,
                address=address,
                force=force,
                budget=args.ray_budget,
                wait_lock=args.wait_lock,
                reporter=reporter,
            )
        else:
            summary = run_batch(
                args.paths,
                args.out,
                extractor,
                force=args.force,
                reporter=_reporter(args),
                wait_lock=args.wait_lock,
            )
    print(f"results: {Path(args.out) / 'results.jsonl'}  summary: {Path(args.out) / 'run.json'}")
    if args.html:
        print(f"review page: {_write_report(Path(args.out))}")
    if summary.interrupted:
        how = "stopped by SIGTERM" if summary.stopped_by == "SIGTERM" else "interrupted"
        print(f"extractor: {how}; run the same command again to finish the rest", file=sys.stderr)
        return 143 if summary.stopped_by == "SIGTERM" else 130
    return 1 if summary.failed else 0


def _run_batch_api(args: argparse.Namespace) -> int:
    from extractor.batch_api import run_batch_api
    from extractor.pipeline import Extractor

    if args.replay:
        raise ConfigError("--batch-api needs a live endpoint; it cannot be combined with --replay")
    settings = _load_settings(args)
    with Extractor(settings) as extractor:
        summary = run_batch_api(
            args.paths,
            args.out,
            extractor,
            force=args.force,
            reask_direct=args.reask_direct,
            reporter=_reporter(args),
            wait_lock=args.wait_lock,
            log=None if args.quiet else lambda line: print(line, file=sys.stderr, flush=True),
        )
    print(f"results: {Path(args.out) / 'results.jsonl'}  summary: {Path(args.out) / 'run.json'}")
    if args.html:
        print(f"review page: {_write_report(Path(args.out))}")
    return 1 if summary.failed else 0


def cmd_batches(args: argparse.Namespace) -> int:
    from extractor.batch_api import cancel_batches, list_batches

    settings = _load_settings(args)
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

    extractor = _extractor_for(args)
    with extractor:
        summary = watch(
            args.drop,
            args.out,
            extractor,
            interval_s=args.interval,
            reporter=_reporter(args),
            wait_lock=args.wait_lock,
        )
    return 1 if summary.failed else 0


def cmd_record(args: argparse.Namespace) -> int:
    from extractor.batch import run_batch
    from extractor.config import answer_settings
    from extractor.pipeline import Extractor
    from extractor.replay import save_recorded_settings

    args.fixtures = _checkout_default(args.fixtures, DEFAULT_FIXTURES, "fixtures/recorded", "--fixtures")
    settings = _load_settings(args, record_dir=Path(args.fixtures), use_cache=False)
    if not settings.api_key:
        raise ConfigError(
            "record needs a live model: set OPENAI_API_KEY (and OPENAI_BASE_URL for local servers)"
        )
    Path(args.fixtures).mkdir(parents=True, exist_ok=True)
    save_recorded_settings(args.fixtures, answer_settings(settings))
    with Extractor(settings) as extractor:
        summary = run_batch(
            args.paths, args.out, extractor, force=True, reporter=_reporter(args), wait_lock=args.wait_lock
        )
    print(f"recorded {summary.http_calls} exchange(s) into {args.fixtures}")
    return 1 if summary.failed else 0


def cmd_fixtures(args: argparse.Namespace) -> int:
    from extractor.articles import load_articles
    from extractor.models import Article
    from extractor.pipeline import Extractor
    from extractor.replay import mismatched_recordings, stale_recordings

    fixtures = Path(_checkout_default(args.fixtures, DEFAULT_FIXTURES, "fixtures/recorded", "--fixtures"))
    if not args.paths:
        args.paths = [_checkout_default(None, DEFAULT_SEEDS, "seeds/", "PATHS")]
    settings = _replay_settings(args, _load_settings(args, use_cache=False), fixtures)
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

    settings = _load_settings(args, use_cache=False)
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


def cmd_serve(args: argparse.Namespace) -> int:
    import importlib.util
    import os

    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise ConfigError("extractor serve needs the serve extra: pip install 'extractor[serve]'")
    from extractor.serve import ServiceConfig, run

    settings = _load_settings(args)
    if args.replay is not None:
        if not Path(args.replay).is_dir():
            raise ConfigError(f"--replay {args.replay}: no recordings folder there")
        settings = _replay_settings(args, settings, Path(args.replay))
    elif not settings.api_key:
        raise ConfigError(
            "no API key: set OPENAI_API_KEY (any value for a local server), or answer from recordings "
            "with --replay DIR"
        )
    config = ServiceConfig(
        data_dir=Path(args.data_dir or _default_data_dir()),
        host=args.host,
        port=args.port,
        token=os.environ.get("EXTRACTOR_API_TOKEN") or None,
        allow_paths=Path(args.allow_paths) if args.allow_paths else None,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_article_chars=args.max_article_chars,
        max_queued_jobs=args.max_queued_jobs,
        max_pending=args.max_pending,
        job_workers=args.job_workers,
        shutdown_timeout_s=args.shutdown_timeout,
    )
    return run(settings, config)


def _default_data_dir() -> str:
    import platformdirs

    return str(Path(platformdirs.user_data_dir("extractor")) / "service")


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _write_report(run_dir: Path, out: Path | None = None) -> Path:
    """The review page, always with its digest section (extractor.review); its note goes to stderr."""
    from extractor.review import write_review_page

    path, note = write_review_page(run_dir, out)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return path


def cmd_report(args: argparse.Namespace) -> int:
    print(_write_report(Path(args.dir), Path(args.out) if args.out else None))
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    from extractor import digest

    path = digest.write_digest(args.dir, aliases_file=args.aliases, out_path=args.out)
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    print(digest.render_digest_text(data))
    print(f"digest: {path}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.console import Console

    from extractor.evaluate import GoldError, evaluate_path, render_articles, render_table, summary_lines

    args.gold = _checkout_default(args.gold, DEFAULT_GOLD, "gold annotations (fixtures/gold)", "--gold")
    for given in (args.results, args.compare):
        if given is not None and not Path(given).exists():
            raise ConfigError(f"no run folder or results file at {given}")
    try:
        report = evaluate_path(args.results, args.gold)
        other = evaluate_path(args.compare, args.gold) if args.compare else None
    except GoldError as exc:  # missing or malformed gold: a configuration error (exit 2), one line
        raise ConfigError(" ".join(str(exc).split())) from exc
    console = Console()
    # The runs are labelled A and B in the table; the lines under it name their files.
    console.print(render_table(report, other, labels=("A", "B"), caption=False))
    for line in summary_lines(report, other, labels=("A", "B")):
        console.print(line, highlight=False, soft_wrap=True)
    for label, scored in (("A", report), ("B", other)):
        prefix = f"{label}: " if other is not None else ""
        for warning in scored.warnings if scored is not None else []:
            print(f"warning: {prefix}{warning}", file=sys.stderr)
    if args.per_article:
        for label, scored in (("A", report), ("B", other)):
            if scored is not None:
                table = render_articles(scored)
                if other is not None:
                    table.title = f"Per article, {label}"
                console.print(table)
    if args.json:
        payload = {"a": report.model_dump(mode="json")}
        if other is not None:
            payload["b"] = other.model_dump(mode="json")
        Path(args.json).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"json: {args.json}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from extractor.export import export_run

    out = Path(args.out) if args.out else Path(args.dir) / "export"
    summary = export_run(args.dir, out, args.format)
    for table, path in summary.files.items():
        print(f"{table:<9} {summary.rows[table]:>8} rows  {path}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from extractor.cache import open_cache

    settings = _load_settings(args)
    cache = open_cache(settings)
    try:
        stats = cache.stats()
        set_aside = stats.get("set_aside", [])  # corrupt diskcache files moved aside (diskcache only)
        if args.action == "clear":
            removed = f"removed {cache.clear()} cached answer(s)"
            if set_aside:
                removed += f" and {len(set_aside)} corrupt cache(s) set aside"
            print(f"{removed} from {stats['directory']}")
        else:
            print(f"{stats['entries']} cached answer(s), {stats['bytes']} bytes, in {stats['directory']}")
            if set_aside:
                print(f"{len(set_aside)} corrupt cache(s) set aside: {', '.join(set_aside)}")
    finally:
        cache.close()
    return 0


def _serve_installed() -> bool:
    import importlib.util

    return all(
        importlib.util.find_spec(name) is not None for name in ("fastapi", "uvicorn", "prometheus_client")
    )


def schema_documents() -> dict[str, dict[str, Any]]:
    """The JSON Schemas written to schemas/ (what the model emits, and what a result line holds), and
    the service's OpenAPI document when the serve extra is installed."""
    from extractor.models import ArticleExtraction, ArticleResult

    documents = {
        "article_extraction.schema.json": ArticleExtraction.model_json_schema(),
        "article_result.schema.json": ArticleResult.model_json_schema(),
    }
    if _serve_installed():
        from extractor.serve import openapi_document

        documents["openapi.json"] = openapi_document()
    return documents


def cmd_schemas(args: argparse.Namespace) -> int:
    if args.out is None and not args.check and checkout_root() is None:
        raise ConfigError(
            "extractor schemas writes into the source checkout's schemas/, which this installed package "
            "does not have: give --out DIR (or --check to compare the installed copies with the models)"
        )
    out = Path(args.out) if args.out is not None else SCHEMA_DIR
    if not _serve_installed():
        print("note: openapi.json skipped: the serve extra is not installed", file=sys.stderr)
    drift = []
    for name, schema in schema_documents().items():
        text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
        path = out / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                drift.append(name)
        else:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if drift:
        print(f"schemas out of date: {', '.join(drift)}; run `extractor schemas`")
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="extractor",
        description="Extract events, verbatim-checked quotes and stances from news articles.",
        epilog=(
            "Exit codes: 0 ok, 1 some articles or checks failed, 2 usage or configuration error, "
            "130 / 143 a run stopped by Ctrl-C / SIGTERM before every article was done."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="extract articles (files or folders) into an output folder")
    p.add_argument("paths", nargs="+", help=".txt .md .html .json .jsonl files or folders")
    p.add_argument("--out", default="out", help="output folder (default: out)")
    p.add_argument("--force", action="store_true", help="redo articles already done in --out")
    p.add_argument("--replay", metavar="DIR", help="answer from recorded exchanges (default without API key)")
    p.add_argument("--html", action="store_true", help="also write the review page")
    p.add_argument("--quiet", "-q", action="store_true", help="no per-article lines or progress bar")
    _wait_lock_arg(p)
    p.add_argument(
        "--batch-api",
        dest="batch_api",
        action="store_true",
        help="submit through the Batch API (half price, within 24 h); run again to resume polling",
    )
    p.add_argument(
        "--reask-direct",
        dest="reask_direct",
        action="store_true",
        help="with --batch-api: re-ask ungrounded answers directly, not in a follow-up batch",
    )
    g = p.add_argument_group("Batch API polling (with --batch-api)")
    g.add_argument(
        "--batch-poll", dest="batch_poll_s", type=float, metavar="S", help="first wait between polls (30)"
    )
    g.add_argument(
        "--batch-poll-max", dest="batch_poll_max_s", type=float, metavar="S", help="longest wait (600)"
    )
    g.add_argument(
        "--batch-poll-backoff",
        dest="batch_poll_backoff",
        type=float,
        metavar="X",
        help="each wait this many times the last, up to --batch-poll-max (1.5)",
    )
    g.add_argument(
        "--batch-poll-timeout",
        dest="batch_poll_timeout_s",
        type=float,
        metavar="S",
        help="give up polling after this many seconds of waits; the batches keep running and the next "
        "run resumes them (default: wait for the completion window)",
    )
    p.add_argument("--engine", choices=["local", "ray"], default="local", help="local or ray (Ray Data)")
    p.add_argument("--ray-actors", dest="ray_actors", type=int, default=2, help="Ray actors (default 2)")
    p.add_argument("--ray-address", dest="ray_address", help="join a Ray cluster ('auto')")
    p.add_argument(
        "--ray-budget",
        dest="ray_budget",
        choices=["shared", "split"],
        default="shared",
        help="--rpm/--tpm for the cluster: one limiter actor every worker asks (shared, default), or an "
        "equal share per actor (split)",
    )
    _settings_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("batches", help="Batch API batches: list (the account's, or --out DIR's) or cancel")
    p.add_argument("action", choices=["list", "cancel"])
    p.add_argument("ids", nargs="*", help="batch ids to cancel")
    p.add_argument("--out", help="a run folder of `run --batch-api`: its batches")
    p.add_argument("--limit", type=int, default=20, help="how many of the account's batches to list")
    _settings_args(p)
    p.set_defaults(func=cmd_batches)

    p = sub.add_parser("watch", help="extract files as they appear in a drop folder, until Ctrl-C")
    p.add_argument("drop", help="folder to watch")
    p.add_argument("--out", default="out", help="output folder (default: out)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between scans")
    p.add_argument("--replay", metavar="DIR", help="answer from recorded exchanges")
    p.add_argument("--quiet", "-q", action="store_true")
    _wait_lock_arg(p)
    _settings_args(p)
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("record", help="run against a live model and record every exchange as a fixture")
    p.add_argument("paths", nargs="+")
    p.add_argument("--fixtures", help="where recordings go (default: the checkout's fixtures/recorded)")
    p.add_argument("--out", default="out/record", help="output folder of the recording run")
    p.add_argument("--quiet", "-q", action="store_true")
    _wait_lock_arg(p)
    _settings_args(p)
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("fixtures", help="check recorded fixtures against the current prompt")
    p.add_argument("action", choices=["check"])
    p.add_argument("paths", nargs="*", help="articles to check (default: the checkout's seeds/)")
    p.add_argument("--fixtures", help="recordings folder (default: the checkout's fixtures/recorded)")
    _settings_args(p)
    p.set_defaults(func=cmd_fixtures)

    p = sub.add_parser("prompt", help="show the exact messages an article's requests send, with tokens")
    p.add_argument("action", choices=["show"])
    p.add_argument("article", help="an article file (.txt .md .html .json .jsonl)")
    _settings_args(p)
    p.set_defaults(func=cmd_prompt)

    p = sub.add_parser("report", help="write the HTML review page of a run")
    p.add_argument("dir", help="output folder of a run")
    p.add_argument("--out", help="HTML file (default: DIR/report.html)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("digest", help="cross-article digest: entities, event clusters, conflicts, stances")
    p.add_argument("dir", help="output folder of a run")
    p.add_argument("--aliases", help='TOML alias file ([aliases] "variant" = "canonical")')
    p.add_argument("--out", help="JSON file (default: DIR/digest.json)")
    p.set_defaults(func=cmd_digest)

    p = sub.add_parser("eval", help="score a run against gold annotations")
    p.add_argument("results", help="run folder or results.jsonl")
    p.add_argument("--gold", help="gold folder (default: the checkout's fixtures/gold)")
    p.add_argument("--compare", metavar="OTHER_RESULTS", help="a second run to show side by side")
    p.add_argument("--json", metavar="FILE", help="also write the scores as JSON")
    p.add_argument(
        "--per-article", dest="per_article", action="store_true", help="also print one row per gold article"
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export", help="flat tables (articles, quotes, events, stances, rejected) of a run")
    p.add_argument("dir", help="output folder of a run (or its results.jsonl)")
    p.add_argument("--format", choices=["parquet", "csv", "jsonl"], default="parquet")
    p.add_argument("--out", help="folder for the tables (default: DIR/export)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("cache", help="response cache: stats or clear")
    p.add_argument("action", choices=["stats", "clear"])
    _settings_args(p)
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("serve", help="the HTTP API: extract, jobs, results, metrics (needs extractor[serve])")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s; 0 = any free port)")
    p.add_argument(
        "--data-dir",
        dest="data_dir",
        help="where jobs live (default: extractor/service in the user data folder)",
    )
    p.add_argument(
        "--allow-paths", dest="allow_paths", metavar="DIR", help="let jobs name files and folders under DIR"
    )
    p.add_argument("--replay", metavar="DIR", help="answer from recorded exchanges instead of a live model")
    p.add_argument(
        "--max-body-mb", dest="max_body_mb", type=_positive(float), default=32.0, help="request body limit"
    )
    p.add_argument(
        "--max-article-chars",
        dest="max_article_chars",
        type=_positive(int),
        default=1_000_000,
        help="per article",
    )
    p.add_argument(
        "--max-queued-jobs", dest="max_queued_jobs", type=_positive(int), default=64, help="then 429"
    )
    p.add_argument(
        "--max-pending",
        dest="max_pending",
        type=_positive(int),
        default=256,
        help="/v1/extract requests in flight or waiting, then 429 (default: %(default)s)",
    )
    p.add_argument(
        "--job-workers", dest="job_workers", type=_positive(int), default=1, help="jobs run at once"
    )
    p.add_argument(
        "--shutdown-timeout",
        dest="shutdown_timeout",
        type=_positive(float),
        default=20.0,
        help="seconds SIGTERM waits for the work in flight (default: %(default)s)",
    )
    _settings_args(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("schemas", help="write (or --check) the JSON Schemas in schemas/")
    p.add_argument("--out", help="folder (default: the package's schemas/, i.e. the checkout's)")
    p.add_argument("--check", action="store_true", help="exit 1 if the files differ from the models")
    p.set_defaults(func=cmd_schemas)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``extractor`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except FolderBusyError as exc:
        print(f"extractor: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"extractor: configuration error: {_error_line(exc)}", file=sys.stderr)
        return 2
    except ExtractorError as exc:
        print(f"extractor: {type(exc).__name__}: {_error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("extractor: interrupted", file=sys.stderr)
        return 130
