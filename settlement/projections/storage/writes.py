"""How each read model table is written from a batch's `Changes`: append-only
tables by binary COPY, per-key tables by a binary COPY into a temporary table of
the connection and an upsert from it.

Binary COPY costs about half of INSERT … unnest for the append-only tables; for
the upserts, it costs less than binary array parameters (psycopg dumps every
element of an array in Python, a COPY row in C; profiled).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date
from decimal import Decimal
from operator import attrgetter
from typing import Any

import orjson
from psycopg import Cursor, sql
from psycopg.types.json import set_json_dumps

from settlement.projections.model.changes import Changes
from settlement.projections.model.invoices import INVOICE_COLUMNS
from settlement.projections.model.reconciliation import StatementLineRow
from settlement.projections.storage import summaries
from settlement.projections.storage.statements import StatementChunks

Column = tuple[str, str]  # (name, PostgreSQL type)
# Staging tables keep their rows past a commit: the transaction that fills one
# empties it (`Store.write`). `ON COMMIT DELETE ROWS` truncated every staging
# table of the connection at every commit: ~2 ms of the server's CPU per batch
# with ~20 of them, measured (docs/batching.md).
STAGING_KEPT = "ON COMMIT PRESERVE ROWS"
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
DAY_COLUMNS = [("account", "text"), ("currency", "text"), ("day", "date"),
               ("debits", "numeric"), ("credits", "numeric")]
BLOCK_COLUMNS = [("account", "text"), ("currency", "text"), ("block", "bigint"),
                 ("debits", "numeric"), ("credits", "numeric")]
PAYOUT_COLUMNS = [("payout_id", "text"), ("party_type", "text"), ("party_id", "text"),
                  ("currency", "text"), ("amount", "numeric"), ("status", "text"),
                  ("items", "jsonb"), ("position", "bigint")]
PAYOUT_ITEM_COLUMNS = [("job_id", "text"), ("item_id", "text"), ("payout_id", "text"),
                       ("party_type", "text"), ("status", "text"),
                       ("initiated_at", "timestamptz"), ("failed_at", "timestamptz")]
PARTY_COLUMNS = [("party_id", "text"), ("kind", "text"), ("name", "text"),
                 ("name_kana", "text"), ("address", "text"),
                 ("invoice_registration_number", "text"), ("bank_account", "jsonb"),
                 ("kyc_verified", "boolean"), ("transfer_fee_bearer", "text"), ("hold", "text"),
                 ("returned_payout_id", "text"), ("registered_at", "timestamptz"),
                 ("updated_at", "timestamptz"), ("position", "bigint")]
RUN_COLUMNS = [("run_id", "text"), ("closing", "date"), ("payment_day", "date"),
               ("cutoff", "timestamptz"), ("as_of_position", "bigint"), ("status", "text"),
               ("summary", "jsonb"), ("time", "timestamptz"), ("position", "bigint")]
HOLD_COLUMNS = [("run_id", "text"), ("party_type", "text"), ("party_id", "text"),
                ("currency", "text"), ("amount", "numeric"), ("reason", "text"),
                ("due_by", "timestamptz"), ("time", "timestamptz"), ("position", "bigint")]
STATEMENT_LINE_COLUMNS = [("line_id", "text"), ("statement_id", "text"), ("account", "text"),
                          ("booked", "date"), ("direction", "text"), ("amount", "numeric"),
                          ("currency", "text"), ("counterparty", "text"), ("reference", "text"),
                          ("kind", "text"), ("time", "timestamptz"), ("position", "bigint")]
STATEMENT_BALANCE_COLUMNS = [("balance_id", "text"), ("account", "text"), ("day", "date"),
                             ("opening", "numeric"),
                             ("closing", "numeric"), ("currency", "text"),
                             ("statement_id", "text"), ("time", "timestamptz"),
                             ("position", "bigint")]
BANK_FEE_COLUMNS = [("line_id", "text"), ("decision_id", "text"), ("amount", "numeric"),
                    ("currency", "text"), ("reason", "text"), ("time", "timestamptz"),
                    ("position", "bigint")]
STATEMENT_DECISION_COLUMNS = [("line_id", "text"), ("decision_id", "text"), ("action", "text"),
                              ("targets", "jsonb"), ("reason", "text"),
                              ("time", "timestamptz"), ("position", "bigint")]


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

    @property
    def staging_table(self) -> None:
        """Straight into the table: no staging table."""
        return None

    def run(self, cur: Cursor[Any], statement: sql.Composed, rows: list[tuple[Any, ...]]) -> None:
        set_json_dumps(orjson.dumps, cur)  # JSON columns take the event data as it is
        with cur.copy(statement) as copy:
            copy.set_types([type_ for _, type_ in self.columns])
            for row in rows:
                copy.write_row(row)


class Staged:
    """A write through a temporary staging table: binary COPY of the rows into it
    (`statement[0]`), then one statement from it (`statement[1]`)."""

    @property
    @abstractmethod
    def _staged_types(self) -> Sequence[str]:
        """The staging table's column types, in column order."""

    @property
    def staging_table(self) -> sql.Identifier | None:
        """The staging table this write fills (emptied by the transaction that fills
        it, `Store.write`), if any."""
        return None

    def run(self, cur: Cursor[Any], statement: tuple[sql.Composed, sql.Composed],
            rows: list[tuple[Any, ...]]) -> None:
        self.load(cur, statement, rows)
        cur.execute(statement[1], prepare=True)

    def load(self, cur: Cursor[Any], statement: tuple[sql.Composed, sql.Composed],
             rows: list[tuple[Any, ...]]) -> None:
        """Only the COPY into the staging table (then execute `statement[1]`)."""
        with cur.copy(statement[0]) as copy:
            copy.set_types(self._staged_types)
            for row in rows:
                copy.write_row(row)


