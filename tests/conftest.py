"""Shared test fixtures: a network guard, an isolated environment, and a fake model.

The network guard makes any connection (or DNS lookup) to a non-loopback address fail loudly, so a
request that escapes respx / the replay transport can never reach a real API.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from extractor.llm import Completion
from extractor.models import ArticleExtraction, Usage
from tests.service import fake_endpoint, service  # noqa: F401 - session fixtures of the service tests

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT / "seeds"
FIXTURES = ROOT / "fixtures"


class NetworkBlocked(RuntimeError):
    """Raised when a test tries to reach a non-loopback address."""


def _is_loopback(host: Any) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _guard_address(address: Any) -> None:
    if isinstance(address, tuple) and not _is_loopback(address[0]):
        raise NetworkBlocked(f"test tried to reach {address[0]}:{address[1]}; tests must not use the network")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _guard_address(address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _guard_address(address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_loopback(host):
        raise NetworkBlocked(f"test tried to resolve {host!r}; tests must not use the network")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("live"):
        return  # live tests (pytest -m live, with a real key) are the only ones allowed out
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)


def _settings_env() -> tuple[str, ...]:
    """Every environment variable a setting is read from (both settings classes), and EXTRACTOR_CONFIG."""
    from extractor.config import ServiceSettings, Settings, env_name

    found = {env_name(name, cls) for cls in (Settings, ServiceSettings) for name in cls.model_fields}
    return ("EXTRACTOR_CONFIG", *sorted(var for var in found if var))


_SETTINGS_ENV = _settings_env()


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> None:
    """No real key, no user config, no setting from the shell, and a private cache dir for every test
    (live tests keep the env)."""
    if request.node.get_closest_marker("live"):
        return
    for var in _SETTINGS_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EXTRACTOR_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@dataclass
class FakeModel:
    """A Provider for pipeline tests: answers from a queue and records every request (like llm's fake)."""

    queue: list[ArticleExtraction | dict[str, Any] | Exception] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage = field(default_factory=lambda: Usage(prompt_tokens=100, completion_tokens=50, http_calls=1))

    def enqueue(self, *answers: ArticleExtraction | dict[str, Any] | Exception) -> FakeModel:
        self.queue.extend(answers)
        return self

    async def complete(
        self, messages: list[dict[str, str]], *, key: str, article_id: str, check: Any
    ) -> Completion:
        self.history.append({"messages": messages, "key": key, "article_id": article_id})
        if not self.queue:
            raise AssertionError(f"FakeModel: no answer queued for {article_id}")
        answer = self.queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        extraction = (
            answer if isinstance(answer, ArticleExtraction) else ArticleExtraction.model_validate(answer)
        )
        return Completion(extraction=extraction, usage=self.usage, model="fake-model", attempts=1)

    async def aclose(self) -> None:
        return None


@pytest.fixture
def fake_model() -> FakeModel:
    return FakeModel()


@pytest.fixture
def seed_texts() -> dict[str, str]:
    return {p.stem: p.read_bytes().decode("utf-8") for p in sorted(SEEDS.glob("*.txt"))}
