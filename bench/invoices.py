"""Invoice issuing benchmark (issue 18): a month's invoices for N parties
(default 100,000).

Stores N registered workers, each with two released task submissions in
November 2026 (tiered plan, 5,035 each: fee 1,007, fee tax floor(100.7) = 100;
the invoice's tax floor(2,214 / 11) = 201, a true-up of 1 yen per worker), in
tasks of 100 submissions; then measures `issue_month` for November from its
start to its last invoice stored: the scan of the whole log (every escrow and
party event read from its stored JSON), each invoice drafted and numbered,
every invoice event stored hash-chained with its true-up postings, a thousand
per transaction. The PDFs are not part of it (`settlement invoices issue`
renders them after issuing: about 4 ms each, measured and printed separately
on a sample). The baseline, in the same run, is the raw insert of the same
rows the issue stored (binary COPY of their stored form, in transactions of
the same size) into a table of the same shape. The last line is

    RESULT parties=<n> parties_per_s=<x> baseline_per_s=<y>

Run: `.venv/bin/python bench/invoices.py [--parties 100000]` (embedded PostgreSQL
unless SETTLEMENT_DATABASE_URL is set).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from machine import describe  # bench/machine.py, beside this file
from payouts import SETUP_BATCH_EVENTS, baseline, parties, store, stored_rows

from settlement.application import handlers
from settlement.application.app import SettlementApplication
from settlement.core.commands import Command
from settlement.core.months import Month
from settlement.infra.bootstrap import application
from settlement.infra.config import Settings
from settlement.infra.postgres import create_database, database
from settlement.invoices.document import render_pdf
from settlement.invoices.issue import BATCH_PARTIES, issue_month
from settlement.invoices.issuer import Issuer
from settlement.invoices.scan import ChargeScan
from settlement.payouts.run import no_cyclic_gc

JST = ZoneInfo("Asia/Tokyo")
START = datetime(2026, 11, 26, 9, tzinfo=JST)
NOW = datetime(2026, 12, 1, 9, tzinfo=JST)
NOVEMBER = Month(2026, 11)
SUBMISSIONS_PER_TASK = 100
RELEASES_PER_PARTY = 2
UNIT_PRICE = 5_035
PDF_SAMPLE = 200
ISSUER = Issuer("株式会社セトルメント", "東京都千代田区丸の内1-1-1", "T7000012050002")
assert SETUP_BATCH_EVENTS > 0


def tasks(app: SettlementApplication, n: int) -> list[Any]:
    """Per block of 100 workers, `RELEASES_PER_PARTY` tasks of 100 submissions, one
    per worker, each received and approved."""
    events: list[Any] = []
    price = {"amount": str(UNIT_PRICE), "currency": "JPY"}
    for block in range((n + SUBMISSIONS_PER_TASK - 1) // SUBMISSIONS_PER_TASK):
        count = min(SUBMISSIONS_PER_TASK, n - block * SUBMISSIONS_PER_TASK)
        for round_ in range(RELEASES_PER_PARTY):
            job = f"t-{block}-{round_}"
            rows: list[tuple[str, dict[str, Any]]] = [
                ("task.opened", {"job_id": job, "client_id": "c-1", "fee_plan": "tiered",
                                 "unit_price": price, "quantity": count}),
                ("task.funded", {"job_id": job, "payment_ref": f"pay-{job}", "amount": {
                    "amount": str(UNIT_PRICE * count), "currency": "JPY"}})]
            for k in range(count):
                worker = f"w-{block * SUBMISSIONS_PER_TASK + k:07d}"
                rows += [("task.submission_received", {"job_id": job, "submission_id": f"s{k}",
                                                       "worker_id": worker}),
                         ("task.submission_approved", {"job_id": job,
                                                       "submission_id": f"s{k}"})]
            escrow = None
            for i, (type_, data) in enumerate(rows):
                at = START + timedelta(days=round_, seconds=i)
                escrow = handlers.apply(escrow, Command.create(f"{job}-{i}", type_, at, data),
                                        app.plans)
                events += escrow.collect_events()
    return events


def issue(app: SettlementApplication, n: int) -> tuple[float, int, dict[str, Any]]:
    """Seconds for the month's invoices; the position before them; one's document."""
    before = app.recorder.max_notification_id() or 0
    started = time.perf_counter()
    report = issue_month(app, NOVEMBER, NOW, ISSUER)
    elapsed = time.perf_counter() - started
    summary = report.summary()
    if summary["issued"] != n or report.failed or summary["true_up"] != str(n):
        raise SystemExit(f"unexpected issue: {summary}")
    scanned = time.perf_counter()
    with no_cyclic_gc():  # as in the issue
        ChargeScan(NOVEMBER).advance(app)  # what reading the log costs of it
    print(f"of which the scan of the log: about {time.perf_counter() - scanned:.1f}s "
          "(read again after)", flush=True)
    return elapsed, before, report.documents


def pdf_rate(documents: dict[str, Any]) -> float:
    sample = list(documents.values())[:PDF_SAMPLE]
    started = time.perf_counter()
    for data in sample:
        render_pdf(data)
    return len(sample) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parties", type=int, default=100_000)
    args = parser.parse_args()
    print(describe(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=Settings.from_env().database_url, state_dir=Path(tmp))
        with database(settings) as server:
            url = create_database(server, f"bench_i_{uuid.uuid4().hex[:8]}")
            app = application(url, settings)
            try:
                started = time.perf_counter()
                store(app, parties(args.parties) + tasks(app, args.parties))
                print(f"stored {args.parties} parties and their releases "
                      f"({app.recorder.max_notification_id()} events) in "
                      f"{time.perf_counter() - started:.1f}s", flush=True)
                elapsed, before, documents = issue(app, args.parties)
            finally:
                app.close()
            rows = stored_rows(url, before)
            print(f"issue: {elapsed:.1f}s for {args.parties} parties, {len(rows)} invoice "
                  f"events stored", flush=True)
            print(f"pdf: {pdf_rate(documents):.0f} invoices/s rendered (one core, "
                  f"{PDF_SAMPLE} sampled; not in the issue's time)", flush=True)
            raw = baseline(create_database(server, f"bench_ir_{uuid.uuid4().hex[:8]}"), rows,
                           BATCH_PARTIES)
            print(f"baseline: the same {len(rows)} rows by binary COPY in {raw:.1f}s",
                  flush=True)
    print("load average (1, 5, 15 min): {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()),
          flush=True)
    rate, base = args.parties / elapsed, args.parties / raw
    print(f"RESULT parties={args.parties} parties_per_s={rate:.0f} baseline_per_s={base:.0f}")


if __name__ == "__main__":
    main()
