"""The ways a payout run starts: `settlement payouts run` (one run, its summary on
stdout, its batch as CSV and its Zengin file where asked) and the timer loop's
closing pass (the closing whose day has come, once).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import TextIO
from uuid import UUID

from eventsourcing.application import Application

from settlement.banking.calendar import closing_cutoff
from settlement.payouts.export import export_csv
from settlement.payouts.policy import PayoutPolicy
from settlement.payouts.report import PayoutRunReport
from settlement.payouts.run import BATCH_PARTIES, load_run, payout_run
from settlement.payouts.schedule import closing_run_id, due_closing

HELD_LISTED_MAX = 100  # holds named on stdout; the API lists them all


def export_file(content: bytes, path: Path) -> None:
    """Write `content` beside `path` and rename it into place: the bank never
    picks up half a file."""
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, path)


def _printed(report: PayoutRunReport) -> dict[str, object]:
    summary = report.summary()
    summary["held_parties"] = [
        {"party": f"{h.party_type}:{h.party_id}", "reason": h.reason,
         "amount": str(h.amount.amount), "currency": h.amount.currency.code,
         "due_by": None if h.due_by is None else h.due_by.isoformat()}
        for h in report.held[:HELD_LISTED_MAX]]
    return summary


def run_payouts_cli(app: Application[UUID], now: datetime, csv_path: Path | None,
                    run_id: str | None = None, out: TextIO = sys.stdout, *,
                    closing: date | None = None, zengin_path: Path | None = None,
                    policy: PayoutPolicy | None = None,
                    batch_parties: int = BATCH_PARTIES) -> int:
    """`settlement payouts run`: run, export the batch (and the Zengin file), print a
    JSON summary line. Exit status 1 if a party could not be paid, an account is
    overdrawn, or a Zengin file was asked for and the run has none."""
    report = payout_run(app, now, run_id, closing=closing, policy=policy,
                        batch_parties=batch_parties)
    if csv_path is not None:
        export_csv(report.batch, csv_path)
    missing_file = zengin_path is not None and not report.files
    if zengin_path is not None and report.files:
        export_file(report.files[0].content, zengin_path)
    out.write(json.dumps(_printed(report), ensure_ascii=False) + "\n")
    return 1 if report.failed or report.overdrawn or missing_file else 0


def event_time(app: Application[UUID], position: int) -> datetime | None:
    """The `time` of the event stored at `position` or the first after it."""
    found = app.recorder.select_notifications(position, 1)
    if not found:
        return None
    timestamp = getattr(app.mapper.to_domain_event(found[0]), "timestamp", None)
    return timestamp if isinstance(timestamp, datetime) else None


def closing_pass(app: Application[UUID], now: datetime, policy: PayoutPolicy | None = None,
                 turned: Callable[[], None] = lambda: None) -> PayoutRunReport | None:
    """Run the latest closing whose day has ended, unless it has completed; None if
    there was nothing to do. A day has ended by the events' time (SPEC Part II:
    dates come from events, never from the process's clock): by the time of the
    last stored event, and never later than `now` (the wall clock). A closing
    missed for more than half a month is not run late: the next one covers what
    it would have paid. Nor is one whose day ended before the first stored event
    (a new deployment): it could cover nothing."""
    last = app.recorder.max_notification_id()
    latest = event_time(app, last) if last else None
    if latest is None:
        return None
    at = min(now, latest)
    closing = due_closing(at)
    run = load_run(app, closing_run_id(closing))
    if run is not None and run.summary is not None:
        return None
    first = event_time(app, 1)
    if run is None and first is not None and first >= closing_cutoff(closing):
        return None  # the log starts after the closing's day: nothing it could cover
    return payout_run(app, at, closing=closing, policy=policy, turned=turned)
