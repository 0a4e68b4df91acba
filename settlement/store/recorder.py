"""The PostgreSQL recorder: eventsourcing's, plus two tables written in the same
transaction as the events: the command log (idempotency) and consumer
positions (exactly-once effects for Kafka input).

`Application.save(..., commands=[...], positions=[...])` passes them through.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Set
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.utils import retry
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composable, Identifier

from settlement.ledger.chain import GENESIS, ChainedEvent, chain
from settlement.store.files import PayoutFile, files_table
from settlement.store.statement_lines import COLUMN_TYPES as LINE_TYPES
from settlement.store.statement_lines import COLUMNS as LINE_COLUMNS
from settlement.store.statement_lines import StatementRows, statement_lines_table

SCHEMA_LOCK_KEY = 0x5E771E  # any constant shared by every process of the service


@dataclass(frozen=True)
class CommandRecord:
    """A command seen: its digest and what came of it (`applied` or `rejected:<code>`)."""

    command_id: str
    digest: str
    job_id: str | None
    outcome: str


@dataclass(frozen=True)
class PositionUpdate:
    """Consumer `consumer` read `topic`/`partition` from `start` to before `end`.

    Stored only if the stored position still equals `start` (or none is stored),
    so a stale consumer (after a rebalance) can never apply records twice.
    """

    consumer: str
    topic: str
    partition: int
    start: int
    end: int


class SettlementRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        prefix = events_table_name.removesuffix("_events")
        schema = Identifier(datastore.schema)
        self.commands_table = Identifier(f"{prefix}_commands")
        self.positions_table = Identifier(f"{prefix}_positions")
        self.sql_create_statements += [
            SQL("CREATE TABLE IF NOT EXISTS {}.{} (command_id text PRIMARY KEY, "
                "digest text NOT NULL, job_id text, outcome text NOT NULL, "
                "recorded_at timestamptz NOT NULL DEFAULT now())").format(
                    schema, self.commands_table),
            SQL("CREATE TABLE IF NOT EXISTS {}.{} (consumer text NOT NULL, topic text NOT NULL, "
                "partition integer NOT NULL, next_offset bigint NOT NULL, "
                "PRIMARY KEY (consumer, topic, partition))").format(schema, self.positions_table),
        ]
        # The statements of every batch are rendered to text once (`as_string`): a
        # composed statement is rendered again by psycopg at every execution.
        # COPY, not executemany (a thousand queued statements in psycopg's pipeline
        # mode can deadlock on full socket buffers) nor arrays (psycopg dumps them
        # in Python: COPY's rows are written in C, twice as fast per batch, measured).
        self._copy_commands = SQL(
            "COPY {}.{} (command_id, digest, job_id, outcome) FROM STDIN (FORMAT BINARY)"
        ).format(schema, self.commands_table).as_string(None)
        self._select_commands = SQL(
            "SELECT command_id, digest, job_id, outcome FROM {}.{} WHERE command_id = ANY(%b)"
        ).format(schema, self.commands_table).as_string(None)
        self._upsert_position = SQL(
            "INSERT INTO {0}.{1} AS p (consumer, topic, partition, next_offset) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (consumer, topic, partition) "
            "DO UPDATE SET next_offset = EXCLUDED.next_offset WHERE p.next_offset = %s "
            "RETURNING next_offset"
        ).format(schema, self.positions_table).as_string(None)
        self._insert_arrays = SQL(
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id"
        ).format(schema, Identifier(events_table_name)).as_string(None)
        self._select_events_of = SQL(
            "SELECT originator_id, originator_version, topic, state FROM {}.{} "
            "WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version"
        ).format(schema, Identifier(events_table_name))
        self.chain_table = Identifier(f"{prefix}_chain")
        self.sql_create_statements.append(
            SQL("CREATE TABLE IF NOT EXISTS {}.{} (position bigint PRIMARY KEY, "
                "hash text NOT NULL, prev_hash text NOT NULL)").format(schema, self.chain_table))
        last_hash = SQL("SELECT hash FROM {}.{} ORDER BY position DESC LIMIT 1").format(
            schema, self.chain_table)
        lock_and_notify = [*self.lock_table_statements,  # eventsourcing's, then its NOTIFY
                           SQL("NOTIFY {}").format(Identifier(self.channel_name))]
        assert all(isinstance(s, Composable) for s in lock_and_notify), lock_and_notify
        self._lock_and_last_hash = "; ".join(
            cast(Composable, s).as_string(None) for s in [*lock_and_notify, last_hash])
        self._insert_chain = SQL(
            "INSERT INTO {}.{} (position, hash, prev_hash) "
            "SELECT * FROM unnest(%b::bigint[], %b::text[], %b::text[])"
        ).format(schema, self.chain_table).as_string(None)
        # The first `limit` positions after `after` on either side are among the first
        # `limit` of each table: each side is cut by its own index first (a join over
        # `coalesce(...) > after` read both tables from their first row, every page).
        self._select_chain = SQL(
            "SELECT coalesce(e.notification_id, c.position) AS position, e.originator_id, "
            "e.originator_version, e.topic, e.state, c.hash, c.prev_hash "
            "FROM (SELECT * FROM {0}.{1} WHERE notification_id > %(after)s "
            "ORDER BY notification_id LIMIT %(limit)s) e "
            "FULL JOIN (SELECT * FROM {0}.{2} WHERE position > %(after)s "
            "ORDER BY position LIMIT %(limit)s) c ON c.position = e.notification_id "
            "ORDER BY 1 LIMIT %(limit)s"
        ).format(schema, Identifier(events_table_name), self.chain_table)
        self._select_positions = SQL(
            "SELECT topic, partition, next_offset FROM {}.{} WHERE consumer = %s"
        ).format(schema, self.positions_table)
        self._select_ids = SQL(
            "SELECT notification_id FROM {}.{} WHERE notification_id > %s "
            "AND notification_id <= %s ORDER BY notification_id LIMIT %s"
        ).format(schema, Identifier(events_table_name))
        self._select_states = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {}.{} WHERE notification_id = ANY(%s) ORDER BY notification_id"
        ).format(schema, Identifier(events_table_name))
        self.files_table = Identifier(files_table(events_table_name))
        self.sql_create_statements.append(
            SQL("CREATE TABLE IF NOT EXISTS {}.{} (run_id text NOT NULL, currency text NOT NULL, "
                "sha256 text NOT NULL, content bytea NOT NULL, "
                "recorded_at timestamptz NOT NULL DEFAULT now(), "
                "PRIMARY KEY (run_id, currency))").format(schema, self.files_table))
        self._insert_file = SQL(
            "INSERT INTO {}.{} (run_id, currency, sha256, content) VALUES (%s, %s, %s, %s)"
        ).format(schema, self.files_table)
        self._select_file = SQL(
            "SELECT sha256, content FROM {}.{} WHERE run_id = %s AND currency = %s"
        ).format(schema, self.files_table)
        self._init_statement_lines(schema, statement_lines_table(events_table_name))

    def _init_statement_lines(self, schema: Identifier, table_name: str) -> None:
        """Statement lines, rows of their own (`store.statement_lines`)."""
        table = Identifier(table_name)
        self.sql_create_statements += [
            SQL("CREATE TABLE IF NOT EXISTS {}.{} ({})").format(schema, table, SQL(", ").join(
                SQL("{} {}").format(Identifier(name), SQL(type_))
                for name, type_ in zip(LINE_COLUMNS, LINE_TYPES, strict=True))),
            SQL("CREATE INDEX IF NOT EXISTS {} ON {}.{} (chunk, seq)").format(
                Identifier(f"{table_name}_chunk"), schema, table)]
        self._copy_lines = SQL("COPY {}.{} ({}) FROM STDIN").format(
            schema, table, SQL(", ").join(map(Identifier, LINE_COLUMNS)))
        self._select_lines = SQL(
            "SELECT {} FROM {}.{} WHERE chunk = %s ORDER BY seq").format(
                SQL(", ").join(map(Identifier, LINE_COLUMNS)), schema, table)
        # Which of a chunk's ids are stored already (the importer stores the others):
        # a join against the ids staged by COPY (an array of 50,000 ids is built in
        # Python, a COPY's text in one string).
        self._known_lines = SQL(
            "SELECT s.line_id FROM pg_temp.statement_line_ids s WHERE EXISTS "
            "(SELECT 1 FROM {}.{} l WHERE l.line_id = s.line_id)").format(schema, table)

    def create_table(self) -> None:
        """Create the tables under an advisory lock: two processes starting at once
        would otherwise race in CREATE TABLE/TYPE IF NOT EXISTS (a unique violation
        in the catalogue, seen with two consumers)."""
        with self.datastore.get_connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
            try:
                super().create_table()
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        """As eventsourcing's, but without psycopg's pipeline mode: with it, a batch of
        about a thousand events hung for ever in `pipeline.sync()` (measured here).
        The handful of statements per batch costs a few round trips on a local socket."""
        with self.datastore.get_connection() as conn, conn.transaction():
            with conn.cursor() as curs:
                self._insert_events(curs, stored_events, **kwargs)
                if not stored_events:
                    return []
                prev = self._lock_for_events(curs)
                self._insert_stored_events(curs, stored_events, **kwargs)
                ids = self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
                assert ids is not None, "an application recorder returns the new positions"
                self._extend_chain(curs, stored_events, ids, prev)
                return ids

    def _lock_for_events(self, curs: Cursor[DictRow]) -> str:
        """eventsourcing's lock timeout, table lock and notification, then the chain's
        last hash, as one query (simple protocol: no parameters): one round trip where
        these were four, each with the client's and the server's per-statement work
        (at the live pipeline's batches of ~50 records, a large part of a batch's cost).
        The last hash is read under the lock, so no other writer can extend the chain
        before this transaction commits."""
        curs.execute(self._lock_and_last_hash)
        while curs.nextset():
            pass  # the last statement's result: the chain's last hash
        row = curs.fetchone()
        return row["hash"] if row else GENESIS

    def _extend_chain(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                      ids: Sequence[int], prev: str) -> None:
        """Hash the new events onto the chain after `prev`, in the same transaction. The
        events table is locked until commit, so no other writer can interleave positions."""
        links = list(chain(prev, (
            ChainedEvent(n, _uuid(e.originator_id), e.originator_version, e.topic, e.state)
            for n, e in sorted(zip(ids, stored_events, strict=True), key=lambda p: p[0]))))
        columns = ([p for p, _, _ in links], [h for _, h, _ in links], [v for _, _, v in links])
        curs.execute(self._insert_chain, columns, binary=True)

    def select_chain(self, after: int, limit: int) -> list[tuple[int, ChainedEvent | None,
                                                                 str | None, str | None]]:
        """Stored events with their chain rows, in position order, for verification."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_chain, {"after": after, "limit": limit})
            return [(r["position"],
                     None if r["originator_id"] is None else ChainedEvent(
                         r["position"], r["originator_id"], r["originator_version"],
                         r["topic"], bytes(r["state"])),
                     r["hash"], r["prev_hash"]) for r in curs.fetchall()]

    def _insert_stored_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                              **kwargs: Any) -> None:
        """Parallel arrays sent in binary: eventsourcing's array of a composite type is
        dumped as text, which cost a third of a batch's time (profiled). The table is
        locked and the channel notified by `_lock_for_events` before."""
        columns = ([e.originator_id for e in stored_events],
                   [e.originator_version for e in stored_events],
                   [e.topic for e in stored_events], [e.state for e in stored_events])
        curs.execute(self._insert_arrays, columns, binary=True)

    def _insert_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> None:
        commands: Sequence[CommandRecord] = kwargs.get("commands") or ()
        positions: Sequence[PositionUpdate] = kwargs.get("positions") or ()
        files: Sequence[PayoutFile] = kwargs.get("files") or ()
        for f in files:  # a second writer of the same run's file fails on the key
            curs.execute(self._insert_file, (f.run_id, f.currency, f.sha256, f.content))
        lines: StatementRows | None = kwargs.get("statement_lines")
        if lines is not None and lines.rows:  # a second writer of a line fails on its key
            with curs.copy(self._copy_lines) as copy:
                copy.write(lines.copy_text())
        if commands:
            with curs.copy(self._copy_commands) as copy:
                copy.set_types(["text", "text", "text", "text"])
                for c in commands:
                    copy.write_row((c.command_id, c.digest, c.job_id, c.outcome))
        for p in positions:
            curs.execute(self._upsert_position,
                         (p.consumer, p.topic, p.partition, p.end, p.start), prepare=True)
            if curs.fetchone() is None:
                msg = f"position of {p.consumer} on {p.topic}/{p.partition} moved past {p.start}"
                raise IntegrityError(msg)
        super()._insert_events(curs, stored_events, **kwargs)

    def select_commands(self, command_ids: Sequence[str]) -> dict[str, CommandRecord]:
        if not command_ids:
            return {}
        # One statement on the autocommit connection: no BEGIN and ROLLBACK round trips.
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_commands, (list(command_ids),), prepare=True, binary=True)
            return {r["command_id"]: CommandRecord(r["command_id"], r["digest"], r["job_id"],
                                                   r["outcome"]) for r in curs.fetchall()}

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events_of(self, originator_ids: Sequence[UUID]) -> list[StoredEvent]:
        """Every event of the given aggregates, in version order per aggregate."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_events_of, (list(originator_ids),), prepare=True)
            return [StoredEvent(originator_id=r["originator_id"],
                                originator_version=r["originator_version"],
                                topic=r["topic"], state=bytes(r["state"]))
                    for r in curs.fetchall()]

    def select_log(self, after: int, stop: int, limit: int,
                   skip: Set[int] = frozenset()) -> tuple[int, list[Notification]]:
        """The notifications after position `after` up to `stop` (at most `limit`
        positions read), leaving out those in `skip` without fetching their state (a
        reader that stored them, a payout run, knows them); and the last position
        read (`after` when there is none)."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_ids, (after, stop, limit), prepare=True)
            ids = [row["notification_id"] for row in curs.fetchall()]
            wanted = [n for n in ids if n not in skip]
            if wanted:
                curs.execute(self._select_states, (wanted,), prepare=True)
                rows = curs.fetchall()
            else:
                rows = []
        return (ids[-1] if ids else after), [
            Notification(id=r["notification_id"], originator_id=r["originator_id"],
                         originator_version=r["originator_version"], topic=r["topic"],
                         state=bytes(r["state"])) for r in rows]

    def select_known_lines(self, line_ids: Sequence[str]) -> set[str]:
        """Which of the statement lines `line_ids` are stored."""
        if not line_ids:
            return set()
        with self.datastore.transaction(commit=False) as curs:
            curs.execute("CREATE TEMPORARY TABLE statement_line_ids (line_id text) "
                         "ON COMMIT DROP")
            with curs.copy("COPY pg_temp.statement_line_ids FROM STDIN") as copy:
                copy.write("".join(f"{line_id}\n" for line_id in line_ids))
            curs.execute(self._known_lines)
            return {r["line_id"] for r in curs.fetchall()}

    def select_statement_lines(self, chunk: str) -> Iterator[tuple[Any, ...]]:
        """The stored lines of `chunk` in order, `LINE_COLUMNS` each, one at a time."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as curs:
            yield from curs.stream(self._select_lines, (chunk,))

    def select_file(self, run_id: str, currency: str) -> PayoutFile | None:
        """The bank file a run stored for `currency`, if any."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_file, (run_id, currency))
            row = curs.fetchone()
        return None if row is None else PayoutFile(run_id, currency, row["sha256"],
                                                   bytes(row["content"]))

    def select_positions(self, consumer: str) -> dict[tuple[str, int], int]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_positions, (consumer,), prepare=True)
            return {(r["topic"], r["partition"]): r["next_offset"] for r in curs.fetchall()}


def _uuid(originator_id: UUID | str) -> UUID:
    """Every aggregate's id is a UUID (the datastore's `originator_id_type` is "uuid")."""
    assert isinstance(originator_id, UUID), f"originator id {originator_id!r} is not a UUID"
    return originator_id
