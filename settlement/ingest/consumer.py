"""The input consumer: marketplace job events and payout results into escrows.

Exactly-once effects without Kafka transactions: a whole poll batch is applied
in one PostgreSQL transaction together with the consumed position of every
partition it read (compare-and-set, so a consumer that lost its partitions in a
rebalance can never apply records twice). On assignment the consumer seeks to
the positions stored in PostgreSQL; Kafka's committed offsets are only a
courtesy for lag monitoring.

Batches are pipelined one deep: while one batch's transaction commits (in a
thread), the next is fetched, decoded and decided in memory on top of it; its
rejections are published and its transaction started only once the previous
commit succeeded. A failed commit abandons the batch decided on top of it, and
the partitions are re-read from the positions stored in PostgreSQL.

A broker that lost its data (the embedded one does on every restart) may have
the topic created and written anew: read at the stored positions, the new log's
first records would be skipped without a word. So, on assignment, the records
just before each stored position must be ones this service decided (their ids
are recorded with the commands); if not, the partition is read again from its
beginning, where every record already decided is a duplicate that changes
nothing (`settlement.infra.probe`). The same check runs when a fetch shows a log
that ends before our position. Left open: a running consumer whose first fetch
after the loss finds the new log already past its position decides what it reads
there before a rejoin sends it back (README).

Bad records never stop the stream: undecodable ones go to the topic's `.dlq`,
business-rule rejections to `settlement.rejections`. Both are published and
acknowledged *before* the database commit, so a crash can repeat them (their
ids are stable: consumers de-duplicate) but never lose them.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import ConsumerRecord

from settlement.application.app import (
    REJECTED,
    Batch,
    ConcurrentModification,
    Outcome,
    SettlementApplication,
)
from settlement.core.commands import Command
from settlement.core.errors import SettlementError
from settlement.infra import broker, failpoints, probe
from settlement.infra.broker import OffsetCommits
from settlement.infra.logging import get_logger
from settlement.infra.topics import Topics
from settlement.ingest.decoding import BadRecord, decode, to_command
from settlement.store.recorder import PositionUpdate

BATCH_RECORDS_MAX = 1_000
POLL_TIMEOUT_MS = 200
SEND_TIMEOUT_S = 30.0
# Records before a stored position looked at on assignment: those of them that
# decode must all be commands this service decided (bad records are not recorded).
CHECKED_RECORDS = 16


@dataclass
class IngestStats:
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    dead_lettered: int = 0
    batches: int = 0
    conflicts: int = 0
    first_batch_at: float = 0.0  # time.perf_counter() when the first batch arrived
    last_commit_at: float = 0.0  # time.perf_counter() after the last commit


@dataclass(frozen=True)
class _Decoded:
    record: ConsumerRecord[bytes, bytes]
    command: Command | None
    error: BadRecord | None


@dataclass
class _InFlight:
    """A batch whose transaction is being committed."""

    batch: Batch
    decoded: list[_Decoded]
    positions: list[PositionUpdate]
    commit: asyncio.Task[None]


class Ingestor:
    def __init__(self, app: SettlementApplication, bootstrap: str, topics: Topics, *,
                 group_id: str = "settlement-ingest", client_id: str = "settlement-ingest",
                 batch_records_max: int = BATCH_RECORDS_MAX) -> None:
        self.app, self.bootstrap, self.topics = app, bootstrap, topics
        self.group_id, self.client_id = group_id, client_id
        self.batch_records_max = batch_records_max
        self.stats = IngestStats()
        self.log = get_logger(component="ingest", group=group_id, client=client_id)
        # Per owned partition, the offset after the last record decided (committed,
        # or in the transaction in flight): what the next batch's position moves from.
        self._positions: dict[TopicPartition, int] = {}
        # Per owned partition, the first offset not decided yet in the log read now:
        # records below it are not decided again (some brokers hand them back). Below
        # `_positions` when a partition replaced by the broker is read again.
        self._floor: dict[TopicPartition, int] = {}
        self._inflight: _InFlight | None = None
        self._offsets: OffsetCommits | None = None  # Kafka's offsets (monitoring), per run
        self._generation = 0  # counts (re)assignments: a batch decided before one is void
        self._kinds = {topics.jobs: "jobs", topics.payouts: "payouts"}
        self._dlq = {topics.jobs: topics.jobs_dlq, topics.payouts: topics.payouts_dlq}
        self._active_at = 0.0  # last records or assignment (for idle_exit_s)

    async def run(self, stop: asyncio.Event, idle_exit_s: float | None = None) -> IngestStats:
        """Consume until `stop` is set (or, with `idle_exit_s`, until that long idle)."""
        consumer = broker.consumer(self.bootstrap, group_id=self.group_id,
                                   client_id=self.client_id,
                                   batch_records_max=self.batch_records_max)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-out", acks="all",
            enable_idempotence=False, linger_ms=5, request_timeout_ms=30_000,
            max_batch_size=1024 * 1024, max_request_size=2 * 1024 * 1024,
        )
        self._offsets = OffsetCommits(consumer, self.log, "ingest.offset_commit_failed")
        await producer.start()
        await consumer.start()
        try:
            consumer.subscribe([self.topics.jobs, self.topics.payouts],
                               listener=_SeekToStoredPositions(self, consumer))
            # Idle counts from the last records or the last assignment, whichever
            # is later: a slow group join must not count as idle time.
            self._active_at = time.monotonic()
            while not stop.is_set():
                batches = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS,
                                                 max_records=self.batch_records_max)
                if await self._check_log_ends(consumer):
                    continue  # sought back: what this poll brought comes again
                if any(batches.values()):
                    await self._process(consumer, producer, batches)
                    self._active_at = time.monotonic()
                else:
                    await self._settle(consumer)
                    if idle_exit_s is not None and consumer.assignment() and \
                            time.monotonic() - self._active_at > idle_exit_s:
                        break
            await self._settle(consumer)
        finally:
            await self.flush()  # on an error: no transaction may outlive the consumer
            await self.flush_offsets()
            await consumer.stop()
            await producer.stop()
        return self.stats

    # Assignment ------------------------------------------------------------------

    async def assigned(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        """Seek every newly owned partition to its position stored in PostgreSQL, or
        to its beginning when it is new to us or is no longer the log we read."""
        await self.flush()
        self._generation += 1
        # Another consumer may have moved our jobs on while we did not own them:
        # nothing cached may be trusted any more.
        self.app.reset_cache()
        stored = await asyncio.to_thread(self.app.store.select_positions, self.group_id)
        mine = {tp: stored[(tp.topic, tp.partition)] for tp in partitions
                if (tp.topic, tp.partition) in stored}
        replaced = await self._replaced(mine)
        self._positions, self._floor = dict(mine), {}
        for tp in partitions:
            if tp not in mine:
                await consumer.seek_to_beginning(tp)
            elif tp in replaced:
                self.log.warning("ingest.partition_replaced", topic=tp.topic,
                                 partition=tp.partition, position=mine[tp],
                                 reason=replaced[tp])
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, mine[tp])
                self._floor[tp] = mine[tp]
        self._active_at = time.monotonic()
        self.log.info("ingest.assigned", partitions=sorted(f"{t.topic}/{t.partition}"
                                                           for t in partitions))

    async def _replaced(self, positions: dict[TopicPartition, int]) -> dict[TopicPartition, str]:
        """The partitions whose records just before their stored position are not the
        ones this service decided, with why: the broker lost the log we read."""
        ends = {tp: position for tp, position in positions.items() if position > 0}
        found = await probe.records_before(self.bootstrap, ends, CHECKED_RECORDS,
                                           f"{self.client_id}-probe")
        ids = {tp: [self._decided_id(r) for r in records] for tp, records in found.items()}
        known = await asyncio.to_thread(self.app.store.select_commands, sorted(
            {i for tp_ids in ids.values() for i in tp_ids if i is not None}))
        replaced = {}
        for tp, end in ends.items():
            records, record_ids = found[tp], ids[tp]
            if not records or records[-1].offset != end - 1:
                replaced[tp] = f"no record at offset {end - 1}"
            elif unknown := [r.offset for r, i in zip(records, record_ids, strict=True)
                             if i is not None and i not in known]:
                replaced[tp] = f"offset {unknown[-1]} holds a record never decided here"
            elif all(i is None for i in record_ids):
                replaced[tp] = (f"none of the {len(records)} records before offset {end} "
                                "has an event id to check")
        return replaced

    async def _check_log_ends(self, consumer: AIOKafkaConsumer) -> bool:
        """True if a partition's log now ends before the records we decided (the
        broker lost it, `probe.logs_ended`): then every owned partition was sought
        back as on assignment, so the records already fetched are dropped and come
        again."""
        lost = probe.logs_ended(consumer, self._floor)
        if not lost:
            return False
        for tp, end, floor in lost:
            self.log.warning("ingest.log_ended", topic=tp.topic, partition=tp.partition,
                             log_end=end, position=floor)
        await self._settle(consumer)
        await self.assigned(consumer, consumer.assignment())
        return True

    async def flush_offsets(self) -> None:
        """Commit to Kafka now the offsets of what was stored (monitoring only)."""
        if self._offsets is not None:
            await self._offsets.flush()

    async def flush(self) -> None:
        """Wait until the transaction in flight (if any) has ended, either way; its
        outcome is still taken by `_settle`."""
        if self._inflight is not None:
            await asyncio.wait([self._inflight.commit])

    # One batch ---------------------------------------------------------------------

    async def _process(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                       batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        """Decide `batches` on top of the batch in flight, then, once that one is
        committed, publish this one's failures and start its transaction."""
        if not self.stats.first_batch_at:
            self.stats.first_batch_at = time.perf_counter()
        generation = self._generation
        # Some brokers (tansu) hand back records before the fetch position again.
        batches = {tp: [r for r in records if r.offset >= self._floor.get(tp, 0)]
                   for tp, records in batches.items()}
        decoded = [self._decode(r) for records in batches.values() for r in records]
        positions = [
            PositionUpdate(self.group_id, tp.topic, tp.partition,
                           start=self._positions.get(tp, records[0].offset),
                           end=records[-1].offset + 1)
            for tp, records in batches.items() if records
        ]
        if not positions:
            return
        commands = [d.command for d in decoded if d.command is not None]
        ahead = self._inflight.batch if self._inflight is not None else None
        batch = await asyncio.to_thread(self.app.prepare, commands, ahead)
        try:
            settled = await self._settle(consumer)
            if not settled or generation != self._generation:
                # Decided on top of a batch that was not stored, or before a
                # rebalance: the partitions were sought back, the records come again.
                self.app.abandon(batch)
                return
            await self._publish_failures(producer, decoded, batch.outcomes)
        except BaseException:
            self.app.abandon(batch)
            raise
        failpoints.hit("ingest.before_db_commit")
        commit = asyncio.create_task(asyncio.to_thread(self.app.commit, batch, positions))
        self._inflight = _InFlight(batch, decoded, positions, commit)
        for p in positions:
            tp = TopicPartition(p.topic, p.partition)
            self._positions[tp] = self._floor[tp] = p.end

    async def _settle(self, consumer: AIOKafkaConsumer) -> bool:
        """Wait for the transaction in flight; False if it lost to another writer
        (then the partitions are sought back to the stored positions)."""
        inflight, self._inflight = self._inflight, None
        if inflight is None:
            return True
        try:
            await inflight.commit  # `commit` evicts what it changed if it fails
        except ConcurrentModification as conflict:
            # Someone else applied part of this (a rebalance raced us): start over
            # from what PostgreSQL holds; nothing of this batch was stored.
            self.stats.conflicts += 1
            self.log.warning("ingest.conflict", error=str(conflict))
            await self.assigned(consumer, consumer.assignment())
            return False
        failpoints.hit("ingest.after_db_commit")
        self._count(inflight.decoded, inflight.batch.outcomes)
        # Only monitoring depends on Kafka's offsets: committed in the background,
        # at most once a second, so the broker's round trip is not on the batch's path.
        assert self._offsets is not None, "made with the consumer (run)"
        self._offsets.note({TopicPartition(p.topic, p.partition): p.end
                            for p in inflight.positions})
        return True

    def _decided_id(self, record: ConsumerRecord[bytes, bytes]) -> str | None:
        """The id under which the record's command is recorded once decided; None
        for a bad record (dead-lettered, never recorded)."""
        decoded = self._decode(record)
        return decoded.command.command_id if decoded.command is not None else None

    def _decode(self, record: ConsumerRecord[bytes, bytes]) -> _Decoded:
        try:
            event = decode(record.value, self._kinds[record.topic])  # type: ignore[arg-type]
            return _Decoded(record, to_command(event), None)
        except BadRecord as bad:
            return _Decoded(record, None, bad)
        except SettlementError as error:
            return _Decoded(record, None, BadRecord(error.code, error.message))

    async def _publish_failures(self, producer: AIOKafkaProducer, decoded: Sequence[_Decoded],
                                outcomes: Sequence[Outcome]) -> None:
        sends = []
        now = datetime.now(UTC).isoformat()
        for item in decoded:
            if item.error is not None:
                sends.append(await producer.send(
                    self._dlq[item.record.topic], key=item.record.key,
                    value=dead_letter(item.record, item.error, now)))
                self.log.warning("ingest.dead_letter", topic=item.record.topic,
                                 partition=item.record.partition, offset=item.record.offset,
                                 code=item.error.code)
        origin = {d.command.command_id: d.record for d in decoded if d.command is not None}
        for outcome in outcomes:
            if outcome.status == REJECTED and outcome.error is not None:
                record = origin[outcome.command.command_id]
                sends.append(await producer.send(
                    self.topics.rejections, key=record.key,
                    value=rejection(outcome, record, now)))
                self.log.info("ingest.rejected", event_id=outcome.command.command_id,
                              code=outcome.error.code, job_id=outcome.command.data.get("job_id"))
        if sends:
            await asyncio.wait_for(asyncio.gather(*sends), SEND_TIMEOUT_S)

    def _count(self, decoded: Sequence[_Decoded], outcomes: Sequence[Outcome]) -> None:
        s = self.stats
        s.batches += 1
        s.records += len(decoded)
        s.dead_lettered += sum(1 for d in decoded if d.error is not None)
        for outcome in outcomes:
            if outcome.status == REJECTED:
                s.rejected += 1
            elif outcome.events:
                s.applied += 1
            else:
                s.duplicates += 1
        s.last_commit_at = time.perf_counter()


