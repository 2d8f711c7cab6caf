"""The commands around the extraction: cache stats/clear, serve (the HTTP API) and schemas."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from extractor.cli import common
from extractor.cli.options import load_declared, load_settings, replay_settings
from extractor.errors import ConfigError
from extractor.resources import checkout_root


def cmd_cache(args: argparse.Namespace) -> int:
    from extractor.cache import open_cache

    settings = load_settings(args)
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


def cmd_serve(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("fastapi") is None or importlib.util.find_spec("uvicorn") is None:
        raise ConfigError("extractor serve needs the serve extra: pip install 'extractor[serve]'")
    from extractor.serve import ServiceSettings, run

    settings = load_settings(args)
    if args.replay is not None:
        if not Path(args.replay).is_dir():
            raise ConfigError(f"--replay {args.replay}: no recordings folder there")
        settings = replay_settings(args, settings, Path(args.replay))
    elif not settings.api_key:
        raise ConfigError(
            "no API key: set OPENAI_API_KEY (any value for a local server), or answer from recordings "
            "with --replay DIR"
        )
    return run(settings, load_declared(args, ServiceSettings))


def _serve_installed() -> bool:
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
    out = Path(args.out) if args.out is not None else common.SCHEMA_DIR
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
