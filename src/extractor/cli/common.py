"""What several commands share: the checkout's default folders, paths as notes show them, the review page."""

from __future__ import annotations

import sys
from pathlib import Path

from extractor.errors import ConfigError
from extractor.resources import checkout_path, data_dir

# Checkout-only defaults: the source checkout's folders, or None for a package installed from a wheel
# (which carries prompts/ and schemas/ but no seeds, recordings or gold annotations).
DEFAULT_FIXTURES = checkout_path("fixtures", "recorded")
DEFAULT_SEEDS = checkout_path("seeds")
DEFAULT_GOLD = checkout_path("fixtures", "gold")
# The JSON Schemas: the checkout's schemas/ (through the package-data symlink), or the installed copy.
SCHEMA_DIR = data_dir("schemas").resolve()


def shown(path: Path | str) -> str:
    """``path`` as a note shows it: relative to the working folder when it lies inside it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def checkout_default(value: str | None, default: Path | None, what: str, flag: str) -> str:
    """``value`` when given; else the checkout's ``default``, said on stderr; else a usage error."""
    if value is not None:
        return value
    if default is None:
        raise ConfigError(
            f"{flag} is required: the default {what} comes with the source checkout, which this "
            "installed package does not have"
        )
    print(f"note: using the source checkout's {what}: {shown(default)}", file=sys.stderr, flush=True)
    return str(default)


def write_report(run_dir: Path, out: Path | None = None) -> Path:
    """The review page, always with its digest section (extractor.review); its note goes to stderr."""
    from extractor.review import write_review_page

    path, note = write_review_page(run_dir, out)
    if note:
        print(f"note: {note}", file=sys.stderr)
    return path
