"""The rebuild's writer: the same `fold` as the live projector, other storage.

A rebuild writes into a fresh schema nobody else writes to, so it need not read
the views back from the database nor upsert them batch by batch (what `Store`
does for the live projector). Instead:

- the job views, their items, the payouts and the balances stay in memory as
  `fold` leaves them, and are written once, by binary COPY, at the end;
- the append-only rows (ledger entries, audit log, receivables history) stream
  into one COPY per table, each on a connection of its own and open for the
  whole rebuild, so PostgreSQL stores them while Python folds the next pages;
- memory stays bounded: past `max_jobs` jobs in memory, the least recently
  folded ones are written out (their final rows so far) and dropped; a job
  seen again (an event of it after its first, none in memory) is read back from
  the rebuilt schema (as `Store.load` would) and its rows there deleted, so the
  result never depends on what was evicted; past `MAX_BALANCES` accounts, the
  running balances are written out as partial sums (`PARTIAL_BALANCES`, summed
  exactly by PostgreSQL at the end) and started again from zero;
- `receivables.paid_out` is derived once at the end from `payout_items`, the
  value `Store`'s per-batch recomputation converges to (a worker payout that
  has not failed names the item), and then the summary rows (`summaries.fill`);
- the secondary indexes are dropped before loading and made again after, on a
  second connection while the summary rows are summed on the first;
- the history can be folded in shards (`BulkRebuild` per shard of the jobs and
  payouts, each in a process of its own): a job's and a payout's events are all
  in one shard, so the shards' rows never overlap; balances are summed across
  the shards at the end (`complete`), exactly.

The read models are the ones `Store.apply_batch` writes for the same events,
table by table (an integration test compares their digests).
"""

from __future__ import annotations

import functools
import queue
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, Inexact, localcontext
from types import TracebackType
from typing import Any

import orjson
import psycopg
from psycopg import sql
from psycopg.rows import tuple_row
from psycopg.types.json import set_json_dumps

from settlement.projections.model.changes import Changes, ItemKey, fold
from settlement.projections.model.envelope import Event
from settlement.projections.model.escrows import ItemRow, item_view
from settlement.projections.model.invoices import INVOICE_COLUMNS
from settlement.projections.model.payouts import PayoutView, is_payout, payout_of
from settlement.projections.model.views import ItemView, JobView
from settlement.projections.storage import schema as schemas
from settlement.projections.storage import statements, summaries
from settlement.projections.storage.writes import (
    AUDIT_COLUMNS,
    BALANCE_COLUMNS,
    BANK_FEE_COLUMNS,
    ENTRY_COLUMNS,
    HISTORY_COLUMNS,
    HOLD_COLUMNS,
    ITEM_COLUMNS,
    PARTY_COLUMNS,
    PAYOUT_COLUMNS,
    RUN_COLUMNS,
    STATEMENT_BALANCE_COLUMNS,
    STATEMENT_DECISION_COLUMNS,
    STATEMENT_LINE_COLUMNS,
    VIEW_COLUMNS,
    WRITES,
    Column,
    Summed,
    bank_fee_rows,
    hold_rows,
    invoice_rows,
    party_rows,
    run_rows,
    statement_balance_rows,
    statement_decision_rows,
    statement_line_rows,
)

# Jobs kept in memory before the least recently folded are written out (a task
# job of the benchmark, with its items, takes a few KB).
MAX_JOBS = 10_000
EVICT_CHUNK = 1_000
# Accounts whose running balances a `BulkRebuild` keeps in memory (one escrow
# account per job: the count grows with the history) before writing them out.
MAX_BALANCES = 10_000
# Where a rebuild's partial balances wait for `complete` (dropped by it).
PARTIAL_BALANCES = "rebuild_partial_balances"
# The writes whose rows a rebuild builds as `Store` does (a summed write's come from
# another's rows; the rebuild fills the summaries from the tables, `summaries.fill`).
_BY_TABLE = {write.table: write for write in WRITES
             if hasattr(write, "columns") and not isinstance(write, Summed)}
# Rows per job that `Store` keeps under the job's key (read back on a reappearance).
_PER_JOB = ("job_views", "escrows", "escrow_items", "receivables")

Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]
# Balances are sums of exact amounts: never rounded (28 digits by default), and
# an inexact sum would raise rather than be stored.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Inexact])
Balances = dict[tuple[str, str], list[Decimal]]  # (account, currency) → [debits, credits]


