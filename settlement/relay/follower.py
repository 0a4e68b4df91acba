"""The notification log after a position, in order, handed to asyncio in batches.

eventsourcing's LISTEN/NOTIFY subscription is a blocking iterator (it wakes on
each commit's NOTIFY); a thread drains it into a bounded queue, and the relay
takes whatever has arrived, up to a batch, with one thread hop per batch.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time

from eventsourcing.persistence import ApplicationRecorder, Notification

_PUT_WAIT_S = 0.1  # how often a pump blocked on a full queue checks for close()
_JOIN_WAIT_S = 5.0
# A batch under size_max // SMALL_BATCH_DIVISOR waits for more (`linger_s`); a larger
# one means events are arriving faster than a linger would add much to.
SMALL_BATCH_DIVISOR = 4
# eventsourcing's subscription reads the log again only when a NOTIFY arrives, and it
# LISTENs on a thread of its own that may run after its first read: a commit between
# the two is never announced (a relay started under load beside a writer stalled
# with events waiting). So a follower with nothing new for this long has it read again.
NUDGE_AFTER_S = 1.0


class Follower:
    def __init__(self, recorder: ApplicationRecorder, after: int, *, queue_max: int) -> None:
        self._subscription = recorder.subscribe(gt=after)
        self._queue: queue.Queue[Notification] = queue.Queue(maxsize=queue_max)
        self._closing = threading.Event()
        self._error: BaseException | None = None
        self._notified: threading.Event | None = getattr(
            self._subscription, "_has_been_notified", None)
        self._quiet_since = time.monotonic()
        self._thread = threading.Thread(target=self._pump, name=f"relay-follow-{after}",
                                        daemon=True)
        self._thread.start()

    async def next_batch(self, size_max: int, wait_s: float,
                         linger_s: float = 0.0) -> list[Notification]:
        """The next notifications in order: at least one if any arrives within
        `wait_s`, at most `size_max`; when a small batch (under a quarter of
        `size_max`) had arrived, those that arrive within `linger_s` more too (so
        a steady trickle goes out in batches, not one per commit, while a backlog
        goes out without waiting). Raises what stopped the subscription."""
        return await asyncio.to_thread(self._take, size_max, wait_s, linger_s)

    def close(self) -> None:
        """Stop the subscription and its threads (blocks for a moment)."""
        self._closing.set()
        self._subscription.stop()
        self._thread.join(_JOIN_WAIT_S)

    def _take(self, size_max: int, wait_s: float, linger_s: float) -> list[Notification]:
        try:
            batch = [self._queue.get(timeout=wait_s)]
        except queue.Empty:
            if self._error is not None:
                raise self._error from None
            if self._notified is not None and \
                    time.monotonic() - self._quiet_since >= NUDGE_AFTER_S:
                self._quiet_since = time.monotonic()
                self._notified.set()  # read the log again (see NUDGE_AFTER_S)
            return []
        self._quiet_since = time.monotonic()
        self._drain(batch, size_max)
        if len(batch) < size_max // SMALL_BATCH_DIVISOR and linger_s > 0 and \
                not self._closing.is_set():
            # One sleep, not a wake-up per notification: the pump fills the queue meanwhile.
            time.sleep(linger_s)
            self._drain(batch, size_max)
        return batch

    def _drain(self, batch: list[Notification], size_max: int) -> None:
        while len(batch) < size_max:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return

    def _pump(self) -> None:
        try:
            with self._subscription:
                for notification in self._subscription:
                    if not self._put(notification):
                        return
            if not self._closing.is_set():
                self._error = RuntimeError("the notification log subscription ended")
        except BaseException as error:  # handed to the relay by the next _take
            self._error = error

    def _put(self, notification: Notification) -> bool:
        while not self._closing.is_set():
            try:
                self._queue.put(notification, timeout=_PUT_WAIT_S)
                return True
            except queue.Full:
                continue
        return False
