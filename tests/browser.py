"""Headless Chromium for tests, driven by selenium with the system chromedriver (never a downloaded one)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
_MISSING = [name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not path]
SKIP_REASON = (
    None
    if not _MISSING
    else "needs the chromium and chromedriver binaries on PATH (Debian: apt-get install chromium "
    f"chromium-driver; `python3 dev.py test` does it when run as root); not found: {', '.join(_MISSING)}"
)
if SKIP_REASON and os.environ.get("EXTRACTOR_REQUIRE_BROWSER") == "1":
    # dev.py test found or installed the browser: the page tests must run, never skip.
    raise RuntimeError(f"browser tests are required here (EXTRACTOR_REQUIRE_BROWSER=1) but {SKIP_REASON}")
requires_browser = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[WebDriver]:
    """A headless Chromium WebDriver with browser console logging; quit on exit."""
    assert CHROMIUM, SKIP_REASON
    assert CHROMEDRIVER, SKIP_REASON
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-extensions",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
        ):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # An explicit driver path: selenium-manager (which would download a driver) never runs.
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()
