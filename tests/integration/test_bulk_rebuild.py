"""The rebuild's bulk writer (`bulk.BulkRebuild`: views in memory, rows by COPY)
gives, table by table, the very read models the live projector's `Store` gives
for the same events: with payouts (initiated, failed, settled), as of instants
in the middle of the history, and when jobs are evicted from memory and read
back from the rebuilt schema."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from settlement.application.app import APPLIED, SettlementApplication
from settlement.core.commands import Command
from settlement.payouts.run import payout_run
from settlement.projections.rebuild import bulk
from settlement.projections.rebuild import serial as rebuilding
from settlement.projections.rebuild.serial import rebuild
from settlement.relay.stored import StoredEvents
from settlement.service.scenario import marketplace_parties
from support.projections import rich_day, store

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
NOW = START + timedelta(days=31)


def history(app: SettlementApplication) -> None:
    """Two rich days, a payout run after each, one payout failed and one settled."""
    store(app, [*marketplace_parties(START, "day0"), *rich_day(START, "day0")])
    first = {line.account: line.payout_id for line in payout_run(app, NOW).created}
    outcomes = app.handle_batch([
        Command.create("res-1", "payout.failed", NOW + timedelta(hours=1), {
            "payout_id": first["liabilities:worker_payable:worker-2"],
            "reason": "account closed"}),
        Command.create("res-2", "payout.settled", NOW + timedelta(hours=2), {
            "payout_id": first["liabilities:worker_payable:worker-1"], "bank_ref": "bank-1"}),
    ])
    assert [o.status for o in outcomes] == [APPLIED, APPLIED]
    store(app, rich_day(START + timedelta(days=1), "day1"))
    assert payout_run(app, NOW + timedelta(days=1)).created


def both(app: SettlementApplication, conn: psycopg.Connection[Any], **kwargs: Any) -> None:
    name = uuid.uuid4().hex[:8]
    by_store = rebuild(app, f"store_{name}", conn=conn, bulk=False,
                       **{k: v for k, v in kwargs.items() if k != "shards"})
    by_bulk = rebuild(app, f"bulk_{name}", conn=conn, **kwargs)
    assert by_bulk.events == by_store.events > 0
    assert (by_bulk.skipped, by_bulk.through_position) == (by_store.skipped,
                                                           by_store.through_position)
    assert {t: d for t, d in by_bulk.tables.items() if by_store.tables[t] != d} == {}
    assert by_bulk.digest == by_store.digest
    # Same keys and indexes too (the bulk writer drops some while it loads), and
    # nothing else left behind.
    assert indexes(conn, f"bulk_{name}") == indexes(conn, f"store_{name}")
    assert conn.execute("SELECT to_regclass(%s)",
                        (f"bulk_{name}.{bulk.PARTIAL_BALANCES}",)).fetchone() == (None,)


def indexes(conn: psycopg.Connection[Any], schema: str) -> set[tuple[str, str]]:
    """(name, definition without the schema) of every index in `schema`."""
    rows = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s",
                        (schema,)).fetchall()
    found = {(name, definition.replace(f"{schema}.", "")) for name, definition in rows}
    assert any(name == "ledger_entries_pkey" for name, _ in found)
    return found


def test_bulk_rebuild_equals_store_rebuild(app: SettlementApplication,
                                           conn: psycopg.Connection[Any],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    history(app)
    both(app, conn)
    # As of instants: mid-day, between the failed and the settled payout, mid day 2.
    for as_of in (START + timedelta(minutes=200), NOW + timedelta(minutes=90),
                  START + timedelta(days=1, minutes=150)):
        both(app, conn, as_of=as_of)
    # Jobs evicted after every small page and read back when they come again,
    # balances written out as partial sums, the history folded in shards, each in a
    # process of its own (as for a long history).
    monkeypatch.setattr(bulk, "MAX_JOBS", 2)
    monkeypatch.setattr(bulk, "EVICT_CHUNK", 1)
    monkeypatch.setattr(bulk, "MAX_BALANCES", 3)
    monkeypatch.setattr(rebuilding, "SHARD_MIN_EVENTS", 0)
    both(app, conn, page_events=7)
    assert len(rebuilding.SHARD_RSS_KIB) == max(1, min(os.cpu_count() or 1, 4)) - 1
    both(app, conn, page_events=5, as_of=NOW + timedelta(minutes=90), shards=3)
    assert len(rebuilding.SHARD_RSS_KIB) == 2  # both other shards ran and reported


def test_copy_text_lines_read_back_exactly(conn: psycopg.Connection[Any]) -> None:
    """The text COPY lines of the bulk writer keep every value: escapes, NULLs,
    numeric scales, instants with their offsets, booleans."""
    columns = [("a", "text"), ("n", "numeric"), ("t", "timestamptz"), ("b", "boolean"),
               ("i", "bigint")]
    tokyo = timezone(timedelta(hours=9))
    rows = [("tab\there\\back\nline\rcr \\N", Decimal("1.50"), datetime(2026, 1, 2, 3, 4, 5,
                                                                       678, tzinfo=tokyo),
             True, 2**40),
            (None, Decimal("1E+3"), None, False, None),
            ("", Decimal("0.000"), datetime(2026, 1, 2, tzinfo=UTC), None, 0)]
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE bulk_lines (a text, n numeric, t timestamptz, "
                     "b boolean, i bigint)")
        with conn.cursor() as cur, cur.copy("COPY bulk_lines FROM STDIN") as copy:
            copy.write(bulk._lines(columns, rows).encode())
        found = conn.execute("SELECT a, n::text, t, b, i FROM bulk_lines").fetchall()
        conn.execute("DROP TABLE bulk_lines")
    assert found == [(rows[0][0], "1.50", rows[0][2], True, 2**40),
                     (None, "1000", None, False, None),
                     ("", "0.000", rows[2][2], None, 0)]
    # The audit log's JSON (orjson's text, backslashes doubled for COPY).
    data = {"note": "tab\there \\N back\\slash\nline\r \u00e9", "n": [1, "2.50"]}
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE bulk_json (j jsonb)")
        with conn.cursor() as cur, cur.copy("COPY bulk_json FROM STDIN") as copy:
            copy.write(f"{bulk._json_text(data)}\n".encode())
        assert conn.execute("SELECT j FROM bulk_json").fetchall() == [(data,)]
        conn.execute("DROP TABLE bulk_json")


def test_shards_split_the_log_by_aggregate(app: SettlementApplication) -> None:
    """Every stored event is in exactly one shard, a whole aggregate in one, each
    shard's pages in order (windows of positions without any of its events too)."""
    history(app)
    stored = StoredEvents(app.store)
    everything = [n for n, _ in stored.page(1, 1_000_000)]
    found: dict[int, int] = {}
    for index in range(3):
        start, positions = 1, []
        while page := stored.page(start, 4, shard=(index, 3)):
            assert len(page) <= 4
            positions += [n.id for n, _ in page]
            start = page[-1][0].id + 1
        assert positions == sorted(positions)
        found.update((position, index) for position in positions)
    assert sorted(found) == [n.id for n in everything]
    shard_of: dict[Any, set[int]] = {}
    for n in everything:
        shard_of.setdefault(n.originator_id, set()).add(found[n.id])
    assert all(len(shards) == 1 for shards in shard_of.values())
    assert {index for shards in shard_of.values() for index in shards} == {0, 1, 2}


def test_a_failed_shard_fails_the_rebuild(app: SettlementApplication,
                                          conn: psycopg.Connection[Any]) -> None:
    """An event only another shard process can read is unreadable: the rebuild
    raises that shard's error (rather than finishing without its jobs)."""
    history(app)
    position = conn.execute(
        "SELECT max(notification_id) FROM settlement_events "
        "WHERE mod(get_byte(uuid_send(originator_id), 15), 2) = 1").fetchone()[0]
    conn.execute("UPDATE settlement_events SET state = 'not json' WHERE notification_id = %s",
                 (position,))
    with pytest.raises(RuntimeError, match="rebuild shard 1 failed"):
        rebuild(app, f"bulk_{uuid.uuid4().hex[:8]}", conn=conn, shards=2)
