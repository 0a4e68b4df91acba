"""Invoices (SPEC §12 `/v1/invoices`): one row per issued invoice, folded from
its one event (`settlement.invoice_issued`), which carries everything the
invoice shows. Unlike a party's or a run's rows, an invoice's event has
postings (the tax true-up), so a repeat must be told apart before its ledger
entries are added: `fold` skips an invoice whose number is stored (or in the
batch) already. An invoice never changes; a correction is another row.

`invoice_row(event)` is pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from settlement.projections.model.envelope import Event, amount
from settlement.projections.model.errors import MalformedEvent
from settlement.projections.model.fastinit import fast_init

INVOICE_EVENTS = frozenset({"invoice_issued"})
INVOICE_COLUMNS = [("number", "text"), ("party_id", "text"), ("period", "text"),
                   ("issued_on", "date"), ("corrects", "text"), ("total", "numeric"),
                   ("tax", "numeric"), ("currency", "text"), ("document", "jsonb"),
                   ("document_sha256", "text"), ("time", "timestamptz"),
                   ("position", "bigint")]


def is_invoice(event: Event) -> bool:
    return event.name in INVOICE_EVENTS


def number_of(event: Event) -> str:
    try:
        return str(event.data["number"])
    except KeyError as exc:
        raise MalformedEvent(f"position {event.position}: an invoice without number") from exc


def invoice_numbers(events: Iterable[Event]) -> list[str]:
    """The numbers of the invoices among `events`, in order."""
    return sorted({number_of(e) for e in events if is_invoice(e)})


@fast_init
@dataclass(frozen=True, slots=True)
class InvoiceRow:
    number: str
    party_id: str
    period: str
    issued_on: date
    corrects: str | None
    total: Any  # Decimal, tax-included
    tax: Any  # Decimal
    currency: str
    document: Mapping[str, Any]  # the event's data as published, postings included
    document_sha256: str
    time: datetime
    position: int


def invoice_row(event: Event) -> InvoiceRow:
    data = event.data
    try:
        total = data["total"]
        return InvoiceRow(number_of(event), data["party_id"], data["period"],
                          date.fromisoformat(data["issued_on"]), data.get("corrects"),
                          amount(total), amount(data["tax"]), total["currency"],
                          {k: v for k, v in data.items() if k not in ("hash", "prev_hash")},
                          data["document_sha256"], event.time, event.position)
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEvent(f"position {event.position}: a malformed invoice") from exc
