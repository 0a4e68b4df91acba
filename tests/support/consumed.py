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
# How long a consumer with records to read may go without any (`run_until_read`).
PENDING_IDLE_EXIT_S = 60.0


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
    records must be published before), or when idle that long first.

    A partition counts once its stored position moved to the end in this run: the
    position stored by an earlier run may equal the end of a log written anew.

    While a partition has records past its stored position, the consumer is not
    stopped for being idle: it has work, and on a loaded machine its first records
    have come more than `idle_exit_s` after its assignment (a slow group join or
    fetch), and it left having read nothing. It then runs until its positions
    reach those ends and stay put for `idle_exit_s` (a partition with nothing new
    cannot count as above), or for `PENDING_IDLE_EXIT_S` without records if they
    never do."""
    ends = {tp: end for tp, end in (await log_ends(bootstrap, topics)).items() if end > 0}
    before = await asyncio.to_thread(stored)
    pending = {tp: end for tp, end in ends.items() if end != before.get(tp)}
    stop = asyncio.Event()
    task = asyncio.ensure_future(run(stop, PENDING_IDLE_EXIT_S if pending else idle_exit_s))
    last, still_since = before, time.monotonic()
    while not task.done():
        await asyncio.wait({task}, timeout=POLL_S)
        now = await asyncio.to_thread(stored)
        if now != last:
            last, still_since = now, time.monotonic()
        if ends and all(now.get(tp) == end != before.get(tp) for tp, end in ends.items()):
            stop.set()
        elif pending and all(now.get(tp) == end for tp, end in pending.items()) and \
                time.monotonic() - still_since > idle_exit_s:
            stop.set()
    return await task
