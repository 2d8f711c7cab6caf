"""Run the real ``extractor serve`` for tests: a subprocess on 127.0.0.1 (random port) against a local fake
OpenAI-compatible endpoint (benchmarks/fake_server.py in a thread of the test process).

``start_service`` returns once the server has logged its ``listening`` line; ``RunningService.stop`` sends
SIGTERM and returns the exit code and how long the server took to exit. The session fixtures
``fake_endpoint`` and ``service`` (imported by tests/conftest.py) are one fake endpoint and one server for
every test that needs no special flags.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
fake_server: Any = importlib.import_module("fake_server")

# A recognisable API key: tests assert it never shows up in a log line or a response.
API_KEY = "sk-test-SERVICE-do-not-leak-0123456789abcdef"
STARTUP_TIMEOUT_S = 120.0


@dataclass
class RunningService:
    url: str
    proc: subprocess.Popen[str]
    data_dir: Path
    lines: list[str] = field(default_factory=list)
    pump: threading.Thread | None = None

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """The server's JSON log lines (``name``: only that event)."""
        found = []
        for line in list(self.lines):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and (name is None or data.get("event") == name):
                found.append(data)
        return found

    def client(self, token: str | None = None, timeout: float = 60.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> tuple[int, float]:
        """Signal the server; return (exit code, seconds it took to exit)."""
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        elapsed = time.monotonic() - started
        if self.pump is not None:
            self.pump.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code, elapsed


def _pump(stream: Any, sink: list[str]) -> None:
    for line in stream:
        sink.append(line.rstrip("\n"))


def start_service(
    data_dir: Path,
    base_url: str,
    *args: str,
    token: str | None = None,
    cache_dir: Path | None = None,
    env: dict[str, str] | None = None,
) -> RunningService:
    """Start ``extractor serve --port 0`` and wait for its ``listening`` line."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "EXTRACTOR_"))}
    environment.update(
        {
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": base_url,
            "EXTRACTOR_CACHE_DIR": str(cache_dir or data_dir.parent / f"{data_dir.name}-cache"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if token is not None:
        environment["EXTRACTOR_API_TOKEN"] = token
    environment.update(env or {})
    command = [sys.executable, "-m", "extractor", "serve", "--port", "0", "--data-dir", str(data_dir), *args]
    proc = subprocess.Popen(
        command,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=data_dir.parent,
    )
    service = RunningService(url="", proc=proc, data_dir=data_dir)
    assert proc.stdout is not None
    service.pump = threading.Thread(target=_pump, args=(proc.stdout, service.lines), daemon=True)
    service.pump.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        listening = service.events("listening")
        if listening:
            service.url = listening[0]["url"]
            return service
        if proc.poll() is not None:
            service.stop()  # collects the last lines
            raise AssertionError(f"extractor serve exited {proc.returncode}:\n" + "\n".join(service.lines))
        time.sleep(0.05)
    service.stop()
    raise AssertionError("extractor serve did not start:\n" + "\n".join(service.lines))


def wait_for(predicate: Any, timeout: float = 60.0, interval: float = 0.05) -> Any:
    """Poll ``predicate`` until it returns something truthy (which is returned)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        time.sleep(interval)


def wait_job(client: httpx.Client, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll a job until it is done, cancelled or failed; return its status."""

    def finished() -> dict[str, Any] | None:
        status: dict[str, Any] = client.get(f"/v1/jobs/{job_id}").json()
        return status if status["state"] in ("done", "cancelled", "failed") else None

    result: dict[str, Any] = wait_for(finished, timeout=timeout, interval=0.1)
    return result


@pytest.fixture(scope="session")
def fake_endpoint() -> Iterator[str]:
    """A fake OpenAI-compatible endpoint (no latency, no limits): its base URL."""
    with fake_server.run_in_thread(fake_server.ServerConfig()) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def service(fake_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    """One ``extractor serve`` (no token, loopback, default limits, server-side paths under an ``allowed``
    folder holding two articles) for the tests that need nothing special."""
    root = tmp_path_factory.mktemp("service")
    allowed = root / "allowed"
    (allowed / "sub").mkdir(parents=True)
    (allowed / "one.txt").write_text('One article. The mayor said: "We are ready."\n', encoding="utf-8")
    (allowed / "sub" / "two.txt").write_text("Another article. Talks ended on Friday.\n", encoding="utf-8")
    running = start_service(root / "data", fake_endpoint, "--allow-paths", str(allowed))
    yield running
    running.stop()
