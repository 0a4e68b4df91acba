"""The API's database connections: a lazily opened pool of read-only
connections, and the dependency (`Db`) that hands it to a route."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request
from psycopg import IsolationLevel
from psycopg_pool import ConnectionPool


class Database:
    """A lazily opened pool of read-only connections."""

    def __init__(self, url: str, size: int) -> None:
        self._url, self._size = url, size
        self._pool: ConnectionPool[Any] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        # Autocommit: a one-statement read is a snapshot of its own, in one round trip;
        # reads of several statements ask for a `snapshot` transaction.
        conn.autocommit = True
        conn.execute("SET default_transaction_read_only = on")
        conn.isolation_level = IsolationLevel.REPEATABLE_READ

    @contextmanager
    def connection(self, snapshot: bool = False) -> Iterator[psycopg.Connection[Any]]:
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ConnectionPool(self._url, min_size=1, max_size=self._size,
                                                open=False, configure=self._configure,
                                                name="settlement-api")
                    self._pool.open(wait=True, timeout=30)
                pool = self._pool
        with pool.connection(timeout=30) as conn:
            if snapshot:
                with conn.transaction():
                    yield conn
            else:
                yield conn

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


async def app_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


Db = Annotated[Database, Depends(app_database)]
