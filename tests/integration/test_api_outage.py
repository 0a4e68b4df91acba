"""Issue #22: the finance API through a PostgreSQL outage. A private server (the
session's is shared) is stopped as a crash would stop it and started again: in
between every read answers 503 `database_unavailable` with `Retry-After`, never
500, liveness stays 200 and readiness 503; afterwards every read answers 200
again by itself, both from an API whose pool was open before the outage and from
one whose first request came during it (the pool that used to be closed for good)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from settlement.api.app import ApiConfig, create_app
from settlement.api.database import DatabaseLimits
from settlement.application.app import SettlementApplication
from settlement.infra.postgres import pg_env
from settlement.projections.storage import schema
from support.api import AUDITOR_TOKEN, START, TOKENS
from support.outage import PrivatePostgres, private_postgres_fixture
from support.processes import wait_for
from support.projections import rich_day, store

__all__ = ["private_postgres_fixture"]  # the fixture `private_postgres`, used by name
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
READS = ("/v1/balances", "/v1/trial-balance", "/v1/receivables", "/v1/safeguarding",
         "/v1/payouts", "/v1/audit/events", "/v1/audit/verify", "/readyz", "/metrics")
# Short waits so the test takes seconds; the mechanism is the production one.
FAST = DatabaseLimits(connect_timeout_s=2, checkout_timeout_s=1.0, reconnect_timeout_s=2.0,
                      unreachable_hold_s=0.5)
OUTAGE_S = 3.0  # longer than reconnect_timeout_s: the pool's attempts give up meanwhile
RECOVERY_S = 20.0


@pytest.fixture
def clients(private_postgres: PrivatePostgres) -> Iterator[tuple[TestClient, TestClient]]:
    # A few stored events, so verification reads the event store through
    # eventsourcing's own pool too (its connections must survive the restart).
    app = SettlementApplication(pg_env(private_postgres.url))
    try:
        store(app, rich_day(START, "t")[:6])
    finally:
        app.close()
    with psycopg.connect(private_postgres.url, autocommit=True) as conn:
        schema.create(conn, schema.LIVE_SCHEMA)
    warm, cold = (create_app(ApiConfig(private_postgres.url, TOKENS, limits=FAST))
                  for _ in range(2))
    with TestClient(warm) as warm_client, TestClient(cold) as cold_client:
        yield warm_client, cold_client
    for app in (warm, cold):
        app.state.close()


def answers(client: TestClient) -> dict[str, tuple[int, str | None]]:
    """Each read's status and error code."""
    out = {}
    for path in READS:
        response = client.get(path, headers=AUDITOR)
        code = response.json()["error"]["code"] if response.status_code != 200 else None
        if response.status_code == 503:
            assert response.headers["retry-after"] == "5", path
        out[path] = (response.status_code, code)
    return out


def test_reads_answer_503_during_an_outage_and_200_again_by_themselves(
        private_postgres: PrivatePostgres, clients: tuple[TestClient, TestClient]) -> None:
    warm, cold = clients
    assert answers(warm) == {path: (200, None) for path in READS}
    assert warm.get("/v1/audit/verify", headers=AUDITOR).json()["events_checked"] == 6

    private_postgres.stop()
    started = time.monotonic()
    unavailable = {path: (503, "database_unavailable") for path in READS}
    for client in (warm, cold):
        assert answers(client) == unavailable
        assert client.get("/healthz").json() == {"status": "ok"}
    time.sleep(max(OUTAGE_S - (time.monotonic() - started), 0))
    for client in (warm, cold):
        assert answers(client) == unavailable

    private_postgres.start()
    for client in (warm, cold):
        def recovered(client: TestClient = client) -> bool:
            seen = answers(client)
            assert set(seen.values()) <= {(200, None), (503, "database_unavailable")}, seen
            return all(status == 200 for status, _ in seen.values())

        wait_for(recovered, "every read to answer 200 again", timeout_s=RECOVERY_S)
