"""A live projections schema written by the earlier code is upgraded in place when
a process opens it: receivables' `due_by` moves to the amended 60-day rule, with
the same arithmetic as `core.deadlines.payment_due_by`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from settlement.core.deadlines import payment_due_by
from settlement.projections.storage import schema

DELIVERIES = [datetime(2026, 1, 6, 9, 0, tzinfo=UTC), datetime(2026, 1, 6, 15, 0, tzinfo=UTC),
              datetime(2026, 12, 31, 14, 59, 59, tzinfo=UTC),
              datetime(2027, 12, 31, 3, tzinfo=UTC), datetime(2028, 2, 28, 16, tzinfo=UTC)]


def _version(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT value FROM projections.meta WHERE key = 'schema_version'"
                       ).fetchone()
    assert row is not None
    return str(row[0])


def test_a_version_1_schema_gets_the_new_due_by(conn: psycopg.Connection[Any]) -> None:
    schema.create(conn, schema.LIVE_SCHEMA)
    for n, delivered in enumerate(DELIVERIES):
        old_rule = delivered + timedelta(days=60)
        conn.execute("INSERT INTO projections.receivables VALUES (%s, 'm1', 'w', 'c', "
                     "'delivered', 10, 10, 'JPY', true, %s, %s)", (f"j{n}", delivered, old_rule))
        conn.execute("INSERT INTO projections.receivables_history VALUES (%s, 'm1', 3, %s, %s, "
                     "'w', 'c', 'delivered', 10, 10, 'JPY', true, %s, %s)",
                     (f"j{n}", n, delivered, delivered, old_rule))
    conn.execute("INSERT INTO projections.receivables VALUES ('undelivered', 'm1', 'w', 'c', "
                 "'funded', 10, 10, 'JPY', true, NULL, NULL)")
    conn.execute("UPDATE projections.meta SET value = '1' WHERE key = 'schema_version'")

    schema.create(conn, schema.LIVE_SCHEMA)  # what every process does at start

    assert _version(conn) == schema.SCHEMA_VERSION == "3"
    for table in ("receivables", "receivables_history"):
        rows = conn.execute(f"SELECT delivered_at, due_by FROM projections.{table} "
                            "ORDER BY job_id").fetchall()
        assert [due for delivered, due in rows if delivered is not None] == [
            payment_due_by(d) for d in DELIVERIES]
    assert conn.execute("SELECT due_by FROM projections.receivables "
                        "WHERE job_id = 'undelivered'").fetchone() == (None,)
    schema.create(conn, schema.LIVE_SCHEMA)  # idempotent
    assert _version(conn) == "3"


def test_an_unknown_version_is_refused(conn: psycopg.Connection[Any]) -> None:
    schema.create(conn, schema.LIVE_SCHEMA)
    conn.execute("UPDATE projections.meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(ValueError, match="rebuild"):
        schema.create(conn, schema.LIVE_SCHEMA)
