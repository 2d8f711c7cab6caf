"""``extractor serve``: the HTTP API (FastAPI + uvicorn, the ``serve`` extra) over one shared Extractor.

One process, one ``Extractor`` (response cache, rate limiter, in-flight bound) behind every request:

    POST   /v1/extract               one article -> its ArticleResult, synchronously
    POST   /v1/jobs                  many articles (JSON list, NDJSON, or server-side paths) -> 202 + job
    GET    /v1/jobs                  the jobs, newest first, paged (?limit, ?cursor), by ?state
    GET    /v1/jobs/{id}             status, counts, tokens, cost, progress
    GET    /v1/jobs/{id}/results     NDJSON of the results as they finish (?after=N to resume)
    GET    /v1/jobs/{id}/report      the job's review page
    DELETE /v1/jobs/{id}             a queued or running job: cancel (the articles in flight finish);
                                     a finished one: delete it (folder and results)
    GET    /healthz, /readyz         liveness; readiness (endpoint reachable, or replaying)
    GET    /metrics                  Prometheus text

Jobs are run folders under ``--data-dir`` (``extractor.serve.jobs``): a restarted server resumes them,
and a job's results file is append-only, so ``?after=N`` is a cursor that survives restarts. With
``--job-retention`` finished jobs older than it are deleted, at start-up and periodically. With
``EXTRACTOR_API_TOKEN`` set every ``/v1`` route and ``/metrics`` need ``Authorization: Bearer TOKEN``
(compared in constant time); without one the server listens on a loopback address only. Limits answer
413 (body, article length), 422 (the field that is wrong), 429 + Retry-After (queue full), 404 (unknown
job). SIGTERM: stop accepting, let the articles in flight finish until ``--shutdown-timeout``, hand the
rest back to the job (resumed on the next start), exit. One JSON line per request on stderr.

The package: ``app`` (routes, OpenAPI), ``bodies`` (request parsing), ``middleware`` (body limit, access
log), ``metrics`` (Prometheus), ``service`` (what the routes share), ``jobs`` (no web framework),
``server`` (bind check, socket, uvicorn, SIGTERM). The request and response bodies are
``extractor.serve_models``, outside the package, as the client shares them without the server.
"""

from extractor.config import ServiceSettings
from extractor.serve.app import create_app, openapi_document
from extractor.serve.server import check_bind, run
from extractor.serve.service import Service

__all__ = ["Service", "ServiceSettings", "check_bind", "create_app", "openapi_document", "run"]
