"""A long-running process's heartbeat and watchdog.

The work (a consumer's poll loop, the relay, the timer loop) tells its
`Liveness` what happens: the loop `turned` (a poll answered, a pass begun), it
`progressed` (a batch stored, a pass done), it is `waiting` out an outage, and
its `lag`. A thread of its own then, every BEAT_INTERVAL_S:

- writes the process's heartbeat row (`settlement.infra.heartbeats`) on a
  connection of its own, best effort: while the database is away the beat is
  skipped, and the work never waits for it;
- exits the process (STALLED_EXIT_CODE, so the supervisor starts it again) when
  it is stuck: its loop has not turned for `stall_s` without an outage to
  explain it, or it has had work (a lag) for that long without progress. A
  hang nothing else bounds (a server that stopped answering without closing
  its connections, a group join that never ends) thus ends in a restart.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from structlog.typing import FilteringBoundLogger

from settlement.infra import heartbeats, pool
from settlement.infra.logging import get_logger
from settlement.store.recorder import SCHEMA_LOCK_KEY

BEAT_INTERVAL_S = 5.0
# Longer than any single wait of the work (a Kafka send's 30 s, a statement's
# timeout) plus a backoff delay, so only a real hang trips it.
STALL_S = 90.0
STALLED_EXIT_CODE = 70  # EX_SOFTWARE: the supervisor restarts the process
STOP_WAIT_S = 1.0


class Liveness:
    def __init__(self, url: str | None, part: str, log: FilteringBoundLogger, component: str,
                 *, stall_s: float | None = STALL_S, beat_interval_s: float = BEAT_INTERVAL_S,
                 detail: Callable[[], dict[str, Any]] | None = None,
                 exit: Callable[[int], object] = os._exit) -> None:
        self.url, self.part, self.log, self.component = url, part, log, component
        self.stall_s, self.beat_interval_s = stall_s, beat_interval_s
        self.lag: int | None = None
        self._detail, self._exit = detail, exit
        self._turned_at = self._excused_at = time.monotonic()
        self._progressed = False
        self._waiting_for: str | None = None
        self._conn: psycopg.Connection[Any] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"liveness-{part}", daemon=True)

    @classmethod
    def off(cls) -> Liveness:
        """Neither beats nor watches (a consumer run in-process by a test or a tool)."""
        return cls(None, "", get_logger(), "", stall_s=None)

    def turned(self) -> None:
        self._turned_at = time.monotonic()
        self._waiting_for = None

    def progressed(self) -> None:
        self.turned()
        self._excused_at = self._turned_at
        self._progressed = True

    def waiting(self, dependency: str) -> None:
        """Waiting out an outage: no progress is expected meanwhile."""
        self._turned_at = self._excused_at = time.monotonic()
        self._waiting_for = dependency

    def start(self) -> Liveness:
        if self.url is not None:
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating and watching; a beat in progress is not waited for long (a
        daemon thread: it ends with the process)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(STOP_WAIT_S)

    def __enter__(self) -> Liveness:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.beat_interval_s):
            self._watch()
            self._beat()
        if self._conn is not None:
            self._conn.close()

    def _watch(self) -> None:
        if self.stall_s is None:
            return
        now = time.monotonic()
        quiet_s, idle_s = now - self._turned_at, now - self._excused_at
        if quiet_s > self.stall_s or (self.lag and idle_s > self.stall_s):
            self.log.error(f"{self.component}.stalled", quiet_s=round(quiet_s, 1),
                           without_progress_s=round(idle_s, 1), lag=self.lag,
                           exit_status=STALLED_EXIT_CODE)
            self._exit(STALLED_EXIT_CODE)

    def _beat(self) -> None:
        progressed, self._progressed = self._progressed, False
        detail = self._detail() if self._detail else {}
        if self._waiting_for is not None:
            detail = {**detail, "waiting_for": self._waiting_for}
        try:
            if self._conn is None or self._conn.closed:
                self._conn = _connect(str(self.url))
            heartbeats.beat(self._conn, self.part, progressed=progressed, lag=self.lag,
                            detail=detail)
        except psycopg.Error:
            self._progressed = self._progressed or progressed  # said at the next beat
            if self._conn is not None:
                self._conn.close()
            self._conn = None


def _connect(url: str) -> psycopg.Connection[Any]:
    conn = pool.connect(url, autocommit=True)
    try:
        create_table(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def create_table(conn: psycopg.Connection[Any]) -> None:
    """The heartbeats table, under the service's schema lock: two processes running
    CREATE TABLE IF NOT EXISTS at once can collide."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        heartbeats.create_table(conn)
