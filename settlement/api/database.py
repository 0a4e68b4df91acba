"""The API's database connections: one pool of read-only connections that lives
through database outages, and the dependency (`Db`) that hands it to a route.

Every wait has a limit (`DatabaseLimits`): connecting, a checkout from the pool,
a statement, a transaction left idle, and a peer that vanished without closing
(TCP keepalives, tcp_user_timeout). When no working connection can be had the
route answers 503 `database_unavailable`, never 500.

The pool is opened without waiting and closed only by `close()`. (Issue #22: it
used to be opened with `open(wait=True)`, which closes the pool for good when
the database is away at that moment, so the API answered 500 `PoolClosed` long
after PostgreSQL was back.) Dead connections are replaced: a request whose
connection turns out dead answers 503 and every idle one is checked at once
(`_lost`), so after an outage at most the first request per connection sees
it. (Checking each connection at checkout instead cost an empty round trip per
request, 10 % of the API's throughput in bench/api.py.) Reconnection attempts give up after
`reconnect_timeout_s`, so the next request starts a fresh attempt instead of
waiting out psycopg_pool's doubling back-off (which, after a minute-long outage,
would sleep a minute before trying again).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from psycopg import IsolationLevel
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from settlement.api.availability import Availability, Unreachable
from settlement.api.render import ApiError
from settlement.infra.logging import get_logger

POOL_NAME = "settlement-api"
# Probes of an idle TCP connection: a peer gone silent is found in ~25 s.
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 10, 5, 3


@dataclass(frozen=True)
class DatabaseLimits:
    connect_timeout_s: int = 5  # libpq's connect_timeout (whole seconds, at least 2)
    checkout_timeout_s: float = 5.0  # waiting for a pooled connection, then 503
    statement_timeout_ms: int = 30_000  # the longest API read; then 503
    idle_in_transaction_ms: int = 60_000  # a snapshot transaction left open by accident
    tcp_user_timeout_ms: int = 10_000  # data sent and not acknowledged (TCP only)
    reconnect_timeout_s: float = 10.0  # psycopg_pool's span of attempts per connection
    unreachable_hold_s: float = 2.0  # after a failure, answer 503 at once this long


class Database:
    """A lazily created pool of read-only connections."""

    def __init__(self, url: str, size: int, limits: DatabaseLimits | None = None) -> None:
        self._url, self._size = url, size
        self.limits = limits or DatabaseLimits()
        self._pool: ConnectionPool[Any] | None = None
        self._lock = threading.Lock()
        self._availability = Availability(self.limits.unreachable_hold_s)
        self._purging: threading.Thread | None = None

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        # Autocommit: a one-statement read is a snapshot of its own, in one round trip;
        # reads of several statements ask for a `snapshot` transaction.
        conn.autocommit = True
        conn.execute(f"SET default_transaction_read_only = on; "
                     f"SET statement_timeout = {int(self.limits.statement_timeout_ms)}; "
                     f"SET idle_in_transaction_session_timeout = "
                     f"{int(self.limits.idle_in_transaction_ms)}")
        conn.isolation_level = IsolationLevel.REPEATABLE_READ

    def _opened_pool(self) -> ConnectionPool[Any]:
        pool = self._pool
        if pool is not None:
            return pool
        with self._lock:
            if self._pool is None:
                limits = self.limits
                self._pool = ConnectionPool(
                    self._url, kwargs=_connect_options(self._url, limits), min_size=1,
                    max_size=self._size, open=False, configure=self._configure,
                    timeout=limits.checkout_timeout_s,
                    reconnect_timeout=limits.reconnect_timeout_s,
                    reconnect_failed=_reconnect_failed, name=POOL_NAME)
                self._pool.open(wait=False)  # never `wait=True`: see the module's docstring
            return self._pool

    @contextmanager
    def connection(self, snapshot: bool = False) -> Iterator[psycopg.Connection[Any]]:
        try:
            self._availability.admit()
        except Unreachable as exc:
            raise unavailable(str(exc)) from exc
        pool = self._opened_pool()
        try:
            conn = pool.getconn(timeout=self.limits.checkout_timeout_s)
        except psycopg.OperationalError as exc:  # PoolTimeout: nothing working in time
            self._lost(pool)
            raise unavailable("no database connection could be had in "
                              f"{self.limits.checkout_timeout_s:g} s") from exc
        except BaseException:
            self._availability.up()  # not an outage: the next request may try again
            raise
        self._availability.up()
        try:
            with conn:
                if snapshot:
                    with conn.transaction():
                        yield conn
                else:
                    yield conn
        except psycopg.OperationalError as exc:
            if not conn.broken:
                raise  # e.g. a statement timeout: the errors module answers it
            self._lost(pool)
            raise unavailable("the database connection was lost") from exc
        finally:
            pool.putconn(conn)

    def _lost(self, pool: ConnectionPool[Any]) -> None:
        """The database was found away: fail fast for a moment, and drop the idle
        connections it broke now, so that once it is back none of them is handed
        out (a checkout checks them one by one, with growing pauses between).
        In the background: checking a connection to a silent peer can take until
        tcp_user_timeout."""
        self._availability.down()
        with self._lock:
            if self._purging is not None and self._purging.is_alive():
                return
            self._purging = threading.Thread(target=_purge, args=(pool,), daemon=True,
                                             name="api-pool-check")
            self._purging.start()

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


def unavailable(message: str) -> ApiError:
    return ApiError(503, "database_unavailable", message)


def _connect_options(url: str, limits: DatabaseLimits) -> dict[str, Any]:
    """Our limits for what the URL leaves unset (an operator's own setting wins)."""
    given = conninfo_to_dict(url)
    wanted = {"connect_timeout": limits.connect_timeout_s, "keepalives": 1,
              "keepalives_idle": KEEPALIVE_IDLE_S, "keepalives_interval": KEEPALIVE_INTERVAL_S,
              "keepalives_count": KEEPALIVE_COUNT, "tcp_user_timeout": limits.tcp_user_timeout_ms}
    return {key: value for key, value in wanted.items() if key not in given}


def _purge(pool: ConnectionPool[Any]) -> None:
    # A pool closed meanwhile (the API stopping) has nothing left to keep.
    with contextlib.suppress(Exception):
        pool.check()  # each idle connection: kept if it answers, else replaced


def _reconnect_failed(pool: ConnectionPool[Any]) -> None:
    # The pool keeps working: the next request that needs a connection tries again.
    get_logger(component="api").warning("api.database_unreachable", pool=pool.name)


async def app_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


Db = Annotated[Database, Depends(app_database)]