@dataclass
class Totals:
    """What a `BulkRebuild` leaves for `complete`: the running balances not written
    out as partial sums yet, and the payouts (kept in memory to the end)."""

    balances: Balances = field(default_factory=dict)
    payouts: dict[str, PayoutView] = field(default_factory=dict)
    # The rows of parties, payout runs and holds (one event each, the latest kept).
    keyed: Changes = field(default_factory=Changes)


def _copy_statement(schema: str, table: str, columns: Sequence[Column],
                    format_: str = "BINARY") -> sql.Composed:
    return sql.SQL("COPY {}.{} ({}) FROM STDIN (FORMAT {})").format(
        sql.Identifier(schema), sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns), sql.SQL(format_))


# The streamed rows in COPY's text format, one block per page: psycopg's
# `write_row` cost 5 µs a row here (profiled), more than folding the event.
# Values as PostgreSQL reads them back: text escaped, None as \N, numerics as
# `str(Decimal)` (its scale kept; `!s`: an f-string's `format(Decimal, "")` is the
# same text at three times the cost), times in ISO 8601 with their offset, JSON as
# orjson writes it (jsonb keeps the value, not the text).
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str | None) -> str:
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


class _Texts(dict[Any, str]):
    """The COPY texts of values that recur from row to row (accounts, jobs, event
    types; the times an item's rows share), each made once: `texts[value]`.
    Emptied past `limit` values, so it stays small however long the history."""

    def __init__(self, make: Callable[[Any], str], limit: int = 8_192) -> None:
        super().__init__()
        self.make, self.limit = make, limit
        self[None] = "\\N"

    def __missing__(self, value: Any) -> str:
        if len(self) >= self.limit:
            self.clear()
            self[None] = "\\N"
        text = self[value] = self.make(value)
        return text

    def seed(self, texts: dict[Any, str]) -> None:
        """Take texts made already (the events' times as they were published)."""
        if len(self) + len(texts) > self.limit:
            self.clear()
            self[None] = "\\N"
        self.update(texts)


# A time's text is its ISO 8601 form with its offset. Equal times (the same
# instant, whatever their offsets) share one text: PostgreSQL stores the instant.
_TEXTS = _Texts(_text)
_TIMES = _Texts(lambda value: value.isoformat())


def _json_text(value: Any) -> str:
    """`value` as orjson writes it, for COPY: orjson escapes every control
    character inside JSON strings, so only backslashes need doubling."""
    text = orjson.dumps(value).decode()
    return text.replace("\\", "\\\\") if "\\" in text else text


def _entry_lines(changes: Changes) -> str:
    t, time = _TEXTS, _TIMES
    return "".join([
        f"{e.position!s}\t{e.line!s}\t{time[e.time]}\t{t[e.job_id]}\t{t[e.event_type]}\t"
        f"{t[e.account]}\t{t[e.side]}\t{e.amount!s}\t{t[e.currency]}\n"
        for e in changes.entries])


def _audit_lines(changes: Changes) -> str:
    t, time = _TEXTS, _TIMES
    return "".join([
        f"{a.position!s}\t{t[a.job_id]}\t{a.version!s}\t{t[a.type]}\t{time[a.time]}\t"
        f"{_text(a.causation_id)}\t{_json_text(a.data)}\t{_text(a.hash)}\t"
        f"{_text(a.prev_hash)}\n" for a in (*changes.audit, *changes.keyed_audit)])


def _history_lines(changes: Changes) -> str:
    t, time = _TEXTS, _TIMES
    out = []
    for c in changes.history:
        r = c.row
        out.append(f"{t[r.job_id]}\t{t[r.item_id]}\t{c.version!s}\t{c.position!s}\t"
                   f"{time[c.time]}\t{t[r.worker_id]}\t{t[r.client_id]}\t"
                   f"{t[r.state]}\t{r.amount!s}\t{r.net!s}\t{t[r.currency]}\t"
                   f"{'t' if r.protected else 'f'}\t{time[r.delivered_at]}\t"
                   f"{time[r.due_by]}\n")
    return "".join(out)


# A row's line in one f-string of its columns' formats, made once per list of column
# types: a call per value and a join cost twice as much (profiled). `!s`: numerics
# as `str`; the row is unpacked, so a row of another length raises.
_FIELDS = {"text": "{{t[v{0}]}}", "timestamptz": "{{time[v{0}]}}",
           "numeric": "{{N if v{0} is None else v{0}!s}}",
           "boolean": "{{N if v{0} is None else 't' if v{0} else 'f'}}"}
