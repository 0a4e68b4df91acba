"""Rebuild every projection from the event store into a fresh schema (SPEC §8).

The notification log is read in pages; each page becomes the CloudEvents the
relay publishes (`to_cloud_event`) and goes through the very `fold` the live
projector uses. By default the rows are written by `bulk.BulkRebuild` (views
kept in memory, bounded, append-only rows streamed by COPY, the rest written
once at the end); with `bulk=False` each page goes through the live projector's
own `Store.apply_batch`, one transaction per page. Both give the same tables
(a test compares their digests). Memory stays bounded whatever the length of
the history.

A long history is folded in shards, one process per core: each reads, decodes
and folds the events of its share of the aggregates (a job's or a payout's
events are all in one shard, `StoredEvents.page(shard=...)`) into the same
schema; their balances are summed at the end (`bulk.complete`).
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from queue import Empty
from typing import Any

import psycopg

from settlement.application.app import SettlementApplication
from settlement.infra.logging import get_logger
from settlement.projections.model.changes import Changes
from settlement.projections.model.envelope import Event, parse
from settlement.projections.rebuild import bulk as bulk_writer
from settlement.projections.storage import schema
from settlement.projections.storage.digest import TableDigest, digests
from settlement.projections.storage.store import Store
from settlement.relay.records import published
from settlement.relay.stored import Shard, StoredEvents

PAGE_EVENTS = 1_000
# From this many events on, a bulk rebuild is folded in shards (start-up of each
# process about a second): one per core, at most MAX_SHARDS.
SHARD_MIN_EVENTS = 50_000
MAX_SHARDS = 4
# Peak RSS (KiB) of each shard process that finished, in this process.
SHARD_RSS_KIB: list[int] = []


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
    shards: int = 1
    shards_rss_mb: float = 0.0  # peak RSS of the shard processes besides this one

    @property
    def events_per_s(self) -> float:
        seen = self.events + self.skipped
        return seen / self.loop_seconds if self.loop_seconds > 0 else 0.0


@dataclass
class Folded:
    """One shard's pass over the history (all of it: the only shard)."""

    events: int = 0
    skipped: int = 0
    position: int = 0  # of the last page read
    totals: bulk_writer.Totals | None = None  # a bulk rebuild's, for `complete`


def cloud_events(app: SettlementApplication, start: int, limit: int,
                 stop: int | None = None, shard: Shard | None = None) -> list[dict[str, Any]]:
    """The stored events from position `start` (at most `limit`, none after `stop`)
    as the relay publishes them (`published`, with their audit chain hashes), so a
    rebuild reads exactly what a projector decodes from Kafka. Events the relay
    does not publish (a payout stream's opening) are left out; the page is empty
    only at the end. Every value is already what JSON carries (strings, numbers,
    lists, dicts: a unit test checks the round trip), so none is made. With
    `shard`, only the events of that shard of the aggregates."""
    stored = StoredEvents(app.store)
    while True:
        rows = stored.page(start, limit, stop, shard)
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
            progress: Callable[[int, int], None] | None = None, bulk: bool = True,
            shards: int | None = None) -> Rebuilt:
    """Rebuild into `schema_name` (replacing an earlier rebuild there) every event up
    to position `through` (default: the last one stored when the rebuild starts).

    With `as_of`, only the events with `time ≤ as_of`: the read models as they
    stood at that instant. A job's events after its first one past `as_of` are
    left out too (a job's history is folded in version order, never with a gap).
    `progress(position, through)` is called after each page. `bulk=False`:
    write through `Store.apply_batch` page by page instead of `BulkRebuild`.
    `shards`: processes folding a bulk rebuild (default: one per core from
    `SHARD_MIN_EVENTS` events on, else 1)."""
    started = time.monotonic()
    last = through if through is not None else app.recorder.max_notification_id() or 0
    if shards is None:
        shards = (min(os.cpu_count() or 1, MAX_SHARDS)
                  if bulk and last >= SHARD_MIN_EVENTS else 1)
    if shards < 1 or (shards > 1 and not bulk):
        raise ValueError(f"cannot rebuild in {shards} shards (bulk={bulk})")
    SHARD_RSS_KIB.clear()
    with _connection(app, conn) as connection:
        schema.recreate_for_rebuild(connection, schema_name)
        if not bulk:
            store = Store(connection, schema_name)
            folded = _fold_pages(app, last, page_events, as_of, None, store.apply_batch,
                                 progress)
            parts = [folded]
        else:
            parts = _bulk_rebuild(app, connection, schema_name, last, page_events, as_of,
                                  shards, progress)
        position = max(part.position for part in parts)
        # Done: not said yet if the last events were of a kind the relay does not
        # publish, nor by shards (`_bulk_rebuild` says it only when all are done).
        if progress is not None and (position < last or shards > 1):
            progress(last, last)
        position = max(position, last)
        loop_seconds = time.monotonic() - started
        found = digests(connection, schema_name)
        return Rebuilt(schema_name, sum(part.events for part in parts), position,
                       found.overall, time.monotonic() - started,
                       skipped=sum(part.skipped for part in parts), tables=found.tables,
                       loop_seconds=loop_seconds, shards=shards,
                       shards_rss_mb=sum(SHARD_RSS_KIB) / 1024)


