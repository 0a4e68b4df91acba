"""The projector: settlement events from Kafka into the read models.

One consumer group writes every projection (ledger, escrows, receivables,
audit), so each event is decoded once and all read models move together in one
transaction: finance never sees a ledger ahead of the escrow summaries. Each
poll batch is stored with the consumed position of every partition it read
(compare-and-set, as the input consumer does), and events are applied by job
version, so a record delivered again, at any offset, changes nothing.

A broker that lost its data (the embedded one does on every restart) recreates
the topic, and the relay republishes from a position an operator chooses. Read
at the old offsets, the new log would silently skip events, so a partition is
read again from its beginning when its log ends before the records we read (the
high watermark of every fetch), or when, on assignment, the record before the
stored position is not the event read there (`probe`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import orjson
import psycopg
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from consumers.topics import Topics
from settlement import failpoints
from settlement.logging import get_logger
from settlement.projections import probe, schema
from settlement.projections.envelope import Event, parse
from settlement.projections.errors import MalformedEvent, PositionConflict, ProjectionError
from settlement.projections.metrics import ProjectorMetrics
from settlement.projections.store import PartitionAdvance, Store

GROUP_ID = "settlement-projections"
BATCH_RECORDS_MAX = 1_000
FETCH_BYTES_MAX = 16 * 1024 * 1024
PARTITION_FETCH_BYTES_MAX = 2 * 1024 * 1024
POLL_TIMEOUT_MS = 200
# Real Kafka's minimum; a group (re)join waits about half of it, so keep it low.
SESSION_TIMEOUT_MS = 6_000

Records = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


class Projector:
    def __init__(self, conn: psycopg.Connection[Any], bootstrap: str, topics: Topics, *,
                 schema_name: str = schema.LIVE_SCHEMA, group_id: str = GROUP_ID,
                 client_id: str = "settlement-projector",
                 batch_records_max: int = BATCH_RECORDS_MAX,
                 head: Callable[[], int | None] | None = None) -> None:
        self.conn, self.bootstrap, self.topics = conn, bootstrap, topics
        self.schema_name, self.group_id, self.client_id = schema_name, group_id, client_id
        self.batch_records_max = batch_records_max
        self.store = Store(conn, schema_name)
        self.metrics = ProjectorMetrics(group_id)
        self.head = head
        self.log = get_logger(component="projector", group=group_id, client=client_id)
        self._db = asyncio.Lock()  # one statement at a time on the connection
        self._stored: dict[TopicPartition, int] = {}  # next offset as stored in PostgreSQL
        self._floor: dict[TopicPartition, int] = {}  # records below it were read already
        self._generation = 0  # assignments so far: a batch read before the last is stale
        self._offsets_commit: asyncio.Task[None] | None = None  # the latest, in the background

    def snapshot(self) -> dict[str, Any]:
        """The metrics with the lag behind the event store (SPEC §7 `/metrics`)."""
        return self.metrics.snapshot(self.head() if self.head else None, time.monotonic())

    async def run(self, stop: asyncio.Event, idle_exit_s: float | None = None) -> ProjectorMetrics:
        """Consume until `stop` is set (or, with `idle_exit_s`, until that long idle)."""
        await asyncio.to_thread(schema.create, self.conn, self.schema_name)
        self.metrics.position = await asyncio.to_thread(self.store.max_position)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, group_id=self.group_id, client_id=self.client_id,
            enable_auto_commit=False, auto_offset_reset="earliest",
            isolation_level="read_uncommitted", max_poll_records=self.batch_records_max,
            fetch_max_bytes=FETCH_BYTES_MAX, max_partition_fetch_bytes=PARTITION_FETCH_BYTES_MAX,
            fetch_max_wait_ms=100, session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=1_000, max_poll_interval_ms=300_000,
            partition_assignment_strategy=(RoundRobinPartitionAssignor,),
        )
        await consumer.start()
        try:
            consumer.subscribe([self.topics.events], listener=_Assigned(self, consumer))
            idle_since = time.monotonic()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS,
                                                 max_records=self.batch_records_max)
                replaced = await self._check_log_ends(consumer)
                if any(batches.values()):
                    # Records of a replaced partition came from the new log at an old offset.
                    await self._process(consumer, {tp: records for tp, records in batches.items()
                                                   if tp not in replaced})
                    idle_since = time.monotonic()
                elif idle_exit_s is not None and consumer.assignment() and \
                        time.monotonic() - idle_since > idle_exit_s:
                    break
        finally:
            if self._offsets_commit is not None:
                await self._offsets_commit
            await consumer.stop()
        return self.metrics

    # Assignment ------------------------------------------------------------------

    async def assigned(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        """Seek every newly owned partition to its stored position, or to its
        beginning when it is new to us or is no longer the log we read."""
        async with self._db:  # never while a batch is being stored
            stored = await asyncio.to_thread(self.store.positions, self.group_id)
            mine = {tp: stored[(tp.topic, tp.partition)] for tp in partitions
                    if (tp.topic, tp.partition) in stored}
            found = await probe.positions_at(
                self.bootstrap, {tp: offset - 1 for tp, (offset, _) in mine.items()})
            self._stored, self._floor = {}, {}
            self._generation += 1
            for tp in partitions:
                if tp not in mine:
                    await consumer.seek_to_beginning(tp)
                    continue
                offset, last_position = mine[tp]
                self._stored[tp] = offset
                if found[tp] == last_position:
                    consumer.seek(tp, offset)
                    self._floor[tp] = offset
                else:
                    await self._replaced(consumer, tp, f"offset {offset - 1} holds position "
                                         f"{found[tp]}, not {last_position}")
        self.log.info("projector.assigned", partitions=sorted(f"{t.topic}/{t.partition}"
                                                              for t in partitions))

    async def _replaced(self, consumer: AIOKafkaConsumer, tp: TopicPartition, why: str) -> None:
        """Read a partition again from its beginning: the broker lost the log we read
        (events are applied by version, so what was applied already is skipped)."""
        self.log.warning("projector.partition_replaced", topic=tp.topic, partition=tp.partition,
                         reason=why)
        self._floor.pop(tp, None)
        await consumer.seek_to_beginning(tp)

    async def _check_log_ends(self, consumer: AIOKafkaConsumer) -> set[TopicPartition]:
        """The partitions whose log now ends before the records we read: lost and
        recreated, they are read again from the beginning. The high watermark of
        the last fetch says so at once (the embedded broker answers a fetch beyond
        the end with nothing, not an error; `end_offsets` it gets wrong)."""
        replaced = set()
        for tp, floor in list(self._floor.items()):
            end = consumer.highwater(tp)
            if end is not None and end < floor and tp in consumer.assignment():
                async with self._db:
                    await self._replaced(consumer, tp, f"the log ends at {end}, before {floor}")
                replaced.add(tp)
        return replaced

    # One batch ---------------------------------------------------------------------

    async def _process(self, consumer: AIOKafkaConsumer, batches: Records) -> None:
        self.metrics.arrived(time.monotonic())
        generation = self._generation
        events, advances = self._read(batches)
        if not advances:
            return
        failpoints.hit("project.before_db_commit")
        async with self._db:  # no rebalance between the check and the positions kept
            if generation != self._generation:
                return  # read before a rebalance that seeked every partition again
            try:
                changes = await asyncio.to_thread(self.store.apply_batch, events,
                                                  self.group_id, advances)
            except PositionConflict as conflict:
                # Another owner stored a partition further: start again from PostgreSQL.
                self.log.warning("projector.conflict", error=str(conflict))
                self._generation += 1
                conflicted = True
            except ProjectionError as error:
                # Nothing of the batch was stored; stopping beats a read model missing money.
                self.log.error("projector.stopped", code=error.code, error=error.message)
                raise
            else:
                conflicted = False
                failpoints.hit("project.after_db_commit")
                for a in advances:
                    tp = TopicPartition(a.topic, a.partition)
                    self._stored[tp] = self._floor[tp] = a.end
        if conflicted:
            await self.assigned(consumer, consumer.assignment())
            return
        self.metrics.record(applied=changes.applied, duplicates=changes.duplicates,
                            max_position=changes.max_position, now=time.monotonic())
        # Only monitoring depends on Kafka's offsets: committed in the background,
        # in order, while the next batch is read.
        self._offsets_commit = asyncio.create_task(self._commit_offsets(
            consumer, {TopicPartition(a.topic, a.partition): a.end for a in advances},
            self._offsets_commit))

    async def _commit_offsets(self, consumer: AIOKafkaConsumer,
                              offsets: dict[TopicPartition, int],
                              previous: asyncio.Task[None] | None) -> None:
        if previous is not None:
            await previous
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            self.log.warning("projector.offset_commit_failed", error=str(exc))

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
            advances.append(PartitionAdvance(
                tp.topic, tp.partition, start=self._stored.get(tp, fresh[0].offset),
                end=fresh[-1].offset + 1, last_position=parsed[-1].position))
        return events, advances


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
        """Nothing to flush: every batch is committed before the next poll."""

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.projector.assigned(self.consumer, set(assigned))
