"""Living through a dependency outage: PostgreSQL or the broker away for a while.

A long-running process (input consumer, relay, projector, timer loop) does not
die when a dependency goes away: what failed says which one (`away`), the
process logs the outage once when it begins (`<component>.database_unavailable`)
and once when it ends, with its length (`<component>.database_back
duration_s=…`), waits with bounded, jittered backoff while asking the
dependency whether it is back (`Outages.wait_out`), and then starts its work
again from what PostgreSQL holds, as a restart would, but in the same process.

Anything else (a defect, bad configuration) is not an outage: it still fails
the process, and the supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from aiokafka.errors import KafkaError, KafkaTimeoutError
from eventsourcing import persistence
from structlog.typing import FilteringBoundLogger

DATABASE, BROKER = "database", "broker"
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 5.0  # how late, at worst, a process sees that its dependency is back
# A session that failed sooner than this after the last outage ended continues
# the backoff where it was: a dependency that answers a probe but fails the work
# again at once is not knocked at twice a second.
STEADY_S = 30.0
T = TypeVar("T")


class BrokerUnavailable(RuntimeError):
    """The broker did not answer in time (a send or a request that timed out)."""


_DATABASE_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError,
                    persistence.OperationalError, persistence.InterfaceError)


def away(error: BaseException) -> str | None:
    """DATABASE or BROKER if `error` (or what it was raised from) says that
    dependency is unreachable or did not answer in time; None for anything else,
    even raised while handling such an error (that is a defect, not an outage). A
    statement cancelled by its timeout counts as the database being away: retried."""
    seen: BaseException | None = error
    for _ in range(8):  # causes chain a few deep; a cycle must not loop forever
        if seen is None:
            return None
        if isinstance(seen, _DATABASE_ERRORS):
            return DATABASE
        if isinstance(seen, BrokerUnavailable | KafkaTimeoutError) or (
                isinstance(seen, KafkaError) and seen.retriable):
            return BROKER
        seen = seen.__cause__
    return None


class Backoff:
    """Exponential delays from `first_s`, doubling up to `max_s`, each drawn at
    random from its upper half: processes that lost the same dependency at the
    same moment do not all knock at once when it comes back."""

    def __init__(self, first_s: float = BACKOFF_FIRST_S, max_s: float = BACKOFF_MAX_S) -> None:
        self.first_s, self.max_s = first_s, max_s
        self._next_s = first_s

    def next_delay_s(self) -> float:
        delay = random.uniform(self._next_s / 2, self._next_s)
        self._next_s = min(self.max_s, self._next_s * 2)
        return delay

    def reset(self) -> None:
        self._next_s = self.first_s


async def stopped(stop: asyncio.Event, delay_s: float) -> bool:
    """Wait `delay_s`, or less if `stop` is set meanwhile; True if it was."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay_s)
    return stop.is_set()


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> tuple[bool, T | None]:
    """(True, result) of `work`, or (False, None) if `stop` was set first: then the
    work is cancelled (a Kafka join or send would otherwise hold a stop up)."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        return True, task.result()
    task.cancel()
    with contextlib.suppress(BaseException):  # what it failed with no longer matters
        await task
    return False, None


class Outages:
    """The outages one process lives through, logged as `<component>.<dependency>_…`."""

    def __init__(self, log: FilteringBoundLogger, component: str,
                 on_wait: Callable[[str], None] = lambda dependency: None) -> None:
        self.log, self.component, self.on_wait = log, component, on_wait
        self._since: dict[str, float] = {}
        self._backoff = Backoff()

    def began(self, dependency: str, error: BaseException) -> None:
        """Log the outage, once however often it is seen."""
        if dependency not in self._since:
            self._since[dependency] = time.monotonic()
            self.log.warning(f"{self.component}.{dependency}_unavailable", error=_short(error))

    def ended(self, dependency: str) -> None:
        """Log the outage's end with its length (if there was one)."""
        since = self._since.pop(dependency, None)
        if since is not None:
            self.log.info(f"{self.component}.{dependency}_back",
                          duration_s=round(time.monotonic() - since, 1))

    def down(self, dependency: str) -> bool:
        return dependency in self._since

    async def wait_out(self, dependency: str, error: BaseException,
                       probe: Callable[[], Awaitable[Any]], stop: asyncio.Event) -> bool:
        """Log the outage and ask `probe()` after each backoff delay until it answers
        (True) or `stop` is set (False)."""
        self.began(dependency, error)
        while True:
            self.on_wait(dependency)
            if await stopped(stop, self._backoff.next_delay_s()):
                return False
            try:
                await probe()
            except Exception as failed:  # still away, or away again: wait on
                if away(failed) is None:
                    raise
                continue
            self.ended(dependency)
            return True

    async def run(self, session: Callable[[], Awaitable[T]],
                  probes: dict[str, Callable[[], Awaitable[Any]]],
                  stop: asyncio.Event) -> T | None:
        """`session()` again after each outage it fails with, once the dependency is
        back; None if `stop` was set during an outage. Any other error is raised."""
        while True:
            started = time.monotonic()
            try:
                return await session()
            except Exception as error:
                dependency = away(error)
                if dependency is None:
                    raise
                if time.monotonic() - started > STEADY_S:
                    self._backoff.reset()
                if stop.is_set() or not await self.wait_out(dependency, error,
                                                            probes[dependency], stop):
                    return None


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]
