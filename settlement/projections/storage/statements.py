"""Statement lines into the read models straight from the event store's rows.

A `statement_imported` event names the lines it stored (`chunk`: its first
line's id, `store.statement_lines`); the projections copy those rows into
`statement_lines` with the event's own columns (statement, account, time,
position) by one INSERT … SELECT per batch (the live projector, through its
staging table) or per event (a bulk rebuild), never decoding a line in Python.
A line is in one event only, and an event read again adds nothing (the rows are
inserted unless their key is there), as for the lines older events carried.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from psycopg import Cursor, sql

from settlement.projections.model.changes import Changes
from settlement.store.statement_lines import statement_lines_table

CHUNK_COLUMNS = (("chunk", "text"), ("statement_id", "text"), ("account", "text"),
                 ("time", "timestamptz"), ("position", "bigint"))
CURRENCY = "JPY"  # a statement of the safeguarded yen account
_STAGE = sql.Identifier("stage_statement_chunks")


def chunk_rows(changes: Changes) -> list[tuple[Any, ...]]:
    return list(map(attrgetter(*(name for name, _ in CHUNK_COLUMNS)), changes.statement_chunks))


def insert_lines(schema: str, chunks: sql.Composable) -> sql.Composed:
    """Copy the stored lines of the chunks in `chunks` (a table or a subquery with
    `CHUNK_COLUMNS`) into the schema's `statement_lines`."""
    return sql.SQL(
        "INSERT INTO {}.statement_lines (line_id, statement_id, account, booked, direction, "
        "amount, currency, counterparty, reference, kind, time, position) "
        "SELECT l.line_id, c.statement_id, c.account, l.booked, l.direction, l.amount, {}, "
        "l.counterparty, l.reference, l.kind, c.time, c.position "
        "FROM {} AS c JOIN {} AS l ON l.chunk = c.chunk ORDER BY l.line_id "
        "ON CONFLICT (line_id) DO NOTHING").format(
            sql.Identifier(schema), sql.Literal(CURRENCY), chunks,
            sql.Identifier(statement_lines_table()))


def insert_chunk(schema: str) -> sql.Composed:
    """`insert_lines` of one chunk, its columns as parameters (`CHUNK_COLUMNS`)."""
    one = sql.SQL("(SELECT %s::text AS chunk, %s::text AS statement_id, %s::text AS account, "
                  "%s::timestamptz AS time, %s::bigint AS position)")
    return insert_lines(schema, one)


@dataclass(frozen=True)
class StatementChunks:
    """The live projector's write (in `writes.WRITES`): the batch's chunks by binary
    COPY into a staging table of the connection (`stage`), then `insert_lines`
    from it, as the staged writes do."""

    table: str = "statement_lines"

    @staticmethod
    def rows(changes: Changes) -> list[tuple[Any, ...]]:
        return chunk_rows(changes)

    @property
    def staging_table(self) -> sql.Identifier:
        """Emptied by the transaction that fills it (`Store.write`), as the staged
        writes' tables are (`writes.STAGING_KEPT`: no truncation at every commit)."""
        return _STAGE

    def stage(self) -> sql.Composed:
        columns = sql.SQL(", ").join(sql.SQL(f"{name} {type_}") for name, type_ in CHUNK_COLUMNS)
        return sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} ({}) "
                       "ON COMMIT PRESERVE ROWS").format(_STAGE, columns)

    def statement(self, schema: str) -> tuple[sql.Composed, sql.Composed]:
        copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
            _STAGE, sql.SQL(", ").join(sql.Identifier(name) for name, _ in CHUNK_COLUMNS))
        return copy, insert_lines(schema, _STAGE)

    def load(self, cur: Cursor[Any], statement: tuple[sql.Composed, sql.Composed],
             rows: list[tuple[Any, ...]]) -> None:
        with cur.copy(statement[0]) as copy:
            copy.set_types([type_ for _, type_ in CHUNK_COLUMNS])
            for row in rows:
                copy.write_row(row)

    def run(self, cur: Cursor[Any], statement: tuple[sql.Composed, sql.Composed],
            rows: list[tuple[Any, ...]]) -> None:
        self.load(cur, statement, rows)
        cur.execute(statement[1], prepare=True)
