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
that ends before our position, and after the connection to the broker broke (a
broker that lost its data was restarted): before anything a fetch brought after
the break is decided, so a new log already past our position is caught too.

PostgreSQL or the broker going away ends the consumer's session (its Kafka
clients, and every batch not stored yet); the outage is logged once and waited
out (`settlement.infra.outage`), and the next session starts from the positions
stored in PostgreSQL, as a restart would; a broker that stops answering fetches
is asked directly (`settlement.infra.watch`). Progress, lag and outages are
reported to the process's `Liveness` (heartbeat and watchdog).

Bad records never stop the stream: undecodable ones go to the topic's `.dlq`,
business-rule rejections to `settlement.rejections`. Both are published and
acknowledged *before* the database commit, so a crash can repeat them (their
ids are stable: consumers de-duplicate) but never lose them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

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
from settlement.infra import broker, failpoints, pool, probe, watch
from settlement.infra.broker import OffsetCommits
from settlement.infra.liveness import Liveness
from settlement.infra.logging import get_logger
from settlement.infra.outage import BROKER, DATABASE, BrokerUnavailable, Outages, unless_stopped
from settlement.infra.topics import INPUT_KINDS, Topics
from settlement.infra.watch import BrokerWatch
from settlement.ingest.decoding import BadRecord, decode, to_command
from settlement.ingest.failures import dead_letter, rejection
from settlement.store.recorder import PositionUpdate

