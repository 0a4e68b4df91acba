"""Is a partition still the log the projector read? (After a broker lost its data.)

A projector stores, per partition, the next offset and the event position of the
last record it read there. If the record at that offset no longer holds that
event, the topic was recreated (the embedded broker keeps everything in memory)
and republished: the projector must read the partition again from its beginning.
Nothing is applied twice, since events are applied by version, not by offset.

Needed because a fetch beyond the end of a recreated partition may simply come
back empty (tansu does so) instead of failing with an out-of-range error.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

PROBE_TIMEOUT_S = 2.0


async def positions_at(bootstrap: str, offsets: Mapping[TopicPartition, int],
                       timeout_s: float = PROBE_TIMEOUT_S) -> dict[TopicPartition, int | None]:
    """The event position of the record at each partition's offset; None where
    there is no such record (or it is not a settlement event)."""
    if not offsets:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, client_id="settlement-projector-probe",
        enable_auto_commit=False, auto_offset_reset="none", fetch_max_wait_ms=100,
        isolation_level="read_uncommitted",
    )
    await consumer.start()
    found: dict[TopicPartition, int | None] = {}
    try:
        consumer.assign(list(offsets))
        for tp, offset in offsets.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout_s
        while len(found) < len(offsets) and time.monotonic() < deadline:
            try:
                batch = await consumer.getmany(timeout_ms=100)
            except OffsetOutOfRangeError as exc:  # a broker that says so: the record is gone
                gone = exc.args[0] if exc.args and isinstance(exc.args[0], Mapping) else offsets
                for tp in gone:
                    found.setdefault(tp, None)
                continue
            for tp, records in batch.items():
                # Records before the seek position may come back (tansu): look for ours.
                for record in records:
                    if record.offset == offsets[tp]:
                        found[tp] = _position(record.value)
    finally:
        await consumer.stop()
    return {tp: found.get(tp) for tp in offsets}


def _position(value: bytes | None) -> int | None:
    try:
        position = orjson.loads(value or b"")["data"]["position"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return None
    return position if isinstance(position, int) else None
