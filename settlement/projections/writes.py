"""How each read model table is written from a batch's `Changes`: append-only
tables by binary COPY, per-key tables by an upsert of one array per column.

Binary COPY costs about half of INSERT … unnest for the append-only tables, and
binary array parameters a third of text ones (psycopg escapes every element of a
text array in Python; profiled).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

import orjson
from psycopg import Cursor, sql
from psycopg.types.json import set_json_dumps

from settlement.projections.changes import Changes

Column = tuple[str, str]  # (name, PostgreSQL type)
Rows = Callable[[Changes], list[tuple[Any, ...]]]

ENTRY_COLUMNS = [("position", "bigint"), ("line", "integer"), ("time", "timestamptz"),
                 ("job_id", "text"), ("event_type", "text"), ("account", "text"),
                 ("side", "text"), ("amount", "numeric"), ("currency", "text")]
AUDIT_COLUMNS = [("position", "bigint"), ("job_id", "text"), ("version", "bigint"),
                 ("type", "text"), ("time", "timestamptz"), ("causation_id", "text"),
                 ("data", "jsonb"), ("hash", "text"), ("prev_hash", "text")]
ESCROW_COLUMNS = [("job_id", "text"), ("format", "text"), ("state", "text"),
                  ("currency", "text"), ("client_id", "text"), ("funded", "numeric"),
                  ("held", "numeric"), ("released", "numeric"), ("refunded", "numeric"),
                  ("fees", "numeric"), ("withholding", "numeric"), ("version", "bigint"),
                  ("opened_at", "timestamptz"), ("updated_at", "timestamptz")]
ITEM_COLUMNS = [("job_id", "text"), ("item_id", "text"), ("kind", "text"), ("state", "text"),
                ("amount", "numeric"), ("currency", "text"), ("worker_id", "text"),
                ("delivered_at", "timestamptz"), ("released", "numeric"), ("net", "numeric")]
RECEIVABLE_COLUMNS = [("job_id", "text"), ("item_id", "text"), ("worker_id", "text"),
                      ("client_id", "text"), ("state", "text"), ("amount", "numeric"),
                      ("net", "numeric"), ("currency", "text"), ("protected", "boolean"),
                      ("delivered_at", "timestamptz"), ("due_by", "timestamptz")]
HISTORY_COLUMNS = [*RECEIVABLE_COLUMNS[:2], ("version", "bigint"), ("position", "bigint"),
                   ("time", "timestamptz"), *RECEIVABLE_COLUMNS[2:]]
VIEW_COLUMNS = [("job_id", "text"), ("version", "bigint"), ("view", "jsonb")]
BALANCE_COLUMNS = [("account", "text"), ("currency", "text"), ("debits", "numeric"),
                   ("credits", "numeric")]
PAYOUT_COLUMNS = [("payout_id", "text"), ("party_type", "text"), ("party_id", "text"),
                  ("currency", "text"), ("amount", "numeric"), ("status", "text"),
                  ("items", "jsonb"), ("position", "bigint")]
PAYOUT_ITEM_COLUMNS = [("job_id", "text"), ("item_id", "text"), ("payout_id", "text"),
                       ("party_type", "text"), ("status", "text"),
                       ("initiated_at", "timestamptz"), ("failed_at", "timestamptz")]


def _names(columns: Sequence[Column]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)


@dataclass(frozen=True)
class Append:
    """Rows only ever added (their keys are event positions): binary COPY."""

    table: str
    columns: Sequence[Column]
    rows: Rows

    def statement(self, schema: str) -> sql.Composed:
        return sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT BINARY)").format(
            sql.Identifier(schema), sql.Identifier(self.table), _names(self.columns))

    def run(self, cur: Cursor[Any], statement: sql.Composed, rows: list[tuple[Any, ...]]) -> None:
        set_json_dumps(orjson.dumps, cur)  # JSON columns take the event data as it is
        with cur.copy(statement) as copy:
            copy.set_types([type_ for _, type_ in self.columns])
            for row in rows:
                copy.write_row(row)


@dataclass(frozen=True)
class Upsert:
    """One row per key, replaced (or combined by `update`) by the batch's last state."""

    table: str
    columns: Sequence[Column]
    key: Sequence[str]
    rows: Rows
    update: str = ""

    def statement(self, schema: str) -> sql.Composed:
        arrays = sql.SQL(", ").join(sql.SQL("%b::{}[]").format(sql.SQL(type_))
                                    for _, type_ in self.columns)
        assignments = self.update or ", ".join(
            f"{name} = EXCLUDED.{name}" for name, _ in self.columns if name not in self.key)
        return sql.SQL("INSERT INTO {}.{} AS t ({}) SELECT * FROM unnest({}) "
                       "ON CONFLICT ({}) DO UPDATE SET {}").format(
            sql.Identifier(schema), sql.Identifier(self.table), _names(self.columns), arrays,
            sql.SQL(", ").join(map(sql.Identifier, self.key)), sql.SQL(assignments))

    def run(self, cur: Cursor[Any], statement: sql.Composed, rows: list[tuple[Any, ...]]) -> None:
        cur.execute(statement, [list(column) for column in zip(*rows, strict=True)],
                    prepare=True)


