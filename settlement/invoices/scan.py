"""A month's charges, read from the event store (the authority, not a projection).

The scan reads the notification log in order, like the payout run's
(`settlement/payouts/scan.py`), escrow and party events straight from their
stored JSON (`settlement/payouts/raw.py`), and keeps:
- per party, every taxable charge of the month (SPEC §12): a release's worker
  fee to its worker, a funding's client fee to the job's client, a payout's
  payee-borne transfer fee to its party (a failed payout's fee was reversed:
  it is no charge), each with the rate it was taxed at — the job's plan's
  `consumption_tax_rate`, the payout run's fee table's; only yen charges with
  a rate (a plan without consumption tax charges nothing taxable);
- each party's record (name, registration number), for the recipient;
- per month of issue, how many invoices were issued (the stream's version),
  and per party the invoices of this month already issued, with the tax
  they moved (a correction moves only the rest).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import get_topic
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from settlement.core.months import Month
from settlement.escrow.events import EscrowEvent, Opened, movement_fields
from settlement.invoices.charges import (
    CLIENT_FEE,
    INVOICE_CURRENCY,
    TRANSFER_FEE,
    WORKER_FEE,
    Charge,
)
from settlement.invoices.events import InvoiceIssued
from settlement.parties.record import PartyRecord
from settlement.payouts.events import (
    PartyPayoutsOpened,
    PayoutFailed,
    PayoutHeld,
    PayoutInitiated,
    PayoutReturned,
    PayoutSettled,
)
from settlement.payouts.raw import ESCROW, PARTY, RawEvent, kind_of, parse_raw
from settlement.payouts.runs import PayoutRunCompleted, PayoutRunStarted

LOG_PAGE_EVENTS = 1_000
DEFAULT_TRANSFER_FEE_RATE = Decimal("0.10")  # a payout whose run is not in the log
_DECODED = (PayoutInitiated, PayoutFailed, PayoutRunStarted, InvoiceIssued)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Issued:
    """An invoice of the scanned month already issued to a party."""

    number: str
    corrects: str | None
    position: int
    true_ups: dict[tuple[str, Decimal], Decimal]  # (revenue account, rate) → tax moved
    lines: list[tuple[Any, ...]]  # (position, kind, item or payout id) of each line


def _subclasses(cls: type) -> Iterator[type]:
    sub: type
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


# Escrow events that move no money and open nothing (deliveries, submissions,
# disputes opened …) and payout events that charge nothing: a month's scan need
# not fetch their state (two fifths of a busy log). Topics of other names (older
# classes, `settlement.aggregates.*`) are read as any other.
_SKIPPED = sorted({get_topic(cls) for cls in _subclasses(EscrowEvent)
                   if not movement_fields(cls) and not issubclass(cls, Opened)}
                  | {get_topic(cls) for cls in (PayoutHeld, PayoutSettled, PayoutReturned,
                                                PartyPayoutsOpened, PayoutRunCompleted)})


def _page(datastore: Any, table: str, after: int, stop: int) -> list[Notification]:
    """Up to `LOG_PAGE_EVENTS` events after position `after` up to `stop`, in order,
    but those of `_SKIPPED` topics (tuples in binary: a dict per row cost a fifth of
    the scan, profiled)."""
    query = SQL("SELECT notification_id, originator_id, originator_version, topic, state "
                "FROM {} WHERE notification_id > %s AND notification_id <= %s "
                "AND topic <> ALL(%s) ORDER BY notification_id LIMIT %s").format(
                    Identifier(datastore.schema, table))
    with datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
        cur.execute(query, (after, stop, _SKIPPED, LOG_PAGE_EVENTS), prepare=True,
                    binary=True)
        rows = cur.fetchall()
    return [Notification(id=n, originator_id=o, originator_version=v, topic=t, state=st)
            for n, o, v, t, st in rows]


def line_key(line: dict[str, Any]) -> tuple[Any, ...]:
    """What tells an invoice's lines apart: the charge's position, kind and reference."""
    return (line["position"], line["kind"], line["item_id"] or line["payout_id"])


class ChargeScan:
    def __init__(self, period: Month) -> None:
        self.period = period
        self._start, self._end = period.start, period.end
        self._period_text = f'"period":"{period}"'.encode()  # as orjson writes it
        self.position = 0  # every event up to here is read
        self._jobs: dict[str, tuple[str, Decimal, str]] = {}  # job → client, rate, currency
        self._charges: dict[str, dict[tuple[int, str, str], Charge]] = {}  # party → charges
        self._run_rates: dict[str, Decimal] = {}
        self._records: dict[str, PartyRecord | RawEvent] = {}
        self.series: dict[UUID, int] = {}  # numbering stream → its last version
        self.issued: dict[str, list[Issued]] = {}  # party → this month's invoices

    def advance(self, app: Application[UUID], turned: Callable[[], None] = lambda: None) -> int:
        """Read every event stored after `position` (but those of `_SKIPPED` topics:
        they charge nothing and name nothing an invoice shows); returns how many."""
        end = app.recorder.max_notification_id() or 0
        read = 0
        datastore = getattr(app.recorder, "datastore", None)  # PostgreSQL's
        page: Sequence[Notification]
        while self.position < end:
            if datastore is not None:
                page = _page(datastore, app.recorder.events_table_name,  # type: ignore[attr-defined]
                             self.position, end)
                last = page[-1].id if len(page) == LOG_PAGE_EVENTS else end
            else:
                page = app.recorder.select_notifications(self.position + 1, LOG_PAGE_EVENTS,
                                                         stop=end)
                last = page[-1].id if page else end
            for notification in page:
                self._take(app.mapper, notification)
            read += len(page)
            self.position = last if last > self.position else end
            turned()
        return read

    def _take(self, mapper: Mapper[UUID], notification: Notification) -> None:
        kind, event_class = kind_of(notification.topic)
        if kind == ESCROW or kind == PARTY:
            raw = parse_raw(notification.state)
            if raw is None:  # an upcast form: left to the mapper
                self._take_event(mapper.to_domain_event(notification), notification.id)
            elif kind == PARTY:
                self._records[raw.state["party_id"]] = raw
            else:
                self._take_escrow(event_class, raw, notification.id)
        elif issubclass(event_class, InvoiceIssued):
            self._take_stored_invoice(mapper, notification)
        elif issubclass(event_class, _DECODED) or event_class is object:
            self._take_event(mapper.to_domain_event(notification), notification.id)

    def _take_stored_invoice(self, mapper: Mapper[UUID], notification: Notification) -> None:
        """An invoice as stored (its fields are plain JSON but `total`, `tax` and
        `postings`): its number counts for its stream; its state is read only if
        it may be of this month (every month's invoices are in the log)."""
        series = UUID(str(notification.originator_id))
        self.series[series] = max(self.series.get(series, 0),
                                  notification.originator_version)
        if self._period_text not in notification.state:
            return
        state = orjson.loads(notification.state)
        if "class_version" in state:  # an upcast form: left to the mapper
            self._take_event(mapper.to_domain_event(notification), notification.id)
            return
        self._issued(state["period"], state["party_id"], state["number"], state["corrects"],
                     state["totals"], state["lines"], notification.id)

    # Escrow events, raw --------------------------------------------------------------

    def _take_escrow(self, event_class: type, raw: RawEvent, position: int) -> None:
        state = raw.state
        job_id = state["job_id"]
        if issubclass(event_class, Opened):
            plan = state["plan"]
            self._jobs[job_id] = (state["client_id"], Decimal(plan["consumption_tax_rate"]),
                                  plan["currency"])
        fields = movement_fields(event_class)
        if not fields:
            return
        at = raw.timestamp()
        if not self._start <= at < self._end:
            return
        for name in fields:
            value = state.get(name)
            for movement in value if isinstance(value, list) else (value,):
                if isinstance(movement, dict):
                    self._take_movement(job_id, movement.get("_type_"), movement.get("_data_"),
                                        at, position)

    def _take_movement(self, job_id: str, kind: Any, data: Any, at: datetime,
                       position: int) -> None:
        job = self._jobs.get(job_id)
        if job is None or kind not in ("release", "funding"):
            return
        client_id, rate, currency = job
        if kind == "release":
            party, fee, tax, charge_kind = (data["worker_id"], data["fee"], data["fee_tax"],
                                            WORKER_FEE)
        else:
            party, fee, tax, charge_kind = client_id, data["client_fee"], data["client_fee_tax"], \
                CLIENT_FEE
        fee_amount, fee_currency = RawEvent.money(fee)
        tax_amount, _ = RawEvent.money(tax)
        self._charge(Charge(party, charge_kind, at, position, job_id, data.get("item_id"), None,
                            fee_amount + tax_amount, tax_amount, rate), fee_currency)

    def _charge(self, charge: Charge, currency: str) -> None:
        if currency != INVOICE_CURRENCY or charge.rate <= 0 or charge.amount <= 0:
            return  # no Japanese consumption tax in it: nothing to invoice
        key = (charge.position, charge.kind, charge.item_id or charge.payout_id or "")
        self._charges.setdefault(charge.party_id, {})[key] = charge

    # Other events, decoded -----------------------------------------------------------

    def _take_event(self, event: Any, position: int) -> None:
        if isinstance(event, PayoutRunStarted):
            fees = (event.policy or {}).get("transfer_fees") or {}
            rate = fees.get("consumption_tax_rate")
            if rate is not None:
                self._run_rates[event.run_id] = Decimal(rate)
        elif isinstance(event, PayoutInitiated):
            self._take_payout(event, position)
        elif isinstance(event, PayoutFailed):  # every line reversed, the fee too
            charges = self._charges.get(event.party_id, {})
            for key in [k for k, c in charges.items() if c.payout_id == event.payout_id]:
                del charges[key]
        elif isinstance(event, InvoiceIssued):
            self.take_invoice(event, position)
        elif isinstance(event, Opened):
            self._jobs[event.job_id] = (event.client_id,
                                        Decimal(event.plan["consumption_tax_rate"]),
                                        event.plan["currency"])
        elif hasattr(event, "record") and hasattr(event, "party_id"):
            self._records[event.party_id] = event.record

    def _take_payout(self, event: PayoutInitiated, position: int) -> None:
        fee = event.transfer_fee
        if fee is None or fee.amount <= 0 or not self.period.contains(event.timestamp):
            return
        tax = event.transfer_fee_tax.amount if event.transfer_fee_tax is not None else ZERO
        rate = self._run_rates.get(event.run_id, DEFAULT_TRANSFER_FEE_RATE)
        self._charge(Charge(event.party_id, TRANSFER_FEE, event.timestamp, position, None, None,
                            event.payout_id, fee.amount, tax, rate), fee.currency.code)

    def take_invoice(self, event: InvoiceIssued, position: int) -> None:
        """An invoice issued (read from the log, or just stored by this run: read
        again later, it is taken once)."""
        series = event.originator_id
        self.series[series] = max(self.series.get(series, 0), event.originator_version)
        self._issued(event.period, event.party_id, event.number, event.corrects,
                     event.totals, event.lines, position)

    def _issued(self, period: str, party_id: str, number: str, corrects: str | None,
                totals: list[dict[str, Any]], lines: list[dict[str, Any]],
                position: int) -> None:
        if period != str(self.period) or any(
                i.number == number for i in self.issued.get(party_id, ())):
            return
        moved: dict[tuple[str, Decimal], Decimal] = {}
        for total in totals:
            for account, amount in (total.get("true_ups") or {}).items():
                key = (account, Decimal(total["rate"]))
                moved[key] = moved.get(key, ZERO) + Decimal(amount)
        self.issued.setdefault(party_id, []).append(
            Issued(number, corrects, position, moved, [line_key(line) for line in lines]))

    # What the run reads -------------------------------------------------------------

    def parties(self) -> list[str]:
        """Every party with a charge in the month, in order."""
        return sorted(p for p, charges in self._charges.items() if charges)

    def charges(self, party_id: str) -> list[Charge]:
        return list(self._charges.get(party_id, {}).values())

    def recipient(self, party_id: str) -> dict[str, str | None]:
        """The name and registration number an invoice to the party shows (its id as
        the name if it never registered), read without building its record."""
        found = self._records.get(party_id)
        if isinstance(found, RawEvent):
            record = found.state["record"]["_data_"]
            return {"name": record["name"],
                    "registration_number": record.get("invoice_registration_number")}
        if found is None:
            return {"name": party_id, "registration_number": None}
        return {"name": found.name, "registration_number": found.invoice_registration_number}

    def trued_up(self, party_id: str) -> dict[tuple[str, Decimal], Decimal]:
        """What the party's invoices of the month moved already, per account and rate."""
        moved: dict[tuple[str, Decimal], Decimal] = {}
        for issued in self.issued.get(party_id, ()):
            for key, amount in issued.true_ups.items():
                moved[key] = moved.get(key, ZERO) + amount
        return moved

    def latest(self, party_id: str) -> Issued | None:
        found = self.issued.get(party_id)
        return found[-1] if found else None

    def invoices(self) -> Iterator[tuple[str, Issued]]:
        for party_id in sorted(self.issued):
            for issued in self.issued[party_id]:
                yield party_id, issued