_FIELDS["bigint"] = _FIELDS["integer"] = _FIELDS["numeric"]


@functools.cache
def _line_of(types: tuple[str, ...]) -> Callable[[tuple[Any, ...]], str]:
    values = ", ".join(f"v{n}" for n in range(len(types)))
    fields = "\\t".join(_FIELDS[type_].format(n) for n, type_ in enumerate(types))
    namespace: dict[str, Any] = {"t": _TEXTS, "time": _TIMES, "N": "\\N"}
    exec(f'def line(row):\n    {values}, = row\n    return f"{fields}\\n"\n',  # noqa: S102
         namespace)
    line: Callable[[tuple[Any, ...]], str] = namespace["line"]
    return line


def _lines(columns: Sequence[Column], rows: Sequence[tuple[Any, ...]]) -> str:
    """`rows` (values in `columns` order) as COPY text lines."""
    return "".join(map(_line_of(tuple(type_ for _, type_ in columns)), rows))


_STREAMS: dict[str, tuple[Sequence[Column], Callable[[Changes], str]]] = {
    "ledger_entries": (ENTRY_COLUMNS, _entry_lines),
    "audit_log": (AUDIT_COLUMNS, _audit_lines),
    "receivables_history": (HISTORY_COLUMNS, _history_lines),
}
# The lines above follow these column lists: a change there must show up here.
assert [n for n, _ in ENTRY_COLUMNS] == ["position", "line", "time", "job_id", "event_type",
                                         "account", "side", "amount", "currency"]
assert [n for n, _ in AUDIT_COLUMNS] == ["position", "job_id", "version", "type", "time",
                                         "causation_id", "data", "hash", "prev_hash"]
assert [n for n, _ in HISTORY_COLUMNS] == [
    "job_id", "item_id", "version", "position", "time", "worker_id", "client_id", "state",
    "amount", "net", "currency", "protected", "delivered_at", "due_by"]


def _copy(cur: psycopg.Cursor[Any], schema: str, table: str, columns: Sequence[Column],
          rows: Sequence[tuple[Any, ...]]) -> None:
    if not rows:
        return
    with cur.copy(_copy_statement(schema, table, columns)) as copy:
        copy.set_types([type_ for _, type_ in columns])
        for row in rows:
            copy.write_row(row)


def _store(conn: psycopg.Connection[Any], schema: str,
           blocks: Sequence[tuple[str, Sequence[Column], Any]]) -> None:
    """COPY each (table, columns, rows or text bytes) block, in one transaction."""
    with conn.transaction(), conn.cursor() as cur:
        for table, columns, payload in blocks:
            if isinstance(payload, bytes):
                if payload:
                    with cur.copy(_copy_statement(schema, table, columns, "TEXT")) as copy:
                        copy.write(payload)
            else:
                _copy(cur, schema, table, columns, payload)