class _SeekToStoredPositions(ConsumerRebalanceListener):
    def __init__(self, ingestor: Ingestor, consumer: AIOKafkaConsumer) -> None:
        self.ingestor, self.consumer = ingestor, consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        """Let the transaction in flight end; a batch decided but not started is
        dropped when the assignment changes. Kafka's offsets of what was stored are
        committed while the partitions are still ours."""
        await self.ingestor.flush()
        await self.ingestor.flush_offsets()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.ingestor.assigned(self.consumer, set(assigned))


def dead_letter(record: ConsumerRecord[bytes, bytes], error: BadRecord, now: str) -> bytes:
    return orjson.dumps({
        "original": base64.b64encode(record.value or b"").decode(),
        "topic": record.topic, "partition": record.partition, "offset": record.offset,
        "error": {"code": error.code, "message": error.message}, "received_at": now,
    })


def rejection(outcome: Outcome, record: ConsumerRecord[bytes, bytes], now: str) -> bytes:
    assert outcome.error is not None
    data: dict[str, Any] = {
        "causation_id": outcome.command.command_id, "code": outcome.error.code,
        "message": outcome.error.message, "topic": record.topic,
        "partition": record.partition, "offset": record.offset,
    }
    if job_id := outcome.command.data.get("job_id"):
        data["job_id"] = job_id
    return orjson.dumps({
        "specversion": "1.0", "type": "settlement.command_rejected",
        "id": f"rejection:{record.topic}:{record.partition}:{record.offset}",
        "source": "settlement/ingest", "subject": data.get("job_id"), "time": now,
        "datacontenttype": "application/json", "data": data,
    })
