"""``extractor batches list|cancel``: a run folder's batches, the account's, and cancelling them."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from extractor.batch_api.client import TERMINAL, BatchClient, BatchInfo
from extractor.batch_api.store import STATE_DIR, STATE_FILE, State
from extractor.config import Settings
from extractor.errors import ConfigError

__all__ = ["cancel_batches", "list_batches", "run_folder_batches"]


def run_folder_batches(out_dir: str | Path) -> list[dict[str, Any]]:
    """The submissions a run folder's state records (name, round, batch id, status, counts)."""
    folder = Path(out_dir) / STATE_DIR
    if not (folder / STATE_FILE).exists():
        raise ConfigError(
            f"{out_dir} has no Batch API state ({STATE_DIR}/{STATE_FILE}); was it run with --batch-api?"
        )
    return State(folder).submissions


def list_batches(
    settings: Settings,
    out_dir: str | Path | None = None,
    *,
    limit: int = 20,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[BatchInfo]:
    """The account's latest batches (``limit``), or those of the run folder ``out_dir`` as the API
    describes them now."""

    async def fetch() -> list[BatchInfo]:
        client = BatchClient(settings, transport=transport)
        try:
            if out_dir is None:
                return [BatchInfo.from_api(b) for b in await client.list(limit)]
            subs = [s for s in run_folder_batches(out_dir) if s.get("batch_id")]
            return [BatchInfo.from_api(await client.get(str(s["batch_id"])), str(s["name"])) for s in subs]
        finally:
            await client.aclose()

    return asyncio.run(fetch())


def cancel_batches(
    settings: Settings,
    batch_ids: list[str],
    out_dir: str | Path | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[BatchInfo]:
    """Cancel ``batch_ids``, and with ``out_dir`` every batch of that run folder that has not ended.
    A later ``run --batch-api`` reads what the cancelled batches answered and submits the rest again."""
    wanted = list(batch_ids)
    if out_dir is not None:
        wanted += [
            str(s["batch_id"])
            for s in run_folder_batches(out_dir)
            if s.get("batch_id") and s.get("status") not in TERMINAL and str(s["batch_id"]) not in wanted
        ]
    if not wanted:
        raise ConfigError("nothing to cancel: give batch ids, or --out DIR with batches still running")

    async def cancel() -> list[BatchInfo]:
        client = BatchClient(settings, transport=transport)
        try:
            return [BatchInfo.from_api(await client.cancel(batch_id)) for batch_id in wanted]
        finally:
            await client.aclose()

    return asyncio.run(cancel())
