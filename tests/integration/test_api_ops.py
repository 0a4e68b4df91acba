"""Issue #22: `/readyz` and the operational gauges of `/metrics` over a real
database: the event store and projections of a rich marketplace day, a relay's
stored position, projector positions, and heartbeats as the processes write
them (`settlement.infra.heartbeats`), some made stale on purpose."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from eventsourcing.postgres import PostgresApplicationRecorder
from fastapi.testclient import TestClient
from psycopg import sql

from settlement.api.app import ApiConfig, create_app
from settlement.api.database import DatabaseLimits, Db
from settlement.api.metrics.catalogue import CATALOGUE, COUNTER
from settlement.api.queries.deadlines import deadlines_query
from settlement.api.queries.safeguarding import safeguarding
from settlement.application.app import SettlementApplication
from settlement.infra import heartbeats
from settlement.infra.config import parse_api_tokens
from settlement.infra.postgres import pg_env
from settlement.projections.storage import schema
from settlement.relay.positions import RelayPositions
from support.api import AUDITOR_TOKEN, START, TOKENS, Populated, populated_database
from support.processes import wait_for

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
LATE = START + timedelta(days=100)  # past every 60-day deadline of the day
SHORT_BY = Decimal(1000)  # taken off the safeguarded JPY cash
CHILDREN = {"relay": {"status": "backing_off", "restarts": 3, "restart_delay_s": 4.0},
            "timers": {"status": "running", "restarts": 0, "restart_delay_s": 0.0}}


@pytest.fixture(scope="module")
def seeded(pg_server: str) -> Iterator[Populated]:
    """The day, with a relay 7 behind for 10 minutes, a projector group, and the
    processes' heartbeats (the relay's gone silent), and JPY cash short."""
    with populated_database(pg_server) as db:
        app = SettlementApplication(pg_env(db.url))
        try:
            assert isinstance(app.recorder, PostgresApplicationRecorder)
            relay = RelayPositions(app.recorder)
            relay.create_table()
            relay.reset("settlement", db.events - 7)
        finally:
            app.close()
        with psycopg.connect(db.url, autocommit=True) as conn:
            conn.execute("UPDATE settlement_relay_positions SET updated_at = now() - "
                         "interval '600 s'")
            conn.execute("INSERT INTO projections.positions VALUES "
                         "('settlement-projections', 'events', 0, 10, %s), "
                         "('settlement-projections', 'events', 1, 4, 3)", (db.events - 2,))
            heartbeats.create_table(conn)
            heartbeats.beat(conn, "settlement-ingest-1", progressed=True, lag=12)
            heartbeats.beat(conn, "relay", progressed=True, lag=7)
            heartbeats.beat(conn, "timers", progressed=True)
            heartbeats.beat(conn, "supervisor", progressed=False,
                            detail={"children": CHILDREN})
            conn.execute("UPDATE settlement_heartbeats SET beat_at = now() - interval '90 s', "
                         "progress_at = now() - interval '90 s' WHERE part = 'relay'")
            conn.execute("UPDATE settlement_heartbeats SET progress_at = now() - "
                         "interval '45 s' WHERE part = 'timers'")
            # Cash also covers the platform's revenue: take that surplus and SHORT_BY.
            jpy = safeguarding(conn, "projections", "JPY")
            conn.execute("UPDATE projections.balances SET debits = debits - %s "
                         "WHERE account = 'assets:safeguarded_cash' AND currency = 'JPY'",
                         (jpy.cash - jpy.obligations + SHORT_BY,))
        yield db


def client_at(url: str, now: datetime) -> TestClient:
    return TestClient(create_app(ApiConfig(url, TOKENS, now=lambda: now)))


@pytest.fixture(scope="module")
def late(seeded: Populated) -> Iterator[TestClient]:
    with client_at(seeded.url, LATE) as client:
        yield client
    client.app.state.close()  # type: ignore[attr-defined]


def samples(text: str) -> dict[str, float]:
    """`name{labels}` → value of every sample in a Prometheus text answer."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_readyz_reports_each_part_and_what_is_stalled(late: TestClient,
                                                      seeded: Populated) -> None:
    response = late.get("/readyz")  # no token, as /healthz
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "degraded"
    assert body["head"] == seeded.events
    assert (body["ingest_lag"], body["relay_lag"], body["projector_lag"]) == (12, 7, 2)
    assert 44 <= body["last_timer_pass_age_s"] < 60
    assert body["problems"] == [
        "relay: no heartbeat for 90 s", "supervisor: backing off restarting relay",
        "relay settlement: 7 events not published, no progress for 600 s"]
    assert {p["part"]: p["problem"] is None for p in body["parts"]} == {
        "relay": False, "settlement-ingest-1": True, "supervisor": False, "timers": True}
    assert body["children"][0] == {"name": "relay", **CHILDREN["relay"]}


