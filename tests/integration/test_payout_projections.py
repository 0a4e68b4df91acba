"""Payout events in the projections, on the real broker and PostgreSQL: payouts,
their ledger entries and audit rows, and receivables paid out, projected from
Kafka equal a rebuild from the event store, in whatever order the partitions
deliver payout and escrow events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg

from settlement.api.queries import balances as balance_queries
from settlement.api.queries import payouts as payout_queries
from settlement.api.queries import receivables as receivable_queries
from settlement.application.app import APPLIED, SettlementApplication
from settlement.core.commands import Command
from settlement.infra.topics import Topics
from settlement.ledger.accounts import PAYOUTS_IN_TRANSIT, SAFEGUARDED_CASH
from settlement.payouts.ids import run_id_of
from settlement.payouts.run import payout_run
from settlement.projections.model.envelope import parse
from settlement.projections.rebuild.serial import cloud_events, rebuild
from settlement.projections.storage import schema
from settlement.projections.storage.digest import digest, digests
from settlement.projections.storage.schema import LIVE_SCHEMA
from settlement.projections.storage.store import Store
from settlement.service.scenario import marketplace_parties
from support.projections import project, publish_events, rich_day, store

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
NOW = START + timedelta(days=31)


def result(type_: str, command_id: str, at: datetime, **data: str) -> Command:
    return Command.create(command_id, type_, at, data)


def history(app: SettlementApplication) -> dict[str, str]:
    """Two rich days, a payout run after each, one payout failed and one settled
    in between; returns the first run's payout ids by account."""
    store(app, [*marketplace_parties(START, "day0"), *rich_day(START, "day0")])
    first = {line.account: line.payout_id for line in payout_run(app, NOW).created}
    outcomes = app.handle_batch([
        result("payout.failed", "res-1", NOW + timedelta(hours=1),
               payout_id=first["liabilities:worker_payable:worker-2"], reason="account closed"),
        result("payout.settled", "res-2", NOW + timedelta(hours=2),
               payout_id=first["liabilities:worker_payable:worker-1"], bank_ref="bank-1"),
    ])
    assert [o.status for o in outcomes] == [APPLIED, APPLIED]
    store(app, rich_day(START + timedelta(days=1), "day1"))
    assert payout_run(app, NOW + timedelta(days=1)).created
    return first


def stored_cloud_events(app: SettlementApplication) -> list[dict[str, Any]]:
    """Every stored event as the relay publishes it, in order."""
    return cloud_events(app, 1, 1_000_000)


def rebuilt(app: SettlementApplication, conn: psycopg.Connection[Any]) -> str:
    done = rebuild(app, f"rebuilt_{uuid.uuid4().hex[:8]}", conn=conn)
    live = digests(conn, LIVE_SCHEMA).tables
    assert {t: d for t, d in live.items() if done.tables[t] != d} == {}
    return done.digest


def assert_consistent(conn: psycopg.Connection[Any], schema: str) -> None:
    """Every currency balances; cash covers obligations and revenue; what the
    receivables say is payable is what the payable accounts hold."""
    assert balance_queries.unmatched_balances(conn, schema) == []
    for currency in ("JPY", "USD"):
        trial = balance_queries.trial_balance(conn, schema, currency)
        assert trial.balanced
        balance = {a.account: a.balance for a in trial.accounts}
        owed = sum((b for a, b in balance.items() if a.startswith(("liabilities:", "revenue:"))),
                   Decimal(0))
        assert balance[SAFEGUARDED_CASH] == owed
        payable = sum((b for a, b in balance.items()
                       if a.startswith("liabilities:worker_payable:")), Decimal(0))
        _, totals = receivable_queries.receivables_page(conn, schema, currency, now=NOW)
        assert totals.payable == payable, currency


