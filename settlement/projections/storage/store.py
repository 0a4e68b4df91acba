"""The read models in PostgreSQL: read what a batch of events needs, fold it,
write every change, all in one transaction with the consumed Kafka positions.

Idempotent by event: an event whose version is not above its job's stored view
is a repeat and changes nothing (whatever its Kafka offset). Positions are
stored by compare-and-set, so a consumer that lost its partitions in a
rebalance can never store a batch a newer owner has moved past.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import orjson
import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row

from settlement.infra import failpoints
from settlement.projections.model.changes import Changes, ItemKey, fold
from settlement.projections.model.envelope import Event
from settlement.projections.model.errors import PositionConflict
from settlement.projections.model.escrows import ItemRow, item_view
from settlement.projections.model.invoices import invoice_numbers, is_invoice
from settlement.projections.model.jobs import item_ids, job_of
from settlement.projections.model.parties import is_keyed
from settlement.projections.model.payouts import PayoutView, is_payout, payout_of, view_of_row
from settlement.projections.model.reconciliation import fee_lines, is_bank_fee
from settlement.projections.model.views import ItemView, JobView
from settlement.projections.storage.schema import checked_name
from settlement.projections.storage.writes import (
    ITEM_COLUMNS,
    PAYOUT_COLUMNS,
    WRITES,
    Append,
    Summed,
)

Rows = list[tuple[Any, ...]]

_ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"
# The staging tables keep their rows past a commit (`writes.STAGING_KEPT`): each
# write deletes what it staged, and after every this many writes they are all
# vacuumed, so the pages the deletes leave are used again (autovacuum never looks
# at temporary tables; without it they grow, and every read of them with them).
STAGING_VACUUM_EVERY_WRITES = 64
_STAGING_TABLES = [t for w in WRITES if (t := w.staging_table)]


@dataclass(frozen=True)
class PartitionAdvance:
    """The batch read `topic`/`partition` from `start` to before `end`; the last
    record there was the event at `last_position`. Stored only if the stored
    position still equals `start` (or none is stored)."""

    topic: str
    partition: int
    start: int
    end: int
    last_position: int


class Store:
    """The read models of one schema, on a connection in autocommit mode (every
    batch opens its own transaction)."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str) -> None:
        self.conn, self.schema = conn, checked_name(schema)
        s = sql.Identifier(self.schema)
        self._select_views = sql.SQL(
            "SELECT job_id, view::text FROM {}.job_views WHERE job_id = ANY(%s)").format(s)
        self._select_items = sql.SQL(
            "SELECT {} FROM {}.escrow_items WHERE (job_id, item_id) IN "
            "(SELECT * FROM unnest(%s::text[], %s::text[]))").format(
                sql.SQL(", ").join(sql.Identifier(n) for n, _ in ITEM_COLUMNS), s)
        self._advance = sql.SQL(
            "INSERT INTO {}.positions AS p (projector, topic, partition, next_offset, "
            "last_position) VALUES (%s, %s, %s, %s, %s) "
            "ON CONFLICT (projector, topic, partition) DO UPDATE SET "
            "next_offset = EXCLUDED.next_offset, last_position = EXCLUDED.last_position "
            "WHERE p.next_offset = %s RETURNING next_offset").format(s)
        self._select_positions = sql.SQL(
            "SELECT topic, partition, next_offset, last_position FROM {}.positions "
            "WHERE projector = %s").format(s)
        self._select_payouts = sql.SQL(
            "SELECT {} FROM {}.payouts WHERE payout_id = ANY(%s)").format(
                sql.SQL(", ").join(sql.Identifier(n) for n, _ in PAYOUT_COLUMNS), s)
        self._writes = [(write, write.statement(self.schema)) for write in WRITES]
        self._staged = False  # the connection's staging tables exist (see `writes`)
        self._writes_since_vacuum = 0
        self._vacuum_staging = sql.SQL("VACUUM {}").format(sql.SQL(", ").join(_STAGING_TABLES))

    # Reading -----------------------------------------------------------------------

    def load(self, events: Sequence[Event]) -> tuple[dict[str, JobView], dict[ItemKey, ItemView]]:
        """The stored views of the events' jobs and the stored items they name."""
        events = [e for e in events if not is_payout(e) and not is_keyed(e)
                  and not is_invoice(e) and not is_bank_fee(e)]
        job_ids = sorted({job_of(e) for e in events})
        keys = sorted({(job_of(e), item_id) for e in events for item_id in item_ids(e)})
        jobs, items, _ = self.read(job_ids, keys, [])
        return jobs, items

    def load_payouts(self, events: Sequence[Event]) -> dict[str, PayoutView]:
        """The stored payouts the batch's payout events name."""
        return self.read([], [], sorted({payout_of(e) for e in events if is_payout(e)}))[2]

    def stored_bank_fees(self, line_ids: Sequence[str]) -> set[str]:
        """Which of the lines have a booked bank charge stored (its event read again)."""
        if not line_ids:
            return set()
        with self.conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(sql.SQL("SELECT line_id FROM {}.bank_fees WHERE line_id = ANY(%s)")
                        .format(sql.Identifier(self.schema)), (list(line_ids),))
            return {str(row[0]) for row in cur}

    def stored_invoices(self, numbers: Sequence[str]) -> set[str]:
        """Which of the invoice `numbers` are stored (an invoice's event read again)."""
        if not numbers:
            return set()
        with self.conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(sql.SQL("SELECT number FROM {}.invoices WHERE number = ANY(%s)").format(
                sql.Identifier(self.schema)), (list(numbers),))
            return {str(row[0]) for row in cur}

    def read(self, job_ids: Sequence[str], keys: Sequence[ItemKey], payout_ids: Sequence[str],
             ) -> tuple[dict[str, JobView], dict[ItemKey, ItemView], dict[str, PayoutView]]:
        """The stored views of `job_ids`, items of `keys` and payouts of `payout_ids`
        (those stored: a missing one is new)."""
        jobs: dict[str, JobView] = {}
        items: dict[ItemKey, ItemView] = {}
        payouts: dict[str, PayoutView] = {}
        with self.conn.cursor(row_factory=tuple_row) as cur:
            if job_ids:
                cur.execute(self._select_views, (list(job_ids),), prepare=True)
                jobs = {job_id: JobView.from_json(orjson.loads(view)) for job_id, view in cur}
            if keys:
                cur.execute(self._select_items, [list(k) for k in zip(*keys, strict=True)],
                            prepare=True)
                for values in cur:
                    row = ItemRow(*values)
                    items[(row.job_id, row.item_id)] = item_view(row)
            if payout_ids:
                cur.execute(self._select_payouts, (list(payout_ids),), prepare=True)
                payouts = {row[0]: view_of_row(row) for row in cur}
        return jobs, items, payouts

    def max_position(self) -> int:
        """The highest event position applied (0 when none is)."""
        with self.conn.cursor(row_factory=tuple_row) as cur:
            row = cur.execute(sql.SQL("SELECT max(position) FROM {}.audit_log").format(
                sql.Identifier(self.schema))).fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def event_count(self) -> int:
        """How many events the read models hold."""
        with self.conn.cursor(row_factory=tuple_row) as cur:
            row = cur.execute(sql.SQL("SELECT count(*) FROM {}.audit_log").format(
                sql.Identifier(self.schema))).fetchone()
        return int(row[0]) if row else 0

    def positions(self, projector: str) -> dict[tuple[str, int], tuple[int, int]]:
        """(topic, partition) → (next offset, position of the last event read there)."""
        with self.conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(self._select_positions, (projector,))
            return {(topic, partition): (offset, last) for topic, partition, offset, last in cur}

    # Writing -----------------------------------------------------------------------

    def apply_batch(self, events: Sequence[Event], projector: str = "",
                    advances: Iterable[PartitionAdvance] = ()) -> Changes:
        """Fold `events` from the stored views and store the changes and the positions
        in one transaction (see `commit`)."""
        with self._transaction(projector, list(advances)):
            jobs, items = self.load(events)
            changes = fold(events, jobs, items, self.load_payouts(events),
                           self.stored_invoices(invoice_numbers(events)),
                           self.stored_bank_fees(fee_lines(events)))
            self.write(changes)
        self._tidy_staging()
        return changes

    def commit(self, changes: Changes, projector: str, advances: Sequence[PartitionAdvance],
               rows: Sequence[Rows] | None = None) -> None:
        """Store a folded batch's changes and its positions in one transaction.

        The commit does not wait for its WAL flush (`synchronous_commit = off`, this
        transaction only): a server crash can lose the last batches, and their
        consumed positions with them, so they are read and applied again.
        `rows`: `rows_of(changes)`, if already built."""
        with self._transaction(projector, advances):
            self.write(changes, rows)
        self._tidy_staging()

    def _tidy_staging(self) -> None:
        """After a transaction: vacuum the staging tables every
        STAGING_VACUUM_EVERY_WRITES writes (outside a transaction, which VACUUM needs:
        Store's connections are in autocommit mode)."""
        if self._writes_since_vacuum >= STAGING_VACUUM_EVERY_WRITES and self.conn.autocommit \
                and self.conn.info.transaction_status == TransactionStatus.IDLE:
            self._writes_since_vacuum = 0
            self.conn.execute(self._vacuum_staging)

    def write(self, changes: Changes, rows: Sequence[Rows] | None = None) -> None:
        """Write a batch's changes (in a transaction, which ends with the staging tables
        empty again, committed or not): every COPY, then every upsert from the staging
        tables and the staging tables' emptying in one round trip."""
        if rows is None:
            rows = rows_of(changes)
        upserts: list[tuple[sql.Composed, list[list[Any]] | None]] = []
        filled: list[sql.Identifier] = []
        with self.conn.cursor(row_factory=tuple_row) as cur:
            if not self._staged:
                for write in WRITES:
                    if not isinstance(write, Append | Summed):
                        cur.execute(write.stage())
                self._staged = True
            for n, ((write, statement), table_rows) in enumerate(
                    zip(self._writes, rows, strict=True)):
                if table_rows:
                    # `statement` is what `write.statement` gives for that kind of write.
                    if isinstance(write, Append):
                        write.run(cur, cast(sql.Composed, statement), table_rows)
                    elif isinstance(write, Summed):
                        upserts.append((cast(sql.Composed, statement),
                                        write.parameters(table_rows)))
                    else:
                        staged = cast(tuple[sql.Composed, sql.Composed], statement)
                        write.load(cur, staged, table_rows)
                        upserts.append((staged[1], None))
                        if table := write.staging_table:
                            filled.append(table)
                if n == 0:
                    failpoints.hit("project.mid_batch")
        self._writes_since_vacuum += 1
        emptying = [(sql.SQL("DELETE FROM {}").format(table), None) for table in filled]
        # In the order of WRITES (balance rows first, `paid_out` last).
        with self.conn.pipeline():
            for statement, parameters in [*upserts, *emptying]:
                self.conn.execute(statement, parameters, prepare=True)

    @contextmanager
    def _transaction(self, projector: str,
                     advances: Sequence[PartitionAdvance]) -> Iterator[None]:
        """A transaction that starts by moving the positions on (compare-and-set),
        in one round trip with its setting."""
        try:
            with self.conn.transaction():
                with self.conn.pipeline():
                    self.conn.execute(_ASYNC_COMMIT, prepare=True)
                    moved = [self.conn.execute(self._advance, (
                        projector, a.topic, a.partition, a.end, a.last_position, a.start),
                        prepare=True) for a in advances]
                for a, cur in zip(advances, moved, strict=True):
                    if cur.fetchone() is None:
                        raise PositionConflict(f"position of {projector} on {a.topic}/"
                                               f"{a.partition} moved past {a.start}")
                yield
        except BaseException:
            self._staged = False  # if made in the transaction rolled back: again next time
            raise


def rows_of(changes: Changes) -> list[Rows]:
    """The rows of each of `WRITES` for a batch's changes (built before `commit`, they
    can be built while the batch before is being written)."""
    rows: list[Rows] = []
    for write in WRITES:
        if isinstance(write, Summed):  # its source's rows, built once
            rows.append(write.rows_from(rows[_SOURCES[write.table]]))
        else:
            rows.append(write.rows(changes))
    return rows


# Where in `WRITES` each summed write's source is (an earlier write: built first).
_SOURCES = {w.table: next(n for n, s in enumerate(WRITES[:i]) if s.table == w.source)
            for i, w in enumerate(WRITES) if isinstance(w, Summed)}
