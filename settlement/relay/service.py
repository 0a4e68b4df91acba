"""The relay: follow the notification log, publish a batch, await every
acknowledgement, then store the batch's last position (at-least-once).

PostgreSQL or the broker going away ends the relay's session (its producer and
its subscription to the log); the outage is logged once and waited out
(`settlement.infra.outage`), and the next session follows the log again from
the stored position: a batch not acknowledged, or acknowledged but whose
position was not stored, is published again (consumers de-duplicate by id).
Progress and lag go to the process's `Liveness` (heartbeat and watchdog)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import UnknownError
from aiokafka.structs import RecordMetadata
from eventsourcing.persistence import Notification
from structlog.typing import FilteringBoundLogger

from settlement.application.app import SettlementApplication
from settlement.infra import failpoints, pool
from settlement.infra.broker import answers, close, ensure_topics
from settlement.infra.config import Batching
from settlement.infra.liveness import Liveness
from settlement.infra.logging import get_logger
from settlement.infra.outage import BROKER, DATABASE, BrokerUnavailable, Outages, unless_stopped
from settlement.infra.topics import Topics
from settlement.relay.follower import Follower
from settlement.relay.offsets import OffsetWatch
from settlement.relay.positions import RelayPositions
from settlement.relay.records import OutRecord, published, record_of
from settlement.relay.stats import RelayStats
from settlement.relay.stored import StoredEvents

BATCH_EVENTS_MAX = 1_000
BATCH_EVENTS_LIMIT = 10_000
WAIT_S = 0.2  # the longest wait for new events, so a stop is seen promptly
SEND_TIMEOUT_S = 30.0
PROGRESS_EVERY_EVENTS = 10_000
REQUEST_BYTES_MAX = 2 * 1024 * 1024  # above RECORD_BYTES_MAX


class BrokerDataLoss(RuntimeError):
    """The broker acknowledged an offset at or below one it had acknowledged before:
    it lost its data (the embedded broker does on every restart). `stale_log_only`:
    the new log held nothing but the batch in flight (see `Relay._check_offsets`)."""

    def __init__(self, message: str, stale_log_only: bool = False) -> None:
        super().__init__(message)
        self.stale_log_only = stale_log_only


class Relay:
    def __init__(self, app: SettlementApplication, bootstrap: str, topics: Topics,
                 name: str = "relay", *, batch_events_max: int = BATCH_EVENTS_MAX,
                 partitions: int = 4, progress_every: int = PROGRESS_EVERY_EVENTS,
                 linger_s: float = Batching.relay_linger_ms / 1000,
                 liveness: Liveness | None = None) -> None:
        if not 0 < batch_events_max <= BATCH_EVENTS_LIMIT:
            raise ValueError(f"batch_events_max must be 1 to {BATCH_EVENTS_LIMIT}")
        # After taking a small batch, wait this long once for more (`Follower.next_batch`,
        # `Batching.relay_linger_ms`): each batch costs round trips and a produce request.
        self.linger_s = linger_s
        self.app, self.bootstrap, self.topic, self.name = app, bootstrap, topics.events, name
        self.batch_events_max, self.partitions = batch_events_max, partitions
        self.progress_every = progress_every
        self.positions = RelayPositions(app.store)
        self.stored = StoredEvents(app.store)
        self.stats = RelayStats()
        self.log = get_logger(component="relay", relay=name, topic=self.topic)
        self._offsets = OffsetWatch()
        # The topic holds nothing this run will not publish again, so it may be
        # created anew once if the broker refuses its records (`_clear_lost_topic`):
        # this run created it (the broker had lost it), or starts from position 0.
        self._created_topic = False
        self._cleared = False  # that was done once in this run
        # Records this run published into the topic as it is: never deleted with it.
        self._published_into_topic = 0
        self._progress_at = progress_every
        self.liveness = liveness or Liveness.off()
        self._stop = asyncio.Event()  # the run's

    async def run(self, stop: asyncio.Event, idle_exit_s: float | None = None) -> RelayStats:
        """Publish until `stop` is set (or, with `idle_exit_s`, until that long without
        new events), waiting out every outage of PostgreSQL or the broker. Raises
        BrokerDataLoss, and stores nothing more, if the broker lost what it had
        acknowledged: an operator then chooses where to start again."""
        self._stop = stop
        outages = Outages(self.log, "relay", self.liveness.waiting)
        await outages.run(lambda: self._session(idle_exit_s),
                          {DATABASE: lambda: asyncio.to_thread(pool.check, self.app),
                           BROKER: lambda: answers(self.bootstrap)}, stop)
        self.log.info("relay.stopped", **self.stats.as_dict())
        return self.stats

    async def _session(self, idle_exit_s: float | None) -> None:
        """A producer of its own, following the log from the stored position, until
        stopped, idle or failed."""
        await self.prepare()
        producer = self._producer()
        try:
            if not (await unless_stopped(producer.start(), self._stop))[0]:
                return  # stopped while the broker was not answering
            while not await self._follow(producer, self._stop, idle_exit_s):
                pass  # the stored position moved under this relay: follow from it
        except BrokerDataLoss as lost:
            await close(producer)  # first: the broker refuses a topic a live producer knew
            if lost.stale_log_only:
                await self._republish_all()
            raise
        finally:
            await close(producer)

    async def prepare(self) -> None:
        """Create the topic (it is gone after the broker lost its data) and the table."""
        created = await ensure_topics(self.bootstrap, [self.topic], partitions=self.partitions)
        self._created_topic = self._created_topic or bool(created)  # by this run
        if created:
            self._published_into_topic = 0
            self.log.info("relay.topic_created", partitions=self.partitions)
        await asyncio.to_thread(self.positions.create_table)

    def _producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, client_id=f"settlement-{self.name}",
            # The embedded broker has no idempotent producer. aiokafka keeps one request
            # per broker in flight, its partitions muted, so a retry cannot reorder a job.
            acks="all", enable_idempotence=False, linger_ms=2, max_batch_size=1024 * 1024,
            max_request_size=REQUEST_BYTES_MAX, request_timeout_ms=30_000,
            retry_backoff_ms=100, compression_type=None, key_serializer=None,
            value_serializer=None,
        )

    async def _follow(self, producer: AIOKafkaProducer, stop: asyncio.Event,
                      idle_exit_s: float | None) -> bool:
        """Publish from the stored position until stopped or idle (True), or until the
        stored position moved under this relay (False: a reset, or a twin relay)."""
        start, head = await asyncio.to_thread(self._look)
        self._created_topic = self._created_topic or (start == 0 and not self._cleared)
        self.stats.position, self.stats.head = start, head
        log = self.log.bind(from_position=start)
        log.info("relay.following", head=head, lag=self.stats.lag)
        self.liveness.lag = self.stats.lag
        follower = Follower(self.app.recorder, start, queue_max=2 * self.batch_events_max)
        try:
            idle_since = time.monotonic()
            while not stop.is_set():
                batch = await follower.next_batch(self.batch_events_max, WAIT_S,
                                                  self.linger_s)
                self.liveness.turned()  # the log answered (a subscription that failed raises)
                if batch:
                    if not await self._publish(producer, batch, log):
                        return False
                    idle_since = time.monotonic()
                elif idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                    break
            return True
        finally:
            await asyncio.to_thread(follower.close)

    async def _publish(self, producer: AIOKafkaProducer, batch: Sequence[Notification],
                       log: FilteringBoundLogger) -> bool:
        stats = self.stats
        assert stats.position < batch[0].id, "the log is followed in order"
        if not stats.first_batch_at:
            stats.first_batch_at = time.perf_counter()
        stored, records = await asyncio.to_thread(self._prepared, batch)
        if stored != stats.position:  # reset meanwhile: nothing of this batch is sent
            log.warning("relay.position_moved", expected=stats.position, stored=stored)
            return False
        try:
            sent, acks = await unless_stopped(
                asyncio.wait_for(self._send(producer, records), SEND_TIMEOUT_S), self._stop)
        except UnknownError:
            if not self._created_topic or self._published_into_topic:
                raise  # deleting the topic now would delete events it holds for good
            await self._clear_lost_topic(log)
            return False  # nothing stored: follow again from the stored position
        except TimeoutError as exc:
            raise BrokerUnavailable(f"a batch not acknowledged within {SEND_TIMEOUT_S} s") from exc
        if not sent or acks is None:
            return True  # stopped: the batch is published again by the next run
        self._check_offsets(acks, log)
        self._published_into_topic += len(acks)
        failpoints.hit("relay.after_publish")
        stats.published += len(acks)
        end = batch[-1].id
        if not await asyncio.to_thread(self.positions.advance, self.name, stats.position, end):
            log.warning("relay.position_moved", expected=stats.position, published_to=end)
            return False
        stats.head = await asyncio.to_thread(self._head)
        stats.position = end
        stats.skipped += len(records) - len(acks)
        stats.batches += 1
        stats.last_batch_at = time.perf_counter()
        self.liveness.lag = stats.lag
        self.liveness.progressed()
        if stats.published >= self._progress_at:
            self._progress_at = stats.published + self.progress_every
            log.info("relay.progress", **stats.as_dict())
        return True

    async def _send(self, producer: AIOKafkaProducer,
                    records: Sequence[OutRecord | None]) -> list[RecordMetadata]:
        """Send the records and wait for every acknowledgement."""
        sends = [await producer.send(self.topic, key=r.key, value=r.value)
                 for r in records if r is not None]
        return list(await asyncio.gather(*sends))

    async def _clear_lost_topic(self, log: FilteringBoundLogger,
                                reason: str = "the broker refused the new topic's records",
                                ) -> None:
        """The embedded broker (tansu) refuses every record for a topic created again
        after a restart if a producer that still knew the old one wrote to it in
        between (a relay running across the restart): deleting the topic and
        creating it once more clears that. Done once, by the run that created it.
        Also clears a lost log that holds nothing but a stale batch (`_check_offsets`)."""
        self._created_topic, self._cleared, self._published_into_topic = False, True, 0
        log.warning("relay.topic_recreated", reason=reason)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            await admin.delete_topics([self.topic])
        finally:
            await admin.close()
        await ensure_topics(self.bootstrap, [self.topic], partitions=self.partitions)

    def _prepared(self, batch: Sequence[Notification]) -> tuple[int, list[OutRecord | None]]:
        """The stored position (checked before sending, so that a batch read before
        an operator's `relay reset` is never published after it) and the records."""
        return self.positions.get(self.name), self._records(batch)

    def _records(self, batch: Sequence[Notification]) -> list[OutRecord | None]:
        """The batch's records, each event's data with its audit chain hashes."""
        chain = self.stored.hashes(batch[0].id, batch[-1].id)
        records = []
        for n in batch:
            cloud_event = published(self.app.mapper, n, chain.get(n.id))
            records.append(None if cloud_event is None else record_of(cloud_event))
        return records

    def _check_offsets(self, acks: Sequence[RecordMetadata],
                       log: FilteringBoundLogger) -> None:
        """Raise BrokerDataLoss if the broker acknowledged an offset it had handed out
        before. A broker that came back empty gets the batch in flight (published
        from this relay's old position, before the loss could be seen) as the first
        records of its new log; left there, they would come before the events an
        operator's `relay reset` publishes again, later versions of a job before
        earlier ones, and stop every projector that reads them (soak seeds 11 and
        13, docs/reliability.md). So when every partition's new log begins with
        this batch (its first offset there is 0), it is all the topic holds: the
        topic is created again empty and the stored position set back to 0, so the
        relay, started again, publishes every event again in order (consumers
        de-duplicate by event id and version). Otherwise (a partial loss) the
        stored position stays, and an operator chooses where to start again."""
        lost = self._offsets.regression((ack.partition, ack.offset) for ack in acks)
        if lost is None:
            return
        log.error("relay.broker_data_loss", partition=lost.partition, offset=lost.offset,
                  acknowledged_before=lost.acknowledged_before, position=self.stats.position,
                  hint="run `settlement relay reset --from POSITION`, then the relay")
        raise BrokerDataLoss(
            f"{self.topic}/{lost.partition} acknowledged offset {lost.offset} after "
            f"{lost.acknowledged_before}: the broker lost data; the relay's stored "
            f"position is {self.stats.position}", stale_log_only=_begins_new_logs(acks))

    async def _republish_all(self) -> None:
        """After a loss that left only the batch in flight in the topic: an empty
        topic, and the stored position back to 0 (unless an operator moved it)."""
        await self._clear_lost_topic(self.log, reason="the lost log held only a stale batch")
        if await asyncio.to_thread(self.positions.advance, self.name, self.stats.position, 0):
            self.log.warning("relay.republish_all", was_at=self.stats.position)

    def _look(self) -> tuple[int, int]:
        return self.positions.get(self.name), self._head()

    def _head(self) -> int:
        return self.app.recorder.max_notification_id() or 0


def _begins_new_logs(acks: Sequence[RecordMetadata]) -> bool:
    """Whether, in every partition the batch wrote to, its first record got offset 0."""
    first: dict[int, int] = {}
    for ack in acks:
        first.setdefault(ack.partition, ack.offset)
    return bool(first) and all(offset == 0 for offset in first.values())
