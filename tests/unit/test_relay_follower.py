"""The relay's follower reads the log again after a quiet second: eventsourcing's
subscription reads only when a notification arrives, and one sent before it
listened is never seen."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.popo import POPOApplicationRecorder

from settlement.relay.follower import NUDGE_AFTER_S, Follower


class Unannounced(POPOApplicationRecorder):
    """Stores events without telling its subscriptions (a NOTIFY lost)."""

    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        return self._insert_events(stored_events, **kwargs)


def test_events_never_announced_are_followed_after_a_quiet_second() -> None:
    recorder = Unannounced()
    follower = Follower(recorder, 0, queue_max=100)
    try:
        recorder.insert_events([StoredEvent(uuid.uuid4(), 1, "topic", b"{}")])
        started, batch = time.monotonic(), []
        while not batch and time.monotonic() - started < 10 * NUDGE_AFTER_S:
            batch = asyncio.run(follower.next_batch(10, wait_s=0.2))
        assert [n.id for n in batch] == [1]
    finally:
        follower.close()
