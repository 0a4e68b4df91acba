"""The projections on the real broker and PostgreSQL: settlement events published
to Kafka and projected equal a rebuild from the event store, however often they
are delivered and wherever the projector dies; the ledger balances; balances as
of any instant; a broker that lost its topics."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql

from settlement.api.queries import balances as balance_queries
from settlement.api.queries import escrows as escrow_queries
from settlement.api.queries import receivables as receivable_queries
from settlement.application.app import SettlementApplication
from settlement.infra.broker import EmbeddedBroker, ensure_topics
from settlement.infra.config import Settings
from settlement.infra.topics import Topics
from settlement.projections.model.errors import VersionGap
from settlement.projections.rebuild.serial import rebuild
from settlement.projections.storage import schema
from settlement.projections.storage.digest import digest
from settlement.projections.storage.schema import LIVE_SCHEMA, SchemaError
from settlement.projections.storage.store import Store
from settlement.relay.service import Relay
from support.processes import Watched
from support.projections import (
    project,
    project_process,
    publish_events,
    rich_day,
    store,
    stored_cloud_events,
)

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
KILLED = 137
PROCESS_TIMEOUT_S = 120


@pytest.fixture
def group(topic_prefix: str) -> str:
    return f"{topic_prefix}projections"


def history(app: SettlementApplication, days: int = 2) -> list[dict[str, Any]]:
    """Several rich days stored in the event store; their CloudEvents in order."""
    for n in range(days):
        store(app, rich_day(START + timedelta(days=n), f"day{n}"))
    return stored_cloud_events(app)


def rebuilt_digest(app: SettlementApplication, conn: psycopg.Connection[Any]) -> str:
    return rebuild(app, f"rebuilt_{uuid.uuid4().hex[:8]}", conn=conn).digest


def assert_ledger_sound(conn: psycopg.Connection[Any], schema: str = LIVE_SCHEMA) -> None:
    """Per currency: debits equal credits, and safeguarded cash equals every
    obligation plus revenue (SPEC §6); running balances equal their entries."""
    assert balance_queries.unmatched_balances(conn, schema) == []
    currencies = {b.currency for b in balance_queries.balances(conn, schema)}
    assert currencies == {"JPY", "USD"}
    for currency in currencies:
        trial = balance_queries.trial_balance(conn, schema, currency)
        assert trial.balanced and trial.total_debits > 0
        cash = [a.balance for a in trial.accounts if a.account == "assets:safeguarded_cash"]
        owed = sum((a.balance for a in trial.accounts
                    if a.account.startswith(("liabilities:", "revenue:"))), Decimal(0))
        assert cash == [owed], currency


def test_projected_from_kafka_equals_a_rebuild_from_the_event_store(
    app: SettlementApplication, conn: psycopg.Connection[Any], broker: str, topics: Topics,
    group: str,
) -> None:
    events = history(app)
    publish_events(broker, topics.events, events)
    projector = project(conn, broker, topics, group=group, batch_records=50,
                        head=app.recorder.max_notification_id)
    assert Store(conn, LIVE_SCHEMA).event_count() == len(events)
    assert digest(conn, LIVE_SCHEMA) == rebuilt_digest(app, conn)
    assert_ledger_sound(conn)
    snapshot = projector.snapshot()
    assert (snapshot["position"], snapshot["lag"], snapshot["applied"]) == (
        len(events), 0, len(events))
    for job_id in ("day0-project", "day1-usd", "day0-tasks", "day1-split"):
        escrow, summary = app.escrow(job_id), escrow_queries.escrow(conn, LIVE_SCHEMA, job_id)
        assert escrow is not None and summary is not None
        assert (summary["state"], summary["held"], summary["released"], summary["fees"]) == (
            escrow.state, escrow.held.amount, escrow.released.amount, escrow.fees.amount)
        assert {i["item_id"]: i["state"] for i in summary["items"]} == {
            i.item_id: i.state for i in escrow.items.values()}


def test_every_event_delivered_twice_changes_nothing(
    app: SettlementApplication, conn: psycopg.Connection[Any], broker: str, topics: Topics,
    group: str,
) -> None:
    events = history(app, days=1)
    publish_events(broker, topics.events, events)
    publish_events(broker, topics.events, events)
    first = project(conn, broker, topics, group=group, batch_records=9)
    assert (first.metrics.applied, first.metrics.duplicates) == (len(events), len(events))
    clean = digest(conn, LIVE_SCHEMA)
    assert clean == rebuilt_digest(app, conn)
    # Delivered a third time at new offsets, as after a republication: still nothing.
    publish_events(broker, topics.events, events)
    again = project(conn, broker, topics, group=group, batch_records=9)
    assert (again.metrics.applied, again.metrics.duplicates) == (0, len(events))
    assert digest(conn, LIVE_SCHEMA) == clean


@pytest.mark.parametrize("failpoint", ["project.mid_batch", "project.after_db_commit"])
def test_projector_killed_and_restarted_ends_as_a_clean_run(
    app: SettlementApplication, conn: psycopg.Connection[Any], broker: str, topics: Topics,
    settings: Settings, group: str, failpoint: str,
) -> None:
    events = history(app)
    publish_events(broker, topics.events, events)
    killed = project_process(settings, group=group, batch_records=7, failpoints=f"{failpoint}=4")
    killed.wait(PROCESS_TIMEOUT_S)
    assert killed.returncode == KILLED, killed.stderr.read() if killed.stderr else ""
    partial = Store(conn, LIVE_SCHEMA).event_count()
    assert 0 < partial < len(events)
    resumed = Watched(project_process(settings, group=group, batch_records=7))
    out, err = resumed.stop_when(lambda: projected(conn) == len(events))
    assert resumed.process.returncode == 0, err
    metrics = json.loads(out.strip().splitlines()[-1])
    assert metrics["applied"] == len(events) - partial and metrics["lag"] == 0
    assert digest(conn, LIVE_SCHEMA) == rebuilt_digest(app, conn)
    assert_ledger_sound(conn)


def test_two_projectors_in_one_group_apply_every_event_once(
    app: SettlementApplication, conn: psycopg.Connection[Any], broker: str, topics: Topics,
    settings: Settings, group: str,
) -> None:
    first, second = (Watched(project_process(settings, group=group, batch_records=5,
                                             idle_exit_s=8.0)) for _ in range(2))
    for process in (first, second):  # both in the group: the partitions split between them
        process.wait_for("settlement.events/")
    events = history(app, days=3)
    publish_events(broker, topics.events, events)
    outputs = [p.stop_when(lambda: projected(conn) == len(events)) for p in (first, second)]
    assert [p.process.returncode for p in (first, second)] == [0, 0], outputs
    # Each event applied by exactly one of them, whatever the rebalances in between.
    applied = [json.loads(out.strip().splitlines()[-1])["applied"] for out, _ in outputs]
    assert sum(applied) == len(events), applied
    for _, err in outputs:  # both owned partitions at some point
        assert "settlement.events/" in err
    assert digest(conn, LIVE_SCHEMA) == rebuilt_digest(app, conn)
    assert_ledger_sound(conn)


def test_a_lost_event_stops_the_projector_before_anything_after_it(
    app: SettlementApplication, conn: psycopg.Connection[Any], broker: str, topics: Topics,
    group: str,
) -> None:
    events = history(app, days=1)
    lost = next(e for e in events if e["type"] == "settlement.milestone_delivered")
    publish_events(broker, topics.events, [e for e in events if e is not lost])
    with pytest.raises(VersionGap, match=lost["data"]["job_id"]):
        project(conn, broker, topics, group=group, batch_records=1000)
    view = escrow_queries.escrow(conn, LIVE_SCHEMA, lost["data"]["job_id"])
    assert view is None or view["version"] < lost["data"]["version"]


def test_balances_as_of_an_instant_between_two_events(
    app: SettlementApplication, conn: psycopg.Connection[Any],
) -> None:
    history(app, days=1)
    schema = rebuild(app, "as_of_check", conn=conn).schema
    escrow = "liabilities:escrow:day0-project"

    def held(as_of: datetime) -> list[tuple[str, Decimal, Decimal]]:
        rows = balance_queries.balances(conn, schema, account=escrow, as_of=as_of)
        return [(b.account, b.debits, b.credits) for b in rows]

    # m1 (110,000) funded at 09:02, m2 (55,000) at 09:03, m1 released at 09:07.
    m1_funded, m2_funded = START + timedelta(minutes=2), START + timedelta(minutes=3)
    assert held(m1_funded - timedelta(microseconds=1)) == []
    assert held(m1_funded) == [(escrow, Decimal(0), Decimal("110000"))]
    assert held(m1_funded + (m2_funded - m1_funded) / 2) == [(escrow, Decimal(0),
                                                              Decimal("110000"))]
    assert held(m2_funded) == [(escrow, Decimal(0), Decimal("165000"))]
    between = m1_funded + timedelta(seconds=30)
    trial = balance_queries.trial_balance(conn, schema, "JPY", as_of=between)
    assert trial.balanced and trial.total_debits == Decimal("110000")
    # Every account as of the end equals the running balances.
    now = balance_queries.balances(conn, schema)
    assert balance_queries.balances(conn, schema, as_of=START + timedelta(days=400)) == now
    receivables = dict(((r.job_id, r.item_id), r) for r, _ in
                       receivable_queries.receivables(conn, schema, as_of=between))
    assert receivables[("day0-project", "m1")].protected
    assert not receivables[("day0-project", "m2")].protected


def test_after_the_broker_lost_its_topics_projections_converge(
    app: SettlementApplication, conn: psycopg.Connection[Any], topic_prefix: str, group: str,
) -> None:
    topics = Topics(topic_prefix)
    with EmbeddedBroker() as own:
        asyncio.run(ensure_topics(own.bootstrap, [topics.events], partitions=2))
        before = history(app, days=1)
        publish_events(own.bootstrap, topics.events, before)
        project(conn, own.bootstrap, topics, group=group, batch_records=20)
        own.restart()  # every topic and offset is gone
        asyncio.run(ensure_topics(own.bootstrap, [topics.events], partitions=2))
        store(app, rich_day(START + timedelta(days=5), "later"))
        everything = stored_cloud_events(app)
        # The relay republishes from a position the operator chose (here: half-way).
        publish_events(own.bootstrap, topics.events, everything[len(before) // 2:])
        again = project(conn, own.bootstrap, topics, group=group, batch_records=20)
    assert again.metrics.applied == len(everything) - len(before)
    assert Store(conn, LIVE_SCHEMA).event_count() == len(everything)
    assert digest(conn, LIVE_SCHEMA) == rebuilt_digest(app, conn)


def test_a_running_projector_notices_the_broker_lost_its_topics(
    app: SettlementApplication, conn: psycopg.Connection[Any], settings: Settings,
    topic_prefix: str, group: str,
) -> None:
    topics = Topics(topic_prefix)
    with EmbeddedBroker() as own:
        asyncio.run(ensure_topics(own.bootstrap, [topics.events], partitions=2))
        before = history(app, days=1)
        publish_events(own.bootstrap, topics.events, before)
        running = Watched(project_process(replace(settings, kafka_bootstrap=own.bootstrap),
                                          group=group, idle_exit_s=12.0))
        wait_for(lambda: projected(conn) == len(before))
        read = Store(conn, LIVE_SCHEMA).positions(group)  # the partitions it read records of
        own.restart()
        asyncio.run(ensure_topics(own.bootstrap, [topics.events], partitions=2))
        store(app, rich_day(START + timedelta(days=5), "later"))
        everything = stored_cloud_events(app)
        # As the relay does: it publishes on, sees the offsets start again and stops;
        # an operator makes it publish again from a position of their choice.
        publish_events(own.bootstrap, topics.events, everything[len(before):len(before) + 5])
        # It notices in each of those partitions, running: the broker connection came
        # back, and the records before its positions are not the ones it applied.
        running.wait_for(*["projector.partition_replaced"] * len(read))
        publish_events(own.bootstrap, topics.events, everything[len(before) // 2:])
        out, err = running.stop_when(lambda: projected(conn) == len(everything))
    assert running.process.returncode == 0, err
    assert "projector.partition_replaced" in err  # noticed while running, not by a restart
    assert Store(conn, LIVE_SCHEMA).event_count() == len(everything)
    assert digest(conn, LIVE_SCHEMA) == rebuilt_digest(app, conn)


def projected(conn: psycopg.Connection[Any]) -> int:
    """Events in the live projections (0 before the projector created them)."""
    if schema.role_of(conn, LIVE_SCHEMA) != schema.LIVE:
        return 0
    return Store(conn, LIVE_SCHEMA).event_count()


def wait_for(condition: Any, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_rebuild_replaces_only_an_earlier_rebuild(
    app: SettlementApplication, conn: psycopg.Connection[Any],
) -> None:
    history(app, days=1)
    first = rebuild(app, "audit_copy", conn=conn)
    assert rebuild(app, "audit_copy", conn=conn).digest == first.digest
    assert rebuild(app, "pooled").digest == first.digest  # on a connection of the app's pool
    schema.create(conn, LIVE_SCHEMA)  # live projections (empty so far)
    with pytest.raises(SchemaError, match="not a rebuild"):
        rebuild(app, LIVE_SCHEMA, conn=conn)
    with pytest.raises(SchemaError, match="not a rebuild"):
        rebuild(app, "public", conn=conn)  # the event store's own schema
    for name in ("Bad-Name", "pg_catalog", "x" * 64):
        with pytest.raises(SchemaError, match="schema name"):
            rebuild(app, name, conn=conn)
    with pytest.raises(SchemaError, match="holds rebuild projections"):
        schema.create(conn, "audit_copy")  # a projector never writes into a rebuild
    assert Store(conn, LIVE_SCHEMA).event_count() == 0
    # A rebuild's tables skip the WAL (derived, made again at will); the live ones not.
    persistence = dict(conn.execute(
        "SELECT n.nspname, string_agg(DISTINCT c.relpersistence::text, '') FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
        "AND n.nspname IN ('audit_copy', %s) GROUP BY n.nspname", (LIVE_SCHEMA,)).fetchall())
    assert persistence == {"audit_copy": "u", LIVE_SCHEMA: "p"}


def test_cli_rebuild_reports_whether_it_equals_the_live_projections(
    app: SettlementApplication, conn: psycopg.Connection[Any], broker: str, topics: Topics,
    settings: Settings, group: str,
) -> None:
    events = history(app, days=1)
    publish_events(broker, topics.events, events)
    project(conn, broker, topics, group=group)
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": str(settings.database_url)}
    done = subprocess.run([sys.executable, "-m", "settlement.cli", "rebuild", "--schema",
                           "replayed"], env=env, capture_output=True, text=True,
                          timeout=PROCESS_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["equal"] is True and report["events"] == report["live_events"] == len(events)
    assert report["digest"] == digest(conn, LIVE_SCHEMA)
    # A live model that no longer matches its history is reported (exit status 1).
    conn.execute("UPDATE projections.balances SET debits = debits + 1 "
                 "WHERE account = 'assets:safeguarded_cash' AND currency = 'JPY'")
    done = subprocess.run([sys.executable, "-m", "settlement.cli", "rebuild", "--schema",
                           "replayed"], env=env, capture_output=True, text=True,
                          timeout=PROCESS_TIMEOUT_S, check=False)
    assert done.returncode == 1 and json.loads(done.stdout.splitlines()[-1])["equal"] is False


def test_audit_log_carries_the_event_store_hash_chain_live_and_rebuilt(
    app: SettlementApplication, conn: psycopg.Connection[Any], broker: str, topics: Topics,
    group: str,
) -> None:
    history(app, days=1)
    relay = Relay(app, broker, topics, batch_events_max=25)
    asyncio.run(relay.run(asyncio.Event(), idle_exit_s=1.0))
    project(conn, broker, topics, group=group, batch_records=40)
    chain = conn.execute("SELECT position, hash, prev_hash FROM settlement_chain "
                         "ORDER BY position").fetchall()
    published = {position for position, in conn.execute("SELECT position FROM "
                                                         "projections.audit_log")}
    assert len(published) == relay.stats.published > 0
    expected = [row for row in chain if row[0] in published]
    assert all(hash_ and prev for _, hash_, prev in expected)
    rebuilt = rebuild(app, "chained", conn=conn)
    for schema_name in (LIVE_SCHEMA, rebuilt.schema):
        rows = conn.execute(sql.SQL("SELECT position, hash, prev_hash FROM {}.audit_log "
                                    "ORDER BY position").format(sql.Identifier(schema_name)))
        assert rows.fetchall() == expected, schema_name
        keys = conn.execute(sql.SQL("SELECT count(*) FROM {}.audit_log WHERE data ? 'hash' "
                                    "OR data ? 'prev_hash'").format(sql.Identifier(schema_name)))
        assert keys.fetchone() == (0,)  # in their own columns, not in the data
    assert rebuilt.digest == digest(conn, LIVE_SCHEMA)
