"""The stored events with their audit chain rows (SPEC §8), read in pages.

The relay publishes each event with its `hash` and `prev_hash`; a rebuild reads
the notification log with them. Chain rows are written in the transaction that
stores their events, so whatever notification is visible has its chain row.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Notification
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Composed, Identifier

from settlement.relay.cloudevents import Chain

# (the stored event, its chain row if there is one)
Chained = tuple[Notification, Chain | None]
# (index, count): the stored events of one shard of the aggregates, by the last
# byte of their id. An aggregate's events are all in one shard.
Shard = tuple[int, int]


class StoredEvents:
    def __init__(self, recorder: PostgresApplicationRecorder) -> None:
        self.datastore = recorder.datastore
        self._max_notification_id = recorder.max_notification_id
        schema = Identifier(self.datastore.schema)
        events = Identifier(recorder.events_table_name)
        chain = Identifier(recorder.events_table_name.removesuffix("_events") + "_chain")
        self._hashes = SQL("SELECT position, hash, prev_hash FROM {}.{} "
                           "WHERE position BETWEEN %s AND %s").format(schema, chain)
        # One index range scan per page on each table, however long the log. The range
        # is given for the chain too: without it the planner merge-joined the chain's
        # primary key from its first row, every page (a page at position 900,000 read
        # 900,000 chain index entries: 260 ms instead of 15).
        page = (
            "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, "
            "e.state, c.hash, c.prev_hash FROM {0}.{1} e LEFT JOIN {0}.{2} c "
            "ON c.position = e.notification_id AND c.position BETWEEN %(start)s AND %(last)s "
            "WHERE e.notification_id BETWEEN %(start)s AND %(last)s{3} "
            "ORDER BY e.notification_id LIMIT %(limit)s")
        self._page = SQL(page).format(schema, events, chain, SQL(""))
        self._shard_page = SQL(page).format(schema, events, chain, SQL(
            " AND mod(get_byte(uuid_send(e.originator_id), 15), %(shards)s) = %(shard)s"))

    def hashes(self, first: int, last: int) -> dict[int, Chain]:
        """position → (hash, prev_hash) of the chain rows from `first` to `last`."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(self._hashes, (first, last), prepare=True)
            return {position: (hash_, prev) for position, hash_, prev in cur}

    def page(self, start: int, limit: int, stop: int | None = None,
             shard: Shard | None = None) -> list[Chained]:
        """At most `limit` stored events from position `start` (none after `stop`),
        in order, each with its chain row; with `shard`, only that shard's."""
        last = stop if stop is not None else 2**63 - 1
        if shard is None:
            return self._select(self._page, {"start": start, "last": last, "limit": limit})
        # A shard's page is read from a window of positions about `limit` of its events
        # wide, the next window if that one holds none: an index range scan whatever
        # the planner guesses of the shard filter (without a bound it chose a whole
        # scan for the first pages of a freshly written log, a second a page).
        if stop is None:  # the windows end at the last event stored now
            last = self._max_notification_id() or 0
        window = limit * shard[1]
        while start <= last:
            end = min(last, start + window - 1)
            rows = self._select(self._shard_page, {"start": start, "last": end, "limit": limit,
                                                   "shard": shard[0], "shards": shard[1]})
            if rows:
                return rows
            start = end + 1
        return []

    def _select(self, query: Composed, params: dict[str, int]) -> list[Chained]:
        # Binary results: the stored JSON as bytes, not hex text to decode (a page
        # cost a third less, in Python and in PostgreSQL; measured).
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(query, params, prepare=True, binary=True)
            return [_chained(row) for row in cur]


def _chained(row: tuple[Any, ...]) -> Chained:
    position, originator_id, version, topic, state, hash_, prev = row
    notification = Notification(id=position, originator_id=originator_id,
                                originator_version=version, topic=topic, state=bytes(state))
    return notification, None if hash_ is None else (hash_, prev)
