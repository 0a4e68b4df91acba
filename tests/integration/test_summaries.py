"""The summary rows the projector keeps beside the read models (`summaries`:
balance and receivable totals) equal the sums over the rows: after a workload
applied in random batches (redelivered events among them), after a rebuild
(bulk and page by page), and after the 2 → 3 migration of a live schema; and
the API's totals read from them answer what the full scans answered."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from settlement.api.queries import balances as balance_queries
from settlement.api.queries import entries as entry_queries
from settlement.api.queries import receivables as receivable_queries
from settlement.api.queries import safeguarding as safeguarding_queries
from settlement.application.app import APPLIED, SettlementApplication
from settlement.core.commands import Command
from settlement.payouts.run import payout_run
from settlement.projections.model.envelope import parse
from settlement.projections.rebuild.serial import rebuild
from settlement.projections.storage import schema, summaries
from settlement.projections.storage.digest import digests
from settlement.projections.storage.store import Store
from settlement.service.scenario import marketplace_parties
from support.projections import rich_day, stored_cloud_events
from support.projections import store as store_script

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
NOW = START + timedelta(days=31)
LIVE = schema.LIVE_SCHEMA


def workload(app: SettlementApplication, rng: random.Random) -> None:
    """Two rich days with a payout run after each; of the first run's payouts a
    random one fails and another settles (receivables paid out and back)."""
    store_script(app, [*marketplace_parties(START, "day0"), *rich_day(START, "day0")])
    payouts = sorted(line.payout_id for line in payout_run(app, NOW).created)
    failed, settled = rng.sample(payouts, 2)
    outcomes = app.handle_batch([
        Command.create("res-1", "payout.failed", NOW + timedelta(hours=1),
                       {"payout_id": failed, "reason": "account closed"}),
        Command.create("res-2", "payout.settled", NOW + timedelta(hours=2),
                       {"payout_id": settled, "bank_ref": "bank-1"})])
    assert [o.status for o in outcomes] == [APPLIED, APPLIED]
    store_script(app, rich_day(START + timedelta(days=1), "day1"))
    assert payout_run(app, NOW + timedelta(days=1)).created


def project(conn: psycopg.Connection[Any], events: list[dict[str, Any]],
            rng: random.Random) -> None:
    """`events` into the live schema in random batches, some events delivered twice."""
    schema.create(conn, LIVE)
    store = Store(conn, LIVE)
    n = 0
    while n < len(events):
        size = rng.randint(1, 40)
        batch = events[n:n + size]
        again = events[max(0, n - rng.randint(0, 5)):n]  # redelivered: they change nothing
        store.apply_batch([parse(e) for e in again + batch])
        n += size


def full_scan_answers(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The API's totals as the full scans compute them (as of now and as of a far
    instant take the scanning paths) and as the summaries answer them."""
    later = NOW + timedelta(days=400)  # after every event: as of it, the state now
    answers: dict[str, Any] = {}
    for c in ("JPY", "USD"):
        for prefix in (None, "liabilities:", "liabilities:worker_payable:", "assets:"):
            for as_of in (None, later):
                answers[f"balances {c} {prefix} {as_of is None}"] = (
                    balance_queries.balances_page(conn, LIVE, c, prefix=prefix, as_of=as_of,
                                                  limit=3))
        for worker, client in ((None, None), ("worker-1", None), (None, "client-1")):
            for as_of in (None, later):
                answers[f"receivables {c} {worker} {client} {as_of is None}"] = (
                    receivable_queries.receivables_page(
                        conn, LIVE, c, now=later, worker_id=worker, client_id=client,
                        as_of=as_of, limit=4))
        for as_of in (None, later):
            answers[f"safeguarding {c} {as_of is None}"] = safeguarding_queries.safeguarding(
                conn, LIVE, c, as_of)
    for worker, client in ((None, None), ("worker-1", None), (None, "client-1")):
        for as_of in (None, later):
            answers[f"currencies {worker} {client} {as_of is None}"] = (
                receivable_queries.receivable_currencies(
                    conn, LIVE, worker_id=worker, client_id=client, as_of=as_of))
    for as_of in (None, later):
        answers[f"balance currencies {as_of is None}"] = balance_queries.balance_currencies(
            conn, LIVE, as_of=as_of, prefix="liabilities:")
    return answers


