"""The projector's PostgreSQL connections: the writer's (given, or opened again
once an outage broke it) and the reader's, both opened as the first one was and
bounded like the service's pool (`settlement.infra.pool`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from settlement.infra import pool


@dataclass(frozen=True)
class Opener:
    """How a connection was opened (read while it is open: a broken one may not say)."""

    dsn: str
    password: str | None

    @classmethod
    def of(cls, conn: psycopg.Connection[Any]) -> Opener:
        return cls(conn.info.dsn, conn.info.password or None)

    def connect(self) -> psycopg.Connection[Any]:
        # The DSN omits the password; None leaves libpq to find one as it would.
        return psycopg.connect(self.dsn, autocommit=True, connect_timeout=pool.CONNECT_TIMEOUT_S,
                               options=pool.OPTIONS, password=self.password)

    def answering(self, conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
        """`conn` if it answers, else a new connection; raises if the database does
        not answer either."""
        if not conn.closed:
            try:
                conn.execute("SELECT 1")
                return conn
            except psycopg.Error:
                conn.close()
        fresh = self.connect()
        fresh.execute("SELECT 1")
        return fresh