BATCH_RECORDS_MAX = 1_000
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
                 batch_records_max: int = BATCH_RECORDS_MAX,
                 fetch_wait_ms: int = broker.FETCH_WAIT_MS,
                 liveness: Liveness | None = None) -> None:
        self.app, self.bootstrap, self.topics = app, bootstrap, topics
        self.group_id, self.client_id = group_id, client_id
        self.batch_records_max, self.fetch_wait_ms = batch_records_max, fetch_wait_ms
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
        self._kinds = {topics.input(kind): kind for kind in INPUT_KINDS}
        self._dlq = {topics.input(kind): topics.dlq(kind) for kind in INPUT_KINDS}
        self._active_at = 0.0  # last records or assignment (for idle_exit_s)
        self.liveness = liveness or Liveness.off()
        self._stop = asyncio.Event()  # the run's
        self._failed: BaseException | None = None  # why an assignment failed: ends the session
        self._joined = False  # the group gave this member its (maybe empty) assignment
        self._breaks: probe.Breaks | None = None  # the session consumer's broken connections
        self._breaks_seen = 0  # … when its logs were last looked at
        self._watch = BrokerWatch(bootstrap, self.liveness)
        self._assigning = asyncio.Lock()  # held while partitions are being sought

    async def run(self, stop: asyncio.Event, idle_exit_s: float | None = None) -> IngestStats:
        """Consume until `stop` is set (or, with `idle_exit_s`, until that long idle),
        waiting out every outage of PostgreSQL or the broker."""
        self._stop = stop
        outages = Outages(self.log, "ingest", self.liveness.waiting)
        await outages.run(lambda: self._session(idle_exit_s),
                          {DATABASE: lambda: asyncio.to_thread(pool.check, self.app),
                           BROKER: lambda: broker.answers(self.bootstrap)}, stop)
        return self.stats

    async def _session(self, idle_exit_s: float | None) -> None:
        """Kafka clients of their own, from the positions stored in PostgreSQL, until
        stopped, idle or failed."""
        consumer = broker.consumer(self.bootstrap, group_id=self.group_id,
                                   client_id=self.client_id,
                                   batch_records_max=self.batch_records_max,
                                   fetch_wait_ms=self.fetch_wait_ms)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, client_id=f"{self.client_id}-out", acks="all",
            enable_idempotence=False, linger_ms=5, request_timeout_ms=30_000,
            max_batch_size=1024 * 1024, max_request_size=2 * 1024 * 1024,
        )
        self._offsets = OffsetCommits(consumer, self.log, "ingest.offset_commit_failed")
        self._breaks, self._failed, self._joined = probe.Breaks(consumer), None, False
        self._watch.restart()
        stop = self._stop
        try:
            for client in (producer, consumer):
                if not (await unless_stopped(client.start(), stop))[0]:
                    return  # stopped while the broker was not answering
            consumer.subscribe(list(self.topics.inputs),
                               listener=_SeekToStoredPositions(self, consumer))
            # Idle counts from the last records or the last assignment, whichever
            # is later: a slow group join must not count as idle time.
            self._active_at = time.monotonic()
            while not stop.is_set():
                batches = await watch.poll(consumer, self.batch_records_max)
                if self._failed is not None:
                    raise self._failed
                if await self._check_logs(consumer):
                    continue  # sought back: what this poll brought comes again
                await self._watch.check(consumer, self._joined, self._floor)
                if any(batches.values()):
                    await self._process(consumer, producer, batches)
                    self._active_at = time.monotonic()
                else:
                    await self._settle(consumer)
                    # A rebalance in progress (revoked, not yet assigned again) is not
                    # idle time, though the consumer still names its old partitions.
                    if idle_exit_s is not None and self._joined and consumer.assignment() \
                            and time.monotonic() - self._active_at > idle_exit_s:
                        break
            await self._settle(consumer)
        finally:
            await self._end_session(consumer, producer)

    async def _end_session(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer) -> None:
        """However the session ended: the transaction in flight ends first (no
        transaction may outlive the consumer; it counts if it was stored), then the
        Kafka clients stop, each within `broker.CLOSE_TIMEOUT_S` (the broker may be away)."""
        await self.flush()
        inflight, self._inflight = self._inflight, None
        if inflight is not None and not inflight.commit.cancelled() and \
                inflight.commit.exception() is None:
            self._count(inflight.decoded, inflight.batch.outcomes)
        await self.flush_offsets()
        for client in (consumer, producer):
            await broker.close(client)

    # Assignment ------------------------------------------------------------------

    async def assigned(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        """Seek every newly owned partition to its position stored in PostgreSQL, or
        to its beginning when it is new to us or is no longer the log we read.
        One at a time (a rejoin's and the poll loop's may overlap). The partitions
        are paused meanwhile: nothing is fetched from offsets nobody chose, or from
        a log not looked at yet (what was fetched before is dropped by the seek),
        and they stay paused if this fails (the session then ends)."""
        async with self._assigning:
            consumer.pause(*(partitions & consumer.assignment()))
            await self._assign(consumer, partitions)
            consumer.resume(*(partitions & consumer.assignment()))  # still ours

    async def _assign(self, consumer: AIOKafkaConsumer, partitions: set[TopicPartition]) -> None:
        await self.flush()
        self._generation += 1
        self._joined = True
        if self._breaks is not None:  # the logs are looked at now
            self._breaks_seen = self._breaks.count
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
                broker.seek_to_beginning(consumer, tp)
            elif tp in replaced:
                self.log.warning("ingest.partition_replaced", topic=tp.topic,
                                 partition=tp.partition, position=mine[tp],
                                 reason=replaced[tp])
                broker.seek_to_beginning(consumer, tp)
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

    def revoked(self) -> None:
        """The group takes the partitions back (a join follows)."""
        self._joined = False

    def assignment_failed(self, error: BaseException) -> None:
        """An assignment could not seek (the database or the broker was away): the
        session ends at the next poll, before anything fetched is decided."""
        self._failed = error

    async def _check_logs(self, consumer: AIOKafkaConsumer) -> bool:
        """True if every owned partition was sought back as on assignment, so the
        records already fetched are dropped and come again: a log now ends before
        the records we decided (`probe.logs_ended`), or the connection to the broker
        broke since the logs were last looked at (it may have lost them and have
        had them written anew, past our positions, by now)."""
        lost = probe.logs_ended(consumer, self._floor)
        for tp, end, floor in lost:
            self.log.warning("ingest.log_ended", topic=tp.topic, partition=tp.partition,
                             log_end=end, position=floor)
        breaks = self._breaks.count - self._breaks_seen if self._breaks is not None else 0
        if not lost and not (breaks and consumer.assignment()):
            return False
        if breaks:
            self.log.info("ingest.broker_reconnected", broken_connections=breaks)
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
            if not await self._publish_failures(producer, decoded, batch.outcomes):
                self.app.abandon(batch)  # stopped: read again by the next run
                return
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
        self.liveness.progressed()
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
            event = decode(record.value, self._kinds[record.topic])
            return _Decoded(record, to_command(event), None)
        except BadRecord as bad:
            return _Decoded(record, None, bad)
        except SettlementError as error:
            return _Decoded(record, None, BadRecord(error.code, error.message))

    async def _publish_failures(self, producer: AIOKafkaProducer, decoded: Sequence[_Decoded],
                                outcomes: Sequence[Outcome]) -> bool:
        """Publish the batch's dead letters and rejections and wait for the broker's
        acknowledgements; False if stopped first. Raises BrokerUnavailable if they
        are not acknowledged within SEND_TIMEOUT_S."""
        try:
            published, _ = await unless_stopped(
                asyncio.wait_for(self._publish(producer, decoded, outcomes), SEND_TIMEOUT_S),
                self._stop)
        except TimeoutError as exc:
            raise BrokerUnavailable(
                f"dead letters and rejections not acknowledged within {SEND_TIMEOUT_S} s") from exc
        return published

    async def _publish(self, producer: AIOKafkaProducer, decoded: Sequence[_Decoded],
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
        # Most batches reject nothing: their records are mapped by command id only if needed.
        rejected = [o for o in outcomes if o.status == REJECTED]
        origin = ({d.command.command_id: d.record for d in decoded if d.command is not None}
                  if rejected else {})
        for outcome in rejected:
            if outcome.error is not None:
                record = origin[outcome.command.command_id]
                sends.append(await producer.send(
                    self.topics.rejections, key=record.key,
                    value=rejection(outcome, record, now)))
                self.log.info("ingest.rejected", event_id=outcome.command.command_id,
                              code=outcome.error.code, job_id=outcome.command.data.get("job_id"))
        if sends:
            await asyncio.gather(*sends)

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
        self.ingestor.revoked()
        await self.ingestor.flush()
        await self.ingestor.flush_offsets()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        try:
            await self.ingestor.assigned(self.consumer, set(assigned))
        except Exception as error:
            # aiokafka would log this and fetch from offsets nobody chose: nothing is
            # fetched, and the session ends at the next poll.
            self.consumer.pause(*assigned)
            self.ingestor.assignment_failed(error)

