"""The money a domain event moves, recorded in the event with every computed part.

Three kinds: a client funds an item, an item is released to a worker, an item
(or part of one) is refunded to the client. Ledger postings are derived from
these alone (see `settlement.ledger.rules`).
"""

from __future__ import annotations

from dataclasses import dataclass

from settlement.core.money import Money


@dataclass(frozen=True)
class Funding:
    """A client payment: `amount` goes into escrow, the client fee and its tax to revenue."""

    item_id: str
    amount: Money
    client_fee: Money
    client_fee_tax: Money
    payment_ref: str

    @property
    def total(self) -> Money:
        return self.amount + self.client_fee + self.client_fee_tax


@dataclass(frozen=True)
class Release:
    """Gross `gross` of an item released to a worker; `net` is what the worker is owed."""

    item_id: str
    worker_id: str
    gross: Money
    fee: Money
    fee_tax: Money
    withholding: Money
    net: Money


@dataclass(frozen=True)
class Refund:
    """Held money returned to the client."""

    item_id: str
    amount: Money


Movement = Funding | Release | Refund
