"""Runs through OpenAI's Batch API (``extractor run --batch-api``): half the price, answers within 24 h.

Also served by Azure OpenAI and by vLLM's batch runner (any endpoint with ``/files`` and ``/batches``).
One run goes through these steps, each resumable from what it keeps in ``OUT/batch_api/``
(``state.json``: the submissions and their batch ids; ``requests.sqlite``: one row per request with its
latest answer; the input, output and error files):

1. resume: batches an earlier, stopped run submitted are polled to their end and read in -- never
   submitted again (a submission that was being created when the run stopped is looked up by its
   metadata before it is created);
2. collect and submit: every request the drop needs (one per chunk, rendered as the direct path renders
   it, body built by ``extractor.llm.request_body``) that the response cache, results.jsonl and earlier
   batches do not answer is written to an input JSONL (``custom_id`` = the article's sha256, with ``-N``
   for chunk N of a chunked article), uploaded and submitted, at most ``batch_max_requests`` per batch;
3. poll with backoff (first after ``batch_poll_s``, then each wait ``batch_poll_backoff`` times longer,
   up to ``batch_poll_max_s``) until every batch has ended (completed, expired, failed or cancelled),
   then download its output and error files. With ``batch_poll_timeout_s`` the run gives up once its
   waits add up to that long (BatchPollTimeout): the batches keep running, the next run resumes them;
4. re-asks: answers that fail validation or grounding are re-asked with instructor's re-ask messages in
   one follow-up batch per round (at most ``reasks`` rounds), or directly (``reask_direct``). An answer
   cut off at max_tokens (``finish_reason: "length"``) is asked again as the direct path does: the same
   request with ``max_tokens_retry`` (kept for that request's later re-asks), in the next round or
   directly; with no round left, or cut off again, its article fails with a TruncatedOutputError that
   names finish_reason=length;
5. the normal run (``extractor.batch.run_batch``) with a provider that answers from the batches, so
   parsing, grounding, rejects, the cache, results.jsonl and run.json are the direct path's. run.json's
   cost prices batch tokens at ``Settings.batch_price()`` and direct re-asks at the direct price.

A request whose batch failed or expired before it was answered gets an error result; the next run
submits it again (error results are retried).

The package: ``client`` (the ``/files`` and ``/batches`` routes, ``BatchInfo``), ``store`` (what the run
folder keeps: ``state.json`` and ``requests.sqlite``), ``inputs`` (input JSONL parts, output and error
file lines), ``run`` (steps 1-5, ``run_batch_api``) and ``listing`` (``batches list|cancel``).
"""

from __future__ import annotations

from extractor.batch_api.client import TERMINAL, BatchClient, BatchInfo, BatchPollTimeout
from extractor.batch_api.listing import cancel_batches, list_batches, run_folder_batches
from extractor.batch_api.run import run_batch_api
from extractor.batch_api.store import STATE_DIR

__all__ = [
    "STATE_DIR",
    "TERMINAL",
    "BatchClient",
    "BatchInfo",
    "BatchPollTimeout",
    "cancel_batches",
    "list_batches",
    "run_batch_api",
    "run_folder_batches",
]