class BulkRebuild:
    """Fold pages of events (all of them, or one shard's) into a fresh rebuild
    schema (see the module text), after `prepare` and before `complete`.

    Use as a context manager: `apply(events)` per page, then `finish()`; leaving
    it without `finish()` (an error) abandons the streamed COPYs."""

    def __init__(self, conn: psycopg.Connection[Any], schema: str, connect: Connect,
                 max_jobs: int | None = None) -> None:
        self.conn, self.schema = conn, schemas.checked_name(schema)
        self.connect = connect
        self.max_jobs = MAX_JOBS if max_jobs is None else max_jobs
        self.jobs: OrderedDict[str, JobView] = OrderedDict()  # least recently folded first
        self.items: dict[str, dict[str, ItemView]] = {}
        self.payouts: dict[str, PayoutView] = {}
        self.keyed = Changes()
        self.balances: Balances = {}
        self._stack = ExitStack()
        self._streams: list[tuple[Callable[[Changes], str], Any]] = []
        self._pending: list[Future[None]] = []

    def __enter__(self) -> BulkRebuild:
        try:
            self._eviction_conn = self._stack.enter_context(self.connect())
            self._evictions = self._stack.enter_context(ThreadPoolExecutor(1, "rebuild-evict"))
            for table, (columns, lines) in _STREAMS.items():
                conn = self._stack.enter_context(self.connect())
                cur = self._stack.enter_context(conn.cursor())
                copy = self._stack.enter_context(
                    cur.copy(_copy_statement(self.schema, table, columns, "TEXT")))
                self._streams.append((lines, copy))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stack.__exit__(exc_type, exc, traceback)

    # Folding -------------------------------------------------------------------------

    def apply(self, events: Sequence[Event]) -> Changes:
        """Fold one page: the jobs and payouts it names, as they stand, go in."""
        jobs = self.jobs
        # A job's first event here: its opening (version 1) if the job is new, else
        # the job was folded before and, if not in memory, written out: read back.
        first: dict[str, int] = {}
        for e in events:
            if e.job_id is not None and e.job_id not in first:
                first[e.job_id] = e.version
        job_ids = first.keys()
        missing = {job_id for job_id, version in first.items()
                   if version > 1 and job_id not in jobs}
        if missing:
            self._reload(missing)
        views: dict[str, JobView] = {}
        items: dict[ItemKey, ItemView] = {}
        for job_id in job_ids:
            view = jobs.get(job_id)
            if view is not None:
                views[job_id] = view
                for item_id, item in self.items[job_id].items():
                    items[(job_id, item_id)] = item
        payout_ids = {payout_of(e) for e in events if is_payout(e)}
        payouts = {p: self.payouts[p] for p in payout_ids if p in self.payouts}
        changes = fold(events, views, items, payouts)
        _TIMES.seed({e.time: e.stamp for e in events})  # their texts as published
        for lines, copy in self._streams:
            copy.write(lines(changes).encode())
        for job_id, view in changes.jobs.items():
            if job_id in jobs:
                jobs.move_to_end(job_id)
            else:
                self.items.setdefault(job_id, {})
            jobs[job_id] = view
        for (job_id, item_id), item in changes.items.items():
            self.items[job_id][item_id] = item
        self.payouts.update(changes.payouts)
        self.keyed.take_keyed(changes)
        balances = self.balances
        with localcontext(EXACT):
            for entry in changes.entries:
                pair = balances.get((entry.account, entry.currency))
                if pair is None:
                    pair = balances[(entry.account, entry.currency)] = [Decimal(0), Decimal(0)]
                pair[0 if entry.side == "debit" else 1] += entry.amount
        if len(balances) > MAX_BALANCES:
            self._write_behind(self._write_partial_balances, balances)
            self.balances = {}
        if len(jobs) > self.max_jobs:
            self._evict(min(len(jobs), len(jobs) - self.max_jobs + EVICT_CHUNK - 1))
        return changes

    # Eviction ------------------------------------------------------------------------

    def _evict(self, count: int) -> None:
        """Write out the `count` least recently folded jobs and forget them."""
        views: dict[str, JobView] = {}
        items: dict[ItemKey, ItemView] = {}
        jobs = iter(list(self.jobs.items())[:count])
        for job_id, view in jobs:
            del self.jobs[job_id]
            views[job_id] = view
            for item_id, item in self.items.pop(job_id).items():
                items[(job_id, item_id)] = item
        self._write_behind(self._write_jobs, views, items)

    def _reload(self, job_ids: set[str]) -> None:
        """Read back evicted jobs (views and items) and delete their rows."""
        self._drain()
        s = sql.Identifier(self.schema)
        ids = sorted(job_ids)
        with self.conn.transaction(), self.conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(sql.SQL("SELECT view FROM {}.job_views WHERE job_id = ANY(%s)")
                        .format(s), (ids,))
            for (view,) in cur.fetchall():
                job = JobView.from_json(view if isinstance(view, dict) else orjson.loads(view))
                self.jobs[job.job_id] = job
                self.items[job.job_id] = {}
            cur.execute(sql.SQL("SELECT {} FROM {}.escrow_items WHERE job_id = ANY(%s)").format(
                sql.SQL(", ").join(sql.Identifier(n) for n, _ in ITEM_COLUMNS), s), (ids,))
            for values in cur.fetchall():
                row = ItemRow(*values)
                self.items[row.job_id][row.item_id] = item_view(row)
            for table in _PER_JOB:
                cur.execute(sql.SQL("DELETE FROM {}.{} WHERE job_id = ANY(%s)").format(
                    s, sql.Identifier(table)), (ids,))

    # Final rows ----------------------------------------------------------------------

    def _write_jobs(self, views: dict[str, JobView], items: dict[ItemKey, ItemView],
                    conn: psycopg.Connection[Any] | None = None) -> None:
        """The per-job rows of `views` and `items`, built as `Store` builds them,
        stored on `conn` (default: the rebuild's own connection)."""
        changes = Changes(jobs=views, items=items)
        blocks: list[tuple[str, Sequence[Column], Any]] = [
            ("job_views", VIEW_COLUMNS,
             [(job_id, job.version, job.to_json()) for job_id, job in sorted(views.items())]),
            ("escrows", _BY_TABLE["escrows"].columns, _BY_TABLE["escrows"].rows(changes))]
        # Many per job: in COPY's text format (psycopg's write_row: 5 µs a row).
        for table in ("escrow_items", "receivables"):
            write = _BY_TABLE[table]
            blocks.append((table, write.columns, _lines(write.columns, write.rows(changes))
                           .encode()))
        _store(conn or self.conn, self.schema, blocks)

    def _write_behind(self, write: Callable[..., None], *args: Any) -> None:
        """`write(*args, conn)` by a thread on a connection of its own while the next
        pages fold; one write in flight at most, so memory stays bounded."""
        self._drain()
        self._pending.append(self._evictions.submit(write, *args, self._eviction_conn))

    def _write_partial_balances(self, balances: Balances, conn: psycopg.Connection[Any]) -> None:
        rows = [(account, currency, debits, credits)
                for (account, currency), (debits, credits) in balances.items()]
        _store(conn, self.schema, [(PARTIAL_BALANCES, BALANCE_COLUMNS,
                                    _lines(BALANCE_COLUMNS, rows).encode())])

    def _drain(self) -> None:
        """Wait for what is written behind to be stored (raising what failed)."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def finish(self) -> Totals:
        """Close the streams and write the jobs still in memory; what is left for
        `complete`."""
        self._drain()
        self._stack.close()  # ends the streamed COPYs: their rows are committed
        views = dict(self.jobs)
        items = {(job_id, item_id): item for job_id, job_items in self.items.items()
                 for item_id, item in job_items.items()}
        self._write_jobs(views, items)
        return Totals(self.balances, self.payouts, self.keyed)


def prepare(conn: psycopg.Connection[Any], schema: str) -> None:
    """Before the `BulkRebuild`s of a fresh rebuild schema: drop its secondary indexes
    and make the table of partial balances."""
    s = sql.Identifier(schemas.checked_name(schema))
    with conn.transaction():
        for name in _secondary_indexes():
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}.{}").format(s, sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE UNLOGGED TABLE {}.{} ({})").format(
            s, sql.Identifier(PARTIAL_BALANCES),
            sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(type_))
                               for name, type_ in BALANCE_COLUMNS)))


FILL_WORK_MEM_MB = 256  # PostgreSQL's memory per sort of the summaries' fill


def complete(conn: psycopg.Connection[Any], schema: str, shards: Iterable[Totals],
             connect: Connect) -> None:
    """After every `BulkRebuild` finished: the balances (summed over the shards and
    their partial sums), the payouts and what they pay, `receivables.paid_out`; then
    the summary rows, while the other tables' indexes are made again on a connection
    of `connect`'s (and on `conn` too once the summary rows are written); then the
    summary tables' indexes."""
    s = sql.Identifier(schemas.checked_name(schema))
    _write_totals(conn, schema, s, shards)
    # The summary rows' sums are one statement each, which PostgreSQL runs on one core
    # (it plans no parallel workers for an INSERT); the index builds take the other
    # (1,000,000 events: ~10.5 s one after the other, ~7 s side by side; the largest
    # index, the ledger entries' by account, ~4 s alone).
    builds: queue.SimpleQueue[sql.Composed] = queue.SimpleQueue()
    for table in schemas.TABLES:
        if table.name not in summaries.FILLED:  # the fill writes those: indexed after it
            for statement in schemas.index_statements(s, table):
                builds.put(statement)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rebuild-indexes") as pool:
        indexed = pool.submit(_build_with, connect, builds)
        try:
            with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
                # The sums sort every ledger entry twice (by day and by block): with
                # PostgreSQL's default 4 MB they sort on disk, twice as slow (300,000
                # events: 1.0 s against 0.5 s; docs/benchmarks.md). This transaction's only.
                cur.execute(f"SET LOCAL work_mem = '{FILL_WORK_MEM_MB}MB'")
                summaries.fill(cur, s)  # the totals the live projector keeps batch by batch
            _build(conn, builds)
        finally:
            indexed.result()  # waited for, and its error raised, whatever the fill did
    schemas.create(conn, schema, schemas.REBUILD)  # the summary tables' indexes


