"""Reconciliation (SPEC §13): the statement lines and day balances
(`statement_lines`, `statement_balances`), finance's decisions
(`statement_decisions`) and the ledger's cash movements the bank should show
(`ledger_entries` on `assets:safeguarded_cash`, with their events' data from
`audit_log`, the client or payee from `escrows` and `parties`, runs from
`payout_runs`), matched by `reconcile.matching`.

The matching reads everything, so its result is kept per schema until the
projections move past the position it was computed at.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.api.queries import schema_id
from settlement.api.queries.payouts import has_table
from settlement.banking.calendar import JST
from settlement.payouts.run import no_cyclic_gc
from settlement.reconcile.lines import counterparty_key
from settlement.reconcile.matching import (
    CREDIT,
    DEBIT,
    FUNDING,
    PAYOUT,
    RETURN,
    RUN,
    BankLine,
    Decision,
    Expected,
    match,
)
from settlement.reconcile.report import Reconciled

CASH = "assets:safeguarded_cash"
CURRENCY = "JPY"
FUNDED = ("settlement.milestone_funded", "settlement.competition_funded",
          "settlement.task_funded")
# An entry's date in Japan (SPEC Part II: dates are JST dates of the events' time).
_JST_DAY = "(e.time AT TIME ZONE 'Asia/Tokyo')::date"
_LOCK = threading.Lock()
_CACHE: dict[str, tuple[int, Reconciled]] = {}


def _rows(conn: psycopg.Connection[Any], query: str, schema: str,
          params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with conn.cursor(row_factory=tuple_row) as cur:
        return cur.execute(sql.SQL(query).format(s=schema_id(schema)), params).fetchall()


def _stream(conn: psycopg.Connection[Any], query: str, schema: str,
            params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
    """The rows one at a time (libpq's single-row mode): a statement's million lines
    are never all in memory as rows besides the objects made of them."""
    with conn.cursor(row_factory=tuple_row) as cur:
        yield from cur.stream(sql.SQL(query).format(s=schema_id(schema)), params)


def _names(conn: psycopg.Connection[Any], schema: str) -> dict[str, str]:
    return {party_id: counterparty_key(kana) for party_id, kana in _rows(
        conn, "SELECT party_id, name_kana FROM {s}.parties", schema)}


def lines(conn: psycopg.Connection[Any], schema: str) -> Iterator[BankLine]:
    """Every line in (booked, line_id) order, one at a time. Stored in the Zengin
    form where they have one: the name's key only drops spaces. The many lines
    share a few dates and names: one object each."""
    days: dict[date, date] = {}
    names: dict[str, str] = {}
    for line_id, booked, direction, amount, name, reference in _stream(
            conn, "SELECT line_id, booked, direction, amount, counterparty, reference FROM "
            '{s}.statement_lines WHERE currency = \'JPY\' ORDER BY booked, line_id COLLATE "C"',
            schema):
        yield BankLine(line_id, days.setdefault(booked, booked), sys.intern(direction),
                       int(amount), names.setdefault(name, "".join(name.split()).upper()),
                       reference)


def expected(conn: psycopg.Connection[Any], schema: str) -> list[Expected]:
    names = _names(conn, schema)
    found: list[Expected] = []
    for position, day, amount, ref, client in _stream(
            conn, "SELECT e.position, " + _JST_DAY + ", e.amount, "
            "a.data->'funding'->>'payment_ref', "
            "x.client_id FROM {s}.ledger_entries e JOIN {s}.audit_log a USING (position) "
            "LEFT JOIN {s}.escrows x ON x.job_id = e.job_id WHERE e.account = %s "
            "AND e.currency = %s AND e.side = 'debit' AND e.event_type = ANY(%s)",
            schema, (CASH, CURRENCY, list(FUNDED))):
        found.append(Expected(f"funding:{position}", FUNDING, CREDIT, int(amount),
                              day, ref or "", names.get(client, "")))
    runs: dict[str, list[str]] = {}
    for payout_id, run_id in _rows(conn, "SELECT data->>'payout_id', data->>'run_id' FROM "
                                   "{s}.audit_log WHERE type = 'settlement.payout_initiated'",
                                   schema):
        runs.setdefault(run_id, []).append(f"payout:{payout_id}")
    for side, type_, day, amount, payout_id, party_id in _rows(
            conn, "SELECT e.side, e.event_type, " + _JST_DAY + ", e.amount, "
            "a.data->>'payout_id', "
            "a.data->>'party_id' FROM {s}.ledger_entries e JOIN {s}.audit_log a "
            "USING (position) WHERE e.account = %s AND e.currency = %s AND e.event_type IN "
            "('settlement.payout_settled', 'settlement.payout_returned')",
            schema, (CASH, CURRENCY)):
        if type_ == "settlement.payout_settled" and side == "credit":
            found.append(Expected(f"payout:{payout_id}", PAYOUT, DEBIT, int(amount), day))
        elif side == "debit":
            found.append(Expected(f"return:{payout_id}", RETURN, CREDIT, int(amount), day,
                                  name=names.get(party_id, "")))
    for run_id, payment_day, summary in _rows(
            conn, "SELECT run_id, payment_day, summary FROM {s}.payout_runs "
            "WHERE status = 'completed'", schema):
        for file in (summary or {}).get("files", []):  # the run's Zengin files
            if file.get("currency") == CURRENCY:
                found.append(Expected(f"run:{run_id}", RUN, DEBIT, int(Decimal(file["total"])),
                                      payment_day, members=tuple(sorted(runs.get(run_id, ())))))
    return found


def decisions(conn: psycopg.Connection[Any], schema: str) -> dict[str, Decision]:
    return {line_id: Decision(line_id, action, tuple(targets))
            for line_id, action, targets in _rows(
                conn, "SELECT line_id, action, targets FROM {s}.statement_decisions", schema)}


def closings(conn: psycopg.Connection[Any], schema: str) -> dict[date, Decimal]:
    return {day: Decimal(closing) for day, closing in _rows(
        conn, "SELECT day, closing FROM {s}.statement_balances WHERE currency = 'JPY'", schema)}


def reconciled(conn: psycopg.Connection[Any], schema: str) -> Reconciled | None:
    """Everything matched (see the module doc); None before the projections have
    the statement tables."""
    if not has_table(conn, schema, "statement_decisions"):
        return None
    head = _rows(conn, "SELECT coalesce(max(position), 0) FROM {s}.audit_log", schema)[0][0]
    with _LOCK:
        kept = _CACHE.get(schema)
        if kept is not None and kept[0] == head:
            return kept[1]
    # No cyclic collection while the matching makes an object per line and per ledger
    # movement (none in a cycle): every full collection would walk them all.
    with no_cyclic_gc():
        found_expected, decided = expected(conn, schema), decisions(conn, schema)
        opened: list[BankLine] = []
        seen = _Seen()
        matched = match(seen.count(lines(conn, schema)), found_expected, decided, ordered=True,
                        on_open=opened.append)
        result = Reconciled(opened, found_expected, matched, closings(conn, schema),
                            seen.lines, seen.last)
    with _LOCK:
        _CACHE[schema] = (head, result)
    return result


class _Seen:
    """How many lines went by, and the last one's day."""

    def __init__(self) -> None:
        self.lines = 0
        self.last: date | None = None

    def count(self, lines: Iterator[BankLine]) -> Iterator[BankLine]:
        for line in lines:
            self.lines, self.last = self.lines + 1, line.booked
            yield line


def ledger_cash(conn: psycopg.Connection[Any], schema: str, day: date) -> Decimal:
    """`assets:safeguarded_cash` at the end of `day` (JST)."""
    end = datetime.combine(day + timedelta(days=1), time(), JST)
    value = _rows(conn, "SELECT coalesce(sum(CASE side WHEN 'debit' THEN amount ELSE -amount "
                  "END), 0) FROM {s}.ledger_entries WHERE account = %s AND currency = %s "
                  "AND time < %s", schema, (CASH, CURRENCY, end))[0][0]
    return Decimal(value)


def known_lines(conn: psycopg.Connection[Any], schema: str, line_ids: Sequence[str]) -> set[str]:
    return {row[0] for row in _rows(conn, "SELECT line_id FROM {s}.statement_lines "
                                    "WHERE line_id = ANY(%s)", schema, (list(line_ids),))}


def line(conn: psycopg.Connection[Any], schema: str,
         line_id: str) -> tuple[str, Decimal, str] | None:
    """(direction, amount, currency) of a statement line, or None."""
    found = _rows(conn, "SELECT direction, amount, currency FROM {s}.statement_lines "
                  "WHERE line_id = %s", schema, (line_id,))
    return None if not found else (str(found[0][0]), Decimal(found[0][1]), str(found[0][2]))


def bank_fee_booked(conn: psycopg.Connection[Any], schema: str, line_id: str) -> bool:
    return bool(_rows(conn, "SELECT 1 FROM {s}.bank_fees WHERE line_id = %s", schema,
                      (line_id,)))