def as_of_answers(conn: psycopg.Connection[Any], instants: list[datetime]) -> None:
    """As of each instant, the balances, trial-balance and safeguarding answers from
    the day sums equal the sums over the entries (by value: the scan printed a
    zero side as `0` or `0.00` by which half of the history it summed)."""
    for at in instants:
        for c in ("JPY", "USD"):
            for prefix, account in ((None, None), ("liabilities:", None),
                                    ("liabilities:worker_payable:", None),
                                    (None, "assets:safeguarded_cash"),
                                    ("liabilities:", "liabilities:worker_payable:worker-1")):
                for after in (None, "liabilities:escrow:"):
                    kwargs: dict[str, Any] = {"as_of": at, "prefix": prefix,
                                              "account": account, "after": after, "limit": 3}
                    assert balance_queries.balances_page(conn, LIVE, c, **kwargs) == (
                        balance_queries.scanned_balances_page(conn, LIVE, c, **kwargs)), (
                            at, c, prefix, account, after)
            assert safeguarding_queries.safeguarding(conn, LIVE, c, at) == (
                safeguarding_queries.scanned_safeguarding(conn, LIVE, c, at)), (at, c)
        for prefix, account in ((None, None), ("liabilities:", None),
                                (None, "liabilities:worker_payable:worker-1")):
            found = balance_queries.balance_currencies(conn, LIVE, as_of=at, prefix=prefix,
                                                       account=account)
            scanned = conn.execute(
                "SELECT DISTINCT currency FROM projections.ledger_entries WHERE time <= %s "
                "AND starts_with(account, %s) AND (%s::text IS NULL OR account = %s) "
                "ORDER BY 1", (at, prefix or "", account, account)).fetchall()
            assert found == [c for (c,) in scanned], (at, prefix, account)


def instants(conn: psycopg.Connection[Any], rng: random.Random) -> list[datetime]:
    """Before, at and just after a sample of entry times, at UTC midnights between
    them, and before and after every event."""
    times = [t for (t,) in conn.execute(
        "SELECT DISTINCT time FROM projections.ledger_entries ORDER BY 1").fetchall()]
    sample = rng.sample(times, min(12, len(times)))
    tick = timedelta(microseconds=1)
    midnights = {datetime.combine(t.astimezone(UTC).date(), datetime.min.time(), UTC)
                 + timedelta(days=k) for t in times for k in (0, 1)}
    return sorted({times[0] - tick, times[-1] + timedelta(days=2), *midnights,
                   *(t + d for t in sample for d in (-tick, timedelta(0), tick))})


def entries_pages(conn: psycopg.Connection[Any]) -> None:
    """Every page of some accounts' entries: each running balance equals the sum of
    every entry of the account up to it (blocks before plus the entries of one)."""
    for account, currency in conn.execute(
            "SELECT account, currency FROM projections.balances "
            "WHERE account = 'assets:safeguarded_cash' OR account LIKE '%%worker-1' "
            "OR account LIKE 'revenue%%'").fetchall():
        running, expected = Decimal(0), {}
        for position, line, side, amount in conn.execute(
                "SELECT position, line, side, amount FROM projections.ledger_entries "
                "WHERE account = %s AND currency = %s ORDER BY position, line",
                (account, currency)).fetchall():
            natural = account.startswith("assets:") == (side == "debit")
            running += amount if natural else -amount
            expected[(position, line)] = running
        after, seen = 0, {}
        while True:
            page = entry_queries.account_entries(conn, LIVE, account, currency, after=after,
                                                 limit=3)
            if not page:
                break
            seen.update({(e.position, e.line): e.running_balance for e in page})
            after = page[-1].position
        assert seen == expected and len(expected) > 1, account


def printed(answers: dict[str, Any]) -> dict[str, str]:
    """The answers as text (a Decimal's decimals show, as in the API's JSON)."""
    return {key: repr(value) for key, value in answers.items()}