def test_readyz_is_503_until_the_projections_exist_then_ok_without_heartbeats(
        database_url: str) -> None:
    app = create_app(ApiConfig(database_url, TOKENS))
    with TestClient(app) as client:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "projections_unavailable"
        assert response.headers["retry-after"] == "5"
        with psycopg.connect(database_url, autocommit=True) as conn:
            schema.create(conn, schema.LIVE_SCHEMA)
        body = client.get("/readyz").json()
        assert (body["status"], body["head"], body["parts"], body["relays"]) == ("ok", 0, [], [])
        assert client.get("/metrics").status_code == 200
    app.state.close()


def test_metrics_expose_exactly_the_catalogue(late: TestClient) -> None:
    text = late.get("/metrics").text
    families = {line.split()[2]: line.split()[3] for line in text.splitlines()
                if line.startswith("# TYPE")}
    # A counter's TYPE line names it with or without `_total`, by client version.
    exposed = {name + "_total" if kind == COUNTER and not name.endswith("_total") else name
               for name, kind in families.items()}
    assert exposed == set(CATALOGUE)


def test_metrics_show_lags_ages_and_children(late: TestClient, seeded: Populated) -> None:
    found = samples(late.get("/metrics").text)
    assert found['settlement_relay_lag{relay="settlement"}'] == 7
    assert found['settlement_relay_progress_age_seconds{relay="settlement"}'] >= 600
    assert found['settlement_projector_position{projector="settlement-projections"}'] == \
        seeded.events - 2
    assert found['settlement_projector_lag{projector="settlement-projections"}'] == 2
    assert found['settlement_part_lag{kind="ingest",part="settlement-ingest-1"}'] == 12
    assert found['settlement_part_heartbeat_age_seconds{kind="relay",part="relay"}'] >= 90
    assert 45 <= found["settlement_timers_last_pass_age_seconds"] < 60
    assert found['settlement_supervisor_child_backing_off{child="relay"}'] == 1
    assert found['settlement_supervisor_child_backing_off{child="timers"}'] == 0
    assert found['settlement_supervisor_child_restarts{child="relay"}'] == 3
    assert found['settlement_safeguarding_shortfall{currency="JPY"}'] == float(SHORT_BY)
    assert found['settlement_safeguarding_shortfall{currency="USD"}'] == 0


def test_deadline_gauges_count_what_receivables_call_overdue_and_due_soon(
        late: TestClient, seeded: Populated) -> None:
    # The API's own verdict, late enough that every unpaid claim is overdue.
    unpaid = {currency: [row for row in late.get(
        "/v1/receivables", params={"currency": currency, "limit": 1000},
        headers=AUDITOR).json()["rows"] if row["overdue"]] for currency in ("JPY", "USD")}
    assert all(unpaid.values())
    found = samples(late.get("/metrics").text)
    for currency, rows in unpaid.items():
        assert found[f'settlement_receivables_overdue{{currency="{currency}"}}'] == len(rows)
        assert found[f'settlement_receivables_overdue_amount{{currency="{currency}"}}'] == \
            float(sum(Decimal(row["amount"]) for row in rows))
    # Three days before the first deadline: it and those within a week are due soon.
    every = [row for rows in unpaid.values() for row in rows]
    soon = min(datetime.fromisoformat(row["due_by"]) for row in every) - timedelta(days=3)
    expected = [row for row in every
                if datetime.fromisoformat(row["due_by"]) <= soon + timedelta(days=7)]
    with client_at(seeded.url, soon) as early:
        found = samples(early.get("/metrics").text)
    early.app.state.close()  # type: ignore[attr-defined]
    assert sum(value for key, value in found.items()
               if key.startswith("settlement_receivables_due_soon{")) == len(expected) > 0
    assert not any(value for key, value in found.items()
                   if key.startswith("settlement_receivables_overdue{"))


