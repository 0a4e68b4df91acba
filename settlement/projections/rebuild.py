"""Rebuild every projection from the event store into a fresh schema (SPEC §8).

The notification log is read in pages; each page becomes the CloudEvents the
relay publishes (`to_cloud_event`) and goes through the very `Store.apply_batch`
the live projector uses, one transaction per page. Memory stays bounded by the
page, whatever the length of the history.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from settlement.application import SettlementApplication
from settlement.projections import schema
from settlement.projections.digest import TableDigest, digests
from settlement.projections.envelope import Event, parse
from settlement.projections.store import Store
from settlement.relay.records import published
from settlement.relay.stored import StoredEvents

PAGE_EVENTS = 1_000


@dataclass(frozen=True)
class Rebuilt:
    schema: str
    events: int
    through_position: int
    digest: str
    seconds: float
    skipped: int = 0  # with as_of: events left out (time past it, or after one that was)
    tables: dict[str, TableDigest] = field(default_factory=dict)
    loop_seconds: float = 0.0  # reading and folding, without the final digest

    @property
    def events_per_s(self) -> float:
        seen = self.events + self.skipped
        return seen / self.loop_seconds if self.loop_seconds > 0 else 0.0


def cloud_events(app: SettlementApplication, start: int, limit: int,
                 stop: int | None = None) -> list[dict[str, Any]]:
    """The stored events from position `start` (at most `limit`, none after `stop`)
    as the relay publishes them (`published`, with their audit chain hashes), so a
    rebuild reads exactly what a projector decodes from Kafka. Events the relay
    does not publish (a payout stream's opening) are left out; the page is empty
    only at the end. Every value is already what JSON carries (strings, numbers,
    lists, dicts: a unit test checks the round trip), so none is made."""
    stored = StoredEvents(app.store)
    while True:
        rows = stored.page(start, limit, stop)
        if not rows:
            return []
        page = [event for event in (published(app.mapper, n, chain) for n, chain in rows)
                if event is not None]
        if page:
            return page
        start = rows[-1][0].id + 1


@contextmanager
def _connection(app: SettlementApplication,
                conn: psycopg.Connection[Any] | None) -> Iterator[psycopg.Connection[Any]]:
    if conn is not None:
        yield conn
        return
    # The application's pool hands out connections in autocommit mode, as Store needs.
    with app.recorder.datastore.get_connection() as pooled:  # type: ignore[attr-defined]
        yield pooled


def rebuild(app: SettlementApplication, schema_name: str, *,
            conn: psycopg.Connection[Any] | None = None, through: int | None = None,
            page_events: int = PAGE_EVENTS, as_of: datetime | None = None,
            progress: Callable[[int, int], None] | None = None) -> Rebuilt:
    """Rebuild into `schema_name` (replacing an earlier rebuild there) every event up
    to position `through` (default: the last one stored when the rebuild starts).

    With `as_of`, only the events with `time ≤ as_of`: the read models as they
    stood at that instant. A job's events after its first one past `as_of` are
    left out too (a job's history is folded in version order, never with a gap).
    `progress(position, through)` is called after each page."""
    started = time.monotonic()
    last = through if through is not None else app.recorder.max_notification_id() or 0
    count, skipped, position = 0, 0, 0
    stopped: set[str] = set()  # with as_of: jobs with an event past it
    with _connection(app, conn) as connection, ThreadPoolExecutor(1, "rebuild-read") as reader:
        schema.recreate_for_rebuild(connection, schema_name)
        store = Store(connection, schema_name)
        # The next page is read (on a connection of the application's pool) while
        # this one is folded and written: two pages in memory at most.
        ahead = reader.submit(cloud_events, app, 1, page_events, last) if last else None
        while ahead is not None:
            page = ahead.result()
            if not page:
                break
            position = page[-1]["data"]["position"]
            ahead = (reader.submit(cloud_events, app, position + 1, page_events, last)
                     if position < last else None)
            events = [parse(event) for event in page]
            if as_of is not None:
                kept = _until(events, as_of, stopped)
                skipped += len(events) - len(kept)
                events = kept
            if events:
                count += store.apply_batch(events).applied
            if progress is not None:
                progress(position, last)
        if position < last:  # the last events were of a kind the relay does not publish
            position = last
            if progress is not None:
                progress(position, last)
        loop_seconds = time.monotonic() - started
        found = digests(connection, schema_name)
        return Rebuilt(schema_name, count, position, found.overall,
                       time.monotonic() - started, skipped=skipped, tables=found.tables,
                       loop_seconds=loop_seconds)


def _until(events: list[Event], as_of: datetime, stopped: set[str]) -> list[Event]:
    """The events with `time ≤ as_of` of jobs that had none past it so far."""
    kept = []
    for event in events:
        key = event.job_id or event.data.get("payout_id", "")
        if key in stopped:
            continue
        if event.time > as_of:
            stopped.add(key)
            continue
        kept.append(event)
    return kept
