"""Rebuild every projection from the event store into a fresh schema (SPEC §8).

The notification log is read in pages; each page becomes the CloudEvents the
relay publishes (`to_cloud_event`) and goes through the very `fold` the live
projector uses. By default the rows are written by `bulk.BulkRebuild` (views
kept in memory, bounded, append-only rows streamed by COPY, the rest written
once at the end); with `bulk=False` each page goes through the live projector's
own `Store.apply_batch`, one transaction per page. Both give the same tables
(a test compares their digests). Memory stays bounded whatever the length of
the history.
"""

from __future__ import annotations

import gc
import multiprocessing
import resource
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from queue import Empty
from typing import Any

import orjson
import psycopg

from settlement.application import SettlementApplication
from settlement.projections import schema
from settlement.projections.bulk import BulkRebuild
from settlement.projections.digest import TableDigest, digests
from settlement.projections.envelope import Event, parse
from settlement.projections.store import Store
from settlement.relay.records import published
from settlement.relay.stored import StoredEvents

PAGE_EVENTS = 1_000
# From this many events on, a bulk rebuild reads in a process of its own (start-up
# about a second), READ_AHEAD_PAGES pages ahead at most.
PROCESS_READ_MIN_EVENTS = 50_000
READ_AHEAD_PAGES = 4
# Peak RSS (KiB) of each reader process that finished, in this process.
READER_RSS_KIB: list[int] = []


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
    reader_rss_mb: float = 0.0  # peak RSS of the reader process (when one was used)

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
            progress: Callable[[int, int], None] | None = None, bulk: bool = True) -> Rebuilt:
    """Rebuild into `schema_name` (replacing an earlier rebuild there) every event up
    to position `through` (default: the last one stored when the rebuild starts).

    With `as_of`, only the events with `time ≤ as_of`: the read models as they
    stood at that instant. A job's events after its first one past `as_of` are
    left out too (a job's history is folded in version order, never with a gap).
    `progress(position, through)` is called after each page. `bulk=False`:
    write through `Store.apply_batch` page by page instead of `BulkRebuild`."""
    started = time.monotonic()
    last = through if through is not None else app.recorder.max_notification_id() or 0
    count, skipped, position = 0, 0, 0
    stopped: set[str] = set()  # with as_of: jobs with an event past it
    READER_RSS_KIB.clear()
    with _connection(app, conn) as connection, ExitStack() as stack:
        schema.recreate_for_rebuild(connection, schema_name)
        writer: BulkRebuild | None = None
        if bulk:
            stack.enter_context(_rare_gc())
            writer = stack.enter_context(BulkRebuild(
                connection, schema_name, lambda: _connection(app, None)))
        else:
            store = Store(connection, schema_name)
        reading = (_pages_by_process if bulk and last >= PROCESS_READ_MIN_EVENTS
                   else _pages_by_thread)
        for page in stack.enter_context(reading(app, last, page_events)):
            position = page[-1]["data"]["position"]
            events = [parse(event) for event in page]
            if as_of is not None:
                kept = _until(events, as_of, stopped)
                skipped += len(events) - len(kept)
                events = kept
            if events:
                applied = (writer.apply(events) if writer is not None
                           else store.apply_batch(events))
                count += applied.applied
            if progress is not None:
                progress(position, last)
        if position < last:  # the last events were of a kind the relay does not publish
            position = last
            if progress is not None:
                progress(position, last)
        if writer is not None:
            writer.finish()
        loop_seconds = time.monotonic() - started
        found = digests(connection, schema_name)
        return Rebuilt(schema_name, count, position, found.overall,
                       time.monotonic() - started, skipped=skipped, tables=found.tables,
                       loop_seconds=loop_seconds,
                       reader_rss_mb=sum(READER_RSS_KIB) / 1024)


@contextmanager
def _rare_gc() -> Iterator[None]:
    """Cyclic garbage collection far less often while a bulk rebuild runs: it holds
    many long-lived views (few of them in cycles), and the default thresholds
    spent 15 % of the loop in full collections (measured on 100,000 events)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


@contextmanager
def _pages_by_thread(app: SettlementApplication, last: int,
                     page_events: int) -> Iterator[Iterator[list[dict[str, Any]]]]:
    """The pages up to `last`; the next one is read (on a connection of the
    application's pool) while this one is folded and written: two in memory."""
    with ThreadPoolExecutor(1, "rebuild-read") as reader:
        def pages() -> Iterator[list[dict[str, Any]]]:
            ahead = reader.submit(cloud_events, app, 1, page_events, last) if last else None
            while ahead is not None:
                page = ahead.result()
                if not page:
                    return
                position = page[-1]["data"]["position"]
                ahead = (reader.submit(cloud_events, app, position + 1, page_events, last)
                         if position < last else None)
                yield page

        yield pages()


@contextmanager
def _pages_by_process(app: SettlementApplication, last: int,
                      page_events: int) -> Iterator[Iterator[list[dict[str, Any]]]]:
    """The pages up to `last`, read and made CloudEvents (`cloud_events`) by a
    process of its own, up to `READ_AHEAD_PAGES` ahead: decoding the stored events
    costs about as much Python time as folding them, so it runs on the other core.
    Pages come over a pipe as JSON (what they are made of)."""
    context = multiprocessing.get_context("spawn")
    queue: Any = context.Queue(maxsize=READ_AHEAD_PAGES)
    reader = context.Process(target=_read_pages, name="rebuild-read", daemon=True,
                             args=(type(app), dict(app.env), last, page_events, queue))
    reader.start()
    reader_rss_kib = READER_RSS_KIB

    def pages() -> Iterator[list[dict[str, Any]]]:
        while True:
            try:
                item = queue.get(timeout=1.0)
            except Empty:
                if not reader.is_alive():
                    raise RuntimeError(f"the rebuild's reader exited ({reader.exitcode})"
                                       ) from None
                continue
            if isinstance(item, str):
                raise RuntimeError(f"the rebuild's reader failed: {item}")
            if isinstance(item, int):  # its peak RSS (KiB): the end
                reader_rss_kib.append(item)
                return
            yield orjson.loads(item)

    try:
        yield pages()
    finally:
        if reader.is_alive():
            reader.terminate()
        reader.join()
        queue.close()


def _read_pages(app_type: type[SettlementApplication], env: dict[str, str], last: int,
                page_events: int, out: Any) -> None:
    """In the reader process: every page up to `last` as JSON bytes, then its peak
    RSS in KiB (a str instead: the error that stopped it)."""
    try:
        app = app_type(env)
        try:
            position = 0
            while position < last:
                page = cloud_events(app, position + 1, page_events, last)
                if not page:
                    break
                position = page[-1]["data"]["position"]
                out.put(orjson.dumps(page))
        finally:
            app.close()
        out.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    except Exception as exc:  # reported by the rebuild, which raises it
        out.put(f"{type(exc).__name__}: {exc}")


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
