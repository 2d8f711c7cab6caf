"""The ``extractor`` command: a thin layer over the library.

Exit codes: 0 = everything ok, 1 = some articles (or checks) failed, 2 = usage or configuration error,
130 = a run stopped by Ctrl-C before every article was done.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from extractor.config import Settings
from extractor.errors import ConfigError, ExtractorError

__all__ = ["main"]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_FIXTURES = PROJECT_ROOT / "fixtures" / "recorded"
SCHEMA_DIR = PROJECT_ROOT / "schemas"


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
    g.add_argument("--cache-dir", dest="cache_dir", help="response cache ($EXTRACTOR_CACHE_DIR)")
    g.add_argument(
        "--no-cache", dest="no_cache", action="store_true", help="neither read nor write the cache"
    )


def _load_settings(args: argparse.Namespace, **extra: Any) -> Settings:
    names = ["model", "base_url", "mode", "temperature", "max_tokens", "timeout_s", "reasks", "concurrency"]
    names += ["rpm", "tpm", "chunk_chars", "cache_dir", "chunk_overlap_chars"]
    overrides = {n: getattr(args, n, None) for n in names}
    if getattr(args, "no_cache", False):
        overrides["use_cache"] = False
    overrides.update(extra)
    return Settings.load(getattr(args, "config", None), **overrides)


def _replay_settings(args: argparse.Namespace, settings: Settings, replay: Path) -> Settings:
    """Settings for replaying ``replay``: what the recordings were made with, unless flags say otherwise."""
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
        replay = str(DEFAULT_FIXTURES)
        if not Path(replay).is_dir():
            raise ConfigError(
                "no API key: set OPENAI_API_KEY, or replay recordings with --replay DIR "
                f"(no recorded fixtures at {replay})"
            )
        note = f"no OPENAI_API_KEY set: replaying recorded responses from {replay} (offline)"
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

    extractor = _extractor_for(args)
    with extractor:
        summary = run_batch(args.paths, args.out, extractor, force=args.force, reporter=_reporter(args))
    print(f"results: {Path(args.out) / 'results.jsonl'}  summary: {Path(args.out) / 'run.json'}")
    if args.html:
        print(f"review page: {_write_report(Path(args.out))}")
    if summary.interrupted:
        print("extractor: interrupted; run the same command again to finish the rest", file=sys.stderr)
        return 130
    return 1 if summary.failed else 0


def cmd_watch(args: argparse.Namespace) -> int:
    from extractor.batch import watch

    extractor = _extractor_for(args)
    with extractor:
        summary = watch(args.drop, args.out, extractor, interval_s=args.interval, reporter=_reporter(args))
    return 1 if summary.failed else 0


def cmd_record(args: argparse.Namespace) -> int:
    from extractor.batch import run_batch
    from extractor.pipeline import Extractor
    from extractor.replay import save_recorded_settings

    settings = _load_settings(args, record_dir=Path(args.fixtures), use_cache=False)
    if not settings.api_key:
        raise ConfigError(
            "record needs a live model: set OPENAI_API_KEY (and OPENAI_BASE_URL for local servers)"
        )
    Path(args.fixtures).mkdir(parents=True, exist_ok=True)
    save_recorded_settings(
        args.fixtures,
        {
            "model": settings.model,
            "base_url": settings.public_endpoint,
            "mode": settings.mode,
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens,
        },
    )
    with Extractor(settings) as extractor:
        summary = run_batch(args.paths, args.out, extractor, force=True, reporter=_reporter(args))
    print(f"recorded {summary.http_calls} exchange(s) into {args.fixtures}")
    return 1 if summary.failed else 0


def cmd_fixtures(args: argparse.Namespace) -> int:
    from extractor.articles import load_articles
    from extractor.models import Article
    from extractor.pipeline import Extractor
    from extractor.replay import mismatched_recordings, stale_recordings

    fixtures = Path(args.fixtures)
    settings = _replay_settings(args, _load_settings(args, use_cache=False), fixtures)
    extractor = Extractor(settings)
    keys: dict[str, str] = {}
    rendered: dict[str, tuple[str, list[dict[str, str]]]] = {}
    for item in load_articles(args.paths):
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


def _write_report(run_dir: Path, out: Path | None = None) -> Path:
    """The review page, always with its digest section.

    digest.json is used when it is current; one built from other results than the folder's current ones
    is rebuilt first, and a folder without one gets one built now from its results (deterministic, the
    built-in aliases) and saved -- the page says which, so it never shows a digest of fewer or other
    articles than it lists.
    """
    from extractor import digest
    from extractor.report import article_anchors, write_report
    from extractor.store import iter_results

    current, note = digest.ensure_digest(run_dir)
    if note:
        print(f"note: {note}", file=sys.stderr)
    section = digest.digest_html_section(current, article_anchors(iter_results(run_dir)), note)
    return write_report(run_dir, out, [section], digest.DIGEST_CSS)


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


def cmd_cache(args: argparse.Namespace) -> int:
    from extractor.cache import ResponseCache

    settings = _load_settings(args)
    cache = ResponseCache(settings.cache_dir)
    try:
        if args.action == "clear":
            print(f"removed {cache.clear()} cached answer(s) from {settings.cache_dir}")
        else:
            stats = cache.stats()
            print(f"{stats['entries']} cached answer(s), {stats['bytes']} bytes, in {stats['directory']}")
    finally:
        cache.close()
    return 0


def schema_documents() -> dict[str, dict[str, Any]]:
    """The JSON Schemas written to schemas/ (what the model emits, and what a result line holds)."""
    from extractor.models import ArticleExtraction, ArticleResult

    return {
        "article_extraction.schema.json": ArticleExtraction.model_json_schema(),
        "article_result.schema.json": ArticleResult.model_json_schema(),
    }


def cmd_schemas(args: argparse.Namespace) -> int:
    out = Path(args.out)
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
            "130 a run stopped by Ctrl-C before every article was done."
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
    _settings_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("watch", help="extract files as they appear in a drop folder, until Ctrl-C")
    p.add_argument("drop", help="folder to watch")
    p.add_argument("--out", default="out", help="output folder (default: out)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between scans")
    p.add_argument("--replay", metavar="DIR", help="answer from recorded exchanges")
    p.add_argument("--quiet", "-q", action="store_true")
    _settings_args(p)
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("record", help="run against a live model and record every exchange as a fixture")
    p.add_argument("paths", nargs="+")
    p.add_argument("--fixtures", default=str(DEFAULT_FIXTURES), help="where recordings go")
    p.add_argument("--out", default="out/record", help="output folder of the recording run")
    p.add_argument("--quiet", "-q", action="store_true")
    _settings_args(p)
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("fixtures", help="check recorded fixtures against the current prompt")
    p.add_argument("action", choices=["check"])
    p.add_argument("paths", nargs="*", default=[str(PROJECT_ROOT / "seeds")])
    p.add_argument("--fixtures", default=str(DEFAULT_FIXTURES))
    _settings_args(p)
    p.set_defaults(func=cmd_fixtures)

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
    p.add_argument(
        "--gold", default=str(PROJECT_ROOT / "fixtures" / "gold"), help="gold folder (default: %(default)s)"
    )
    p.add_argument("--compare", metavar="OTHER_RESULTS", help="a second run to show side by side")
    p.add_argument("--json", metavar="FILE", help="also write the scores as JSON")
    p.add_argument(
        "--per-article", dest="per_article", action="store_true", help="also print one row per gold article"
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("cache", help="response cache: stats or clear")
    p.add_argument("action", choices=["stats", "clear"])
    _settings_args(p)
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("schemas", help="write (or --check) the JSON Schemas in schemas/")
    p.add_argument("--out", default=str(SCHEMA_DIR))
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
    except ConfigError as exc:
        print(f"extractor: configuration error: {exc}", file=sys.stderr)
        return 2
    except ExtractorError as exc:
        print(f"extractor: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("extractor: interrupted", file=sys.stderr)
        return 130
