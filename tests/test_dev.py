"""dev.py's browser install: a failed install where it should work fails `dev.py test`; elsewhere the
browser tests skip and say why. Nothing is installed or run here: apt-get and the steps are faked."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT


@pytest.fixture
def dev(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("dev_under_test", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.delenv(module.REQUIRE_BROWSER, raising=False)
    monkeypatch.setattr(module, "ensure_venv", lambda: None)
    return module


class Machine:
    """What dev.py sees: which binaries are on PATH, whether it is root, what apt-get and the steps do."""

    def __init__(self, *, binaries: set[str], root: bool, apt_exit: int = 0, installs: bool = True) -> None:
        self.binaries = set(binaries)
        self.root = root
        self.apt_exit = apt_exit
        self.installs = installs
        self.apt_calls: list[list[str]] = []
        self.steps: list[list[str]] = []

    def which(self, name: str) -> str | None:
        return f"/usr/bin/{name}" if name in self.binaries else None

    def run(self, cmd: list[str], **_: Any) -> subprocess.CompletedProcess[bytes]:
        self.apt_calls.append(cmd)
        if self.apt_exit == 0 and self.installs and "install" in cmd:
            self.binaries |= {"chromium", "chromedriver"}
        return subprocess.CompletedProcess(cmd, self.apt_exit)

    def sh(self, *args: Any, check: bool = True) -> int:
        self.steps.append([str(a) for a in args])
        return 0

    def install(self, dev: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(dev.shutil, "which", self.which)
        monkeypatch.setattr(dev.os, "geteuid", lambda: 0 if self.root else 1000)
        monkeypatch.setattr(dev.subprocess, "run", self.run)
        monkeypatch.setattr(dev, "sh", self.sh)


def test_a_failed_install_as_root_with_apt_fails_the_test_command(
    dev: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = Machine(binaries={"apt-get"}, root=True, apt_exit=100)
    machine.install(dev, monkeypatch)
    assert dev.test(["-q"]) == 1
    assert machine.steps == []  # no lint, no pytest: a green run without the page tests is impossible
    err = capsys.readouterr().err
    assert err.startswith("dev.py test: error: `apt-get update -qq` failed (exit 100)")
    assert "browser tests cannot run" in err
    assert dev.REQUIRE_BROWSER not in os.environ


def test_an_install_that_leaves_no_browser_on_path_fails_too(
    dev: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = Machine(binaries={"apt-get"}, root=True, installs=False)
    machine.install(dev, monkeypatch)
    assert dev.test([]) == 1 and machine.steps == []
    assert [c[:2] for c in machine.apt_calls] == [["apt-get", "update"], ["apt-get", "install"]]
    assert "still not on PATH" in capsys.readouterr().err


def test_an_install_as_root_makes_the_browser_tests_required(
    dev: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    machine = Machine(binaries={"apt-get"}, root=True)
    machine.install(dev, monkeypatch)
    assert dev.test(["-q"]) == 0
    assert machine.steps[-1][-3:] == ["-m", "pytest", "-q"]
    assert os.environ[dev.REQUIRE_BROWSER] == "1"


@pytest.mark.parametrize(
    ("binaries", "root", "why"),
    [({"apt-get"}, False, "not running as root"), (set(), True, "no apt-get")],
)
def test_where_it_cannot_install_the_tests_run_and_the_browser_tests_skip_saying_why(
    dev: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    binaries: set[str],
    root: bool,
    why: str,
) -> None:
    machine = Machine(binaries=binaries, root=root)
    machine.install(dev, monkeypatch)
    assert dev.test([]) == 0
    assert machine.apt_calls == [] and len(machine.steps) == 5
    assert f"cannot install them ({why}): browser tests will skip" in capsys.readouterr().out
    assert dev.REQUIRE_BROWSER not in os.environ


def _import_browser_helper(path: str, require: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "EXTRACTOR_REQUIRE_BROWSER"}
    env |= {"PATH": path, "PYTHONPATH": str(ROOT)}
    if require:
        env["EXTRACTOR_REQUIRE_BROWSER"] = "1"
    code = "import tests.browser as b; print(b.SKIP_REASON)"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )


def test_browser_tests_skip_naming_what_is_missing_and_fail_when_required(tmp_path: Path) -> None:
    (tmp_path / "chromium").write_text("#!/bin/sh\n", encoding="utf-8")
    (tmp_path / "chromium").chmod(0o755)
    skipped = _import_browser_helper(str(tmp_path), require=False)
    assert skipped.returncode == 0, skipped.stderr
    assert skipped.stdout.strip().endswith("not found: chromedriver")
    required = _import_browser_helper(str(tmp_path), require=True)
    assert required.returncode != 0
    assert "browser tests are required here (EXTRACTOR_REQUIRE_BROWSER=1)" in required.stderr
