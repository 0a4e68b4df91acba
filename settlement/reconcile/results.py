"""A matching's results written out, not held: a statement of a million lines has
a million matches. `StoredResults` is the matching's `Sink` and answers what the
report and the API ask of it (`report.Results`): each line's match, a ledger
movement's line, whether a movement is known. The matches and what they cover
go to a private temporary SQLite database (on disk, deleted when the results
are: SQLite's "" file name), in batches; the lines left open and the movements
no line covers stay in memory (the report lists them all anyway).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable

from settlement.reconcile.matching import BankLine, Expected, Match, Open

BATCH_ROWS = 10_000
_SEP = "\x1f"  # between a match's targets (no key holds it)
# Rows appended while the matching runs, indexed once it is done (an index built
# from a million rows at once is sorted; kept up row by row, its pages are
# read and written back at random: the matching took twice as long).
_TABLES = (
    "CREATE TABLE matches (line_id TEXT NOT NULL, rule TEXT NOT NULL, targets TEXT NOT NULL)",
    "CREATE TABLE covered (key TEXT NOT NULL, line_id TEXT NOT NULL)",
)
_INDEXES = ("CREATE INDEX matches_line ON matches (line_id)",
            "CREATE INDEX covered_key ON covered (key)")


class StoredResults:
    def __init__(self) -> None:
        # Requests of the API's threads read it: one at a time, under the lock.
        self._db = sqlite3.connect("", check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "cache_size = -16000"):
            self._db.execute(f"PRAGMA {pragma}")
        for table in _TABLES:
            self._db.execute(table)
        self._pending: dict[str, list[tuple[str, ...]]] = {"matches": [], "covered": []}
        # Every ledger movement is matched (`covered`), left unmatched or a run.
        self._also_known: set[str] = set()
        self._open: dict[str, Open] = {}
        self.opened_lines: list[BankLine] = []  # in the order they were left open
        self._matched = 0

    def __del__(self) -> None:
        db = getattr(self, "_db", None)  # None if __init__ failed before opening it
        if db is not None:
            db.close()  # and SQLite deletes the file

    # The matching's sink ------------------------------------------------------------

    def matched(self, match: Match) -> None:
        self._matched += 1
        pending = self._pending["matches"]
        pending.append((match.line_id, match.rule, _SEP.join(match.targets)))
        if len(pending) >= BATCH_ROWS:
            self._flush("matches")

    def opened(self, line: BankLine, found: Open) -> None:
        self._open[line.line_id] = found
        self.opened_lines.append(line)

    def covered(self, key: str, line_id: str) -> None:
        pending = self._pending["covered"]
        pending.append((key, line_id))
        if len(pending) >= BATCH_ROWS:
            self._flush("covered")

    def knowing(self, unmatched: Iterable[Expected], runs: Iterable[Expected]) -> None:
        """Note the keys of the movements no line covers and of the runs: known too."""
        self._also_known.update(e.key for e in (*unmatched, *runs))

    def finish(self) -> None:
        for table in self._pending:
            self._flush(table)
        with self._lock:
            for index in _INDEXES:
                self._db.execute(index)

    def _flush(self, table: str) -> None:
        rows = self._pending[table]
        if not rows:
            return
        marks = ", ".join("?" * len(rows[0]))
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
            self._db.execute("COMMIT")
        rows.clear()

    # What the report and the API ask --------------------------------------------------

    def match_of(self, line_id: str) -> Match | None:
        row = self._one("SELECT rule, targets FROM matches WHERE line_id = ?", line_id)
        if row is None:
            return None
        rule, targets = row
        return Match(line_id, rule, tuple(targets.split(_SEP)) if targets else ())

    def open_of(self, line_id: str) -> Open | None:
        return self._open.get(line_id)

    def holder(self, key: str) -> str | None:
        # A key covered twice (a run's payout held by hand, then by its run): the last.
        row = self._one("SELECT line_id FROM covered WHERE key = ? ORDER BY rowid DESC "
                        "LIMIT 1", key)
        return None if row is None else str(row[0])

    def known(self, key: str) -> bool:
        """Whether `key` is one of the ledger's movements (a line covers it, or none)."""
        return key in self._also_known or self.holder(key) is not None

    def matched_count(self) -> int:
        return self._matched

    def _one(self, query: str, value: str) -> tuple[str, ...] | None:
        with self._lock:
            row = self._db.execute(query, (value,)).fetchone()
        return None if row is None else tuple(row)
