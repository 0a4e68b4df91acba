"""Is a partition still the log a consumer read? (After a broker lost its data.)

A consumer stores, per partition, the next offset to read. If the broker lost
its data (the embedded one keeps everything in memory) and the topic was created
again and written anew, the records below that offset are new ones: read at the
old offset, they would be skipped without a word. So, on assignment, a consumer
looks at the records just before its stored offset and reads the partition again
from its beginning when they are not the ones it read:

- the projector stores the event position of the last record it read there
  (`positions_at`); nothing is applied twice, since events are applied by version;
- the input consumer knows every record id it decided (`records_before`); a record
  read again is a duplicate, which changes nothing.

Needed because a fetch beyond the end of a recreated partition may simply come
back empty (tansu does so) instead of failing with an out-of-range error, and a
log written again may have grown past the old offset by the time it is read.

A running consumer cannot tell a log written anew from the same log grown by
looking at what a fetch brings, so it looks again, as on assignment, after its
connection to the broker broke (`Breaks`): a broker that lost its data was
restarted, and no fetch reaches the new log without a new connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, TypeAlias

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.conn import CloseReason
from aiokafka.errors import KafkaError, OffsetOutOfRangeError
from aiokafka.structs import ConsumerRecord

from settlement.infra import broker
from settlement.infra.outage import BrokerUnavailable

PROBE_TIMEOUT_S = 2.0
_BROKEN = (CloseReason.CONNECTION_BROKEN, CloseReason.CONNECTION_TIMEOUT)
Record: TypeAlias = ConsumerRecord[bytes, bytes]


async def records_before(bootstrap: str, ends: Mapping[TopicPartition, int], count: int,
                         client_id: str, timeout_s: float = PROBE_TIMEOUT_S,
                         ) -> dict[TopicPartition, list[Record]]:
    """Per partition, the records at offsets `end - count` to `end - 1` (those from
    0 if `end < count`), in offset order: fewer where the log holds fewer, or where
    the broker did not hand them over within `timeout_s`. Offsets must be above 0.
    Raises BrokerUnavailable if the broker answered no fetch at all: then nothing
    can be said of the logs (a paused broker must not look like an empty one)."""
    if not ends:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, client_id=client_id,
        enable_auto_commit=False, auto_offset_reset="none", fetch_max_wait_ms=100,
        isolation_level="read_uncommitted", request_timeout_ms=int(timeout_s * 1000) + 1000,
    )
    starts = {tp: max(0, end - count) for tp, end in ends.items()}
    found: dict[TopicPartition, dict[int, Record]] = {tp: {} for tp in ends}
    done = {tp for tp, end in ends.items() if end <= 0}  # nothing before offset 0
    answered = False
    try:
        await asyncio.wait_for(consumer.start(), timeout_s)
    except Exception as exc:
        await broker.close(consumer)
        raise BrokerUnavailable(f"no answer from {bootstrap}: {exc!r}") from exc
    try:
        # Asked first, with a request that names no topic: a fetch from a topic the
        # broker lost would have it create the topic again (tansu, like Kafka with
        # auto-creation on), before the service does, with the wrong partitions.
        try:
            existing = await asyncio.wait_for(consumer.topics(), timeout_s)
        except (KafkaError, TimeoutError) as exc:
            raise BrokerUnavailable(f"no answer from {bootstrap}: {exc!r}") from exc
        done.update(tp for tp in ends if tp.topic not in existing)
        consumer.assign([tp for tp in ends if tp not in done])
        for tp, start in starts.items():
            if tp not in done:
                consumer.seek(tp, start)
        deadline = time.monotonic() + timeout_s
        while len(done) < len(ends) and time.monotonic() < deadline:
            try:
                batch = await consumer.getmany(timeout_ms=100)
            except OffsetOutOfRangeError as exc:  # a broker that says so: the records are gone
                gone = exc.args[0] if exc.args and isinstance(exc.args[0], Mapping) else ends
                done.update(gone)
                answered = True
                continue
            answered = answered or bool(batch) or any(
                consumer.highwater(tp) is not None for tp in ends.keys() - done)
            for tp, records in batch.items():
                # Records before the seek position may come back (tansu): keep ours.
                for record in records:
                    if starts[tp] <= record.offset < ends[tp]:
                        found[tp][record.offset] = record
                if any(record.offset >= ends[tp] - 1 for record in records):
                    done.add(tp)
            for tp in ends.keys() - done:  # the log ends before: nothing more to come
                end = consumer.highwater(tp)
                if end is not None and end < ends[tp]:
                    done.add(tp)
    finally:
        await broker.close(consumer)
    if not answered and len(done) < len(ends):
        raise BrokerUnavailable(f"{bootstrap} answered no fetch within {timeout_s} s")
    return {tp: [records[offset] for offset in sorted(records)] for tp, records in found.items()}


def logs_ended(consumer: AIOKafkaConsumer, floors: Mapping[TopicPartition, int],
               ) -> list[tuple[TopicPartition, int, int]]:
    """(partition, log end, floor) of each owned partition whose log, by the high
    watermark of the last fetch, now ends before `floors` (the records read there):
    lost and created again. Said at once, before the new log grows past the floor
    (the embedded broker answers a fetch beyond the end with nothing, not an error;
    `end_offsets` it gets wrong)."""
    owned = consumer.assignment()  # `highwater` refuses a partition not (yet) owned
    return [(tp, end, floor) for tp, floor in floors.items() if tp in owned
            and (end := consumer.highwater(tp)) is not None and end < floor]


def newest_answer_age_s(consumer: AIOKafkaConsumer) -> float | None:
    """Seconds since the broker last answered a fetch for any owned partition (a
    fetch waits at most FETCH_WAIT_MS for records, so a broker that answers does
    so many times a second); None before the first answer or with no partition."""
    stamps = [consumer.last_poll_timestamp(tp) for tp in consumer.assignment()]
    newest = max((s for s in stamps if s is not None), default=None)
    return None if newest is None else max(0.0, time.time() - newest / 1000)


class Breaks:
    """Counts the broken connections of a consumer to the broker, from before its
    start. aiokafka has no public hook for them: the client's close callback is
    wrapped (aiokafka 0.14; an aiokafka without it leaves the count at 0, which
    leaves the check on assignment and on a log that ended)."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.count = 0
        client: Any = getattr(consumer, "_client", None)
        closed = getattr(client, "_on_connection_closed", None)
        if closed is None:
            return

        def on_close(conn: Any, reason: Any) -> None:
            if reason in _BROKEN:
                self.count += 1
            closed(conn, reason)

        client._on_connection_closed = on_close


async def positions_at(bootstrap: str, offsets: Mapping[TopicPartition, int],
                       timeout_s: float = PROBE_TIMEOUT_S) -> dict[TopicPartition, int | None]:
    """The event position of the settlement event at each partition's offset; None
    where there is no such record (or it is not a settlement event)."""
    found = await records_before(bootstrap, {tp: offset + 1 for tp, offset in offsets.items()},
                                 1, "settlement-projector-probe", timeout_s)
    return {tp: _position(records[-1].value) if records else None
            for tp, records in found.items()}


def _position(value: bytes | None) -> int | None:
    try:
        position = orjson.loads(value or b"")["data"]["position"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return position if isinstance(position, int) else None
