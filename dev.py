#!/usr/bin/env python3
"""The project's two commands, runnable with nothing but Python 3.11+.

    python3 dev.py run     extract seeds/ offline (recorded responses) into out/seeds and print the summary
    python3 dev.py test    lint (ruff), types (mypy --strict), layering (import-linter) and the pytest suite
    python3 dev.py serve   the HTTP API (extractor serve [flags]; needs OPENAI_API_KEY like a live run)

Each command first creates .venv/ and installs the project with its dev, serve, export and ray extras
(once; again when pyproject.toml changes). `test` also installs Debian's chromium + chromium-driver for
the review-page browser tests when it can (root + apt-get), and fails if that install fails; where it
cannot (not root, no apt-get), those tests skip and say why.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"


def sh(*args: str | Path, check: bool = True) -> int:
    print("+", " ".join(str(a) for a in args), flush=True)
    return subprocess.run([str(a) for a in args], cwd=ROOT, check=check).returncode


def ensure_venv() -> None:
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    if not (BIN / "python").exists():
        venv.EnvBuilder(with_pip=True).create(VENV)
    sh(BIN / "python", "-m", "pip", "install", "-q", "--upgrade", "pip")
    sh(BIN / "python", "-m", "pip", "install", "-q", "-e", ".[dev,serve,export,ray]")
    STAMP.write_text(want)


REQUIRE_BROWSER = "EXTRACTOR_REQUIRE_BROWSER"  # tells tests/browser.py to fail, not skip, without one


class BrowserInstallError(Exception):
    """Chromium could have been installed here (root + apt-get) but was not."""


def _browser_found() -> bool:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    return bool(chromium and shutil.which("chromedriver"))


def ensure_browser() -> str | None:
    """Make chromium + chromedriver available for the review-page browser tests.

    Returns None when they are on PATH (found, or installed with apt-get as root), else why the browser
    tests will skip. Raises BrowserInstallError when this is root with apt-get and the install failed:
    there the tests must run, so a broken install must not pass as a skip.
    """
    if _browser_found():
        return None
    if os.name != "posix" or os.geteuid() != 0:
        why = "not running as root"
    elif not shutil.which("apt-get"):
        why = "no apt-get"
    else:
        why = ""
    if why:
        note = f"chromium/chromedriver not on PATH, cannot install them ({why})"
        print(f"note: {note}: browser tests will skip", flush=True)
        return why
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]
    for cmd in (["apt-get", "update", "-qq"], install):
        print("+", " ".join(cmd), flush=True)
        code = subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL).returncode
        if code != 0:
            raise BrowserInstallError(
                f"`{' '.join(cmd)}` failed (exit {code}), so the review-page browser tests cannot run; "
                "fix the package install (network, apt sources) or install chromium and chromedriver "
                "yourself (as a non-root user without them, the browser tests skip instead)"
            )
    if not _browser_found():
        raise BrowserInstallError(
            "apt-get installed chromium and chromium-driver, but the chromium and chromedriver binaries are "
            "still not on PATH"
        )
    return None


def run(argv: list[str]) -> int:
    ensure_venv()
    args = argv or ["seeds/", "--out", "out/seeds"]
    return sh(BIN / "extractor", "run", *args, check=False)


def serve(argv: list[str]) -> int:
    ensure_venv()
    return sh(BIN / "extractor", "serve", *argv, check=False)


def test(argv: list[str]) -> int:
    ensure_venv()
    try:
        if ensure_browser() is None:
            os.environ[REQUIRE_BROWSER] = "1"
    except BrowserInstallError as exc:
        print(f"dev.py test: error: {exc}", file=sys.stderr, flush=True)
        return 1
    steps: list[list[str | Path]] = [
        [BIN / "ruff", "check", "."],
        [BIN / "ruff", "format", "--check", "."],
        [BIN / "mypy", "--strict", "src"],
        [BIN / "lint-imports"],
        [BIN / "python", "-m", "pytest", *argv],
    ]
    for step in steps:
        if sh(*step, check=False) != 0:
            return 1
    return 0


def main() -> int:
    commands = {"run": run, "test": test, "serve": serve}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