@dataclass(frozen=True)
class Upsert(Staged):
    """One row per key, replaced (or combined by `update`) by the batch's last state:
    the rows by binary COPY into a temporary table of this connection (`stage`),
    then one INSERT … SELECT from it, in key order."""

    table: str
    columns: Sequence[Column]
    key: Sequence[str]
    rows: Rows
    update: str = ""

    @property
    def _stage(self) -> sql.Identifier:
        return sql.Identifier(f"stage_{self.table}")

    @property
    def staging_table(self) -> sql.Identifier | None:
        return self._stage

    @property
    def _staged_types(self) -> list[str]:
        # JSON arrives as its text (built once by orjson), cast on the way out.
        return ["text" if type_ == "jsonb" else type_ for _, type_ in self.columns]

    def stage(self) -> sql.Composed:
        """Creates this connection's staging table (see `STAGING_KEPT`)."""
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(type_))
            for (name, _), type_ in zip(self.columns, self._staged_types, strict=True))
        return sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} ({}) " + STAGING_KEPT).format(
            self._stage, columns)

    def _on_conflict(self) -> str:
        assignments = self.update or ", ".join(
            f"{name} = EXCLUDED.{name}" for name, _ in self.columns if name not in self.key)
        return f"DO UPDATE SET {assignments}"

    def statement(self, schema: str) -> tuple[sql.Composed, sql.Composed]:
        key = sql.SQL(", ").join(map(sql.Identifier, self.key))
        copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            self._stage, _names(self.columns))
        # In key order: two writers lock shared rows (balances) in one order, never deadlock.
        values = sql.SQL(", ").join(
            sql.SQL("{}::jsonb" if type_ == "jsonb" else "{}").format(sql.Identifier(name))
            for name, type_ in self.columns)
        insert = sql.SQL("INSERT INTO {}.{} AS t ({}) SELECT {} FROM {} ORDER BY {} "
                         "ON CONFLICT ({}) {}").format(
            sql.Identifier(schema), sql.Identifier(self.table), _names(self.columns),
            values, self._stage, key, key, sql.SQL(self._on_conflict()))
        return copy, insert


def _attrs(columns: Sequence[Column]) -> Callable[[Any], tuple[Any, ...]]:
    return attrgetter(*(name for name, _ in columns))  # a tuple of them (columns > 1)


def _entries(changes: Changes) -> list[tuple[Any, ...]]:
    return list(map(_attrs(ENTRY_COLUMNS), changes.entries))


def _balances(changes: Changes) -> list[tuple[Any, ...]]:
    return list(map(_attrs(BALANCE_COLUMNS), changes.balances()))


def _days(changes: Changes) -> list[tuple[Any, ...]]:
    """The batch's entries summed per account, currency and UTC day (`summaries`)."""
    sums: dict[tuple[str, str, date], list[Decimal]] = {}
    for e in changes.entries:
        key = (e.account, e.currency, e.time.astimezone(UTC).date())
        pair = sums.get(key)
        if pair is None:
            pair = sums[key] = [_ZERO, _ZERO]
        pair[e.side != "debit"] += e.amount
    return [(*key, debits, credits) for key, (debits, credits) in sorted(sums.items())]


