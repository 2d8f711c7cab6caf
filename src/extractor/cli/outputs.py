"""The commands that read a run folder: report, digest, eval and export."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from extractor.cli import common
from extractor.errors import ConfigError


def cmd_report(args: argparse.Namespace) -> int:
    print(common.write_report(Path(args.dir), Path(args.out) if args.out else None))
    return 0


def cmd_digest(args: argparse.Namespace) -> int:
    from extractor import digest
    from extractor.review import render_digest_text

    path = digest.write_digest(args.dir, aliases_file=args.aliases, out_path=args.out)
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    print(render_digest_text(data))
    print(f"digest: {path}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.console import Console

    from extractor.cli.tables import eval_articles_table, eval_summary_lines, eval_table
    from extractor.evaluate import GoldError, evaluate_path

    args.gold = common.checkout_default(
        args.gold, common.DEFAULT_GOLD, "gold annotations (fixtures/gold)", "--gold"
    )
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
    console.print(eval_table(report, other, labels=("A", "B"), caption=False))
    for line in eval_summary_lines(report, other, labels=("A", "B")):
        console.print(line, highlight=False, soft_wrap=True)
    for label, scored in (("A", report), ("B", other)):
        prefix = f"{label}: " if other is not None else ""
        for warning in scored.warnings if scored is not None else []:
            print(f"warning: {prefix}{warning}", file=sys.stderr)
    if args.per_article:
        for label, scored in (("A", report), ("B", other)):
            if scored is not None:
                table = eval_articles_table(scored)
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
