"""Published positions of relays, in PostgreSQL beside the events they follow.

Table `<application>_relay_positions` (`settlement_relay_positions`): one row
per relay name holding the last notification id whose event (and every one
before it) the broker acknowledged.
"""

from __future__ import annotations

from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from settlement.store.recorder import SCHEMA_LOCK_KEY


class RelayPositions:
    def __init__(self, recorder: PostgresApplicationRecorder) -> None:
        self.datastore = recorder.datastore
        prefix = recorder.events_table_name.removesuffix("_events")
        self.table_name = f"{prefix}_relay_positions"
        table = SQL("{}.{}").format(Identifier(self.datastore.schema), Identifier(self.table_name))
        self._create = SQL(
            "CREATE TABLE IF NOT EXISTS {} (relay text PRIMARY KEY, "
            "position bigint NOT NULL CHECK (position >= 0), updated_at timestamptz NOT NULL)"
        ).format(table)
        self._select = SQL("SELECT position FROM {} WHERE relay = %s").format(table)
        # Compare-and-set: a relay whose position was reset (or moved by another
        # process under the same name) must not overwrite it.
        self._advance = SQL(
            "INSERT INTO {} AS p (relay, position, updated_at) VALUES (%s, %s, now()) "
            "ON CONFLICT (relay) DO UPDATE SET position = EXCLUDED.position, updated_at = now() "
            "WHERE p.position = %s RETURNING position"
        ).format(table)
        self._set = SQL(
            "INSERT INTO {} (relay, position, updated_at) VALUES (%s, %s, now()) "
            "ON CONFLICT (relay) DO UPDATE SET position = EXCLUDED.position, updated_at = now()"
        ).format(table)

    def create_table(self) -> None:
        """Create the table if needed; under the service's schema lock, since two
        processes running CREATE TABLE IF NOT EXISTS at once can collide."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
            curs.execute(self._create)

    def get(self, relay: str) -> int:
        """The stored position of `relay` (0, before the first event, if none)."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select, (relay,))
            row = curs.fetchone()
        return 0 if row is None else int(row["position"])

    def advance(self, relay: str, expected: int, position: int) -> bool:
        """Store `position` if the stored one is still `expected` (or none is stored)."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._advance, (relay, position, expected), prepare=True)
            return curs.fetchone() is not None

    def reset(self, relay: str, position: int) -> int:
        """Store `position` unconditionally; return the position it replaced."""
        if position < 0:
            raise ValueError(f"a relay position is at least 0, got {position}")
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._select + SQL(" FOR UPDATE"), (relay,))
            row = curs.fetchone()
            curs.execute(self._set, (relay, position))
        return 0 if row is None else int(row["position"])