def _blocks(changes: Changes) -> list[tuple[Any, ...]]:
    """The batch's entries summed per account, currency and block of positions."""
    sums: dict[tuple[str, str, int], list[Decimal]] = {}
    bits = summaries.BLOCK_BITS
    for e in changes.entries:
        key = (e.account, e.currency, e.position >> bits)
        pair = sums.get(key)
        if pair is None:
            pair = sums[key] = [_ZERO, _ZERO]
        pair[e.side != "debit"] += e.amount
    return [(*key, debits, credits) for key, (debits, credits) in sorted(sums.items())]


_ZERO = Decimal(0)


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


def _json_texts(columns: Sequence[Column],
                rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """`rows` with their JSON values as text, as a staging table takes them."""
    json_at = [n for n, (_, type_) in enumerate(columns) if type_ == "jsonb"]
    return [tuple(orjson.dumps(v).decode() if n in json_at and v is not None else v
                  for n, v in enumerate(row)) for row in rows]


def party_rows(changes: Changes) -> list[tuple[Any, ...]]:
    return [_attrs(PARTY_COLUMNS)(changes.parties[k]) for k in sorted(changes.parties)]


def run_rows(changes: Changes) -> list[tuple[Any, ...]]:
    return [_attrs(RUN_COLUMNS)(changes.runs[k]) for k in sorted(changes.runs)]


def hold_rows(changes: Changes) -> list[tuple[Any, ...]]:
    return [_attrs(HOLD_COLUMNS)(changes.holds[k]) for k in sorted(changes.holds)]


def statement_line_rows(changes: Changes) -> list[tuple[Any, ...]]:
    return list(changes.statement_lines)  # tuples in column order (asserted below)


assert list(StatementLineRow._fields) == [name for name, _ in STATEMENT_LINE_COLUMNS]


def statement_balance_rows(changes: Changes) -> list[tuple[Any, ...]]:
    return list(map(_attrs(STATEMENT_BALANCE_COLUMNS), changes.statement_balances))


def invoice_rows(changes: Changes) -> list[tuple[Any, ...]]:
    return [_attrs(INVOICE_COLUMNS)(changes.invoices[k]) for k in sorted(changes.invoices)]


def statement_decision_rows(changes: Changes) -> list[tuple[Any, ...]]:
    rows = changes.statement_decisions
    return [_attrs(STATEMENT_DECISION_COLUMNS)(rows[k]) for k in sorted(rows)]


def bank_fee_rows(changes: Changes) -> list[tuple[Any, ...]]:
    return [_attrs(BANK_FEE_COLUMNS)(changes.bank_fees[k]) for k in sorted(changes.bank_fees)]


def _keyed_audit(changes: Changes) -> list[tuple[Any, ...]]:
    return _json_texts(AUDIT_COLUMNS, list(map(_attrs(AUDIT_COLUMNS), changes.keyed_audit)))


# A row of one event each: replaced by a later event only (see model.parties).
_IF_LATER = " WHERE t.position < EXCLUDED.position"


def _replace(columns: Sequence[Column], key: Sequence[str], keep: Sequence[str] = ()) -> str:
    return ", ".join(f"{name} = coalesce(t.{name}, EXCLUDED.{name})" if name in keep
                     else f"{name} = EXCLUDED.{name}"
                     for name, _ in columns if name not in key) + _IF_LATER


@dataclass(frozen=True)
class InsertNew(Upsert):
    """Rows inserted unless their key is there: an event read twice adds nothing."""

    @property
    def _stage(self) -> sql.Identifier:
        return sql.Identifier(f"stage_new_{self.table}")

    def _on_conflict(self) -> str:
        return "DO NOTHING"


def paid_out(schema: str) -> sql.Composed:
    """Whether receivable r is paid out: a worker payout not failed nor returned names it.
    OFFSET 0 keeps it a probe of r's items by key: without it the planner, blind to
    how many rows the staging tables hold, hashed every `payout_items` row each batch
    (a cost growing with the table, not with the batch)."""
    return sql.SQL(
        "EXISTS (SELECT 1 FROM {}.payout_items AS p WHERE p.job_id = r.job_id "
        "AND p.item_id = r.item_id AND p.party_type = 'worker' "
        "AND p.status NOT IN ('failed', 'returned') OFFSET 0)").format(sql.Identifier(schema))


@dataclass(frozen=True)
class Derived(Staged):
    """A statement over the batch's staging tables, with no rows of its own (the
    summaries' upkeep, `summaries`); `stage` makes the table it writes, if any."""

    table: str  # what it keeps (no rows of its own)
    make: Callable[[str], sql.Composed]
    staging: sql.Composed | None = None
    filled: sql.Identifier | None = None  # the table `staging` makes, which `make` fills
    rows: Rows = lambda changes: _ALWAYS  # noqa: E731
    _staged_types = ()

    def stage(self) -> sql.Composed:
        return sql.Composed([sql.SQL("SELECT 1")]) if self.staging is None else self.staging

    @property
    def staging_table(self) -> sql.Identifier | None:
        return self.filled

    def load(self, cur: Cursor[Any], statement: tuple[sql.Composed, sql.Composed],
             rows: list[tuple[Any, ...]]) -> None:
        """Nothing to copy: the statement reads the other writes' staging tables."""

    def statement(self, schema: str) -> tuple[sql.Composed, sql.Composed]:
        return sql.Composed([]), self.make(schema)


_ALWAYS: list[tuple[Any, ...]] = [()]  # a Derived statement runs with every batch


@dataclass(frozen=True)
class Summed:
    """The rows of the write on table `source` (earlier in `WRITES`) summed per prefix
    (`summaries.prefix_sums`; `rows_of` hands them over, built once), added to a
    summary table by one INSERT … SELECT FROM unnest(…) in key order, its columns
    as array parameters: a few rows a batch, so no staging table and no COPY (the
    statement goes in the upserts' round trip)."""

    table: str
    columns: Sequence[Column]
    key: Sequence[str]
    source: str

    @staticmethod
    def rows_from(source_rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return summaries.prefix_sums(source_rows)

    @property
    def staging_table(self) -> None:
        return None

    def statement(self, schema: str) -> sql.Composed:
        names = _names(self.columns)
        arrays = sql.SQL(", ").join(sql.SQL(f"%s::{type_}[]") for _, type_ in self.columns)
        added = sql.SQL(", ").join(
            sql.SQL("{0} = t.{0} + EXCLUDED.{0}").format(sql.Identifier(name))
            for name, _ in self.columns if name not in self.key)
        key = sql.SQL(", ").join(map(sql.Identifier, self.key))
        # In key order, as the upserts from staging tables: one order of locks.
        return sql.SQL("INSERT INTO {}.{} AS t ({}) SELECT * FROM unnest({}) AS u ({}) "
                       "ORDER BY {} ON CONFLICT ({}) DO UPDATE SET {}").format(
            sql.Identifier(schema), sql.Identifier(self.table), names, arrays, names, key,
            key, added)

    @staticmethod
    def parameters(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
        """The rows as one array per column."""
        return [list(column) for column in zip(*rows, strict=True)]


TOTAL_COLUMNS = [("currency", "text"), ("prefix", "text"), ("debits", "numeric"),
                 ("credits", "numeric"), ("balance", "numeric")]
TOTAL_DAY_COLUMNS = [*TOTAL_COLUMNS[:2], ("day", "date"), *TOTAL_COLUMNS[2:]]


@dataclass(frozen=True)
class PaidOut(Staged):
    """Recompute `receivables.paid_out` of the batch's payable or paid-out items from
    `payout_items` (a worker payout not failed nor returned), after both are written:
    the result does not depend on which of the two arrived first."""

    table: str = "receivables"
    rows: Rows = lambda changes: changes.paid_out_keys()  # noqa: E731
    _stage = sql.Identifier("stage_paid_out")
    _staged_types = ("text", "text")

    @property
    def staging_table(self) -> sql.Identifier | None:
        return self._stage

    def stage(self) -> sql.Composed:
        return sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} (job_id text, item_id text) "
                       + STAGING_KEPT).format(self._stage)

    def statement(self, schema: str) -> tuple[sql.Composed, sql.Composed]:
        paid = paid_out(schema)
        copy = sql.SQL("COPY {} (job_id, item_id) FROM STDIN (FORMAT BINARY)").format(
            self._stage)
        update = sql.SQL(
            "UPDATE {}.receivables AS r SET paid_out = {} FROM {} AS k "
            "WHERE r.job_id = k.job_id AND r.item_id = k.item_id "
            "AND r.paid_out IS DISTINCT FROM {}").format(sql.Identifier(schema), paid,
                                                         self._stage, paid)
        return copy, update


# In this order: entries first, then balance rows (locked in key order, so two
# writers never deadlock), then the rest.
# Summary rows (`summaries`) after the rows they sum, in one order of tables and of
# keys in each, so writers lock them in one order too.
WRITES: tuple[Append | Upsert | PaidOut | Derived | Summed | StatementChunks, ...] = (
    Append("ledger_entries", ENTRY_COLUMNS, _entries),
    Upsert("balances", BALANCE_COLUMNS, ("account", "currency"), _balances,
           "debits = t.debits + EXCLUDED.debits, credits = t.credits + EXCLUDED.credits"),
    Summed("balance_totals", TOTAL_COLUMNS, ("currency", "prefix"), "balances"),
    Upsert("balance_days", DAY_COLUMNS, ("account", "currency", "day"), _days,
           "debits = t.debits + EXCLUDED.debits, credits = t.credits + EXCLUDED.credits"),
    Summed("balance_total_days", TOTAL_DAY_COLUMNS, ("currency", "prefix", "day"),
           "balance_days"),
    Upsert("balance_blocks", BLOCK_COLUMNS, ("account", "currency", "block"), _blocks,
           "debits = t.debits + EXCLUDED.debits, credits = t.credits + EXCLUDED.credits"),
    Append("audit_log", AUDIT_COLUMNS, _audit),
    Upsert("job_views", VIEW_COLUMNS, ("job_id",), _views),
    Upsert("escrows", ESCROW_COLUMNS, ("job_id",), _escrows),
    Upsert("escrow_items", ITEM_COLUMNS, ("job_id", "item_id"), _items),
    # The receivables' totals move by what the upsert and `PaidOut` change (applied last).
    Derived("receivable_deltas", summaries.receivable_deltas, summaries.deltas_stage(),
            summaries.DELTAS),
    # Every column but `paid_out`, which belongs to payouts.
    Upsert("receivables", RECEIVABLE_COLUMNS, ("job_id", "item_id"), _receivables),
    Append("receivables_history", HISTORY_COLUMNS, _history),
    Upsert("payouts", PAYOUT_COLUMNS, ("payout_id",), _payouts),
    # A batch without the payout's initiated (failed) event knows no such time.
    Upsert("payout_items", PAYOUT_ITEM_COLUMNS, ("job_id", "item_id", "payout_id"),
           _payout_items, "status = EXCLUDED.status, "
           "initiated_at = coalesce(EXCLUDED.initiated_at, t.initiated_at), "
           "failed_at = coalesce(EXCLUDED.failed_at, t.failed_at)"),
    InsertNew("audit_log", AUDIT_COLUMNS, ("position",), _keyed_audit),
    Upsert("parties", PARTY_COLUMNS, ("party_id",),
           lambda c: _json_texts(PARTY_COLUMNS, party_rows(c)),
           _replace(PARTY_COLUMNS, ("party_id",), keep=("registered_at",))),
    Upsert("payout_runs", RUN_COLUMNS, ("run_id",),
           lambda c: _json_texts(RUN_COLUMNS, run_rows(c)), _replace(RUN_COLUMNS, ("run_id",))),
    Upsert("payout_holds", HOLD_COLUMNS, ("run_id", "party_type", "party_id", "currency"),
           hold_rows, _replace(HOLD_COLUMNS, ("run_id", "party_type", "party_id", "currency"))),
    # Statement lines and day balances (SPEC §13): each in one event only.
    InsertNew("statement_lines", STATEMENT_LINE_COLUMNS, ("line_id",), statement_line_rows),
    StatementChunks(),  # the lines stored beside their events
    InsertNew("statement_balances", STATEMENT_BALANCE_COLUMNS, ("balance_id",),
              statement_balance_rows),
    # Booked bank charges: a repeat is left out by `fold` already.
    InsertNew("bank_fees", BANK_FEE_COLUMNS, ("line_id",), bank_fee_rows),
    Upsert("statement_decisions", STATEMENT_DECISION_COLUMNS, ("line_id",),
           lambda c: _json_texts(STATEMENT_DECISION_COLUMNS, statement_decision_rows(c)),
           _replace(STATEMENT_DECISION_COLUMNS, ("line_id",))),
    # Issued invoices (SPEC §12): a repeat is left out by `fold` already.
    InsertNew("invoices", INVOICE_COLUMNS, ("number",),
              lambda c: _json_texts(INVOICE_COLUMNS, invoice_rows(c))),
    Derived("paid_out_deltas", lambda schema: summaries.paid_out_deltas(
        schema, paid_out(schema))),
    PaidOut(),  # after receivables and payout_items
    Derived("receivable_totals", lambda schema: summaries.receivable_totals_update(schema)[0]),
    Derived("receivable_totals_empty",
            lambda schema: summaries.receivable_totals_update(schema)[1]),
)
