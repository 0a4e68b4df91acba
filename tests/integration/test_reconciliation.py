"""Reconciliation end to end over real projections (SPEC §13): the sample day's
fundings, its payout run (one 総合振込 debit), a returned transfer, a bank charge
and a funding whose money never came, against a statement written by hand; the
report's figures worked out by hand; finance's decisions through the API.

By hand (the sample day, tests/integration/test_payout_run.py): fundings pay-1
110,000, pay-2 55,000, pay-4 5,275 (client-a) and pay-3 52,750 (client-b): cash
223,025 on 11-26. The run pays 171,077 (29,000 + 100,327 + 33,400 + 8,350);
worker-3's 8,350 comes back. The statement: 11-26 credits 110,000 (PAY-1),
55,000 (no reference), 5,275 (PAY-4) — pay-3 never came — closing 170,275; on
the payment day the run's 171,077, a 660 charge and the 8,350 back, closing
6,888. Ledger cash: 223,025 at the end of 11-26, 60,298 on the payment day.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from settlement.api.app import ApiConfig, create_app
from settlement.application.app import APPLIED, SettlementApplication
from settlement.banking.statement import Account
from settlement.core.commands import Command
from settlement.infra.postgres import create_database, drop_database, pg_env
from settlement.payouts.run import payout_run
from settlement.projections.model.envelope import parse
from settlement.projections.rebuild.serial import cloud_events
from settlement.projections.storage import schema, summaries
from settlement.projections.storage.store import Store
from settlement.reconcile.importing import import_statement
from settlement.service.scenario import marketplace_day, marketplace_parties
from support.api import AUDITOR_TOKEN, FINANCE_TOKEN, TOKENS
from support.ingest import commands_of
from support.memory import POLICY
from support.statements import Line, header, trailer
from support.statements import data as data_record
from support.statements import end as end_record

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
JST = ZoneInfo("Asia/Tokyo")
START = datetime(2026, 11, 26, 9, tzinfo=JST)
RUN_AT = datetime(2026, 11, 27, 9, tzinfo=JST)
D1 = date(2026, 11, 26)
CLIENT_A, WORKER_3 = "ｶﾌﾞｼｷｶﾞｲｼﾔｴ-ｼ-", "ｼﾞｴ-ﾝ ﾄﾞｳ"
AUDITOR = {"Authorization": f"Bearer {AUDITOR_TOKEN}"}
FINANCE = {"Authorization": f"Bearer {FINANCE_TOKEN}"}


@dataclass
class World:
    url: str
    payday: date
    run_id: str
    lines: dict[int, str]  # amount → line id (each amount once)
    position: int          # projected up to here


def _project(app: SettlementApplication, conn: psycopg.Connection[Any], after: int) -> int:
    schema.create(conn, schema.LIVE_SCHEMA)
    store, last = Store(conn, schema.LIVE_SCHEMA), app.recorder.max_notification_id() or 0
    while after < last:
        batch = cloud_events(app, after + 1, 500, stop=last)
        if not batch:
            break
        store.apply_batch([parse(event) for event in batch])
        after = batch[-1]["data"]["position"]
    return last


def _statement(payday: date) -> bytes:
    day1 = [Line(D1, "credit", 110_000, CLIENT_A, edi="PAY-1", inquiry=1),
            Line(D1, "credit", 55_000, CLIENT_A, inquiry=2),
            Line(D1, "credit", 5_275, CLIENT_A, summary="PAY-4", inquiry=3)]
    day2 = [Line(payday, "debit", 171_077, "", summary="ｿｳｺﾞｳﾌﾘｺﾐ", inquiry=4),
            Line(payday, "debit", 660, "", summary="ﾌﾘｺﾐﾃｽｳﾘﾖｳ", kind="18", inquiry=5),
            Line(payday, "credit", 8_350, WORKER_3, summary="ﾌﾘｺﾐﾌﾉｳ", inquiry=6)]
    out = header(payday, D1, D1, 0) + b"".join(map(data_record, day1)) + trailer(day1, 0)
    out += (header(payday, payday, payday, 170_275) + b"".join(map(data_record, day2))
            + trailer(day2, 170_275))
    return out + end_record()


@pytest.fixture(scope="module")
def world(pg_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    url = create_database(pg_server, "reconciliation")
    app = SettlementApplication(pg_env(url))
    try:
        app.handle_batch(commands_of([*marketplace_parties(START, "d1"),
                                      *marketplace_day(START, "d1")]))
        report = payout_run(app, RUN_AT, policy=POLICY)
        assert report.window is not None
        payday = report.window.payment_day
        settle_at = datetime.combine(payday, time(9), JST)
        worker_3 = next(p.payout.payout_id for p in report.payouts if p.party_id == "worker-3")
        outcomes = app.handle_batch([
            *(Command.create(f"s-{n}", "payout.settled", settle_at,
                             {"payout_id": p.payout.payout_id, "bank_ref": f"b-{n}"})
              for n, p in enumerate(report.payouts)),
            Command.create("r-1", "payout.returned", settle_at + timedelta(hours=1),
                           {"payout_id": worker_3, "reason": "振込不能"})])
        assert {o.status for o in outcomes} == {APPLIED}
        path = tmp_path_factory.mktemp("statement") / "statement.zengin"
        path.write_bytes(_statement(payday))
        imported = import_statement(app, path, Account("0001", "001", "1", "1234567"),
                                    payday, settle_at)
        assert imported.stored == 6
        with psycopg.connect(url, autocommit=True) as conn:
            position = _project(app, conn, 0)
            lines = {int(amount): line_id for line_id, amount in conn.execute(
                "SELECT line_id, amount FROM projections.statement_lines")}
        yield World(url, payday, report.run_id, lines, position)
    finally:
        app.close()
        drop_database(pg_server, "reconciliation")


@contextmanager
def _app(world: World) -> Iterator[SettlementApplication]:
    app = SettlementApplication(pg_env(world.url))
    try:
        yield app
    finally:
        app.close()


def _client(world: World, now: datetime) -> TestClient:
    return TestClient(create_app(ApiConfig(world.url, TOKENS, now=lambda: now)))


def test_the_report_of_each_statement_day(world: World) -> None:
    with _client(world, datetime(2026, 12, 10, tzinfo=JST)) as client:
        first = client.get("/v1/reconciliation", params={"date": "2026-11-26"},
                           headers=AUDITOR).json()
        second = client.get("/v1/reconciliation", params={"date": world.payday.isoformat()},
                            headers=AUDITOR).json()
        latest = client.get("/v1/reconciliation", headers=AUDITOR).json()
        later = client.get("/v1/reconciliation", params={"date": "2026-12-10"},
                           headers={**AUDITOR, "Accept": "text/csv"})
    assert (first["bank_closing_balance"], first["ledger_cash"], first["difference"]) == (
        "170275", "223025", "-52750")
    assert first["unmatched_lines"] == []
    assert (second["bank_closing_balance"], second["ledger_cash"], second["difference"]) == (
        "6888", "60298", "-53410")  # pay-3 never came, the bank took 660
    assert latest == second
    [fee] = second["unmatched_lines"]
    assert (fee["line_id"], fee["amount"], fee["reason"]) == (world.lines[660], "660",
                                                              "no_candidate")
    # Three business days on, pay-3 shows as ledger cash the bank never saw.
    rows = list(csv.DictReader(io.StringIO(later.text)))
    assert [(r["side"], r["key"], r["amount"], r["reason"]) for r in rows] == [
        ("bank", world.lines[660], "660", "no_candidate"),
        ("ledger", rows[1]["key"], "52750", "no_bank_line")]
    assert rows[1]["key"].startswith("funding:") and rows[1]["reference"] == "pay-3"


def test_every_line_matched_by_its_rule(world: World) -> None:
    with _client(world, datetime(2026, 12, 10, tzinfo=JST)) as client:
        body = client.get("/v1/reconciliation/unmatched", headers=AUDITOR).json()
        as_csv = client.get("/v1/reconciliation/unmatched",
                            headers={**AUDITOR, "Accept": "text/csv"})
    assert [line["line_id"] for line in body["bank"]] == [world.lines[660]]
    [missing] = body["ledger"]  # the funding whose money never came
    assert (missing["kind"], missing["amount"], missing["payment_ref"]) == (
        "funding", "52750", "pay-3")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["side"], r["amount"]) for r in rows] == [("bank", "660"), ("ledger", "52750")]

    from settlement.api.queries.reconciliation import reconciled
    with psycopg.connect(world.url) as conn:
        found = reconciled(conn, schema.LIVE_SCHEMA)
    assert found is not None
    matched = {amount: found.result.match_of(line_id) for amount, line_id in world.lines.items()}
    rules = {amount: m.rule for amount, m in matched.items() if m is not None}
    assert (found.line_count, found.last_booked) == (6, world.payday)
    assert rules == {110_000: "payment_ref", 55_000: "amount_name", 5_275: "payment_ref",
                     171_077: "run_total", 8_350: "returned_transfer"}
    run_match = found.result.match_of(world.lines[171_077])
    assert run_match is not None and run_match.targets == (f"run:{world.run_id}",)
    # The run's line holds the run and, through it, its payouts.
    assert found.result.holder(f"run:{world.run_id}") == world.lines[171_077]


def test_finance_unmatches_and_matches_by_hand(world: World) -> None:
    line = world.lines[55_000]
    with _client(world, datetime(2026, 12, 10, tzinfo=JST)) as client:
        refused = client.post(f"/v1/reconciliation/lines/{line}/unmatch",
                              json={"reason": "paid twice?"}, headers=AUDITOR)
        no_reason = client.post(f"/v1/reconciliation/lines/{line}/unmatch", json={},
                                headers=FINANCE)
        unknown = client.post(f"/v1/reconciliation/lines/{line}/match",
                              json={"targets": ["funding:999999"], "reason": "x"},
                              headers=FINANCE)
        taken = client.post(f"/v1/reconciliation/lines/{line}/match",
                            json={"targets": [f"run:{world.run_id}"], "reason": "x"},
                            headers=FINANCE)
        missing = client.post(f"/v1/reconciliation/lines/{'0' * 32}/unmatch",
                              json={"reason": "x"}, headers=FINANCE)
        done = client.post(f"/v1/reconciliation/lines/{line}/unmatch",
                           json={"reason": "the client says it paid for another job"},
                           headers=FINANCE)
    assert (refused.status_code, no_reason.status_code) == (403, 400)
    assert unknown.json()["error"]["code"] == "reconciliation_target_unknown"
    assert (taken.status_code, taken.json()["error"]["code"]) == (
        409, "reconciliation_target_matched")
    assert missing.status_code == 404
    assert done.status_code == 200, done.text
    with _app(world) as app, psycopg.connect(world.url, autocommit=True) as conn:
        world.position = _project(app, conn, world.position)
        [(data,)] = conn.execute(
            "SELECT data FROM projections.audit_log WHERE type = "
            "'settlement.statement_line_decided'").fetchall()
    assert data["line_id"] == line and data["action"] == "unmatch"
    with _client(world, datetime(2026, 12, 10, tzinfo=JST)) as client:
        body = client.get("/v1/reconciliation/unmatched", headers=AUDITOR).json()
    assert {row["line_id"]: row["reason"] for row in body["bank"]} == {
        line: "unmatched_by_hand", world.lines[660]: "no_candidate"}
    assert sorted(row["payment_ref"] for row in body["ledger"]) == ["pay-2", "pay-3"]


def test_the_rebuild_reproduces_the_statement_tables(world: World) -> None:
    from settlement.projections.rebuild.serial import rebuild

    with _app(world) as app, psycopg.connect(world.url, autocommit=True) as conn:
        rebuilt = rebuild(app, "reconcile_again", conn=conn)
        live = {name: conn.execute(f"SELECT count(*) FROM projections.{name}").fetchone()
                for name in ("statement_lines", "statement_balances", "statement_decisions")}
    assert {name: rebuilt.tables[name].rows for name in live} == {
        name: count[0] for name, count in live.items() if count is not None}


def test_metrics_expose_the_unmatched_and_the_difference(world: World) -> None:
    with _client(world, datetime(2026, 12, 10, tzinfo=JST)) as client:
        text = client.get("/metrics").text
    assert 'settlement_reconciliation_unmatched_lines{currency="JPY"}' in text
    assert 'settlement_reconciliation_difference{currency="JPY"} -53410.0' in text


def test_a_confirmed_bank_charge_is_booked_once(world: World) -> None:
    fee, credit = world.lines[660], world.lines[110_000]
    with _client(world, datetime(2026, 12, 10, tzinfo=JST)) as client:
        not_debit = client.post(f"/v1/reconciliation/lines/{credit}/bank-fee",
                                json={"reason": "x"}, headers=FINANCE)
        by_auditor = client.post(f"/v1/reconciliation/lines/{fee}/bank-fee",
                                 json={"reason": "x"}, headers=AUDITOR)
        booked = client.post(f"/v1/reconciliation/lines/{fee}/bank-fee",
                             json={"reason": "総合振込の手数料"}, headers=FINANCE)
        twice = client.post(f"/v1/reconciliation/lines/{fee}/bank-fee",
                            json={"reason": "again"}, headers=FINANCE)
    assert (not_debit.status_code, not_debit.json()["error"]["code"]) == (
        400, "bank_fee_not_debit")
    assert by_auditor.status_code == 403
    assert booked.status_code == 200, booked.text
    assert booked.json()["amount"] == "660"
    assert (twice.status_code, twice.json()["error"]["code"]) == (409, "bank_fee_booked")
    with _app(world) as app, psycopg.connect(world.url, autocommit=True) as conn:
        world.position = _project(app, conn, world.position)
        world.position = _project(app, conn, 0)  # every event read again: nothing twice
        balances = dict(conn.execute(
            "SELECT account, debits - credits FROM projections.balances WHERE account IN "
            "('expenses:bank_fees', 'assets:safeguarded_cash')").fetchall())
    assert balances == {"expenses:bank_fees": 660, "assets:safeguarded_cash": 59_638}
    with psycopg.connect(world.url, autocommit=True) as conn:
        # The projector's summary rows took the booked fee like any entry.
        assert summaries.unmatched(conn, schema.LIVE_SCHEMA) == []
    with _client(world, datetime(2026, 12, 10, tzinfo=JST)) as client:
        fees = client.get("/v1/balances", params={"account": "expenses:bank_fees"},
                          headers=FINANCE).json()
    # An expense is a debit-side account: the charge shows as +660.
    assert [a["balance"] for a in fees["accounts"]] == ["660"] and fees["total"] == "660"
    with _client(world, datetime(2026, 12, 10, tzinfo=JST)) as client:
        day = client.get("/v1/reconciliation", params={"date": world.payday.isoformat()},
                         headers=AUDITOR).json()
        undo = client.post(f"/v1/reconciliation/lines/{fee}/unmatch", json={"reason": "x"},
                           headers=FINANCE)
    # Confirmed on 12-10, value-dated to the day the bank took it: the payment day's
    # ledger cash is now what the bank held (60,298 - 660), and the difference left is
    # pay-3 alone, the one open item (from three business days on, listed as ledger
    # cash the bank never saw).
    assert (day["ledger_cash"], day["difference"]) == ("59638", "-52750")
    assert fee not in {line["line_id"] for line in day["unmatched_lines"]}
    with psycopg.connect(world.url, autocommit=True) as conn:
        [(time_,)] = conn.execute(
            "SELECT time FROM projections.ledger_entries WHERE account = 'expenses:bank_fees'"
        ).fetchall()
    assert time_ == datetime.combine(world.payday, time(), JST)
    assert (undo.status_code, undo.json()["error"]["code"]) == (409, "bank_fee_booked")
