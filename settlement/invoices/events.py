"""Issued invoices, as events of the numbering stream of their month of issue.

Every invoice issued in a JST month is an event of one stream
(`series_id(month)`), and its number is the event's version in it:
`INV-YYYYMM-000001` is version 1, the stream's opening. The event store keeps a
stream's versions unique and contiguous, so numbers have no gaps and no
duplicates whatever runs concurrently: two issuers storing on the same version
make one transaction fail, and the loser reads on and numbers again. Keyed by
`party_id` on `settlement.events` (SPEC §14).

An event only assigns (it runs again on every replay). It carries everything
the invoice shows — the six items of a 適格請求書: the issuer's name and
registration number, the dates of the charges, what they were, the total and
the tax per rate, the recipient's name — and `postings`, the tax true-up.
"""

from __future__ import annotations

import functools
import uuid
from typing import Any

from eventsourcing.domain import Aggregate

from settlement.core.money import Money
from settlement.core.months import Month
from settlement.ledger.posting import Posting

SERIES_NAMESPACE = uuid.UUID("3c9d5f0e-6a41-4c1b-9b7e-2f8e0d4a7c15")
INVOICES_PER_MONTH_MAX = 999_999  # six digits


@functools.lru_cache(maxsize=64)
def series_id(issued_in: Month) -> uuid.UUID:
    return uuid.uuid5(SERIES_NAMESPACE, f"invoice-series:{issued_in.compact}")


def number_of(issued_in: Month, sequence: int) -> str:
    assert 1 <= sequence <= INVOICES_PER_MONTH_MAX
    return f"INV-{issued_in.compact}-{sequence:06d}"


class InvoiceIssued(Aggregate.Event):
    number: str
    party_id: str
    period: str  # the invoiced month, YYYY-MM (JST)
    issued_on: str  # YYYY-MM-DD (JST)
    issuer: dict[str, str]  # name, address, registration_number
    recipient: dict[str, str | None]  # name, registration_number (if registered)
    lines: list[dict[str, Any]]  # date, kind, job_id, item_id, payout_id, amount, rate, position
    totals: list[dict[str, Any]]  # rate, total, tax, posted_tax
    total: Money
    tax: Money
    corrects: str | None  # the number of the invoice this one corrects
    document_sha256: str  # of the document data the PDF is rendered from
    causation_id: str
    postings: list[Posting]

    def apply(self, aggregate: InvoiceSeries) -> None:
        aggregate.issued += 1


class InvoiceSeriesOpened(InvoiceIssued, Aggregate.Created):
    """The first invoice of a month of issue opens its stream: one event, published
    as any other invoice (`settlement.invoice_issued`)."""

    wire_name = "invoice_issued"


class InvoiceSeries(Aggregate):
    """The invoices issued in one month, numbered by version."""

    def __init__(self) -> None:
        self.issued = 0  # the opening's `apply` counts it


INVOICE_EVENTS = (InvoiceIssued,)
