"""Whether the database could be reached lately, so that during an outage the API
answers 503 at once instead of holding a worker thread for a whole pool checkout
per request (and starving every other route, `/healthz` included, of threads).

After a failure to reach the database, requests fail fast for `hold_s`; then one
request at a time probes (checks a connection out): its success lets every
request through again, its failure holds again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Unreachable(Exception):
    """The database was found unreachable a moment ago; not tried again yet."""


class Availability:
    def __init__(self, hold_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._hold_s, self._clock = hold_s, clock
        self._down_until: float | None = None
        self._probing = False
        self._lock = threading.Lock()

    def admit(self) -> None:
        """Let a request try the database, or raise `Unreachable`."""
        with self._lock:
            if self._down_until is None:
                return
            if self._clock() < self._down_until or self._probing:
                raise Unreachable("the database could not be reached a moment ago")
            self._probing = True  # this request probes; the others keep failing fast

    def up(self) -> None:
        """A connection was handed out (or the failure was not an outage)."""
        with self._lock:
            self._down_until, self._probing = None, False

    def down(self) -> None:
        """No working connection: fail fast for `hold_s`."""
        with self._lock:
            self._down_until, self._probing = self._clock() + self._hold_s, False
