"""PostgreSQL connections of a long-running process (input consumer, relay,
projector, timer loop): every wait bounded, and reconnection prompt after an
outage.

eventsourcing's pool (psycopg_pool) by default waits 30 s for a connection,
opens connections with libpq's default connect timeout (none: psycopg then waits
130 s), runs statements without a timeout, and retries a lost connection with a
delay that doubles without bound for five minutes: after a two-minute outage its
next attempt could come a minute after the database is back. Here each
connection attempt and each wait for one is bounded, statements are bounded, a
reconnection that keeps failing is given up after RECONNECT_GIVE_UP_S (the next
request for a connection starts a fresh one at once), and `check` drops the
connections an outage broke before the work starts again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import psycopg

if TYPE_CHECKING:
    from settlement.application.app import SettlementApplication

CONNECT_TIMEOUT_S = 5  # libpq connect_timeout of each new connection (at least 2)
# The longest wait for a connection from the pool (whole seconds, as eventsourcing
# reads it). Short, because eventsourcing tries each of its calls up to 10 times on
# a connection error: while the database is away one call lasts about 10 such waits
# (a stop waits for it), and a pool this process alone uses never runs short.
POOL_WAIT_S = 1
# Longer than any statement of the service's own work (a batch of 1,000 commands
# commits in well under a second), so only a stuck server or lock trips it.
STATEMENT_TIMEOUT_MS = 30_000
RECONNECT_GIVE_UP_S = 2.0
PROBE_STATEMENT_TIMEOUT_MS = 2_000
OPTIONS = f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"


def service_env() -> dict[str, str]:
    """eventsourcing settings of a long-running process: a bounded wait for a
    connection (eventsourcing's POSTGRES_CONNECT_TIMEOUT is that wait)."""
    return {"POSTGRES_CONNECT_TIMEOUT": str(POOL_WAIT_S)}


def bound(app: SettlementApplication) -> None:
    """Bound the application's pool as the module says. The connections opened
    while the application was made lack the statement timeout: replaced."""
    pool = app.store.datastore.pool
    kwargs = pool.kwargs
    assert isinstance(kwargs, dict), "eventsourcing passes its connection arguments as a dict"
    pool.kwargs = {**kwargs, "connect_timeout": CONNECT_TIMEOUT_S, "options": OPTIONS}
    pool.reconnect_timeout = RECONNECT_GIVE_UP_S
    pool.drain()


def check(app: SettlementApplication) -> None:
    """Raise unless the database answers through the application's pool; the idle
    connections an outage broke are replaced first (else each would fail once)."""
    datastore = app.store.datastore
    datastore.pool.check()
    with datastore.transaction(commit=False) as curs:
        curs.execute("SELECT 1")


def connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """A connection of its own, bounded like the pool's."""
    return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, options=OPTIONS, **kwargs)


def answers(url: str) -> None:
    """Raise unless the database at `url` answers (before anything is opened on it)."""
    with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True,
                         options=f"-c statement_timeout={PROBE_STATEMENT_TIMEOUT_MS}") as conn:
        conn.execute("SELECT 1")
