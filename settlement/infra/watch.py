"""Is the broker answering a pipeline consumer (input consumer, projector)?

aiokafka retries on its own and never says the broker is gone: `getmany` just
comes back empty. But a broker that answers does so to a fetch every
FETCH_WAIT_MS, so the age of the newest fetch answer tells: while it is fresh
(or the group gave the consumer nothing to fetch) the poll loop `turned` for the
watchdog and the consumer's lag is known; after QUIET_S without one the broker
itself is asked (`broker.answers`), which raises BrokerUnavailable if it does not
answer either: the consumer then ends its session and waits the outage out.

`poll` bounds aiokafka's `getmany`, which waits without bound while the group
rebalances: a join that does not end must neither hold a stop up nor keep the
loop from turning (the watchdog then sees it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from settlement.infra import broker, probe
from settlement.infra.liveness import Liveness

QUIET_S = 5.0
POLL_TIMEOUT_MS = 200  # how long a poll waits for records
POLL_WAIT_MAX_S = 1.0  # how long a poll may wait at all (a rebalance holds it up)
Records = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


async def poll(consumer: AIOKafkaConsumer, max_records: int) -> Records:
    """`getmany`: what was fetched, nothing if the group is still rebalancing after
    POLL_WAIT_MAX_S (cancelling it there loses nothing: records are taken from its
    buffer only as it returns), so the caller sees a stop within that time."""
    try:
        return await asyncio.wait_for(
            consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=max_records),
            POLL_WAIT_MAX_S)
    except TimeoutError:
        return {}


class BrokerWatch:
    def __init__(self, bootstrap: str, liveness: Liveness, quiet_s: float = QUIET_S) -> None:
        self.bootstrap, self.liveness, self.quiet_s = bootstrap, liveness, quiet_s
        self._heard_at = self._asked_at = time.monotonic()

    def restart(self) -> None:
        """A new session: its own consumer has heard nothing yet."""
        self._heard_at = self._asked_at = time.monotonic()

    async def check(self, consumer: AIOKafkaConsumer, joined: bool,
                    floors: Mapping[TopicPartition, int]) -> None:
        """After a poll: `joined`, the group gave this member its (maybe empty)
        assignment; `floors`, per partition, the next offset not read yet."""
        now, owned = time.monotonic(), consumer.assignment()
        age = probe.newest_answer_age_s(consumer) if owned else None
        if (age is not None and age < self.quiet_s) or (joined and not owned):
            self._heard_at = now
            self.liveness.turned()
            self.liveness.lag = lag(consumer, floors)
        elif now - max(self._heard_at, self._asked_at) > self.quiet_s:
            self._asked_at = now
            await broker.answers(self.bootstrap)


def lag(consumer: AIOKafkaConsumer, floors: Mapping[TopicPartition, int]) -> int | None:
    """Records behind (log end − next offset to read) over the owned partitions where
    both are known; None where none is."""
    owned = consumer.assignment()
    behind = [end - floor for tp, floor in floors.items()
              if tp in owned and (end := consumer.highwater(tp)) is not None]
    return sum(max(0, n) for n in behind) if behind else None