def test_open_claims_are_read_through_the_partial_index(seeded: Populated) -> None:
    with psycopg.connect(seeded.url, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")  # the table is tiny: ask what it can use
        explained = conn.execute(sql.SQL("EXPLAIN ") + deadlines_query("projections"),
                                 {"now": LATE, "horizon": LATE}).fetchall()
    plan = [str(row[0]) for row in explained]
    assert any("receivables_3" in line for line in plan), plan


def test_the_chain_gauge_follows_the_last_verification(seeded: Populated) -> None:
    with client_at(seeded.url, LATE) as client:
        # The first scrape starts a verification in the background ...
        assert samples(client.get("/metrics").text).get("settlement_audit_chain_ok", 1) == 1
        wait_for(lambda: "settlement_audit_chain_ok" in samples(client.get("/metrics").text),
                 "the background verification", timeout_s=30)
        found = samples(client.get("/metrics").text)
        assert found["settlement_audit_chain_ok"] == 1
        assert found["settlement_audit_chain_events_checked"] == seeded.events
        # ... and a verification an auditor asks for updates it too.
        with psycopg.connect(seeded.url, autocommit=True) as conn:
            edit(conn, "55000", "56000")
            try:
                assert client.get("/v1/audit/verify", headers=AUDITOR).json()["ok"] is False
                assert samples(client.get("/metrics").text)["settlement_audit_chain_ok"] == 0
            finally:
                edit(conn, "56000", "55000")
    client.app.state.close()  # type: ignore[attr-defined]


def edit(conn: psycopg.Connection[Any], old: str, new: str) -> None:
    conn.execute("UPDATE settlement_events SET state = convert_to(replace(convert_from("
                 "state, 'UTF8'), %s, %s), 'UTF8') WHERE notification_id = 3", (old, new))


def test_a_token_configured_by_its_digest_is_accepted(seeded: Populated) -> None:
    digest = hashlib.sha256(AUDITOR_TOKEN.encode()).hexdigest()
    tokens = parse_api_tokens(f"sha256:{digest}:auditor,plain-finance:finance")
    app = create_app(ApiConfig(seeded.url, tokens))
    with TestClient(app) as client:
        for token, status in ((AUDITOR_TOKEN, 200), (digest, 401), (f"sha256:{digest}", 401)):
            response = client.get("/v1/audit/events", headers={
                "Authorization": f"Bearer {token}"})
            assert response.status_code == status, token
        finance = {"Authorization": "Bearer plain-finance"}
        assert client.get("/v1/payouts", headers=finance).status_code == 200
        assert client.get("/v1/audit/events", headers=finance).status_code == 403
    app.state.close()


def test_a_statement_past_its_timeout_answers_503_and_the_next_request_is_served(
        seeded: Populated) -> None:
    limits = DatabaseLimits(statement_timeout_ms=200)
    app = create_app(ApiConfig(seeded.url, TOKENS, limits=limits))

    @app.get("/slow")  # a read slower than any the API makes, on the API's own pool
    def slow(db: Db) -> dict[str, str]:
        with db.connection() as conn:
            conn.execute("SELECT pg_sleep(5)")
        return {}

    with TestClient(app) as client:
        started = time.monotonic()
        response = client.get("/slow")
        assert time.monotonic() - started < 3
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "database_unavailable"
        assert response.headers["retry-after"] == "5"
        # The connection was fine, only the statement too slow: nothing fails fast.
        assert client.get("/readyz").status_code == 200
    app.state.close()
