"""The ways invoices are issued: `settlement invoices issue --month YYYY-MM`
and `settlement invoices correct --number N` (a JSON summary line each), and
the timer loop's pass, which issues the month that ended by the events' time
(the time of the last stored event, never later than the wall clock), once.
Each then renders the PDFs of what it issued and stores them with their
SHA-256 (`settlement_documents`, kind `invoice`), so a later rendering is
checked against them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TextIO
from uuid import UUID

from eventsourcing.application import Application

from settlement.core.errors import SettlementError
from settlement.core.months import Month
from settlement.invoices.document import DOCUMENT_KIND, render_pdf
from settlement.invoices.issue import BATCH_PARTIES, IssueReport, correct, issue_month
from settlement.invoices.issuer import Issuer
from settlement.payouts.closing import event_time
from settlement.store.documents import digest, store_once


def store_pdfs(app: Application[UUID], documents: Mapping[str, Mapping[str, Any]],
               turned: Callable[[], None] = lambda: None) -> list[str]:
    """Render and store each invoice's PDF (the first rendering is kept); the numbers
    whose stored PDF differs from this rendering (none, unless the renderer changed)."""
    datastore = getattr(app.recorder, "datastore", None)
    if datastore is None or not documents:
        return []
    differing = []
    with datastore.get_connection() as conn:
        for n, (number, data) in enumerate(sorted(documents.items()), start=1):
            pdf = render_pdf(data)
            if store_once(conn, DOCUMENT_KIND, number, pdf).sha256 != digest(pdf):
                differing.append(number)
            if n % 100 == 0:
                turned()
    return differing


def _finish(app: Application[UUID], report: IssueReport, pdfs: bool,
            out: TextIO) -> int:
    summary = report.summary()
    if pdfs:
        summary["pdf_differing"] = store_pdfs(app, report.documents)
        summary["pdfs"] = len(report.documents)
    out.write(json.dumps(summary, ensure_ascii=False) + "\n")
    return 1 if report.failed or summary.get("pdf_differing") else 0


def _refused(error: SettlementError, out: TextIO) -> int:
    out.write(json.dumps({"error": {"code": error.code, "message": error.message}},
                         ensure_ascii=False) + "\n")
    return 2


def issue_cli(app: Application[UUID], month: str, now: datetime, issuer: Issuer | None, *,
              pdfs: bool = True, batch_parties: int = BATCH_PARTIES,
              out: TextIO | None = None) -> int:
    """`settlement invoices issue`: exit 0 issued (or nothing new), 1 a party could
    not be invoiced, 2 refused (a coded error, nothing written). `out`: default
    the standard output at the time of the call."""
    out = out or sys.stdout
    try:
        period = Month.parse(month)
        if issuer is None:
            raise SettlementError("SETTLEMENT_PLATFORM_NAME, _ADDRESS and "
                                  "_INVOICE_REGISTRATION_NUMBER are not set",
                                  "issuer_not_configured")
        report = issue_month(app, period, now, issuer, batch_parties=batch_parties)
    except SettlementError as error:
        return _refused(error, out)
    return _finish(app, report, pdfs, out)


def correct_cli(app: Application[UUID], number: str, now: datetime, issuer: Issuer | None, *,
                out: TextIO | None = None) -> int:
    """`settlement invoices correct`: exit codes as `issue_cli`."""
    out = out or sys.stdout
    try:
        if issuer is None:
            raise SettlementError("the SETTLEMENT_PLATFORM_* variables are not set",
                                  "issuer_not_configured")
        report = correct(app, number, now, issuer)
    except SettlementError as error:
        return _refused(error, out)
    return _finish(app, report, True, out)


def invoice_pass(app: Application[UUID], now: datetime, issuer: Issuer, done: set[Month],
                 turned: Callable[[], None] = lambda: None) -> IssueReport | None:
    """Issue the month before the events' current month unless this process did
    (`done`); None if there was nothing to do. A month that ended before the first
    stored event (a new deployment) has nothing to invoice."""
    last = app.recorder.max_notification_id()
    latest = event_time(app, last) if last else None
    if latest is None:
        return None
    period = Month.of(min(now, latest)).previous()
    if period in done:
        return None
    first = event_time(app, 1)
    if first is not None and first >= period.end:
        done.add(period)
        return None
    report = issue_month(app, period, min(now, latest), issuer, turned=turned)
    store_pdfs(app, report.documents, turned)
    done.add(period)  # only once it went through: an outage half way is run again
    return report
