"""`settlement reconcile import` on the real PostgreSQL: the golden statements
stored once however often (or however overlapping) they are imported, a bad or
hostile file refused whole with nothing stored, the events published, chained
and rebuilt like every other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from settlement.application.app import SettlementApplication
from settlement.audit.export import export_rows, verify_export
from settlement.audit.verify import verify_chain
from settlement.banking.statement import Account
from settlement.core.errors import Conflict, InvalidInput
from settlement.core.money import money
from settlement.infra.topics import Topics
from settlement.ingest.decoding import schemas_dir
from settlement.projections.rebuild.replay import replay
from settlement.projections.rebuild.serial import rebuild
from settlement.projections.storage.digest import digests
from settlement.reconcile.events import BankFee, LineDecision
from settlement.reconcile.importing import import_statement
from support import statements as s
from support.projections import project, publish_events, stored_cloud_events

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "statements"
ACCOUNT = Account("0001", "001", "1", "1234567")
TODAY = date(2026, 12, 4)
NOW = datetime(2026, 12, 4, 1, tzinfo=UTC)


def run(app: SettlementApplication, path: Path, **kwargs: Any) -> dict[str, Any]:
    options = {"account": ACCOUNT, "today": TODAY, "now": NOW, **kwargs}
    return import_statement(app, path, options.pop("account"), options.pop("today"),
                            options.pop("now"), **options).to_json()


def stored(app: SettlementApplication) -> int:
    return app.recorder.max_notification_id() or 0


def test_a_statement_is_stored_once_however_often_it_is_imported(
        app: SettlementApplication, conn: psycopg.Connection[Any]) -> None:
    first = run(app, GOLDEN / "scenario-d1-d2.zengin")
    assert {k: first[k] for k in ("source", "lines", "stored", "balances", "balances_stored",
                                  "events")} == {
        "source": "zengin", "lines": 5, "stored": 5, "balances": 2, "balances_stored": 2,
        "events": 1}
    again = run(app, GOLDEN / "scenario-d1-d2.zengin")
    assert (again["stored"], again["balances_stored"], again["events"]) == (0, 0, 0)
    # Overlapping on day 2: only day 3's line and balance are new.
    overlap = run(app, GOLDEN / "scenario-d2-d3.zengin")
    assert (overlap["lines"], overlap["stored"], overlap["balances_stored"]) == (3, 1, 1)
    # The same movements as CSV are the same lines.
    as_csv = run(app, GOLDEN / "scenario.csv")
    assert (as_csv["source"], as_csv["lines"], as_csv["stored"]) == ("csv", 6, 0)
    # In chunks of two lines: the same again.
    assert run(app, GOLDEN / "scenario-crlf.zengin", lines_per_event=2)["stored"] == 0
    assert stored(app) == 2

    rebuilt = rebuild(app, "reconcile_check", conn=conn)
    lines = conn.execute("SELECT booked, direction, amount, counterparty, reference "
                         "FROM reconcile_check.statement_lines ORDER BY booked, amount").fetchall()
    assert [(d.day, direction, int(amount)) for d, direction, amount, _, _ in lines] == [
        (1, "credit", 5500), (1, "credit", 5500), (1, "credit", 11000), (2, "debit", 660),
        (2, "debit", 15000), (3, "credit", 7000)]
    balances = conn.execute("SELECT day, opening, closing FROM reconcile_check."
                            "statement_balances ORDER BY day").fetchall()
    assert balances == [(date(2026, 12, 1), Decimal(1_000_000), Decimal(1_022_000)),
                        (date(2026, 12, 2), Decimal(1_022_000), Decimal(1_006_340)),
                        (date(2026, 12, 3), Decimal(1_006_340), Decimal(1_013_340))]
    assert rebuilt.tables["statement_lines"].rows == 6
    # The projector's writes (page by page) make the same read models.
    assert rebuild(app, "reconcile_paged", conn=conn, bulk=False).digest == rebuilt.digest
    assert verify_chain(app).ok


def test_reconciliation_events_are_published_as_their_schemas_say(
        app: SettlementApplication) -> None:
    run(app, GOLDEN / "scenario-d1-d2.zengin")
    line = "0" * 32
    app.save(LineDecision.decide(line, "d-1", "match", ["funding:7"], "paid late", NOW),
             BankFee.book(line, "d-2", money(Decimal(660), "JPY"), "the bank's charge", NOW))
    events = stored_cloud_events(app)
    assert [e["type"] for e in events] == ["settlement.statement_imported",
                                           "settlement.statement_line_decided",
                                           "settlement.bank_fee_booked"]
    imported = events[0]
    assert imported["subject"] == imported["data"]["statement_id"]
    assert imported["data"]["account"] == "0001-001-****567"
    assert "1234567" not in json.dumps(imported)
    assert events[1]["subject"] == events[2]["subject"] == line
    schemas = schemas_dir()
    registry: Registry = Registry().with_resources(
        (doc["$id"], Resource.from_contents(doc))
        for doc in (json.loads(p.read_text("utf-8")) for p in schemas.glob("*.json")))
    for event in events:
        validator = Draft202012Validator(
            {"$ref": f"https://settlement.example/schemas/v1/{event['type']}.json"},
            registry=registry)
        assert list(validator.iter_errors(event)) == [], event["type"]
    assert verify_chain(app).ok


def _bad(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


D1 = date(2026, 12, 1)
LINE = s.Line(D1, "credit", 1000, "ﾔﾏﾀﾞ ﾀﾛｳ", inquiry=1)
GOOD = s.statement(D1, D1, D1, 500, [LINE])


@pytest.mark.parametrize(("name", "data", "options", "code"), [
    ("wrong record length", GOOD[:-1], {}, "statement_record_length"),
    ("wrong encoding", GOOD.decode("shift_jis").encode("utf-8"), {}, "statement_encoding"),
    ("a trailer that does not add up",
     s.header(D1, D1, D1, 500) + s.data(LINE) + s.trailer([LINE], 500, closing=9) + s.end(),
     {}, "statement_trailer_mismatch"),
    ("a line dated in the future", GOOD, {"today": date(2026, 11, 30)},
     "statement_line_in_future"),
    ("too large", GOOD, {"bytes_max": 599}, "statement_too_large"),
    ("another account", s.statement(D1, D1, D1, 500, [LINE], ("0001", "001", "1", "7654321")),
     {}, "statement_wrong_account"),
    ("neither format", b"%PDF-1.4\n", {}, "statement_format"),
    ("a CSV line that is not one", b"date,direction,amount,counterparty,reference\n"
     b"2026-12-01,credit,1000,X,\n2026-12-01,credit,1e3,X,\n", {}, "statement_field_format"),
    ("a CSV that is not UTF-8", "2026-12-01,credit,1000,ﾀ,\n".encode("shift_jis"), {},
     "statement_encoding"),
    ("a CSV with a NUL character", b"2026-12-01,credit,1000,X,\n2026-12-01,credit,1000,X,a\x00\n",
     {}, "statement_field_format"),
])
def test_a_bad_file_is_refused_whole_and_nothing_is_stored(
        app: SettlementApplication, tmp_path: Path, name: str, data: bytes,
        options: dict[str, Any], code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        run(app, _bad(tmp_path, "bad.dat", data), **options)
    assert caught.value.code == code
    assert stored(app) == 0


def test_a_day_stated_with_another_balance_is_refused(app: SettlementApplication,
                                                      tmp_path: Path) -> None:
    run(app, _bad(tmp_path, "one.zengin", GOOD))
    other = s.statement(D1, D1, D1, 400, [LINE])  # the same day, closing 1,400 not 1,500
    with pytest.raises(InvalidInput) as caught:
        run(app, _bad(tmp_path, "two.zengin", other))
    assert caught.value.code == "statement_balance_conflict"
    assert stored(app) == 1


def test_the_command_line_reports_and_refuses(database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": database_url}
    command = [sys.executable, "-m", "settlement.cli.main", "reconcile", "import",
               "--today", "2026-12-04"]
    done = subprocess.run([*command, str(GOLDEN / "scenario-d1-d2.zengin")], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stored"] == 5
    bad = _bad(tmp_path, "bad.zengin", GOOD[:-1])
    refused = subprocess.run([*command, str(bad)], env=env, capture_output=True, text=True,
                             timeout=60, check=False)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"]["code"] == "statement_record_length"


def test_a_2_gb_file_is_refused_before_it_is_read(database_url: str, tmp_path: Path) -> None:
    # A real 2 GiB file (sparse: no disk used), at the default limit (256 MiB): refused
    # by its size alone, nothing more stored, in the time a command takes to start.
    big = tmp_path / "big.zengin"
    with big.open("wb") as f:
        f.write(GOLDEN.joinpath("scenario-d1-d2.zengin").read_bytes())
        f.truncate(2 * 1024 ** 3)
    env = {**os.environ, "SETTLEMENT_DATABASE_URL": database_url}
    env.pop("SETTLEMENT_STATEMENT_BYTES_MAX", None)
    command = [sys.executable, "-m", "settlement.cli.main", "reconcile", "import",
               "--today", "2026-12-04"]
    done = subprocess.run([*command, str(GOLDEN / "scenario-d1-d2.zengin")], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert json.loads(done.stdout)["stored"] == 5, done.stderr
    refused = subprocess.run([*command, str(big)], env=env, capture_output=True, text=True,
                             timeout=60, check=False)
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["error"]["code"] == "statement_too_large"
    with psycopg.connect(database_url) as conn:
        lines = conn.execute("SELECT count(*) FROM settlement_statement_lines").fetchone()
    assert lines == (5,)


def test_the_projector_reads_statement_events_from_the_broker_like_a_rebuild(
        app: SettlementApplication, conn: psycopg.Connection[Any], broker: str,
        topics: Topics, topic_prefix: str) -> None:
    run(app, GOLDEN / "scenario-d1-d2.zengin", lines_per_event=2)
    run(app, GOLDEN / "scenario-d2-d3.zengin")
    app.save(BankFee.book("f" * 32, "d-1", money(Decimal(660), "JPY"), "charge", NOW))
    events = stored_cloud_events(app)
    imported = [e for e in events if e["type"] == "settlement.statement_imported"]
    assert {e["subject"] for e in imported} == {e["data"]["statement_id"] for e in imported}
    # At least once: the first event and the charge delivered again add nothing.
    publish_events(broker, topics.events, [*events, events[0], events[-1]])
    project(conn, broker, topics, group=f"{topic_prefix}projections", batch_records=2)
    count = conn.execute("SELECT count(*) FROM projections.statement_lines").fetchone()
    assert count is not None and count[0] == 6
    fees = conn.execute("SELECT account, debits, credits FROM projections.balances "
                        "ORDER BY account").fetchall()
    assert fees == [("assets:safeguarded_cash", 0, 660), ("expenses:bank_fees", 660, 0)]
    rebuilt = rebuild(app, "reconcile_from_log", conn=conn)
    live = digests(conn, "projections").tables
    assert {t: d for t, d in live.items() if rebuilt.tables[t] != d} == {}
    # `settlement replay` reproduces the lines from the stored rows as the projector did.
    replayed = replay(app, conn).as_dict()
    assert replayed["equal"] and replayed["differing"] == []
    assert replayed["projections"]["statement_lines"]["replay_rows"] == 6


def test_an_import_racing_another_stores_nothing_twice(app: SettlementApplication,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    run(app, GOLDEN / "scenario-d1-d2.zengin")
    # As if another import stored the same lines between this one's look for them
    # and its commit: the commit fails on the lines' key.
    monkeypatch.setattr(app.store, "select_known_lines", lambda ids: set())
    with pytest.raises(Conflict) as caught:
        run(app, GOLDEN / "scenario-d1-d2.zengin")
    assert caught.value.code == "statement_import_concurrent"
    assert stored(app) == 1


def _statement_events(conn: psycopg.Connection[Any]) -> list[tuple[int, str]]:
    """(position, first line id) of each stored statement event, in order."""
    rows = conn.execute("SELECT notification_id, convert_from(state, 'UTF8')::jsonb "
                        "->'digest'->>'first_line_id' FROM settlement_events "
                        "WHERE topic LIKE '%StatementImported' ORDER BY 1").fetchall()
    return [(int(position), str(first)) for position, first in rows]


def test_audit_verify_checks_each_statement_event_against_its_stored_lines(
        app: SettlementApplication, conn: psycopg.Connection[Any]) -> None:
    run(app, GOLDEN / "scenario-d1-d2.zengin", lines_per_event=2)  # 5 lines: 2, 2, 1
    events = _statement_events(conn)
    assert len(events) == 3 and verify_chain(app).ok
    counted = conn.execute("SELECT chunk, count(*) FROM settlement_statement_lines "
                           "GROUP BY chunk").fetchall()
    assert sorted(n for _, n in counted) == [1, 2, 2]
    (first, first_chunk), (second, second_chunk), _ = events

    def tamper(statement: str, chunk: str) -> None:
        conn.execute(statement, (chunk,))
        conn.commit()

    # A line's amount changed behind the service's back: its event is reported.
    tamper("UPDATE settlement_statement_lines SET amount = amount + 1 WHERE line_id = "
           "(SELECT line_id FROM settlement_statement_lines WHERE chunk = %s AND seq = 1)",
           second_chunk)
    changed = verify_chain(app)
    assert not changed.ok and changed.first_bad_position == second
    tamper("UPDATE settlement_statement_lines SET amount = amount - 1 WHERE line_id = "
           "(SELECT line_id FROM settlement_statement_lines WHERE chunk = %s AND seq = 1)",
           second_chunk)
    assert verify_chain(app).ok
    # A line deleted: so is its event's.
    tamper("DELETE FROM settlement_statement_lines WHERE chunk = %s AND seq = 0", first_chunk)
    deleted = verify_chain(app)
    assert not deleted.ok and deleted.first_bad_position == first


def test_the_audit_export_carries_each_statement_events_lines(
        app: SettlementApplication, conn: psycopg.Connection[Any]) -> None:
    run(app, GOLDEN / "scenario-d1-d2.zengin", lines_per_event=2)
    rows = list(export_rows(app))
    carried = [row["statement_lines"] for row in rows if "statement_lines" in row]
    assert [len(lines) for lines in carried] == [2, 2, 1]
    stored = conn.execute("SELECT line_id FROM settlement_statement_lines "
                          "ORDER BY chunk, seq").fetchall()
    assert sorted(line.split("\t")[0] for lines in carried for line in lines) == sorted(
        line_id for (line_id,) in stored)
    assert verify_export(rows).ok
    # A line altered in the exported file alone: its event's digest no longer holds.
    tampered = [dict(row) for row in rows]
    at = next(n for n, row in enumerate(tampered) if "statement_lines" in row)
    tampered[at]["statement_lines"] = [line.replace("credit", "debit")
                                       for line in tampered[at]["statement_lines"]]
    result = verify_export(tampered)
    assert not result.ok and result.first_bad_position == tampered[at]["position"]


def test_two_imports_of_one_file_at_once_store_each_line_once(
        app: SettlementApplication, es_env: dict[str, str],
        conn: psycopg.Connection[Any]) -> None:
    other = SettlementApplication(es_env)
    outcomes: list[object] = []

    def one(application: SettlementApplication) -> None:
        try:
            outcomes.append(run(application, GOLDEN / "scenario-d1-d2.zengin",
                                lines_per_event=1)["stored"])
        except Conflict as exc:  # the other stored a chunk of the same lines first
            outcomes.append(exc.code)

    try:
        threads = [threading.Thread(target=one, args=(a,)) for a in (app, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        other.close()
    assert len(outcomes) == 2
    assert all(o == "statement_import_concurrent" or isinstance(o, int) for o in outcomes)
    run(app, GOLDEN / "scenario-d1-d2.zengin")  # after a refusal, again: the rest
    lines = conn.execute("SELECT count(*), count(DISTINCT line_id) FROM "
                         "settlement_statement_lines").fetchone()
    assert lines == (5, 5)
    assert verify_chain(app).ok
