"""`settlement replay` on the real broker and PostgreSQL (SPEC §8, issue 6): the
history replayed into a fresh schema equals the live projections, projection by
projection; as of an instant between two events it is that instant exactly; a
tampered live row is reported for its projection only; contract terms stay in
the history, which no code path deletes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from settlement.api.queries import balances as balance_queries
from settlement.api.queries import escrows as escrow_queries
from settlement.api.queries import receivables as receivable_queries
from settlement.application.app import SettlementApplication
from settlement.infra.config import Settings
from settlement.infra.topics import Topics
from settlement.projections.model.envelope import parse
from settlement.projections.rebuild.replay import Progress, replay
from settlement.projections.rebuild.serial import _until
from settlement.projections.storage.schema import DIGESTED, LIVE_SCHEMA, SchemaError
from settlement.relay.service import Relay
from settlement.service.scenario import marketplace_day
from support.projections import project, rich_day, store, stored_cloud_events

START = datetime(2026, 11, 26, 9, tzinfo=UTC)
PROCESS_TIMEOUT_S = 120
ROOT = Path(__file__).resolve().parents[2]
PROJECT = "day0-project"
ESCROW = f"liabilities:escrow:{PROJECT}"
CASH = "assets:safeguarded_cash"
# day0-project: contracted 09:01, m1 (110,000, plan without client fee) funded
# 09:02, m2 (55,000) funded 09:03; nothing else of either day before 09:03.
M1_FUNDED, M2_FUNDED = START + timedelta(minutes=2), START + timedelta(minutes=3)


@pytest.fixture
def live(app: SettlementApplication, conn: psycopg.Connection[Any], broker: str, topics: Topics,
         topic_prefix: str) -> list[dict[str, Any]]:
    """Two rich days (every format, disputes, amendments, timers) in the event store,
    published by the relay and projected live by the Kafka projector; their CloudEvents."""
    for n in range(2):
        store(app, rich_day(START + timedelta(days=n), f"day{n}"))
    relay = Relay(app, broker, topics)
    asyncio.run(relay.run(asyncio.Event(), idle_exit_s=0.5))
    project(conn, broker, topics, group=f"{topic_prefix}projections", batch_records=50)
    return stored_cloud_events(app)


def test_replay_equals_the_live_projections_projection_by_projection(
    app: SettlementApplication, conn: psycopg.Connection[Any], live: list[dict[str, Any]],
) -> None:
    seen: list[tuple[int, int]] = []
    report = replay(app, conn, page_events=40, progress=lambda done, total: seen.append(
        (done, total)))
    out = report.as_dict()
    assert report.equal and out["differing"] == []
    assert out["events"] == out["through_position"] == out["head"] == len(live)
    assert out["live_position"] == len(live) and out["events_after_as_of"] == 0
    names = [table.name for table in DIGESTED]
    assert list(out["projections"]) == [*names, "trial_balance"]
    for name in names:
        check = out["projections"][name]
        assert check["equal"] is True and check["replay_rows"] == check["live_rows"], name
    for name in ("ledger_entries", "balances", "escrows", "escrow_items", "receivables",
                 "receivables_history", "audit_log"):
        assert out["projections"][name]["replay_rows"] > 0, name
    assert out["projections"]["audit_log"]["replay_rows"] == len(live)
    assert set(out["trial_balance"]) == {"JPY", "USD"}
    for totals in out["trial_balance"].values():
        assert totals["equal"] and totals["replay"]["balanced"]
    # Progress after every page, ending at the head.
    assert len(seen) == -(-len(live) // 40) and seen[-1] == (len(live), len(live))
    # Again into the same replay schema: replaced, same result.
    assert replay(app, conn, page_events=1000).rebuilt.digest == report.rebuilt.digest


def test_replay_as_of_an_instant_between_two_events_is_that_instant(
    app: SettlementApplication, conn: psycopg.Connection[Any], live: list[dict[str, Any]],
) -> None:
    between = M1_FUNDED + (M2_FUNDED - M1_FUNDED) / 2
    report = replay(app, conn, schema="replay_as_of", as_of=between)
    out = report.as_dict()
    assert report.equal, out["differing"]
    assert (out["events"], out["events_after_as_of"]) == (2, len(live) - 2)
    for name in ("ledger_entries", "balances", "receivables", "receivables_history",
                 "audit_log", "trial_balance"):
        assert out["projections"][name]["equal"] is True, name
    for name in ("escrows", "escrow_items", "job_views"):
        assert out["projections"][name]["equal"] is None, name  # no history kept live
    # The instant's balances, by hand: m1's 110,000 came in and is held; nothing else.
    rows = {(b.account, b.currency): (b.debits, b.credits)
            for b in balance_queries.balances(conn, "replay_as_of")}
    assert rows == {(CASH, "JPY"): (Decimal("110000"), Decimal(0)),
                    (ESCROW, "JPY"): (Decimal(0), Decimal("110000"))}
    assert balance_queries.balances(conn, LIVE_SCHEMA, as_of=between) == balance_queries.balances(
        conn, "replay_as_of")
    assert out["trial_balance"] == {"JPY": {
        side: {"debits": "110000", "credits": "110000", "balanced": True}
        for side in ("replay", "live")} | {"equal": True}}
    receivables = {(r.job_id, r.item_id): r
                   for r, _ in receivable_queries.receivables(conn, "replay_as_of")}
    assert set(receivables) == {(PROJECT, "m1"), (PROJECT, "m2")}
    assert receivables[(PROJECT, "m1")].protected and not receivables[(PROJECT, "m2")].protected
    assert [(r, paid) for r, paid in receivable_queries.receivables(
        conn, LIVE_SCHEMA, as_of=between)] == [
        (r, paid) for r, paid in receivable_queries.receivables(conn, "replay_as_of")]
    escrow = escrow_queries.escrow(conn, "replay_as_of", PROJECT)
    assert escrow is not None and (escrow["funded"], escrow["held"], escrow["version"]) == (
        Decimal("110000"), Decimal("110000"), 2)
    # As of the second funding itself (time ≤ T): both milestones held.
    at_m2 = replay(app, conn, schema="replay_as_of", as_of=M2_FUNDED)
    assert at_m2.equal
    held = balance_queries.balances(conn, "replay_as_of", account=ESCROW)
    assert [(b.debits, b.credits) for b in held] == [(Decimal(0), Decimal("165000"))]


def test_a_tampered_live_row_is_reported_for_its_projection_only(
    app: SettlementApplication, conn: psycopg.Connection[Any], live: list[dict[str, Any]],
) -> None:
    assert replay(app, conn).equal
    conn.execute("UPDATE projections.escrow_items SET state = 'released' "
                 "WHERE job_id = 'day0-project' AND item_id = 'm2'")
    report = replay(app, conn)
    assert not report.equal and report.as_dict()["differing"] == ["escrow_items"]
    conn.execute("UPDATE projections.escrow_items SET state = e.state FROM replay.escrow_items e "
                 "WHERE e.job_id = 'day0-project' AND e.item_id = 'm2' "
                 "AND projections.escrow_items.job_id = e.job_id "
                 "AND projections.escrow_items.item_id = e.item_id")
    assert replay(app, conn).equal
    # An entry edited (its running balance untouched): the ledger entries differ, and
    # as of any later instant the balances computed from them too.
    conn.execute("UPDATE projections.ledger_entries SET amount = amount + 1 "
                 "WHERE position = (SELECT min(position) FROM projections.ledger_entries) "
                 "AND line = 1")
    assert replay(app, conn).as_dict()["differing"] == ["ledger_entries"]
    later = replay(app, conn, as_of=START + timedelta(days=400)).as_dict()
    assert later["differing"] == ["ledger_entries", "balances", "trial_balance"]


def test_replay_writes_only_into_a_replay_schema(
    app: SettlementApplication, conn: psycopg.Connection[Any], live: list[dict[str, Any]],
) -> None:
    before = replay(app, conn).as_dict()["projections"]
    for name in (LIVE_SCHEMA, "public"):
        with pytest.raises(SchemaError):
            replay(app, conn, schema=name)
    with pytest.raises(SchemaError):
        replay(app, conn, schema="elsewhere", live="elsewhere")
    after = replay(app, conn).as_dict()["projections"]
    assert after == before  # the live projections and the event store untouched


def test_without_live_projections_replay_is_not_equal(
    app: SettlementApplication, conn: psycopg.Connection[Any],
) -> None:
    store(app, rich_day(START, "solo"))
    report = replay(app, conn)
    assert not report.equal and not report.live_found
    assert report.rebuilt.events == len(stored_cloud_events(app))


def test_cli_replay_as_of_reports_json_with_progress_on_stderr(
    app: SettlementApplication, live: list[dict[str, Any]], settings: Settings,
) -> None:
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": str(settings.database_url)}
    between = (M1_FUNDED + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    done = subprocess.run(
        [sys.executable, "-m", "settlement.cli", "replay", "--as-of", between,
         "--page-events", "25", "--progress-interval", "0"],
        env=env, capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stdout
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["equal"] is True and report["schema"] == "replay"
    assert report["as_of"] == "2026-11-26T09:02:30+00:00" and report["events"] == 2
    progress = [json.loads(line) for line in done.stderr.splitlines()
                if line.startswith('{"progress"')]
    assert progress and progress[-1]["events"] == progress[-1]["total"] == len(live)
    assert {"events_per_s", "eta_s"} <= progress[-1].keys()
    bad = subprocess.run([sys.executable, "-m", "settlement.cli", "replay", "--as-of",
                          "2026-11-26T09:00:00"], env=env, capture_output=True, text=True,
                         timeout=PROCESS_TIMEOUT_S, check=False)
    assert bad.returncode == 2 and "UTC offset" in bad.stderr


def test_progress_draws_a_bar_on_a_terminal() -> None:
    class Terminal:
        def __init__(self) -> None:
            self.text = ""

        def isatty(self) -> bool:
            return True

        def write(self, text: str) -> None:
            self.text += text

        def flush(self) -> None:
            pass

    terminal = Terminal()
    progress = Progress(terminal, interval_s=0)  # type: ignore[arg-type]
    progress(500, 1000)
    progress(1000, 1000)
    assert "\rreplay [###############...............] 500/1,000 events" in terminal.text
    assert terminal.text.endswith("\n") and "1,000/1,000" in terminal.text


def test_as_of_leaves_out_a_job_after_its_first_event_past_the_instant() -> None:
    def event(position: int, job: str, version: int, minute: int) -> Any:
        return parse({"type": "settlement.x", "time": (START + timedelta(minutes=minute))
                      .isoformat(), "data": {"position": position, "job_id": job,
                                             "version": version, "causation_id": "c"}})

    stopped: set[str] = set()
    events = [event(1, "a", 1, 1), event(2, "b", 1, 9), event(3, "a", 2, 2),
              event(4, "b", 2, 3)]  # b's second event is earlier than its first
    kept = _until(events, START + timedelta(minutes=5), stopped)
    assert [e.position for e in kept] == [1, 3] and stopped == {"b"}
    assert _until([event(5, "b", 3, 4)], START + timedelta(minutes=5), stopped) == []


# Contract terms retention (SPEC §8, issue 6 point 4) ---------------------------------

def test_contract_terms_are_in_the_opening_event_and_its_replay(
    app: SettlementApplication, conn: psycopg.Connection[Any],
) -> None:
    day = marketplace_day(START, "keep")
    store(app, day)
    terms = day[0]["data"]["terms"]
    assert terms == {"scope": "logo and brand guide", "rights": "assigned"}
    opening = stored_cloud_events(app)[0]
    assert (opening["type"], opening["data"]["version"]) == ("settlement.project_contracted", 1)
    assert opening["data"]["terms"] == terms
    replay(app, conn, schema="terms_check")
    data = conn.execute("SELECT data FROM terms_check.audit_log WHERE position = %s",
                        (opening["data"]["position"],)).fetchone()
    assert data is not None and data[0]["terms"] == terms


def _sources() -> list[Path]:
    return sorted(p for folder in ("settlement",)
                  for p in (ROOT / folder).rglob("*.py"))


def test_no_code_path_deletes_events() -> None:
    """No statement of ours deletes from, truncates or drops the event store's
    tables (events, hash chain, command log); the only DROPs are of a rebuild
    schema (which a replay made itself), of the partial balances table a bulk
    rebuild made in it, and of a test or benchmark database."""
    destructive = re.compile(r"\b(DELETE\s+FROM|TRUNCATE|DROP\s+(TABLE|SCHEMA|DATABASE))\b",
                             re.IGNORECASE)
    event_store = re.compile(r"events_table|stored_events|_events\b|chain|commands_table|"
                             r"_commands\b|notification", re.IGNORECASE)
    drops = set()
    for path in _sources():
        text = path.read_text()
        for match in destructive.finditer(text):
            statement = text[match.start():text.find(")", match.end()) + 1]
            assert not event_store.search(statement), (path, statement)
            assert not match.group(0).upper().startswith("TRUNCATE"), (path, statement)
            if match.group(0).upper().startswith("DROP"):
                drops.add((path.relative_to(ROOT).as_posix(), match.group(0).upper()))
                if match.group(0).upper() == "DROP TABLE":
                    after = text[match.end():match.end() + 40]
                    assert '.format(s, partial)' in after, (path, statement)
    assert drops == {("settlement/projections/storage/schema.py", "DROP SCHEMA"),
                     ("settlement/projections/rebuild/bulk.py", "DROP TABLE"),
                     ("settlement/infra/postgres.py", "DROP DATABASE")}
    schema_py = (ROOT / "settlement/projections/storage/schema.py").read_text()
    guarded = schema_py[schema_py.index("def recreate_for_rebuild"):]
    assert guarded.index("if role != REBUILD") < guarded.index("DROP SCHEMA")
    # drop_database: only the tests and benchmarks call it, on databases they created.
    assert {p.relative_to(ROOT).as_posix() for p in _sources()
            if "drop_database(" in p.read_text()} == {"settlement/infra/postgres.py"}
    # No code calls a delete method (but the relay's of a Kafka topic the broker lost,
    # and the console's of a browser cookie on sign-out).
    assert not [p for p in _sources() if re.search(r"\.delete(?!_topics\(|_cookie\()\w*\(",
                                                   p.read_text())]
