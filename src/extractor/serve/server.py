"""Running the service: the bind check, the listening socket, uvicorn, and SIGTERM."""

from __future__ import annotations

import ipaddress
import signal
import socket
from types import FrameType
from typing import TextIO

import uvicorn
from prometheus_client import disable_created_metrics

from extractor.config import ServiceSettings, Settings
from extractor.errors import ConfigError
from extractor.serve.app import create_app
from extractor.serve.service import Service

__all__ = ["MIN_TOKEN_CHARS", "check_bind", "run"]

MIN_TOKEN_CHARS = 16


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token, and a token too short to be one."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(
            f"EXTRACTOR_API_TOKEN has {len(token)} characters; use at least {MIN_TOKEN_CHARS} "
            "(e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if token is None and not _is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without authentication: set EXTRACTOR_API_TOKEN (clients then "
            "send `Authorization: Bearer TOKEN`), or keep --host 127.0.0.1"
        )


class _Server(uvicorn.Server):
    """uvicorn's server, telling the service at the first SIGTERM / Ctrl-C so running jobs begin to
    stop while uvicorn drains the connections."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = self.service.loop
        if not self.should_exit and loop is not None:
            loop.call_soon_threadsafe(self.service.begin_shutdown)
        super().handle_exit(sig, frame)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free one); ConfigError when it cannot be."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def server(service: Service) -> uvicorn.Server:
    """The uvicorn server of ``service`` (its ``run(sockets=...)`` serves until SIGTERM / Ctrl-C)."""
    uv_config = uvicorn.Config(
        create_app(service),
        log_level="warning",
        access_log=False,
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=max(1, int(service.config.shutdown_timeout_s)),
    )
    return _Server(uv_config, service)


def run(settings: Settings, config: ServiceSettings, log: TextIO | None = None) -> int:
    """Serve ``settings``' extractor as ``config`` says until SIGTERM / Ctrl-C; returns the exit code (0
    after a clean stop)."""
    check_bind(config.host, config.api_token)
    if config.allow_paths is not None:
        allowed, data = config.allow_paths.resolve(), config.data_dir.resolve()
        if not allowed.is_dir():
            raise ConfigError(f"--allow-paths {config.allow_paths}: not a folder")
        if data == allowed or allowed in data.parents or data in allowed.parents:
            raise ConfigError("--data-dir and --allow-paths must not contain one another")
    try:
        (config.data_dir / "jobs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the data dir {config.data_dir}: {exc.strerror or exc}") from exc
    # No *_created series: they double the scrape for nothing a dashboard uses.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    service = Service(settings, config, log)
    service.extractor.check_ready()
    sock = listen(config.host, config.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    auth = "bearer token" if config.api_token else "none"
    message = f"listening on http://{shown}:{port}"
    if config.api_token is None:
        message += " (no EXTRACTOR_API_TOKEN: no authentication, so loopback only)"
    service.listening = {
        "url": f"http://{shown}:{port}",
        "auth": auth,
        "model": settings.model,
        "endpoint": settings.public_endpoint
        if settings.replay_dir is None
        else f"replay {settings.replay_dir}",
        "data_dir": str(config.data_dir),
        "job_retention_s": config.job_retention_s,
        "message": message,
    }
    uv_server = server(service)
    # uvicorn re-raises the signal it caught once it has stopped; a no-op handler makes that a clean exit.
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        uv_server.run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    return 0 if uv_server.started else 1
