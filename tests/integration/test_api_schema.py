"""Property-based tests of the finance API from its own OpenAPI document
(schemathesis): requests generated from every operation's parameters, valid and
invalid, on real projections, never answer 5xx and always answer as the
document says (status code, content type, headers, body schema)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from settlement.api.app import ApiConfig, create_app
from support.api import AUDITOR_TOKEN, START, TOKENS, Populated, populated_database

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]


@pytest.fixture(scope="module")
def populated(pg_server: str) -> Iterator[Populated]:
    with populated_database(pg_server) as db:
        yield db


class Delegate:
    """An ASGI app that forwards to the app of the running test: schemathesis reads
    the document when this module is imported, before any database exists (the
    document needs none), and calls the API on the test's database."""

    def __init__(self) -> None:
        self.target: Any = create_app(ApiConfig("postgresql://unused@localhost/unused", TOKENS))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.target(scope, receive, send)


DELEGATE = Delegate()
schema = schemathesis.openapi.from_asgi("/openapi.json", DELEGATE)
# Requests that break the document (wrong types, patterns, ranges, NUL bytes…).
# (`/healthz`, `/readyz` and `/metrics` take no input to break.)
invalid = schemathesis.openapi.from_asgi("/openapi.json", DELEGATE).exclude(
    path=["/healthz", "/readyz", "/metrics"])
invalid.config.generation.update(modes=[GenerationMode.NEGATIVE], allow_x00=True)


@pytest.fixture(scope="module", autouse=True)
def api(populated: Populated) -> Iterator[Any]:
    document_only = DELEGATE.target
    app = create_app(ApiConfig(populated.url, TOKENS, now=lambda: START + timedelta(days=90)))
    DELEGATE.target = app
    yield app
    DELEGATE.target = document_only
    app.state.close()


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {AUDITOR_TOKEN}"}, checks=CHECKS)


@invalid.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_invalid_requests_get_a_documented_error_never_a_5xx(case: Any) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {AUDITOR_TOKEN}"}, checks=CHECKS)
