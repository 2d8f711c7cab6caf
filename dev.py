#!/usr/bin/env python3
"""The project's two commands, runnable with nothing but Python 3.11+.

    python3 dev.py run     extract seeds/ offline (recorded responses) into out/seeds and print the summary
    python3 dev.py test    lint (ruff), types (mypy --strict), layering (import-linter) and the pytest suite
    python3 dev.py serve   the HTTP API (extractor serve [flags]; needs OPENAI_API_KEY like a live run)

Each command first creates .venv/ and installs the project with its dev and serve extras (once; again when
pyproject.toml changes). `test` also installs Debian's chromium + chromium-driver for the review-page
browser tests when it can (root + apt-get); where it cannot, those tests skip and say why.
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
    sh(BIN / "python", "-m", "pip", "install", "-q", "-e", ".[dev,serve]")
    STAMP.write_text(want)


def ensure_browser() -> None:
    if shutil.which("chromium") and shutil.which("chromedriver"):
        return
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        print("note: no chromium/chromedriver and no root apt-get; browser tests will skip", flush=True)
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"]
    for cmd in (["apt-get", "update", "-qq"], install):
        print("+", " ".join(cmd), flush=True)
        if subprocess.run(cmd, env=env, check=False, stdout=subprocess.DEVNULL).returncode != 0:
            print("note: could not install chromium; browser tests will skip", flush=True)
            return


def run(argv: list[str]) -> int:
    ensure_venv()
    args = argv or ["seeds/", "--out", "out/seeds"]
    return sh(BIN / "extractor", "run", *args, check=False)


def serve(argv: list[str]) -> int:
    ensure_venv()
    return sh(BIN / "extractor", "serve", *argv, check=False)


def test(argv: list[str]) -> int:
    ensure_venv()
    ensure_browser()
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