def _bulk_rebuild(app: SettlementApplication, conn: psycopg.Connection[Any], schema_name: str,
                  last: int, page_events: int, as_of: datetime | None, shards: int,
                  progress: Callable[[int, int], None] | None) -> list[Folded]:
    """`BulkRebuild` in `shards` shards: the first in this process, the others in
    processes of their own, all at once; then `bulk_writer.complete` over them all."""
    log = get_logger(component="rebuild", schema=schema_name, shards=shards, through=last)
    started = time.monotonic()
    bulk_writer.prepare(conn, schema_name)
    max_jobs = max(1, bulk_writer.MAX_JOBS // shards)
    if shards == 1:
        parts = [_fold_shard(app, conn, schema_name, last, page_events, as_of, None, max_jobs,
                             progress)]
    else:
        with _shard_processes(app, schema_name, last, page_events, as_of, shards,
                              max_jobs) as others:
            # After each page: a failed shard stops the rebuild now, not at the end.
            # This shard's progress stands for all (the shards advance together
            # over the same positions); done only when every shard is.
            def shard_progress(position: int, total: int) -> None:
                others.poll()
                if progress is not None:
                    progress(min(position, total - 1), total)

            mine = _fold_shard(app, conn, schema_name, last, page_events, as_of, (0, shards),
                               max_jobs, shard_progress)
            parts = [mine, *others.results()]
    folded = time.monotonic()
    log.info("rebuild.folded", events=sum(part.events for part in parts),
             seconds=round(folded - started, 3))
    bulk_writer.complete(conn, schema_name, [part.totals for part in parts if part.totals],
                         lambda: _connection(app, None))
    log.info("rebuild.completed", seconds=round(time.monotonic() - folded, 3))
    return parts


def _fold_shard(app: SettlementApplication, conn: psycopg.Connection[Any], schema_name: str,
                last: int, page_events: int, as_of: datetime | None, shard: Shard | None,
                max_jobs: int, progress: Callable[[int, int], None] | None) -> Folded:
    """One shard (`None`: all) of a bulk rebuild, its rows written; its totals."""
    with ExitStack() as stack:
        stack.enter_context(_rare_gc())
        writer = stack.enter_context(bulk_writer.BulkRebuild(
            conn, schema_name, lambda: _connection(app, None), max_jobs))
        folded = _fold_pages(app, last, page_events, as_of, shard, writer.apply, progress)
        folded.totals = writer.finish()
    return folded


def _fold_pages(app: SettlementApplication, last: int, page_events: int,
                as_of: datetime | None, shard: Shard | None,
                apply: Callable[[Sequence[Event]], Changes],
                progress: Callable[[int, int], None] | None) -> Folded:
    """`apply` every page of events (of `shard`) up to `last`, those up to `as_of`."""
    folded = Folded()
    stopped: set[str] = set()  # with as_of: jobs with an event past it
    with _pages(app, last, page_events, shard) as pages:
        for page in pages:
            folded.position = page[-1]["data"]["position"]
            events = [parse(event) for event in page]
            if as_of is not None:
                kept = _until(events, as_of, stopped)
                folded.skipped += len(events) - len(kept)
                events = kept
            if events:
                folded.events += apply(events).applied
            if progress is not None:
                progress(folded.position, last)
    return folded


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
def _pages(app: SettlementApplication, last: int, page_events: int,
           shard: Shard | None) -> Iterator[Iterator[list[dict[str, Any]]]]:
    """The pages (of `shard`) up to `last`; the next one is read (on a connection
    of the application's pool) while this one is folded and written: two in memory."""
    with ThreadPoolExecutor(1, "rebuild-read") as reader:
        def pages() -> Iterator[list[dict[str, Any]]]:
            ahead = (reader.submit(cloud_events, app, 1, page_events, last, shard)
                     if last else None)
            while ahead is not None:
                page = ahead.result()
                if not page:
                    return
                position = page[-1]["data"]["position"]
                ahead = (reader.submit(cloud_events, app, position + 1, page_events, last,
                                       shard) if position < last else None)
                yield page

        yield pages()


class _Shards:
    """The shard processes of a rebuild and what they folded, as it arrives."""

    def __init__(self, processes: dict[int, Any], queue: Any) -> None:
        self.processes, self.queue = processes, queue
        self.found: dict[int, Folded] = {}

    def poll(self, wait_s: float = 0.0) -> None:
        """Take what the shards sent (waiting up to `wait_s` for something); raise
        if one failed, or exited without sending what it folded."""
        # Which had exited is looked at first: whatever one sent before it exited
        # is in the pipe by then (its queue is flushed at exit), so taken below.
        exited = [index for index, process in self.processes.items()
                  if index not in self.found and not process.is_alive()]
        timeout = 0.0 if exited else wait_s
        while True:
            try:
                item = self.queue.get(timeout=timeout) if timeout else self.queue.get_nowait()
            except Empty:
                break
            timeout = 0.0
            index, sent = item
            if isinstance(sent, str):
                raise RuntimeError(f"rebuild shard {index} failed: {sent}")
            folded, rss_kib = sent
            SHARD_RSS_KIB.append(rss_kib)
            self.found[index] = folded
        for index in exited:
            if index not in self.found:
                raise RuntimeError(f"rebuild shard {index} exited "
                                   f"({self.processes[index].exitcode}) before it was done")

    def results(self) -> list[Folded]:
        """Wait for every shard: what each folded, in shard order."""
        while len(self.found) < len(self.processes):
            self.poll(1.0)
        return [self.found[index] for index in sorted(self.found)]


@contextmanager
def _shard_processes(app: SettlementApplication, schema_name: str, last: int,
                     page_events: int, as_of: datetime | None, shards: int,
                     max_jobs: int) -> Iterator[_Shards]:
    """Shards 1 to `shards - 1` folded by processes of their own (`_shard_main`),
    started now. Leaving early stops them."""
    context = multiprocessing.get_context("spawn")
    queue: Any = context.Queue()
    processes = {index: context.Process(
        target=_shard_main, name=f"rebuild-shard-{index}", daemon=True,
        args=(type(app), dict(app.env), schema_name, last, page_events, as_of,
              (index, shards), max_jobs, queue)) for index in range(1, shards)}
    for process in processes.values():
        process.start()
    try:
        yield _Shards(processes, queue)
    finally:
        for process in processes.values():
            if process.is_alive():
                process.terminate()
            process.join()
        queue.close()


def _shard_main(app_type: type[SettlementApplication], env: dict[str, str], schema_name: str,
                last: int, page_events: int, as_of: datetime | None, shard: Shard,
                max_jobs: int, out: Any) -> None:
    """In a shard process: fold the shard, then put (its index, (what it folded,
    its peak RSS in KiB)); a str instead of the pair: the error that stopped it."""
    try:
        app = app_type(env)
        try:
            with _connection(app, None) as conn:
                folded = _fold_shard(app, conn, schema_name, last, page_events, as_of, shard,
                                     max_jobs, None)
        finally:
            app.close()
        out.put((shard[0], (folded, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
    except Exception as exc:  # reported by the rebuild, which raises it
        out.put((shard[0], f"{type(exc).__name__}: {exc}"))


def _until(events: list[Event], as_of: datetime, stopped: set[str]) -> list[Event]:
    """The events with `time ≤ as_of` of jobs that had none past it so far."""
    kept = []
    for event in events:
        data = event.data  # a job's, a payout's, a party's, a run's, or a hold's events
        key = (event.job_id or data.get("payout_id")
               or f"{data.get('party_id')}:{data.get('run_id')}")
        if key in stopped:
            continue
        if event.time > as_of:
            stopped.add(key)
            continue
        kept.append(event)
    return kept