def test_payouts_project_like_a_rebuild_in_any_partition_order(
    app: SettlementApplication, conn: psycopg.Connection[Any], broker: str, topics: Topics,
    topic_prefix: str,
) -> None:
    first = history(app)
    events = stored_cloud_events(app)
    payout_events = [e for e in events if "payout_id" in e["data"]]
    assert {e["type"] for e in payout_events} == {
        "settlement.payout_initiated", "settlement.payout_failed", "settlement.payout_settled"}
    assert all(e["subject"] == e["data"]["payout_id"] for e in payout_events)
    # Payout events first (as if their partitions ran ahead), then the rest.
    publish_events(broker, topics.events, payout_events)
    publish_events(broker, topics.events, [e for e in events if e not in payout_events])
    project(conn, broker, topics, group=f"{topic_prefix}projections", batch_records=40)
    live = digest(conn, LIVE_SCHEMA)
    assert live == rebuilt(app, conn)
    assert_consistent(conn, LIVE_SCHEMA)

    rows = {p["payout_id"]: p for p in payout_queries.payouts(conn, LIVE_SCHEMA, limit=500)}
    assert len(rows) == len([e for e in payout_events
                             if e["type"] == "settlement.payout_initiated"])
    failed = rows[first["liabilities:worker_payable:worker-2"]]
    settled = rows[first["liabilities:worker_payable:worker-1"]]
    assert (failed["status"], settled["status"]) == ("failed", "settled")
    assert settled["amount"] == sum(Decimal(i["amount"]) for i in settled["items"])
    assert {i["job_id"] for i in settled["items"]} == {"day0-project"}
    # The second run paid everything again, worker-2's failed payout included, but
    # what it held or carried over (a party not registered, below the minimum).
    balances = {b.account: b.balance for b in balance_queries.balances(conn, LIVE_SCHEMA,
                                                                       currency="JPY")}
    second_run = run_id_of(NOW + timedelta(days=1))
    held = {f"liabilities:worker_payable:{party}": amount for party, amount in conn.execute(
        "SELECT party_id, amount FROM projections.payout_holds WHERE currency = 'JPY' "
        "AND party_type = 'worker' AND run_id = %s", (second_run,))}
    assert held and {a: v for a, v in balances.items()
                     if a.startswith("liabilities:worker_payable") and v != 0} == held
    in_transit = sum((p["amount"] for p in rows.values()
                      if p["status"] == "initiated" and p["currency"] == "JPY"), Decimal(0))
    assert balances[PAYOUTS_IN_TRANSIT] == in_transit
    receivables, _ = receivable_queries.receivables_page(conn, LIVE_SCHEMA, "JPY", now=NOW,
                                                         limit=500)
    payable = [(row, paid) for row, paid in receivables if row.state in ("released", "resolved")]
    held_workers = {a.rsplit(":", 1)[1] for a in held}
    assert payable and all(paid for row, paid in payable
                           if row.net > 0 and row.worker_id not in held_workers)


def test_payout_events_delivered_again_change_nothing(
    app: SettlementApplication, conn: psycopg.Connection[Any], broker: str, topics: Topics,
    topic_prefix: str,
) -> None:
    history(app)
    events = stored_cloud_events(app)
    publish_events(broker, topics.events, events)
    publish_events(broker, topics.events, [e for e in events if e["subject"] != e["data"].get(
        "job_id")])  # payout, party, run and hold events
    project(conn, broker, topics, group=f"{topic_prefix}projections", batch_records=25)
    assert digest(conn, LIVE_SCHEMA) == rebuilt(app, conn)
    assert_consistent(conn, LIVE_SCHEMA)


def test_party_run_and_hold_rows_read_twice_change_nothing(
        app: SettlementApplication, conn: psycopg.Connection[Any]) -> None:
    """Parties, payout runs and holds fold from one event each, without reading the
    stored rows: a batch read twice (at-least-once) leaves them, and the audit log,
    as a rebuild makes them."""
    history(app)
    events = [parse(e) for e in stored_cloud_events(app)]
    schema.create(conn, LIVE_SCHEMA)
    store = Store(conn, LIVE_SCHEMA)
    for _ in range(2):
        for n in range(0, len(events), 25):
            store.apply_batch(events[n:n + 25])
    rebuilt(app, conn)
    parties = {row[0]: row[1:] for row in conn.execute(
        "SELECT party_id, kyc_verified, bank_account->>'account_number' FROM projections.parties")}
    assert parties["worker-1"] == (True, "****001") and parties["worker-5"] == (False, None)
    runs = conn.execute("SELECT run_id, status FROM projections.payout_runs "
                        "ORDER BY run_id").fetchall()
    assert [status for _, status in runs] == ["completed", "completed"]
    holds = conn.execute("SELECT party_id, reason FROM projections.payout_holds").fetchall()
    assert holds and all(reason for _, reason in holds)