def _build_with(connect: Connect, builds: queue.SimpleQueue[sql.Composed]) -> None:
    with connect() as conn:
        _build(conn, builds)


def _build(conn: psycopg.Connection[Any], builds: queue.SimpleQueue[sql.Composed]) -> None:
    """Run index builds from `builds` until none is left (other connections take
    theirs from the same queue)."""
    while True:
        try:
            statement = builds.get_nowait()
        except queue.Empty:
            return
        with conn.transaction():
            conn.execute(statement)


def _write_totals(conn: psycopg.Connection[Any], schema: str, s: sql.Identifier,
                  shards: Iterable[Totals]) -> None:
    """The balances, payouts, keyed tables and `receivables.paid_out`, in one
    transaction."""
    partial = sql.Identifier(PARTIAL_BALANCES)
    with conn.transaction(), conn.cursor(row_factory=tuple_row) as cur:
        # What the shards still held joins what they wrote out, and PostgreSQL sums
        # them (exactly: numeric): never every account's balance in this process at
        # once (one escrow account per job, so their number grows with the history).
        payouts: dict[str, PayoutView] = {}
        keyed = Changes()
        for totals in shards:
            _copy(cur, schema, PARTIAL_BALANCES, BALANCE_COLUMNS,
                  [(account, currency, debits, credits)
                   for (account, currency), (debits, credits) in totals.balances.items()])
            if payouts.keys() & totals.payouts.keys():  # a payout's events: one shard
                raise ValueError("a payout was folded in two shards")
            payouts.update(totals.payouts)
            keyed.take_keyed(totals.keyed)
        cur.execute(sql.SQL(
            "INSERT INTO {s}.balances (account, currency, debits, credits) "
            "SELECT account, currency, sum(debits), sum(credits) FROM {s}.{p} "
            "GROUP BY account, currency ORDER BY account COLLATE \"C\", currency").format(
                s=s, p=partial))
        cur.execute(sql.SQL("DROP TABLE {}.{}").format(s, partial))
        changes = Changes(payouts=payouts)
        set_json_dumps(orjson.dumps, cur)
        _copy(cur, schema, "payouts", PAYOUT_COLUMNS,
              [(v.payout_id, v.party_type, v.party_id, v.currency, v.amount, v.status,
                list(v.items), v.position) for v in changes.payout_rows()])
        write = _BY_TABLE["payout_items"]
        _copy(cur, schema, "payout_items", write.columns, write.rows(changes))
        for table, columns, rows in (("parties", PARTY_COLUMNS, party_rows(keyed)),
                                     ("payout_runs", RUN_COLUMNS, run_rows(keyed)),
                                     ("payout_holds", HOLD_COLUMNS, hold_rows(keyed)),
                                     ("statement_lines", STATEMENT_LINE_COLUMNS,
                                      statement_line_rows(keyed)),
                                     ("statement_balances", STATEMENT_BALANCE_COLUMNS,
                                      statement_balance_rows(keyed)),
                                     ("statement_decisions", STATEMENT_DECISION_COLUMNS,
                                      statement_decision_rows(keyed)),
                                     ("bank_fees", BANK_FEE_COLUMNS, bank_fee_rows(keyed)),
                                     ("invoices", INVOICE_COLUMNS, invoice_rows(keyed))):
            _copy(cur, schema, table, columns, rows)
        for chunk in statements.chunk_rows(keyed):  # lines stored beside their events
            cur.execute(statements.insert_chunk(schema), chunk)
        cur.execute(sql.SQL(
            "UPDATE {s}.receivables AS r SET paid_out = true FROM "
            "(SELECT DISTINCT job_id, item_id FROM {s}.payout_items "
            "WHERE party_type = 'worker' AND status NOT IN ('failed', 'returned')) AS p "
            "WHERE r.job_id = p.job_id AND r.item_id = p.item_id").format(s=s))


def _secondary_indexes() -> Iterator[str]:
    """The names `schema.create` gives the tables' secondary indexes."""
    for table in schemas.TABLES:
        for n, _ in enumerate(table.indexes, start=1):
            yield f"{table.name}_{n}"
