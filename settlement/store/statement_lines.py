"""Bank statement lines stored as rows of their own, beside the events (SPEC §13).

Table `<prefix>_statement_lines` beside the events table `<prefix>_events` (the
application's: `settlement_statement_lines`): one row per line, append-only,
keyed by the line's id, so a line is stored once however often (or however
concurrently) its statement is imported: a second writer of the same line fails
on the key and its whole transaction, event included, is rolled back. The rows
are written by COPY in the same transaction as the `StatementImported` event
that names them (`Application.save(statement, statement_lines=...)`); the event
carries a digest of exactly those rows (`LineDigest`), and `audit.statements`
checks it against them.

A row's canonical form is its COPY text line without `chunk` and `seq`: the
values tab-separated, escaped as COPY's text format escapes them (so no value
can run into the next), in `HASHED` order. The digest's hash is the SHA-256 of
those lines, each ended by a newline, in `seq` order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

STATEMENT_LINES_SUFFIX = "_statement_lines"
# The hashed columns, in the order of a row's canonical form.
HASHED = ("line_id", "booked", "direction", "amount", "counterparty", "reference", "kind",
          "inquiry_number", "record")
# Then, per row, the event that stored it: `chunk` (its first line's id) and the
# row's place in it.
COLUMNS = (*HASHED, "chunk", "seq")
COLUMN_TYPES = ("text PRIMARY KEY", "date NOT NULL", "text NOT NULL", "bigint NOT NULL",
                "text NOT NULL", "text NOT NULL", "text NOT NULL", "text NOT NULL",
                "integer NOT NULL", "text NOT NULL", "integer NOT NULL")
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def statement_lines_table(events_table_name: str = "settlement_events") -> str:
    return events_table_name.removesuffix("_events") + STATEMENT_LINES_SUFFIX


def canonical(line_id: str, booked: date, direction: str, amount: int, counterparty: str,
              reference: str, kind: str, inquiry_number: str, record: int) -> str:
    """A row's canonical form (see the module doc), without its newline."""
    return "\t".join((line_id, booked.isoformat(), direction, str(amount),
                      counterparty.translate(_ESCAPES), reference.translate(_ESCAPES),
                      kind.translate(_ESCAPES), inquiry_number.translate(_ESCAPES),
                      str(record)))


def line_id_of(row: str) -> str:
    """The line id a canonical row starts with."""
    return row[:row.index("\t")]


@dataclass(frozen=True)
class LineDigest:
    """What an event says of the rows it stored: how many, the first and the last
    line's id (in `seq` order) and the SHA-256 of their canonical forms."""

    lines: int
    first_line_id: str
    last_line_id: str
    sha256: str

    @classmethod
    def of(cls, rows: Iterable[str]) -> LineDigest:
        """The digest of canonical rows in order."""
        digest, count, first, last = hashlib.sha256(), 0, "", ""
        for row in rows:
            digest.update(row.encode())
            digest.update(b"\n")
            count += 1
            last = line_id_of(row)
            first = first or last
        return cls(count, first, last, digest.hexdigest())

    def to_json(self) -> dict[str, object]:
        return dict(vars(self))


@dataclass(frozen=True)
class StatementRows:
    """The rows an event stores (`Application.save(..., statement_lines=...)`): its
    canonical rows in order, stored under `chunk`."""

    chunk: str
    rows: list[str]

    def copy_text(self) -> str:
        """The rows in COPY's text format, `COLUMNS` order."""
        chunk = self.chunk.translate(_ESCAPES)
        return "".join(f"{row}\t{chunk}\t{seq}\n" for seq, row in enumerate(self.rows))

    def __repr__(self) -> str:
        return f"StatementRows({self.chunk}, {len(self.rows)} rows)"
