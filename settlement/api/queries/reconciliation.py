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

import dataclasses
import heapq
import threading
from collections.abc import Iterator, Mapping, Sequence
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
    REMITTANCE,
    RETURN,
    RUN,
    BankLine,
    Decision,
    Expected,
    Matcher,
    References,
)
from settlement.reconcile.report import Reconciled
from settlement.reconcile.results import StoredResults

CASH = "assets:safeguarded_cash"
CURRENCY = "JPY"
FUNDED = ("settlement.milestone_funded", "settlement.competition_funded",
          "settlement.task_funded")
# An entry's date in Japan (SPEC Part II: dates are JST dates of the events' time).
_JST_DAY = "(e.time AT TIME ZONE 'Asia/Tokyo')::date"
_LOCK = threading.Lock()
STREAM_ROWS = 10_000  # fetched at a time from a server cursor
SORT_MEMORY_MB = 64  # PostgreSQL's for the matching's reads (its work_mem)
_STREAMS = [0]  # cursors named in this process (unique names on a connection)
_CACHE: dict[str, tuple[int, Reconciled]] = {}


def _rows(conn: psycopg.Connection[Any], query: str, schema: str,
          params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with conn.cursor(row_factory=tuple_row) as cur:
        return cur.execute(sql.SQL(query).format(s=schema_id(schema)), params).fetchall()


def _stream(conn: psycopg.Connection[Any], query: str, schema: str,
            params: Sequence[Any] | Mapping[str, Any] = ()) -> Iterator[tuple[Any, ...]]:
    """The rows a page at a time from a cursor on the server (in the caller's
    transaction): a statement's million lines are never all in memory, and two such
    streams read side by side on one connection."""
    _STREAMS[0] += 1
    with conn.cursor(f"reconcile_{_STREAMS[0]}", row_factory=tuple_row) as cur:
        cur.itersize = STREAM_ROWS
        cur.execute(sql.SQL(query).format(s=schema_id(schema)), params)
        yield from cur


def _pushed(conn: psycopg.Connection[Any], query: str, schema: str,
            params: Sequence[Any] = ()) -> Iterator[tuple[Any, ...]]:
    """The rows one at a time as the server sends them (libpq's single-row mode: it
    works on while they are read), for a query that runs alone on `conn`."""
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
    directions = {CREDIT: CREDIT, DEBIT: DEBIT}
    for line_id, booked, direction, amount, name, reference in _stream(
            conn, "SELECT line_id, booked, direction, amount::bigint, counterparty, reference "
            'FROM {s}.statement_lines WHERE currency = \'JPY\' '
            'ORDER BY booked, line_id COLLATE "C"', schema):
        key = names.get(name)
        if key is None:
            key = names[name] = "".join(name.split()).upper()
        yield BankLine(line_id, days.setdefault(booked, booked),
                       directions.get(direction, direction), amount, key, reference)


def references(conn: psycopg.Connection[Any], schema: str) -> References:
    """Every funding's `payment_ref` (a line may name a funding of any day)."""
    found = References()
    for key, amount, ref in _pushed(
            conn, "SELECT 'funding:' || e.position, e.amount::bigint, "
            "a.data->'funding'->>'payment_ref' "
            "FROM {s}.ledger_entries e JOIN {s}.audit_log a USING (position) "
            "WHERE e.account = %s AND e.currency = %s AND e.side = 'debit' "
            "AND e.event_type = ANY(%s) AND a.data->'funding'->>'payment_ref' <> ''",
            schema, (CASH, CURRENCY, list(FUNDED))):
        found.add_funding(key, ref, amount)
    return found


def runs(conn: psycopg.Connection[Any], schema: str) -> list[Expected]:
    """A debit per completed payout run's Zengin file, covering its payouts."""
    members: dict[str, list[str]] = {}
    for payout_id, run_id in _rows(conn, "SELECT data->>'payout_id', data->>'run_id' FROM "
                                   "{s}.audit_log WHERE type = 'settlement.payout_initiated'",
                                   schema):
        members.setdefault(run_id, []).append(f"payout:{payout_id}")
    found = []
    for run_id, payment_day, summary in _rows(
            conn, "SELECT run_id, payment_day, summary FROM {s}.payout_runs "
            "WHERE status = 'completed'", schema):
        for file in (summary or {}).get("files", []):  # the run's Zengin files
            if file.get("currency") == CURRENCY:
                found.append(Expected(f"run:{run_id}", RUN, DEBIT, int(Decimal(file["total"])),
                                      payment_day,
                                      members=tuple(sorted(members.get(run_id, ())))))
    return sorted(found, key=lambda e: (e.day, e.key))


# The ledger's cash movements the bank should show, but runs: a funding's debit of
# the cash (its escrow's client; its payment_ref is in `references`), a settled
# payout's credit, a returned payout's debit (its party), a confirmed withholding
# remittance's credit (the tax paid from the account), as (kind, key, day,
# amount, party), in day order (the window needs no more; a day's movements are
# kept in key order in it).
_MOVEMENTS = (
    "SELECT * FROM (SELECT 'funding' AS kind, 'funding:' || e.position AS key, "
    + _JST_DAY + " AS day, e.amount::bigint, x.client_id AS party "
    "FROM {s}.ledger_entries e "
    "LEFT JOIN {s}.escrows x ON x.job_id = e.job_id WHERE e.account = %(cash)s "
    "AND e.currency = %(currency)s AND e.side = 'debit' AND e.event_type = ANY(%(funded)s) "
    "UNION ALL "
    "SELECT m.kind, m.kind || ':' || m.payout_id, m.day, m.amount, m.party_id FROM "
    "(SELECT CASE WHEN e.event_type = 'settlement.payout_settled' AND e.side = 'credit' "
    "THEN 'payout' WHEN e.side = 'debit' THEN 'return' END AS kind, "
    + _JST_DAY + " AS day, e.amount::bigint, a.data->>'payout_id' AS payout_id, "
    "a.data->>'party_id' AS party_id FROM {s}.ledger_entries e JOIN {s}.audit_log a "
    "USING (position) WHERE e.account = %(cash)s AND e.currency = %(currency)s "
    "AND e.event_type IN ('settlement.payout_settled', 'settlement.payout_returned')) m "
    "WHERE m.kind IS NOT NULL "
    "UNION ALL "
    "SELECT 'remittance', 'remittance:' || (a.data->>'remittance_id'), " + _JST_DAY + ", "
    "e.amount::bigint, a.data->>'party_id' FROM {s}.ledger_entries e JOIN {s}.audit_log a "
    "USING (position) WHERE e.account = %(cash)s AND e.currency = %(currency)s "
    "AND e.side = 'credit' AND e.event_type = 'settlement.withholding_remittance_confirmed'"
    ") u ORDER BY day")


def expected(conn: psycopg.Connection[Any], schema: str,
             names: dict[str, str] | None = None) -> Iterator[Expected]:
    """The ledger's cash movements but runs, in day order, one at a time (a funding
    without its `payment_ref`: see `with_references`)."""
    names = _names(conn, schema) if names is None else names
    days: dict[date, date] = {}
    for kind, key, day, amount, party in _stream(
            conn, _MOVEMENTS, schema, {"cash": CASH, "currency": CURRENCY,
                                       "funded": list(FUNDED)}):
        if kind == FUNDING:
            yield Expected(key, FUNDING, CREDIT, amount, days.setdefault(day, day), "",
                           names.get(party, ""))
        elif kind in (PAYOUT, REMITTANCE):
            yield Expected(key, kind, DEBIT, amount, days.setdefault(day, day))
        else:
            yield Expected(key, RETURN, CREDIT, amount, days.setdefault(day, day),
                           name=names.get(party, ""))


def with_references(conn: psycopg.Connection[Any], schema: str,
                    found: Sequence[Expected]) -> list[Expected]:
    """`found` with each funding's `payment_ref` (the report shows it)."""
    positions = [int(e.key.removeprefix("funding:")) for e in found if e.kind == FUNDING]
    refs = {f"funding:{position}": ref or "" for position, ref in _rows(
        conn, "SELECT position, data->'funding'->>'payment_ref' FROM {s}.audit_log "
        "WHERE position = ANY(%s)", schema, (positions,))} if positions else {}
    return [dataclasses.replace(e, ref=refs.get(e.key, "")) if e.kind == FUNDING else e
            for e in found]


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
        result = _match(conn, schema)
    with _LOCK:
        _CACHE[schema] = (head, result)
    return result


def _match(conn: psycopg.Connection[Any], schema: str) -> Reconciled:
    """The lines and the ledger's movements, each read once in date order side by
    side, through the matching (`matching.Matcher`, only the movements of the
    current window in memory) into `results.StoredResults`."""
    with conn.transaction():  # the cursors' (a savepoint in the caller's snapshot)
        # The two ordered reads sort a million rows each: in memory, not in files.
        conn.execute(f"SET LOCAL work_mem = '{SORT_MEMORY_MB}MB'")
        run_list = runs(conn, schema)
        matcher = Matcher(references(conn, schema), {e.key: e for e in run_list},
                          decisions(conn, schema), results := StoredResults())
        seen = _Seen()
        movements = heapq.merge(expected(conn, schema), run_list, key=_day)
        unmatched = with_references(conn, schema, matcher.run(seen.count(lines(conn, schema)),
                                                              movements))
        results.knowing(unmatched, run_list)
        results.finish()
        found = closings(conn, schema)
    return Reconciled(results.opened_lines, unmatched, results, found, seen.lines, seen.last)


def _day(e: Expected) -> date:
    return e.day


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
         line_id: str) -> tuple[str, Decimal, str, date] | None:
    """(direction, amount, currency, booked) of a statement line, or None."""
    found = _rows(conn, "SELECT direction, amount, currency, booked FROM {s}.statement_lines "
                  "WHERE line_id = %s", schema, (line_id,))
    if not found:
        return None
    direction, amount, currency, booked = found[0]
    return str(direction), Decimal(amount), str(currency), booked


def bank_fee_booked(conn: psycopg.Connection[Any], schema: str, line_id: str) -> bool:
    return bool(_rows(conn, "SELECT 1 FROM {s}.bank_fees WHERE line_id = %s", schema,
                      (line_id,)))