def _attrs(columns: Sequence[Column]) -> Callable[[Any], tuple[Any, ...]]:
    get = attrgetter(*(name for name, _ in columns))
    return lambda row: tuple(get(row))


def _entries(changes: Changes) -> list[tuple[Any, ...]]:
    return list(map(_attrs(ENTRY_COLUMNS), changes.entries))


def _balances(changes: Changes) -> list[tuple[Any, ...]]:
    return list(map(_attrs(BALANCE_COLUMNS), changes.balances()))


def _audit(changes: Changes) -> list[tuple[Any, ...]]:
    return list(map(_attrs(AUDIT_COLUMNS), changes.audit))


def _views(changes: Changes) -> list[tuple[Any, ...]]:
    return [(job_id, job.version, orjson.dumps(job.to_json()).decode())
            for job_id, job in sorted(changes.jobs.items())]


def _escrows(changes: Changes) -> list[tuple[Any, ...]]:
    return list(map(_attrs(ESCROW_COLUMNS), changes.escrows()))


def _items(changes: Changes) -> list[tuple[Any, ...]]:
    return list(map(_attrs(ITEM_COLUMNS), changes.item_rows()))


def _receivables(changes: Changes) -> list[tuple[Any, ...]]:
    return list(map(_attrs(RECEIVABLE_COLUMNS), changes.receivables()))


def _history(changes: Changes) -> list[tuple[Any, ...]]:
    get = _attrs(RECEIVABLE_COLUMNS)
    return [(*get(c.row)[:2], c.version, c.position, c.time, *get(c.row)[2:])
            for c in changes.history]


def _payouts(changes: Changes) -> list[tuple[Any, ...]]:
    return [(v.payout_id, v.party_type, v.party_id, v.currency, v.amount, v.status,
             orjson.dumps(list(v.items)).decode(), v.position) for v in changes.payout_rows()]


def _payout_items(changes: Changes) -> list[tuple[Any, ...]]:
    return list(map(_attrs(PAYOUT_ITEM_COLUMNS), changes.payout_items()))


@dataclass(frozen=True)
class PaidOut:
    """Recompute `receivables.paid_out` of the batch's payable or paid-out items from
    `payout_items` (a worker payout that has not failed), after both are written:
    the result does not depend on which of the two arrived first."""

    table: str = "receivables"
    rows: Rows = lambda changes: changes.paid_out_keys()  # noqa: E731

    def statement(self, schema: str) -> sql.Composed:
        paid = sql.SQL(
            "EXISTS (SELECT 1 FROM {}.payout_items AS p WHERE p.job_id = r.job_id "
            "AND p.item_id = r.item_id AND p.party_type = 'worker' "
            "AND p.status <> 'failed')").format(sql.Identifier(schema))
        return sql.SQL(
            "UPDATE {}.receivables AS r SET paid_out = {} "
            "FROM unnest(%b::text[], %b::text[]) AS k(job_id, item_id) "
            "WHERE r.job_id = k.job_id AND r.item_id = k.item_id "
            "AND r.paid_out IS DISTINCT FROM {}").format(sql.Identifier(schema), paid, paid)

    def run(self, cur: Cursor[Any], statement: sql.Composed, rows: list[tuple[Any, ...]]) -> None:
        cur.execute(statement, [list(column) for column in zip(*rows, strict=True)],
                    prepare=True)


# In this order: entries first, then balance rows (locked in key order, so two
# writers never deadlock), then the rest.
WRITES: tuple[Append | Upsert | PaidOut, ...] = (
    Append("ledger_entries", ENTRY_COLUMNS, _entries),
    Upsert("balances", BALANCE_COLUMNS, ("account", "currency"), _balances,
           "debits = t.debits + EXCLUDED.debits, credits = t.credits + EXCLUDED.credits"),
    Append("audit_log", AUDIT_COLUMNS, _audit),
    Upsert("job_views", VIEW_COLUMNS, ("job_id",), _views),
    Upsert("escrows", ESCROW_COLUMNS, ("job_id",), _escrows),
    Upsert("escrow_items", ITEM_COLUMNS, ("job_id", "item_id"), _items),
    # Every column but `paid_out`, which belongs to payouts.
    Upsert("receivables", RECEIVABLE_COLUMNS, ("job_id", "item_id"), _receivables),
    Append("receivables_history", HISTORY_COLUMNS, _history),
    Upsert("payouts", PAYOUT_COLUMNS, ("payout_id",), _payouts),
    # A batch without the payout's initiated (failed) event knows no such time.
    Upsert("payout_items", PAYOUT_ITEM_COLUMNS, ("job_id", "item_id", "payout_id"),
           _payout_items, "status = EXCLUDED.status, "
           "initiated_at = coalesce(EXCLUDED.initiated_at, t.initiated_at), "
           "failed_at = coalesce(EXCLUDED.failed_at, t.failed_at)"),
    PaidOut(),  # last: after receivables and payout_items
)
