"""Running a consumer (the input consumer, a projector) in the test's process until it
has read what was published, instead of until it has been idle for a while."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition

T = TypeVar("T")
# (topic, partition) → the next offset to read.
Positions = dict[tuple[str, int], int]
POLL_S = 0.1
ENDS_TIMEOUT_S = 30.0


async def log_ends(bootstrap: str, topics: Iterable[str]) -> Positions:
    """Each partition's log end, as a fetch reports it (the embedded broker's answers
    to offset requests are not to be trusted, `settlement.infra.probe`)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for topic in topics
               for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not tps:
            return {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = time.monotonic() + ENDS_TIMEOUT_S
        while any(consumer.highwater(tp) is None for tp in tps):
            assert time.monotonic() < deadline, "no fetch reported the log ends"
            await consumer.getmany(timeout_ms=100)
        return {(tp.topic, tp.partition): consumer.highwater(tp) for tp in tps}
    finally:
        await consumer.stop()


async def run_until_read(run: Callable[[asyncio.Event, float], Coroutine[Any, Any, T]],
                         bootstrap: str, topics: Iterable[str], stored: Callable[[], Positions],
                         idle_exit_s: float) -> T:
    """`run(stop, idle_exit_s)`, stopped once the consumer stored, during this run, the
    end of every partition that holds records (as the log was when it started; so
    records must be published before), or by itself when idle that long first.

    A partition counts once its stored position moved to the end in this run: the
    position stored by an earlier run may equal the end of a log written anew."""
    ends = {tp: end for tp, end in (await log_ends(bootstrap, topics)).items() if end > 0}
    before = await asyncio.to_thread(stored)
    stop = asyncio.Event()
    task = asyncio.ensure_future(run(stop, idle_exit_s))
    while not task.done():
        await asyncio.wait({task}, timeout=POLL_S)
        now = await asyncio.to_thread(stored)
        if ends and all(now.get(tp) == end != before.get(tp) for tp, end in ends.items()):
            stop.set()
    return await task
