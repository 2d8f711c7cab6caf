"""Schemathesis: the committed OpenAPI document (schemas/openapi.json) against the running server.

Every operation gets generated requests, valid and invalid; every answer must be a non-5xx status the
document lists for the operation, with the content type and body schema it declares. Examples are capped
so the run stays short.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.service import RunningService

DOCUMENT = Path(__file__).resolve().parents[1] / "schemas" / "openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> dict[str, Any]:
    """A job's NDJSON body: the generated list of articles, one JSON object per line."""
    items = value if isinstance(value, list) else [value]
    return {"data": "".join(json.dumps(item) + "\n" for item in items).encode("utf-8")}


schema = schemathesis.openapi.from_path(str(DOCUMENT))


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,  # the same examples every run: CI does not flake on a new draw
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_the_server_keeps_its_openapi_document(case: Any, service: RunningService) -> None:
    case.call_and_validate(base_url=service.url, checks=CHECKS, timeout=60)
