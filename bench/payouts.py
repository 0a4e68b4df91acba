"""Payout closing benchmark (issue 17): a closing for N parties (default 100,000).

Stores N registered, verified parties, each with an account of its own and a
released task submission to be paid (3 events each), then measures one closing
from its start to its Zengin file written to disk: the scan of the log, every
party's payout stored (two events each: the stream's opening and the payout,
hash-chained), the run's summary and the file. The baseline, in the same run,
is the raw insert of the same rows the closing stored (binary COPY of their
stored form, in transactions of the same size) into a table of the same
shape. The last line is

    RESULT parties=<n> parties_per_s=<x> baseline_per_s=<y>

Run: `.venv/bin/python bench/payouts.py [--parties 100000]` (embedded PostgreSQL
unless SETTLEMENT_DATABASE_URL is set).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from machine import describe  # bench/machine.py, beside this file

from settlement.application import handlers
from settlement.application.app import SettlementApplication
from settlement.core.commands import Command
from settlement.infra.bootstrap import application
from settlement.infra.config import Settings
from settlement.infra.postgres import create_database, database
from settlement.parties import Party
from settlement.payouts.closing import export_file
from settlement.payouts.policy import load_policy
from settlement.payouts.run import BATCH_PARTIES, payout_run
from settlement.service.scenario import bank_account

JST = ZoneInfo("Asia/Tokyo")
START = datetime(2026, 11, 26, 9, tzinfo=JST)
CLOSING = date(2026, 11, 30)
NOW = datetime(2026, 12, 1, tzinfo=JST)
SUBMISSIONS_PER_TASK = 100
SETUP_BATCH_EVENTS = 2_000
KANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロ"
BANKS = ("0001", "0005", "0009", "0033", "0036")


def holder(n: int) -> str:
    """A different holder name per party (each converted to the Zengin set)."""
    return (KANA[n % 40] + KANA[n // 40 % 40] + " " + KANA[n // 1_600 % 40]
            + KANA[n // 64_000 % 40] + "ー")


def parties(n: int) -> list[Any]:
    events: list[Any] = []
    for k in range(n):
        party = Party.register(f"w-{k:07d}", {
            "kind": "individual", "name": f"worker {k}", "name_kana": holder(k),
            "bank_account": bank_account(f"{k % 10_000_000:07d}", holder(k), BANKS[k % 5],
                                         f"{k % 1000:03d}"),
            "kyc_verified": True}, causation_id=f"p-{k}", at=START)
        events += party.collect_events()
    return events


def tasks(app: SettlementApplication, n: int) -> list[Any]:
    """Tasks of 100 submissions, one per party, each received and approved."""
    events: list[Any] = []
    price = {"amount": "5000", "currency": "JPY"}
    for task in range((n + SUBMISSIONS_PER_TASK - 1) // SUBMISSIONS_PER_TASK):
        job, count = f"t-{task}", min(SUBMISSIONS_PER_TASK, n - task * SUBMISSIONS_PER_TASK)
        rows: list[tuple[str, dict[str, Any]]] = [
            ("task.opened", {"job_id": job, "client_id": "c-1", "fee_plan": "tiered",
                             "unit_price": price, "quantity": count}),
            ("task.funded", {"job_id": job, "payment_ref": f"pay-{task}",
                             "amount": {"amount": str(5000 * count), "currency": "JPY"}})]
        for k in range(count):
            worker = f"w-{task * SUBMISSIONS_PER_TASK + k:07d}"
            rows += [("task.submission_received", {"job_id": job, "submission_id": f"s{k}",
                                                   "worker_id": worker}),
                     ("task.submission_approved", {"job_id": job, "submission_id": f"s{k}"})]
        escrow = None
        for i, (type_, data) in enumerate(rows):
            at = START + timedelta(seconds=i)
            escrow = handlers.apply(escrow, Command.create(f"{job}-{i}", type_, at, data),
                                    app.plans)
            events += escrow.collect_events()
    return events


def store(app: SettlementApplication, events: list[Any]) -> None:
    for i in range(0, len(events), SETUP_BATCH_EVENTS):
        app.save(*events[i:i + SETUP_BATCH_EVENTS])


def closing(app: SettlementApplication, path: Path, n: int) -> tuple[float, int]:
    """Seconds for the closing, its file written; the position it covered."""
    policy = load_policy()
    started = time.perf_counter()
    report = payout_run(app, NOW, closing=CLOSING, policy=policy)
    export_file(report.files[0].content, path)
    elapsed = time.perf_counter() - started
    if len(report.payouts) != n or report.failed or report.files[0].transfers != n:
        raise SystemExit(f"unexpected closing: {report.summary()}")
    return elapsed, report.as_of_position


def stored_rows(url: str, after: int) -> list[tuple[Any, ...]]:
    """The rows the closing stored, as the events table holds them."""
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT originator_id, originator_version, topic, state FROM "
                            "settlement_events WHERE notification_id > %s "
                            "ORDER BY notification_id", (after,)).fetchall()


def baseline(url: str, rows: list[tuple[Any, ...]], per_transaction: int) -> float:
    """Seconds to COPY `rows` into a table shaped like the events table."""
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE raw_events (notification_id bigserial, "
                     "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                     "topic text NOT NULL, state bytea NOT NULL, "
                     "PRIMARY KEY (originator_id, originator_version))")
        conn.commit()
        started = time.perf_counter()
        for i in range(0, len(rows), per_transaction):
            with conn.transaction(), conn.cursor() as cur, cur.copy(
                    "COPY raw_events (originator_id, originator_version, topic, state) "
                    "FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["uuid", "int8", "text", "bytea"])
                for row in rows[i:i + per_transaction]:
                    copy.write_row(row)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", type=int, default=100_000)
    args = parser.parse_args()
    print(describe(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=Settings.from_env().database_url, state_dir=Path(tmp))
        with database(settings) as server:
            url = create_database(server, f"bench_p_{uuid.uuid4().hex[:8]}")
            app = application(url, settings)
            try:
                started = time.perf_counter()
                store(app, parties(args.parties) + tasks(app, args.parties))
                print(f"stored {args.parties} parties and their payables in "
                      f"{time.perf_counter() - started:.1f}s", flush=True)
                elapsed, covered = closing(app, Path(tmp) / "closing.zengin", args.parties)
            finally:
                app.close()
            rows = stored_rows(url, covered)
            print(f"closing: {elapsed:.1f}s for {args.parties} parties, {len(rows)} events "
                  f"stored, file {(Path(tmp) / 'closing.zengin').stat().st_size} bytes",
                  flush=True)
            raw = baseline(create_database(server, f"bench_r_{uuid.uuid4().hex[:8]}"), rows,
                           2 * BATCH_PARTIES)
            print(f"baseline: the same {len(rows)} rows by binary COPY in {raw:.1f}s",
                  flush=True)
    rate, base = args.parties / elapsed, args.parties / raw
    print(f"RESULT parties={args.parties} parties_per_s={rate:.0f} baseline_per_s={base:.0f}")


if __name__ == "__main__":
    main()
