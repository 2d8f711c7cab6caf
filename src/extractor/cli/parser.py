"""The command line: every command, its arguments and the function that runs it. Commands that take
settings get their flags from ``options`` when they are parsed."""

from __future__ import annotations

import argparse

from extractor.cli.admin import cmd_cache, cmd_schemas, cmd_serve
from extractor.cli.extract import cmd_batches, cmd_fixtures, cmd_prompt, cmd_record, cmd_run, cmd_watch
from extractor.cli.options import CommandParser
from extractor.cli.outputs import cmd_digest, cmd_eval, cmd_export, cmd_report


def _wait_lock_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--wait-lock",
        dest="wait_lock",
        action="store_true",
        help="if another run or watch is writing the output folder, wait for it (default: exit 2)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``extractor`` parser; a command's settings flags are added when that command is parsed."""
    parser = argparse.ArgumentParser(
        prog="extractor",
        description="Extract events, verbatim-checked quotes and stances from news articles.",
        epilog=(
            "Exit codes: 0 ok, 1 some articles or checks failed, 2 usage or configuration error, "
            "130 / 143 a run stopped by Ctrl-C / SIGTERM before every article was done."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)

    def with_settings(name: str, help: str, *classes: str) -> argparse.ArgumentParser:
        made: argparse.ArgumentParser = sub.add_parser(name, help=help, settings=classes or ("Settings",))
        return made

    p = with_settings("run", "extract articles (files or folders) into an output folder")
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
    p.set_defaults(func=cmd_run)

    p = with_settings("batches", "Batch API batches: list (the account's, or --out DIR's) or cancel")
    p.add_argument("action", choices=["list", "cancel"])
    p.add_argument("ids", nargs="*", help="batch ids to cancel")
    p.add_argument("--out", help="a run folder of `run --batch-api`: its batches")
    p.add_argument("--limit", type=int, default=20, help="how many of the account's batches to list")
    p.set_defaults(func=cmd_batches)

    p = with_settings("watch", "extract files as they appear in a drop folder, until Ctrl-C")
    p.add_argument("drop", help="folder to watch")
    p.add_argument("--out", default="out", help="output folder (default: out)")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between scans")
    p.add_argument("--replay", metavar="DIR", help="answer from recorded exchanges")
    p.add_argument("--quiet", "-q", action="store_true")
    _wait_lock_arg(p)
    p.set_defaults(func=cmd_watch)

    p = with_settings("record", "run against a live model and record every exchange as a fixture")
    p.add_argument("paths", nargs="+")
    p.add_argument("--fixtures", help="where recordings go (default: the checkout's fixtures/recorded)")
    p.add_argument("--out", default="out/record", help="output folder of the recording run")
    p.add_argument("--quiet", "-q", action="store_true")
    _wait_lock_arg(p)
    p.set_defaults(func=cmd_record)

    p = with_settings("fixtures", "check recorded fixtures against the current prompt")
    p.add_argument("action", choices=["check"])
    p.add_argument("paths", nargs="*", help="articles to check (default: the checkout's seeds/)")
    p.add_argument("--fixtures", help="recordings folder (default: the checkout's fixtures/recorded)")
    p.set_defaults(func=cmd_fixtures)

    p = with_settings("prompt", "show the exact messages an article's requests send, with tokens")
    p.add_argument("action", choices=["show"])
    p.add_argument("article", help="an article file (.txt .md .html .json .jsonl)")
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

    p = with_settings("cache", "response cache: stats or clear")
    p.add_argument("action", choices=["stats", "clear"])
    p.set_defaults(func=cmd_cache)

    p = with_settings(
        "serve",
        "the HTTP API: extract, jobs, results, metrics (needs extractor[serve])",
        "Settings",
        "ServiceSettings",
    )
    p.add_argument("--replay", metavar="DIR", help="answer from recorded exchanges instead of a live model")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("schemas", help="write (or --check) the JSON Schemas in schemas/")
    p.add_argument("--out", help="folder (default: the package's schemas/, i.e. the checkout's)")
    p.add_argument("--check", action="store_true", help="exit 1 if the files differ from the models")
    p.set_defaults(func=cmd_schemas)
    return parser
