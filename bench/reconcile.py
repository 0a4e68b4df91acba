"""Reconciliation benchmark (issue 19): a Zengin 入出金明細 statement of N lines
(default 1,000,000) against a ledger of N fundings and payouts.

Setup (not timed): the ledger's cash movements written straight into the
projections by binary COPY (a funding: a debit of `assets:safeguarded_cash`
and its event's `payment_ref`; a settled payout: a credit), 4 in 5 of them
fundings, spread over business days; and the bank's statement of them, one
section per day, every funding's line naming its reference, every payout's
line its amount alone. Timed: `reconcile import` (both passes over the file,
every line stored once in the event store, hash-chained), the projection of
the statement events into the read models, and the matching of every line.
The baseline, in the same run, is the raw binary COPY of the same N lines (id,
date, direction, amount, name, reference) into a table of their own. The last
line is

    RESULT lines=<n> lines_per_s=<x> baseline_per_s=<y> peak_rss_mb=<z>

(peak RSS of this process over the whole run, setup included).

Run: `.venv/bin/python bench/reconcile.py [--lines 1000000]` (embedded
PostgreSQL unless SETTLEMENT_DATABASE_URL is set).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

import orjson
import psycopg
from machine import describe  # bench/machine.py, beside this file

from settlement.banking.calendar import JST, next_business_day
from settlement.banking.statement import Account
from settlement.infra.bootstrap import application
from settlement.infra.config import Settings
from settlement.infra.postgres import create_database, database
from settlement.projections.model.envelope import parse
from settlement.projections.rebuild.serial import cloud_events
from settlement.projections.storage import schema
from settlement.projections.storage.store import Store

ACCOUNT = ("0001", "001", "1", "1234567")
FIRST_DAY = date(2026, 1, 5)
LINES_PER_DAY = 5_000
PAYOUT_EVERY = 5  # one movement in five is a payout
NAME = "ﾃｽﾄ ｸﾗｲｱﾝﾄ"


def _wareki(day: date) -> str:
    return f"{day.year - 2018:02d}{day.month:02d}{day.day:02d}"


def _days(n: int) -> list[date]:
    days, day = [], FIRST_DAY
    for _ in range((n + LINES_PER_DAY - 1) // LINES_PER_DAY):
        day = next_business_day(day)
        days.append(day)
        day += timedelta(days=1)
    return days


def movement(i: int, days: list[date]) -> tuple[date, str, int, str]:
    """(day, direction, amount, reference) of the i-th movement."""
    day = days[i // LINES_PER_DAY]
    if i % PAYOUT_EVERY == PAYOUT_EVERY - 1:
        return day, "debit", 1_000_000 + i, ""
    return day, "credit", 1_000 + (i * 7919) % 500_000, f"P{i}"


def entry(i: int, days: list[date]) -> tuple[datetime, str, str, int, dict[str, object]]:
    """(time, event type, side on cash, amount, event data) of the i-th movement."""
    day, direction, amount, ref = movement(i, days)
    at = datetime.combine(day, clock(10), JST).astimezone(UTC)
    if direction == "debit":
        return at, "settlement.payout_settled", "credit", amount, {"payout_id": f"po-{i}"}
    return at, "settlement.task_funded", "debit", amount, {"funding": {"payment_ref": ref}}


def ledger(url: str, n: int, days: list[date]) -> None:
    """The ledger's cash movements (and their events' data) in the projections."""
    with psycopg.connect(url, autocommit=True) as conn:
        schema.create(conn, schema.LIVE_SCHEMA)
        with conn.cursor() as cur:
            with cur.copy("COPY projections.ledger_entries (position, line, time, job_id, "
                          "event_type, account, side, amount, currency) FROM STDIN") as copy:
                for i in range(n):
                    at, type_, side, amount, _ = entry(i, days)
                    copy.write_row((i + 1, 1, at, f"job-{i}", type_, "assets:safeguarded_cash",
                                    side, amount, "JPY"))
            with cur.copy("COPY projections.audit_log (position, job_id, version, type, time, "
                          "causation_id, data) FROM STDIN") as copy:
                for i in range(n):
                    at, type_, _, _, data = entry(i, days)
                    copy.write_row((i + 1, f"job-{i}", 1, type_, at, f"in-{i}",
                                    orjson.dumps(data).decode()))


def statement_lines(n: int, days: list[date]) -> Iterator[tuple[int, bytes]]:
    """(day index, 200-byte record) of every data record."""
    for i in range(n):
        day, direction, amount, ref = movement(i, days)
        text = ("2" + f"{i + 1:08d}"[-8:] + _wareki(day) * 2 + ("1" if direction == "credit"
                else "2") + "11" + f"{amount:012d}" + "0" * 12 + "0" * 12 + "0" + "0" * 7
                + "000" + "0" * 10 + (NAME if direction == "credit" else "").ljust(48)
                + " " * 30 + " " * 20 + ref.ljust(20) + " ")
        yield i // LINES_PER_DAY, text.encode("shift_jis")


def write_statement(path: Path, n: int, days: list[date]) -> None:
    bank, branch, kind, number = ACCOUNT
    balance = 0
    with path.open("wb") as f:
        section: list[tuple[str, int]] = []

        def close(day: date, opening: int) -> int:
            credits = [a for d, a in section if d == "credit"]
            debits = [a for d, a in section if d == "debit"]
            closing = opening + sum(credits) - sum(debits)
            sign = "1" if closing >= 0 else "2"
            f.write(("8" + f"{len(credits):06d}" + f"{sum(credits):013d}" + f"{len(debits):06d}"
                     + f"{sum(debits):013d}" + sign + f"{abs(closing):014d}"
                     + f"{len(section):07d}" + " " * 139).encode("ascii"))
            return closing

        current = -1
        for index, record in statement_lines(n, days):
            if index != current:
                if current >= 0:
                    balance = close(days[current], balance)
                    section.clear()
                current = index
                day = days[index]
                sign = "1" if balance >= 0 else "2"
                f.write(("1030" + _wareki(days[-1]) + _wareki(day) * 2 + bank + " " * 15
                         + branch + " " * 15 + "000" + kind + number + " " * 40 + sign + "0"
                         + f"{abs(balance):014d}" + " " * 74).encode("ascii"))
            f.write(record)
            section.append(("credit" if record[21:22] == b"1" else "debit",
                            int(record[24:36])))
        close(days[current], balance)
        f.write(("9" + " " * 199).encode("ascii"))


def project(app: object, url: str, after: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        store = Store(conn, schema.LIVE_SCHEMA)
        last = app.recorder.max_notification_id() or 0  # type: ignore[attr-defined]
        while after < last:
            batch = cloud_events(app, after + 1, 50, stop=last)  # type: ignore[arg-type]
            if not batch:
                break
            store.apply_batch([parse(event) for event in batch])
            after = batch[-1]["data"]["position"]


def baseline(url: str, n: int, days: list[date]) -> float:
    """Seconds to COPY the same lines into a table of their own."""
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE raw_lines (line_id text PRIMARY KEY, booked date NOT NULL, "
                     "direction text NOT NULL, amount numeric NOT NULL, "
                     "counterparty text NOT NULL, reference text NOT NULL)")
        conn.commit()
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur, cur.copy(
                "COPY raw_lines FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "date", "text", "numeric", "text", "text"])
            for i in range(n):
                day, direction, amount, ref = movement(i, days)
                copy.write_row((uuid.UUID(int=i).hex, day, direction, amount,
                                NAME if direction == "credit" else "", ref))
        return time.perf_counter() - started


def main() -> None:
    from settlement.api.queries.reconciliation import reconciled
    from settlement.reconcile.importing import import_statement

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    n = args.lines
    print(describe(), flush=True)
    days = _days(n)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=Settings.from_env().database_url, state_dir=Path(tmp))
        with database(settings) as server:
            url = create_database(server, f"bench_rc_{uuid.uuid4().hex[:8]}")
            path = Path(tmp) / "statement.zengin"
            started = time.perf_counter()
            ledger(url, n, days)
            write_statement(path, n, days)
            print(f"setup: ledger of {n} movements and a statement of {path.stat().st_size} "
                  f"bytes in {time.perf_counter() - started:.1f}s", flush=True)
            app = application(url, settings)
            try:
                started = time.perf_counter()
                head = app.recorder.max_notification_id() or 0
                report = import_statement(app, path, Account(*ACCOUNT), days[-1],
                                          datetime.now(UTC), bytes_max=2**40)
                imported = time.perf_counter() - started
                project(app, url, head)
                projected = time.perf_counter() - started
                with psycopg.connect(url) as conn:
                    found = reconciled(conn, schema.LIVE_SCHEMA)
                elapsed = time.perf_counter() - started
            finally:
                app.close()
            assert found is not None and report.stored == n, report
            matched = found.result.matched_count()
            print(f"import {imported:.1f}s, projection {projected - imported:.1f}s, matching "
                  f"{elapsed - projected:.1f}s: {matched} of {n} lines matched, "
                  f"{len(found.opened)} open", flush=True)
            raw = baseline(create_database(server, f"bench_rr_{uuid.uuid4().hex[:8]}"), n,
                           days)
            print(f"baseline: the same {n} lines by binary COPY in {raw:.1f}s", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RESULT lines={n} lines_per_s={n / elapsed:.0f} baseline_per_s={n / raw:.0f} "
          f"peak_rss_mb={peak:.0f}")


if __name__ == "__main__":
    main()
