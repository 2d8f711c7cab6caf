"""The ``extractor`` command: a thin layer over the library, and all of its terminal presentation.

``parser`` (the commands and their arguments), ``options`` (the settings' flags, generated from
``extractor.config.Settings``, and the settings and extractor they make), ``extract`` / ``outputs`` /
``admin`` (the commands), ``progress`` (log lines and the progress bar of a run), ``tables`` (the run
summary and the evaluation's tables), ``common`` (the checkout's defaults, the review page).

Exit codes: 0 = everything ok, 1 = some articles (or checks) failed, 2 = usage or configuration error
(or the output folder is busy), 130 / 143 = a run stopped by Ctrl-C / SIGTERM before every article was
done.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from extractor.cli.options import error_line
from extractor.cli.parser import build_parser
from extractor.errors import ConfigError, ExtractorError, FolderBusyError

__all__ = ["build_parser", "main"]


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
        print(f"extractor: configuration error: {error_line(exc)}", file=sys.stderr)
        return 2
    except ExtractorError as exc:
        print(f"extractor: {type(exc).__name__}: {error_line(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("extractor: interrupted", file=sys.stderr)
        return 130
