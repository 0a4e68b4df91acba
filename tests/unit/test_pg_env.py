from __future__ import annotations

import pytest

from settlement.infra.postgres import pg_env, with_dbname


def test_unix_socket_url() -> None:
    env = pg_env("postgresql://postgres:@/postgres?host=/tmp/x/pgdata")
    assert env == {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": "postgres",
        "POSTGRES_HOST": "/tmp/x/pgdata",
        "POSTGRES_PORT": "5432",
        "POSTGRES_USER": "postgres",
        "POSTGRES_PASSWORD": "",
    }


def test_tcp_url_with_escaped_password() -> None:
    env = pg_env("postgresql://app:p%40ss@db.internal:6543/settlement")
    assert env["POSTGRES_HOST"] == "db.internal"
    assert env["POSTGRES_PORT"] == "6543"
    assert env["POSTGRES_USER"] == "app"
    assert env["POSTGRES_PASSWORD"] == "p@ss"
    assert env["POSTGRES_DBNAME"] == "settlement"


def test_conninfo_string() -> None:
    env = pg_env("host=db user=app dbname=s")
    assert env["POSTGRES_HOST"] == "db"
    assert env["POSTGRES_USER"] == "app"
    assert env["POSTGRES_DBNAME"] == "s"


def test_never_enables_db_functions() -> None:
    assert "POSTGRES_ENABLE_DB_FUNCTIONS" not in pg_env("postgresql://u@h/d")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://u@h/d?sslmode=require", "sslmode"),
        ("postgresql:///d?user=u", "must name a host"),
        ("postgresql://h/d", "must name a user"),
    ],
)
def test_unmappable_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pg_env(url)


def test_with_dbname_keeps_server_and_credentials() -> None:
    socket = "postgresql://postgres:@/postgres?host=/tmp/x"
    assert with_dbname(socket, "t1") == "postgresql://postgres:@/t1?host=/tmp/x"
    assert with_dbname("postgresql://u:p@h:1/d", "t1") == "postgresql://u:p@h:1/t1"
    assert pg_env(with_dbname("host=h user=u dbname=d", "t1"))["POSTGRES_DBNAME"] == "t1"
