"""Issuing a month's invoices (SPEC §12): `settlement invoices issue --month
YYYY-MM` and the timer loop on the first day of each month.

- A month may be issued only once it is over in Japan: at `now` (the business
  time; the timer loop's is the time of the last stored event, never later
  than the wall clock) from 00:00 JST of the next month's first day on, else
  `month_not_over` and nothing is written.
- The charges are read from the event store (`scan`), every event stored when
  the run reads; a party with charges and no invoice of the month gets one.
  So a second run issues nothing new and reports the first (a party whose
  first charge of the month was stored after the first run gets its invoice
  then; a party already invoiced is corrected, never invoiced twice:
  `correct`).
- Numbers: the invoices are events of their month of issue's numbering stream
  (`events`), stored a batch of parties per transaction on top of the version
  the scan saw. A concurrent issuer storing first makes the transaction fail;
  the run reads on and numbers the batch again. Issuers also take PostgreSQL
  advisory locks, of the month invoiced (a second run of it finds the first's
  invoices instead of racing it) and of the month of issue (issuers of two
  months take turns on the numbering stream instead of taking each other's
  numbers until one gives up, as a loaded CI machine showed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from settlement.banking.calendar import jst_date
from settlement.core.errors import NotFound, Rejected, SettlementError
from settlement.core.money import Money
from settlement.core.months import Month
from settlement.invoices.charges import INVOICE_CURRENCY
from settlement.invoices.document import document_data, document_sha256
from settlement.invoices.events import (
    INVOICES_PER_MONTH_MAX,
    InvoiceIssued,
    InvoiceSeries,
    InvoiceSeriesOpened,
    number_of,
    series_id,
)
from settlement.invoices.issuer import Issuer
from settlement.invoices.rules import LINES_MAX, Draft, draft, yen
from settlement.invoices.scan import ChargeScan, line_key
from settlement.payouts.run import no_cyclic_gc

BATCH_PARTIES = 1_000  # invoices stored per transaction
SAVE_ATTEMPTS_MAX = 10  # per batch; each failed attempt means another issuer stored first
_LOCK_NAMESPACE = 0x1E5A  # advisory lock keys: namespace << 32 | YYYYMM (month invoiced)
_SERIES_LOCK_NAMESPACE = 0x1E5B  # … | YYYYMM (month of issue: its numbering stream)


@dataclass
class IssueReport:
    period: str
    issued_in: str
    issued: list[dict[str, Any]] = field(default_factory=list)  # number, party, total, tax
    existing: list[str] = field(default_factory=list)  # numbers issued by an earlier run
    failed: list[str] = field(default_factory=list)
    conflicts: int = 0
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # number → shown

    def summary(self) -> dict[str, Any]:
        numbers = [i["number"] for i in self.issued]
        return {"period": self.period, "issued_in": self.issued_in,
                "issued": len(self.issued), "existing": len(self.existing),
                "first": numbers[0] if numbers else None,
                "last": numbers[-1] if numbers else None,
                "total": str(sum((Decimal(i["total"]) for i in self.issued), Decimal(0))),
                "tax": str(sum((Decimal(i["tax"]) for i in self.issued), Decimal(0))),
                "true_up": str(sum((Decimal(i["true_up"]) for i in self.issued), Decimal(0))),
                "conflicts": self.conflicts, "failed": self.failed[:100]}


def require_over(period: Month, now: datetime) -> None:
    if now < period.end:
        raise Rejected(f"{period} is not over in Japan until {period.end.isoformat()}",
                       "month_not_over")


def issue_month(app: Application[UUID], period: Month, now: datetime, issuer: Issuer, *,
                batch_parties: int = BATCH_PARTIES,
                turned: Callable[[], None] = lambda: None) -> IssueReport:
    """Issue the invoices of `period` not issued yet, numbered in the JST month of
    `now`; `month_not_over` (nothing written) before the month has ended."""
    require_over(period, now)
    if not 1 <= batch_parties <= BATCH_PARTIES * 10:
        raise ValueError(f"batch_parties must be 1 to {BATCH_PARTIES * 10}")
    report = IssueReport(str(period), str(Month.of(now)))
    with _period_lock(app, period), _period_lock(app, Month.of(now), _SERIES_LOCK_NAMESPACE), \
            no_cyclic_gc():
        scan = ChargeScan(period)
        scan.advance(app, turned)
        report.existing = [issued.number for _, issued in scan.invoices()]
        waiting = [p for p in scan.parties() if p not in scan.issued]
        _store_all(app, scan, waiting, now, issuer, report, batch_parties, turned)
    return report


def correct(app: Application[UUID], number: str, now: datetime, issuer: Issuer) -> IssueReport:
    """A correction of invoice `number` (the latest of its party and month): a new
    invoice, numbered in the month of `now`, of the charges as the event store
    holds them now, citing it; its true-up moves only what the earlier ones did
    not. `unknown_invoice`, `invoice_superseded` (a later correction exists),
    `invoice_unchanged` (the charges are those it shows)."""
    period = _period_of(app, number)
    with _period_lock(app, period), _period_lock(app, Month.of(now), _SERIES_LOCK_NAMESPACE):
        scan = ChargeScan(period)
        scan.advance(app)
        party = next((p for p, i in scan.invoices() if i.number == number), None)
        if party is None:
            raise NotFound(f"no invoice {number}", "unknown_invoice")
        latest = scan.latest(party)
        assert latest is not None
        if latest.number != number:
            raise Rejected(f"{number} was corrected by {latest.number}", "invoice_superseded")
        report = IssueReport(str(period), str(Month.of(now)))
        _store_batch(app, scan, [party], now, issuer, report, corrects=latest.number)
        if not report.issued and not report.failed:
            raise Rejected(f"the charges of {number} are unchanged", "invoice_unchanged")
    return report


def _period_of(app: Application[UUID], number: str) -> Month:
    """The invoiced month of stored invoice `number`, read from its stream."""
    try:
        issued_in, sequence = Month.parse(f"{number[4:8]}-{number[8:10]}"), int(number[11:])
        if number != number_of(issued_in, sequence):
            raise ValueError(number)
    except (ValueError, AssertionError, SettlementError) as exc:
        raise NotFound(f"no invoice {number[:40]}", "unknown_invoice") from exc
    found = app.repository.event_store.get(series_id(issued_in), gt=sequence - 1, lte=sequence)
    event = next(iter(found), None)
    if not isinstance(event, InvoiceIssued):
        raise NotFound(f"no invoice {number}", "unknown_invoice")
    return Month.parse(event.period)


@dataclass
class _Batch:
    """Invoices numbered and built, not stored yet."""

    events: list[InvoiceIssued] = field(default_factory=list)
    made: list[dict[str, Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def last(self) -> int:
        return self.events[-1].originator_version if self.events else 0


def _numbered(scan: ChargeScan, parties: list[str], now: datetime, issuer: Issuer,
              corrects: str | None, after: int) -> _Batch:
    """The invoices of `parties` not invoiced yet, numbered from `after` + 1 in the
    month of `now`."""
    issued_in, batch, sequence = Month.of(now), _Batch(), after
    for party in parties:
        if corrects is None and party in scan.issued:
            continue
        try:
            invoice = _draft(scan, party, corrects)
        except SettlementError as error:
            batch.failed.append(f"{party}: {error}")
            continue
        if invoice is None:
            continue
        sequence += 1
        if sequence > INVOICES_PER_MONTH_MAX:
            batch.failed.append(f"{party}: month {issued_in} has no number left")
            break
        event, shown = _event(scan, invoice, issued_in, sequence, now, issuer, corrects)
        batch.events.append(event)
        batch.documents[event.number] = shown
        batch.made.append({"number": event.number, "party_id": party,
                           "total": str(invoice.total), "tax": str(invoice.tax),
                           "true_up": str(_moved(invoice))})
    return batch


def _record(app: Application[UUID], batch: _Batch) -> None:
    """Store the batch's invoices in one transaction (`IntegrityError`: a number
    was taken meanwhile)."""
    if batch.events:
        processing = ProcessingEvent[UUID]()
        processing.events = list(batch.events)
        app._record(processing)


def _taken(scan: ChargeScan, report: IssueReport, batch: _Batch) -> None:
    """A stored batch: in the scan as if read from the log, and in the report."""
    for event in batch.events:
        scan.take_invoice(event, 0)
    report.issued += batch.made
    report.failed += batch.failed
    report.documents.update(batch.documents)


def _store_batch(app: Application[UUID], scan: ChargeScan, parties: list[str], now: datetime,
                 issuer: Issuer, report: IssueReport, corrects: str | None = None) -> None:
    """Number and store the invoices of `parties` in one transaction; after a
    conflict read on and number them again."""
    stream = series_id(Month.of(now))
    for _ in range(SAVE_ATTEMPTS_MAX):
        batch = _numbered(scan, parties, now, issuer, corrects, scan.series.get(stream, 0))
        try:
            _record(app, batch)
        except IntegrityError:
            report.conflicts += 1
            scan.advance(app)
            continue
        _taken(scan, report, batch)
        return
    report.failed += [f"{p}: still conflicting after {SAVE_ATTEMPTS_MAX} attempts"
                      for p in parties]


def _store_all(app: Application[UUID], scan: ChargeScan, parties: list[str], now: datetime,
               issuer: Issuer, report: IssueReport, batch_parties: int,
               turned: Callable[[], None]) -> None:
    """Every batch, each stored by a thread while the next is numbered (storing
    waits on PostgreSQL; numbering is Python). The next batch is numbered after
    the one in flight; if that one lost a number to another issuer, both are
    stored again one at a time (`_store_batch`)."""
    stream = series_id(Month.of(now))
    in_flight: tuple[Future[None], list[str], _Batch] | None = None
    with ThreadPoolExecutor(1, "invoices-store") as writer:
        for start in range(0, len(parties), batch_parties):
            chunk = parties[start:start + batch_parties]
            flying = in_flight[2].last if in_flight is not None else 0
            after = flying or scan.series.get(stream, 0)  # numbered after the one in flight
            batch = _numbered(scan, chunk, now, issuer, None, after)
            if in_flight is not None and not _settled(app, scan, report, in_flight, now,
                                                      issuer):
                _store_batch(app, scan, chunk, now, issuer, report)  # numbered again
                in_flight = None
            else:
                in_flight = (writer.submit(_record, app, batch), chunk, batch)
            turned()
        if in_flight is not None:
            _settled(app, scan, report, in_flight, now, issuer)


def _settled(app: Application[UUID], scan: ChargeScan, report: IssueReport,
             in_flight: tuple[Future[None], list[str], _Batch], now: datetime,
             issuer: Issuer) -> bool:
    """Wait for the batch in flight; False if it was stored again after a conflict."""
    future, chunk, batch = in_flight
    try:
        future.result()
    except IntegrityError:
        report.conflicts += 1
        scan.advance(app)
        _store_batch(app, scan, chunk, now, issuer, report)
        return False
    _taken(scan, report, batch)
    return True


def _draft(scan: ChargeScan, party: str, corrects: str | None) -> Draft | None:
    charges = scan.charges(party)
    if len(charges) > LINES_MAX:
        raise Rejected(f"{len(charges)} charges in {scan.period}, above {LINES_MAX}",
                       "invoice_too_many_lines")
    if not charges and corrects is None:
        return None
    invoice = draft(party, charges, scan.trued_up(party) if corrects else None)
    if corrects is not None and not invoice.true_ups and _same_lines(scan, party, invoice):
        return None
    return invoice


def _same_lines(scan: ChargeScan, party: str, invoice: Draft) -> bool:
    latest = scan.latest(party)
    return latest is not None and latest.lines == [line_key(line) for line in invoice.lines]


def _moved(invoice: Draft) -> Decimal:
    return sum(invoice.true_ups.values(), Decimal(0))


def _event(scan: ChargeScan, invoice: Draft, issued_in: Month, sequence: int, now: datetime,
           issuer: Issuer, corrects: str | None) -> tuple[InvoiceIssued, dict[str, Any]]:
    """The invoice's event, and the data it shows (`document_data` of its fields)."""
    fields: dict[str, Any] = {
        "number": number_of(issued_in, sequence), "party_id": invoice.party_id,
        "period": str(scan.period), "issued_on": jst_date(now).isoformat(),
        "issuer": issuer.to_json(),
        "recipient": scan.recipient(invoice.party_id),
        "lines": invoice.lines,
        "totals": [{"rate": str(t.rate), "total": yen(t.total), "tax": yen(t.tax),
                    "posted_tax": yen(t.posted_tax),
                    "true_ups": {account: str(amount) for (account, rate), amount
                                 in sorted(invoice.true_ups.items()) if rate == t.rate}}
                   for t in invoice.totals],
        "total": Money(invoice.total, INVOICE_CURRENCY),
        "tax": Money(invoice.tax, INVOICE_CURRENCY),
        "corrects": corrects,
    }
    shown = document_data(fields)
    fields["document_sha256"] = document_sha256(shown)
    cause = f"invoice-correction:{corrects}" if corrects else f"invoice-run:{scan.period}"
    common: dict[str, Any] = {"originator_id": series_id(issued_in),
                              "originator_version": sequence, "timestamp": now,
                              "causation_id": cause, "postings": invoice.postings}
    if sequence == 1:
        return InvoiceSeriesOpened(originator_topic=get_topic(InvoiceSeries), **common,
                                   **fields), shown
    return InvoiceIssued(**common, **fields), shown



@contextmanager
def _period_lock(app: Application[UUID], period: Month,
                 namespace: int = _LOCK_NAMESPACE) -> Iterator[None]:
    """One issuer of a month at a time (PostgreSQL; nothing to lock in memory): the
    month invoiced, or with `_SERIES_LOCK_NAMESPACE` the month of issue. Always
    taken in that order."""
    datastore = getattr(app.recorder, "datastore", None)
    if datastore is None:
        yield
        return
    key = namespace << 32 | int(period.compact)
    with datastore.get_connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
