"""The projector: settlement events from Kafka into the read models.

One consumer group writes every projection (ledger, escrows, receivables,
audit), so each event is decoded once and all read models move together in one
transaction: finance never sees a ledger ahead of the escrow summaries. Each
poll batch is stored with the consumed position of every partition it read
(compare-and-set, as the input consumer does), and events are applied by job
version, so a record delivered again, at any offset, changes nothing.

Pipelined: batch N+1 is decoded and folded while batch N is written (PostgreSQL
works meanwhile, on its own core), from the views batch N left in memory
(`cache`); what no batch of this process touched is read on a second
connection. A rebalance, a position conflict or a failed write forgets those
views and every batch not yet written, and a restart starts without them.

A broker that lost its data (the embedded one does on every restart) recreates
the topic, and the relay republishes from a position an operator chooses. Read
at the old offsets, the new log would silently skip events, so a partition is
read again from its beginning when its log ends before the records we read (the
high watermark of every fetch), or when, on assignment, the record before the
stored position is not the event read there (`probe`); the latter is checked
again after the connection to the broker broke (`probe.Breaks`).

PostgreSQL or the broker going away ends the projector's session (its Kafka
consumer, its batches not stored, its views in memory); the outage is logged
once and waited out (`settlement.infra.outage`), on a new connection if the
outage broke ours, and the next session starts from the stored positions.
Progress, lag and outages go to the process's `Liveness` (heartbeat, watchdog).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from settlement.infra import broker, failpoints, probe, watch
from settlement.infra.broker import OffsetCommits
from settlement.infra.liveness import Liveness
from settlement.infra.logging import get_logger
from settlement.infra.outage import BROKER, DATABASE, Outages, away, unless_stopped
from settlement.infra.topics import Topics
from settlement.infra.watch import BrokerWatch
from settlement.projections.live.cache import ViewCache, needs
from settlement.projections.live.connections import Opener
from settlement.projections.live.metrics import ProjectorMetrics
from settlement.projections.model.changes import Changes, ItemKey, fold
from settlement.projections.model.envelope import Event, parse
from settlement.projections.model.errors import MalformedEvent, PositionConflict, ProjectionError
from settlement.projections.model.invoices import invoice_numbers
from settlement.projections.model.payouts import PayoutView
from settlement.projections.model.reconciliation import fee_lines
from settlement.projections.model.views import ItemView, JobView
from settlement.projections.storage import schema
from settlement.projections.storage.store import PartitionAdvance, Rows, Store, rows_of

GROUP_ID = "settlement-projections"
BATCH_RECORDS_MAX = 1_000
SWITCH_INTERVAL_S = 0.0005

Records = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
Folded = tuple[Changes, list[Rows]]


class Projector:
    def __init__(self, conn: psycopg.Connection[Any], bootstrap: str, topics: Topics, *,
                 schema_name: str = schema.LIVE_SCHEMA, group_id: str = GROUP_ID,
                 client_id: str = "settlement-projector",
                 batch_records_max: int = BATCH_RECORDS_MAX,
                 fetch_wait_ms: int = broker.FETCH_WAIT_MS,
                 head: Callable[[], int | None] | None = None,
                 liveness: Liveness | None = None) -> None:
        self.conn, self.bootstrap, self.topics = conn, bootstrap, topics
        self.schema_name, self.group_id, self.client_id = schema_name, group_id, client_id
        self.batch_records_max, self.fetch_wait_ms = batch_records_max, fetch_wait_ms
        self.store = Store(conn, schema_name)
        self.metrics = ProjectorMetrics(group_id)
        self.head = head
        self.log = get_logger(component="projector", group=group_id, client=client_id)
        self._db = asyncio.Lock()  # one statement at a time on the connection
        self._next: dict[TopicPartition, int] = {}  # next offset, once the batches read are stored
        self._floor: dict[TopicPartition, int] = {}  # records below it were read already
        self._generation = 0  # rebalances and conflicts: a batch read before the last is stale
        self._cache = ViewCache()
        self._active_at = 0.0  # last records or assignment (for idle_exit_s)
        self._reader: Store | None = None  # on a second connection: reads while a batch is written
        self._storing: asyncio.Task[None] | None = None  # the batch being written
        self._failed: BaseException | None = None  # why storing a batch failed: stop
        self._offsets: OffsetCommits | None = None  # Kafka's offsets (monitoring), per run
        self.liveness = liveness or Liveness.off()
        self._watch = BrokerWatch(bootstrap, self.liveness)
        self._opener = Opener.of(conn)
        self._opened: list[psycopg.Connection[Any]] = []  # by this projector: closed by it
        self._stop = asyncio.Event()  # the run's
        self._joined = False  # the group gave this member its (maybe empty) assignment
        self._breaks: probe.Breaks | None = None  # the session consumer's broken connections
        self._breaks_seen = 0  # … when its logs were last looked at

    def snapshot(self) -> dict[str, Any]:
        """The metrics with the lag behind the event store (SPEC §7 `/metrics`); no
        head or lag while the database is away."""
        try:
            head = self.head() if self.head else None
        except Exception as error:
            if away(error) is None:
                raise
            head = None
        return self.metrics.snapshot(head, time.monotonic())

    async def run(self, stop: asyncio.Event, idle_exit_s: float | None = None) -> ProjectorMetrics:
        """Consume until `stop` is set (or, with `idle_exit_s`, until that long idle),
        waiting out every outage of PostgreSQL or the broker."""
        self._stop = stop
        outages = Outages(self.log, "projector", self.liveness.waiting)
        try:
            await outages.run(lambda: self._session(idle_exit_s),
                              {DATABASE: self._reconnect,
                               BROKER: lambda: broker.answers(self.bootstrap)}, stop)
        finally:
            for conn in self._opened:
                await asyncio.to_thread(conn.close)
        return self.metrics

    async def _reconnect(self) -> None:
        """Raise unless the database answers; on a new connection if ours broke."""
        conn = await asyncio.to_thread(self._opener.answering, self.conn)
        if conn is not self.conn:
            self._opened.append(conn)
            self.conn, self.store = conn, Store(conn, self.schema_name)

    async def _session(self, idle_exit_s: float | None) -> None:
        """A Kafka consumer of its own, from the stored positions, until stopped, idle
        or failed."""
        await asyncio.to_thread(schema.create, self.conn, self.schema_name)
        self.metrics.position = await asyncio.to_thread(self.store.max_position)
        self._invalidate()  # another process may have written since an earlier run
        self._failed = None
        reader = await asyncio.to_thread(self._opener.connect)
        # The writing thread waits for PostgreSQL on every statement, then for the
        # GIL, which the folding thread holds up to a switch interval (5 ms by default).
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(switch_interval, SWITCH_INTERVAL_S))
        try:
            self._reader = Store(reader, self.schema_name)
            await self._consume(self._stop, idle_exit_s)
        finally:
            sys.setswitchinterval(switch_interval)
            self._reader = None
            await asyncio.to_thread(reader.close)

    async def _consume(self, stop: asyncio.Event, idle_exit_s: float | None) -> None:
        consumer = broker.consumer(self.bootstrap, group_id=self.group_id,
                                   client_id=self.client_id,
                                   batch_records_max=self.batch_records_max,
                                   fetch_wait_ms=self.fetch_wait_ms)
        self._offsets = OffsetCommits(consumer, self.log, "projector.offset_commit_failed")
        self._breaks, self._joined = probe.Breaks(consumer), False
        self._watch.restart()
        try:
            if not (await unless_stopped(consumer.start(), stop))[0]:
                return  # stopped while the broker was not answering
            consumer.subscribe([self.topics.events], listener=_Assigned(self, consumer))
            # Idle counts from the last records or the last assignment, whichever
            # is later: a slow group join must not count as idle time.
            self._active_at = time.monotonic()
            while not stop.is_set():
                if self._failed is not None:
                    raise self._failed
                batches = await watch.poll(consumer, self.batch_records_max)
                if self._failed is not None:
                    raise self._failed
                replaced = await self._check_log_ends(consumer)
                await self._watch.check(consumer, self._joined, self._floor)
                if any(batches.values()):
                    # Records of a replaced partition came from the new log at an old offset.
                    await self._process(consumer, {tp: records for tp, records in batches.items()
                                                   if tp not in replaced})
                    self._active_at = time.monotonic()
                # A rebalance in progress (revoked, not yet assigned again) is not idle
                # time, though the consumer still names its old partitions.
                elif idle_exit_s is not None and self._joined and consumer.assignment() \
                        and time.monotonic() - self._active_at > idle_exit_s:
                    break
            await self._flush()
        finally:
            await self._settle()
            await self._flush_offsets()
            await broker.close(consumer)

    # Assignment ------------------------------------------------------------------

    async def revoked(self) -> None:
        """Before a rebalance: the batch being written is stored (or fails), and
        neither the views in memory nor any batch read so far are used after it."""
        self._joined = False
        await self._settle()
        self._invalidate()
        await self._flush_offsets()  # while the partitions are still ours

    async def _flush_offsets(self) -> None:
        """Commit to Kafka now the offsets of what was stored (monitoring only)."""
        if self._offsets is not None:
            await self._offsets.flush()

    async def assigned(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        """Seek every newly owned partition to its stored position, or to its
        beginning when it is new to us or is no longer the log we read."""
        async with self._db:  # never while a batch is being stored
            # Paused meanwhile: nothing is fetched from offsets nobody chose, or from
            # a log not looked at yet (what was fetched before is dropped by the
            # seek); left paused if this fails (the session then ends).
            consumer.pause(*(partitions & consumer.assignment()))
            await self._assign(consumer, partitions)
            consumer.resume(*(partitions & consumer.assignment()))  # still ours
        self._active_at = time.monotonic()
        self.log.info("projector.assigned", partitions=sorted(f"{t.topic}/{t.partition}"
                                                              for t in partitions))

    async def _assign(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        self._invalidate()
        self._joined = True
        if self._breaks is not None:  # the logs are looked at now
            self._breaks_seen = self._breaks.count
        stored = await asyncio.to_thread(self.store.positions, self.group_id)
        mine = {tp: stored[(tp.topic, tp.partition)] for tp in partitions
                if (tp.topic, tp.partition) in stored}
        found = await probe.positions_at(
            self.bootstrap, {tp: offset - 1 for tp, (offset, _) in mine.items()})
        self._next, self._floor = {}, {}
        for tp in partitions:
            if tp not in mine:
                broker.seek_to_beginning(consumer, tp)
                continue
            offset, last_position = mine[tp]
            self._next[tp] = offset
            if found[tp] == last_position:
                consumer.seek(tp, offset)
                self._floor[tp] = offset
            else:
                await self._replaced(consumer, tp, f"offset {offset - 1} holds position "
                                     f"{found[tp]}, not {last_position}")

    def assignment_failed(self, error: BaseException) -> None:
        """An assignment could not seek (the database or the broker was away)."""
        self._failed = error

    def _invalidate(self) -> None:
        """Batches read before now are not stored, and the views in memory are
        forgotten: read from PostgreSQL again."""
        self._generation += 1
        self._cache.clear()

    async def _replaced(self, consumer: AIOKafkaConsumer, tp: TopicPartition, why: str) -> None:
        """Read a partition again from its beginning: the broker lost the log we read
        (events are applied by version, so what was applied already is skipped)."""
        self.log.warning("projector.partition_replaced", topic=tp.topic, partition=tp.partition,
                         reason=why)
        self._floor.pop(tp, None)
        broker.seek_to_beginning(consumer, tp)

    async def _check_log_ends(self, consumer: AIOKafkaConsumer) -> set[TopicPartition]:
        """The partitions whose log now ends before the records we read (lost and
        recreated, `probe.logs_ended`): they are read again from the beginning.
        After the connection to the broker broke (it may have lost every log and
        have had them written anew), every owned partition is sought as on
        assignment, and all are returned: what this poll brought comes again."""
        replaced = set()
        for tp, end, floor in probe.logs_ended(consumer, self._floor):
            async with self._db:
                await self._replaced(consumer, tp, f"the log ends at {end}, before {floor}")
            replaced.add(tp)
        breaks = self._breaks.count - self._breaks_seen if self._breaks is not None else 0
        if breaks and consumer.assignment():
            self.log.info("projector.broker_reconnected", broken_connections=breaks)
            await self.revoked()
            await self.assigned(consumer, consumer.assignment())
            return consumer.assignment()
        return replaced

    # One batch ---------------------------------------------------------------------
    #
    # Pipelined: a batch is folded (in memory, from the views the batches before it
    # left, see `ViewCache`) while the one before it is written to PostgreSQL, and
    # written once that one is stored. A rebalance, a position conflict or a failed
    # write forgets the views in memory and drops every batch not yet written.

    async def _process(self, consumer: AIOKafkaConsumer, batches: Records) -> None:
        self.metrics.arrived(time.monotonic())
        generation = self._generation
        events, advances = self._read(batches)
        if not advances:
            return
        try:
            folded = await self._fold(events, generation)
        except ProjectionError as error:
            # The batches before it are stored; stopping beats a read model missing money.
            await self._flush()
            self.log.error("projector.stopped", code=error.code, error=error.message)
            raise
        await self._flush()
        if folded is None or generation != self._generation:
            return  # read before a rebalance or conflict that seeked every partition again
        self._cache.update(folded[0])
        self._storing = asyncio.create_task(self._store(consumer, generation, folded, advances))

    async def _fold(self, events: list[Event], generation: int) -> Folded | None:
        """The batch's changes, from the views in memory and, for what they lack, the
        store (read on the second connection: nothing being written is read there);
        None if the views in memory were forgotten meanwhile."""
        need = needs(events)
        wanted = self._cache.wanted(need)
        if wanted:
            assert self._reader is not None
            found = await asyncio.to_thread(self._reader.read, wanted.job_ids, wanted.item_keys,
                                            wanted.payout_ids)
            if generation != self._generation:
                return None  # read for a cache since forgotten
            self._cache.loaded(wanted, *found)
        numbers = invoice_numbers(events)
        folded = self._cache.folded_invoices(numbers)
        unread = [n for n in numbers if n not in folded]
        if unread:  # an invoice's event read again (at least once) adds no entries twice
            assert self._reader is not None
            folded |= await asyncio.to_thread(self._reader.stored_invoices, unread)
            if generation != self._generation:
                return None
        fees = fee_lines(events)
        booked: set[str] = set()
        if fees:  # rare: wait for the batch being written, then read what is stored
            await self._settle()
            assert self._reader is not None
            booked = await asyncio.to_thread(self._reader.stored_bank_fees, fees)
            if generation != self._generation:
                return None
        return await asyncio.to_thread(_fold, events, *self._cache.inputs(need), folded,
                                       booked)

    async def _store(self, consumer: AIOKafkaConsumer, generation: int, folded: Folded,
                     advances: list[PartitionAdvance]) -> None:
        changes, rows = folded
        failpoints.hit("project.before_db_commit")
        async with self._db:  # no rebalance between the check and the positions kept
            if generation != self._generation:
                return
            try:
                await asyncio.to_thread(self.store.commit, changes, self.group_id, advances,
                                        rows)
            except PositionConflict as conflict:
                # Another owner stored a partition further: start again from PostgreSQL.
                self.log.warning("projector.conflict", error=str(conflict))
                self._invalidate()
                conflicted = True
            except BaseException as error:
                self._invalidate()
                self._failed = error
                raise
            else:
                conflicted = False
                failpoints.hit("project.after_db_commit")
        if conflicted:
            await self.assigned(consumer, consumer.assignment())
            return
        self.metrics.record(applied=changes.applied, duplicates=changes.duplicates,
                            max_position=changes.max_position, now=time.monotonic())
        self.liveness.progressed()
        # Only monitoring depends on Kafka's offsets: committed in the background,
        # at most once a second, while the next batches are read.
        assert self._offsets is not None, "made with the consumer (run)"
        self._offsets.note({TopicPartition(a.topic, a.partition): a.end for a in advances})

    async def _flush(self) -> None:
        """Wait until no batch is being written; raise why one failed."""
        await self._settle()
        if self._failed is not None:
            raise self._failed

    async def _settle(self) -> None:
        """Wait until no batch is being written (a failure is kept in `_failed`)."""
        while (task := self._storing) is not None:
            try:
                await asyncio.shield(task)
            except BaseException:
                if not task.done():
                    raise  # this waiter was cancelled, not the write
            if self._storing is task:
                self._storing = None

    def _read(self, batches: Records) -> tuple[list[Event], list[PartitionAdvance]]:
        events: list[Event] = []
        advances = []
        for tp, records in batches.items():
            # Some brokers (tansu) hand back records before the fetch position again.
            fresh = [r for r in records if r.offset >= self._floor.get(tp, 0)]
            if not fresh:
                continue
            parsed = [_decode(r) for r in fresh]
            events += parsed
            end = fresh[-1].offset + 1
            advances.append(PartitionAdvance(
                tp.topic, tp.partition, start=self._next.get(tp, fresh[0].offset),
                end=end, last_position=parsed[-1].position))
            self._next[tp] = self._floor[tp] = end
        return events, advances


def _fold(events: list[Event], jobs: dict[str, JobView], items: dict[ItemKey, ItemView],
          payouts: dict[str, PayoutView], invoices: set[str],
          bank_fees: set[str] | None = None) -> Folded:
    """The batch's changes and the rows to store (built here, off the writing thread)."""
    changes = fold(events, jobs, items, payouts, invoices, bank_fees or set())
    return changes, rows_of(changes)


def _decode(record: ConsumerRecord[bytes, bytes]) -> Event:
    try:
        return parse(orjson.loads(record.value or b""))
    except (orjson.JSONDecodeError, MalformedEvent) as exc:
        # Our own relay wrote it: a record we cannot read is a defect, not bad input.
        raise MalformedEvent(f"{record.topic}/{record.partition}@{record.offset}: {exc}") from exc


class _Assigned(ConsumerRebalanceListener):
    def __init__(self, projector: Projector, consumer: AIOKafkaConsumer) -> None:
        self.projector, self.consumer = projector, consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.projector.revoked()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        try:
            await self.projector.revoked()  # (aiokafka always calls both; this costs nothing)
            await self.projector.assigned(self.consumer, set(assigned))
        except Exception as error:
            # aiokafka would log this and fetch from offsets nobody chose: nothing is
            # fetched, and the session ends at the next poll.
            self.consumer.pause(*assigned)
            self.projector.assignment_failed(error)
