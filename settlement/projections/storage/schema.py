"""The read models' tables, in one PostgreSQL schema (default `projections`).

A schema is either the live one (written by the projector) or a rebuild (written
from the event store, see `rebuild`); `meta.role` says which, so a rebuild may
replace an earlier rebuild but never the live projections or anything else.
Every table but `meta` and `positions` is part of the `digest`, in key order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from settlement.projections.storage import migrations, summaries

LIVE_SCHEMA = "projections"
LIVE, REBUILD = "live", "rebuild"
SCHEMA_VERSION = "3"  # see `migrations` for what each version changed
_SCHEMA_LOCK_KEY = 0x5E7751  # serialises schema creation between processes
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class SchemaError(ValueError):
    """A schema name the projections may not use."""


@dataclass(frozen=True)
class Table:
    name: str
    columns: str
    key: tuple[str, ...]
    indexes: tuple[str, ...] = ()  # each "columns" or "columns WHERE predicate"
    digested: bool = True


TABLES: tuple[Table, ...] = (
    Table("meta", "key text NOT NULL, value text NOT NULL", ("key",), digested=False),
    Table("positions", "projector text NOT NULL, topic text NOT NULL, partition integer NOT NULL, "
          "next_offset bigint NOT NULL, last_position bigint NOT NULL",
          ("projector", "topic", "partition"), digested=False),
    Table("ledger_entries", "position bigint NOT NULL, line integer NOT NULL, "
          "time timestamptz NOT NULL, job_id text, event_type text NOT NULL, "
          "account text NOT NULL, side text NOT NULL CHECK (side IN ('debit', 'credit')), "
          "amount numeric NOT NULL CHECK (amount > 0), currency text NOT NULL",
          # as_of sums by time; an account's entries in order (SPEC §7 entries).
          ("position", "line"), ("time", "account, currency, position")),
    Table("balances", "account text NOT NULL, currency text NOT NULL, "
          "debits numeric NOT NULL, credits numeric NOT NULL", ("account", "currency")),
    Table("job_views", "job_id text NOT NULL, version bigint NOT NULL, view jsonb NOT NULL",
          ("job_id",)),
    Table("escrows", "job_id text NOT NULL, format text NOT NULL, state text NOT NULL, "
          "currency text NOT NULL, client_id text NOT NULL, funded numeric NOT NULL, "
          "held numeric NOT NULL CHECK (held >= 0), released numeric NOT NULL, "
          "refunded numeric NOT NULL, fees numeric NOT NULL, withholding numeric NOT NULL, "
          "version bigint NOT NULL, opened_at timestamptz NOT NULL, "
          "updated_at timestamptz NOT NULL", ("job_id",)),
    Table("escrow_items", "job_id text NOT NULL, item_id text NOT NULL, kind text NOT NULL, "
          "state text NOT NULL, amount numeric NOT NULL, currency text NOT NULL, worker_id text, "
          "delivered_at timestamptz, released numeric NOT NULL, net numeric NOT NULL",
          ("job_id", "item_id")),
    Table("receivables", "job_id text NOT NULL, item_id text NOT NULL, worker_id text, "
          "client_id text NOT NULL, state text NOT NULL, amount numeric NOT NULL, "
          "net numeric NOT NULL, currency text NOT NULL, protected boolean NOT NULL, "
          "delivered_at timestamptz, due_by timestamptz, "
          "paid_out boolean NOT NULL DEFAULT false",
          # A worker's or client's rows in page order (since version 3); the last:
          # open claims by deadline, for the API's payout-deadline gauges and overdue
          # totals (a partial index, so it holds unpaid claims only, not all history).
          ("job_id", "item_id"), ("worker_id, job_id, item_id", "client_id, job_id, item_id",
                                  "due_by WHERE NOT paid_out AND amount > 0")),
    Table("receivables_history", "job_id text NOT NULL, item_id text NOT NULL, "
          "version bigint NOT NULL, position bigint NOT NULL, time timestamptz NOT NULL, "
          "worker_id text, client_id text NOT NULL, state text NOT NULL, "
          "amount numeric NOT NULL, net numeric NOT NULL, currency text NOT NULL, "
          "protected boolean NOT NULL, delivered_at timestamptz, due_by timestamptz",
          ("job_id", "item_id", "version")),
    Table("audit_log", "position bigint NOT NULL, job_id text, version bigint NOT NULL, "
          "type text NOT NULL, time timestamptz NOT NULL, causation_id text NOT NULL, "
          "data jsonb NOT NULL, hash text, prev_hash text", ("position",),
          # The second: a payout's events by its id (payment statements, SPEC §12).
          ("job_id, position", "(data->>'payout_id'), position WHERE job_id IS NULL")),
    # SPEC §7 `GET /v1/payouts`; `position`: of the payout's last event applied.
    Table("payouts", "payout_id text NOT NULL, party_type text NOT NULL, "
          "party_id text NOT NULL, currency text NOT NULL, amount numeric NOT NULL, "
          "status text NOT NULL, items jsonb NOT NULL, position bigint NOT NULL",
          ("payout_id",), ("status, payout_id",)),
    # Which payout pays which item: a receivable's `paid_out` is derived from it
    # (as of an instant: initiated by then and not failed by then).
    Table("payout_items", "job_id text NOT NULL, item_id text NOT NULL, "
          "payout_id text NOT NULL, party_type text NOT NULL, status text NOT NULL, "
          "initiated_at timestamptz, failed_at timestamptz",
          ("job_id", "item_id", "payout_id")),
    # SPEC §10 `GET /v1/parties/{party_id}`: each party as its latest event left it
    # (the account number masked); `position`: of that event.
    Table("parties", "party_id text NOT NULL, kind text NOT NULL, name text NOT NULL, "
          "name_kana text NOT NULL, address text, invoice_registration_number text, "
          "bank_account jsonb, kyc_verified boolean NOT NULL, "
          "transfer_fee_bearer text NOT NULL, hold text, returned_payout_id text, "
          "registered_at timestamptz, updated_at timestamptz NOT NULL, "
          "position bigint NOT NULL", ("party_id",)),
    # SPEC §11 `GET /v1/payout-runs/{run_id}`: each run, started or completed.
    Table("payout_runs", "run_id text NOT NULL, closing date, payment_day date NOT NULL, "
          "cutoff timestamptz, as_of_position bigint NOT NULL, status text NOT NULL, "
          "summary jsonb, time timestamptz NOT NULL, position bigint NOT NULL",
          ("run_id",), ("status, time",)),
    # SPEC §11 `GET /v1/payouts/held`: what each run held or carried over, and why.
    Table("payout_holds", "run_id text NOT NULL, party_type text NOT NULL, "
          "party_id text NOT NULL, currency text NOT NULL, amount numeric NOT NULL, "
          "reason text NOT NULL, due_by timestamptz, time timestamptz NOT NULL, "
          "position bigint NOT NULL", ("run_id", "party_type", "party_id", "currency")),
    # SPEC §13 `GET /v1/reconciliation`: every bank statement line, and each day's
    # balance as the bank stated it, stored once each.
    Table("statement_lines", "line_id text NOT NULL, statement_id text NOT NULL, "
          "account text NOT NULL, booked date NOT NULL, direction text NOT NULL, "
          "amount numeric NOT NULL CHECK (amount > 0), currency text NOT NULL, "
          "counterparty text NOT NULL, reference text NOT NULL, kind text NOT NULL, "
          "time timestamptz NOT NULL, position bigint NOT NULL", ("line_id",),
          ("booked, direction",)),
    Table("statement_balances", "balance_id text NOT NULL, account text NOT NULL, "
          "day date NOT NULL, opening numeric NOT NULL, closing numeric NOT NULL, "
          "currency text NOT NULL, statement_id text NOT NULL, time timestamptz NOT NULL, "
          "position bigint NOT NULL", ("balance_id",), ("day",)),
    # Bank charges finance confirmed, booked to expenses:bank_fees (one per line).
    Table("bank_fees", "line_id text NOT NULL, decision_id text NOT NULL, "
          "amount numeric NOT NULL CHECK (amount > 0), currency text NOT NULL, "
          "reason text NOT NULL, time timestamptz NOT NULL, position bigint NOT NULL",
          ("line_id",)),
    # Finance's latest decision per statement line (match or unmatch by hand).
    Table("statement_decisions", "line_id text NOT NULL, decision_id text NOT NULL, "
          "action text NOT NULL, targets jsonb NOT NULL, reason text NOT NULL, "
          "time timestamptz NOT NULL, position bigint NOT NULL", ("line_id",)),
    # SPEC §12 `GET /v1/invoices`: each issued invoice (never changed), its event's data.
    Table("invoices", "number text NOT NULL, party_id text NOT NULL, period text NOT NULL, "
          "issued_on date NOT NULL, corrects text, total numeric NOT NULL, "
          "tax numeric NOT NULL, currency text NOT NULL, document jsonb NOT NULL, "
          "document_sha256 text NOT NULL, time timestamptz NOT NULL, "
          "position bigint NOT NULL", ("number",), ("party_id, period", "period, number")),
)
# The totals beside the API's pages, kept with the rows (`summaries`; since version 3).
TABLES += tuple(Table(name, columns, key) for name, columns, key in (
    summaries.BALANCE_TOTALS, summaries.BALANCE_DAYS, summaries.BALANCE_TOTAL_DAYS,
    summaries.BALANCE_BLOCKS, summaries.RECEIVABLE_TOTALS))
DIGESTED = tuple(table for table in TABLES if table.digested)


def checked_name(schema: str) -> str:
    if not _NAME.fullmatch(schema) or schema.startswith("pg_"):
        raise SchemaError(f"schema name must match {_NAME.pattern} (not pg_*), got {schema!r}")
    return schema


def create(conn: psycopg.Connection[Any], schema: str, role: str = LIVE) -> None:
    """Create the schema and its tables if they do not exist (idempotent)."""
    name = sql.Identifier(checked_name(schema))
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
        for table in TABLES:
            _create_table(conn, name, table, unlogged=role == REBUILD)
        conn.execute(sql.SQL("INSERT INTO {}.meta VALUES ('role', %s), ('schema_version', %s) "
                             "ON CONFLICT (key) DO NOTHING").format(name), (role, SCHEMA_VERSION))
        migrations.upgrade(conn, name, SCHEMA_VERSION)
    found = role_of(conn, schema)
    if found != role:
        raise SchemaError(f"schema {schema} holds {found} projections, not {role} ones")


def _create_table(conn: psycopg.Connection[Any], schema: sql.Identifier, table: Table,
                  unlogged: bool = False) -> None:
    """`unlogged`: for a rebuild's tables, derived data that `settlement rebuild` or
    `replay` makes again from the event store at any time. They skip the WAL (a
    replay ran 40 % faster), and a server crash empties them."""
    conn.execute(sql.SQL("CREATE {}TABLE IF NOT EXISTS {}.{} ({}, PRIMARY KEY ({}))").format(
        sql.SQL("UNLOGGED " if unlogged else ""),
        schema, sql.Identifier(table.name), sql.SQL(table.columns),
        sql.SQL(", ").join(map(sql.Identifier, table.key))))
    for statement in index_statements(schema, table):
        conn.execute(statement)


def index_statements(schema: sql.Identifier, table: Table) -> list[sql.Composed]:
    """`CREATE INDEX IF NOT EXISTS` of each secondary index of `table`."""
    statements = []
    for n, index in enumerate(table.indexes, start=1):
        columns, _, where = index.partition(" WHERE ")  # "columns[ WHERE predicate]"
        statements.append(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {}.{} ({}){}").format(
            sql.Identifier(f"{table.name}_{n}"), schema, sql.Identifier(table.name),
            sql.SQL(columns), sql.SQL(f" WHERE {where}" if where else "")))
    return statements


def role_of(conn: psycopg.Connection[Any], schema: str) -> str | None:
    """The role recorded in the schema, or None when it is not a projections schema."""
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute("SELECT to_regclass(%s)", (f"{checked_name(schema)}.meta",)).fetchone()
        if row is None or row[0] is None:
            return None
        found = cur.execute(sql.SQL("SELECT value FROM {}.meta WHERE key = 'role'").format(
            sql.Identifier(schema))).fetchone()
    return None if found is None else str(found[0])


def exists(conn: psycopg.Connection[Any], schema: str) -> bool:
    with conn.cursor(row_factory=tuple_row) as cur:
        row = cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                          (checked_name(schema),)).fetchone()
    return row is not None


def recreate_for_rebuild(conn: psycopg.Connection[Any], schema: str) -> None:
    """An empty rebuild schema; an existing one is replaced only if it is a rebuild."""
    if exists(conn, schema):
        role = role_of(conn, schema)
        if role != REBUILD:
            raise SchemaError(f"schema {schema} exists and is not a rebuild ({role or 'foreign'})"
                              ": refusing to replace it")
        with conn.transaction():
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    create(conn, schema, REBUILD)