def test_kept_totals_equal_the_full_scans(app: SettlementApplication,
                                          conn: psycopg.Connection[Any],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summaries, "BLOCK_BITS", 3)  # blocks of 8 positions: many of them
    rng = random.Random(21)
    workload(app, rng)
    events = stored_cloud_events(app)
    project(conn, events, rng)
    assert summaries.unmatched(conn, LIVE) == []
    kept = conn.execute("SELECT count(*) FROM projections.balance_totals").fetchone()
    assert kept is not None and kept[0] > 5
    assert conn.execute("SELECT count(*) FROM projections.receivable_totals "
                        "WHERE scope = 'worker' AND payable > 0").fetchone() != (0,)

    # The API's totals: the summary rows answer what the scans (as of a later
    # instant, the same state) answer.
    answers = printed(full_scan_answers(conn))
    for key, value in answers.items():
        if key.endswith("True"):
            assert value == answers[key[:-4] + "False"], key
    assert re.search(r"payable=Decimal\('\d+\.\d\d'\)", answers["receivables USD None None True"])
    found = full_scan_answers(conn)
    payable = found["receivables JPY None None True"][1].payable
    worker_payable = found["balances JPY liabilities:worker_payable: True"][3]
    assert payable == worker_payable > Decimal(0)  # docs/api.md: payable = those balances
    checked = instants(conn, rng)
    assert len(checked) > 40
    as_of_answers(conn, checked)
    entries_pages(conn)
    live = digests(conn, LIVE)

    # A rebuild, bulk and page by page, makes the same summary rows.
    for bulk in (True, False):
        name = f"r_{uuid.uuid4().hex[:8]}"
        rebuilt = rebuild(app, name, conn=conn, bulk=bulk)
        assert summaries.unmatched(conn, name) == []
        assert {t: d for t, d in rebuilt.tables.items() if live.tables[t] != d} == {}
        assert rebuilt.tables["receivable_totals"] == live.tables["receivable_totals"]

    # A live schema written at version 2 (no summary rows, the old indexes) is
    # upgraded when a process opens it: the same rows as kept batch by batch.
    with conn.transaction():
        conn.execute("DROP TABLE projections.balance_totals, projections.receivable_totals, "
                     "projections.balance_days, projections.balance_total_days, "
                     "projections.balance_blocks")
        for n, column in ((1, "worker_id"), (2, "client_id")):
            conn.execute(f"DROP INDEX projections.receivables_{n}")
            conn.execute(f"CREATE INDEX receivables_{n} ON projections.receivables ({column})")
        conn.execute("UPDATE projections.meta SET value = '2' WHERE key = 'schema_version'")
    schema.create(conn, LIVE)
    assert conn.execute("SELECT value FROM projections.meta WHERE key = 'schema_version'"
                        ).fetchone() == ("3",)
    assert summaries.unmatched(conn, LIVE) == []
    assert digests(conn, LIVE) == live
    index = conn.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = 'projections' "
                         "AND indexname = 'receivables_1'").fetchone()
    assert index is not None and "(worker_id, job_id, item_id)" in index[0]
    assert printed(full_scan_answers(conn)) == answers
    entries_pages(conn)


def test_a_total_whose_count_falls_to_zero_is_removed(conn: psycopg.Connection[Any]) -> None:
    """The receivable totals' upkeep on its own: a batch's deltas (a row per
    receivable and side) added per scope, and only the totals whose count the
    batch took to 0 removed, each found by its key."""
    schema.create(conn, LIVE)
    conn.execute(summaries.deltas_stage())
    add, empty = summaries.receivable_totals_update(LIVE)
    zero = ", 0, 0, 0, 0, 0, 0"
    with conn.transaction():
        conn.execute("INSERT INTO projections.receivable_totals VALUES "
                     f"('JPY', 'all', '', 3{zero}), ('JPY', 'worker', 'w1', 1{zero}), "
                     f"('JPY', 'worker', 'w2', 2{zero}), ('JPY', 'client', 'c1', 3{zero})")
    with conn.transaction():
        # w1's receivable moves to w3; one of w2's is stored again unchanged.
        conn.execute("INSERT INTO stage_receivable_deltas VALUES "
                     "('JPY', 'w1', 'c1', -1, 0, 0, 0, 0, 0, 0), "
                     "('JPY', 'w3', 'c1', 1, 0, 0, 0, 0, 0, 0), "
                     "('JPY', 'w2', 'c1', -1, 0, 0, 0, 0, 0, 0), "
                     "('JPY', 'w2', 'c1', 1, 0, 0, 0, 0, 0, 0)")
        conn.execute(add)
        conn.execute(empty)
        conn.execute("DELETE FROM stage_receivable_deltas")
    rows = conn.execute("SELECT scope, party_id, rows FROM projections.receivable_totals "
                        "ORDER BY 1, 2").fetchall()
    assert rows == [("all", "", 3), ("client", "c1", 3), ("worker", "w2", 2),
                    ("worker", "w3", 1)]
