"""A taxable charge the platform made to a party (SPEC §12): a worker fee at a
release, a client fee at a funding, a payee-borne transfer fee at a payout.
Each with the amount tax-included, the consumption tax posted with it, and the
rate it was taxed at (the job's plan; the payout run's fee table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from settlement.ledger import accounts

WORKER_FEE, CLIENT_FEE, TRANSFER_FEE = "worker_fee", "client_fee", "transfer_fee"
# The revenue account each kind of charge is booked to (SPEC §6).
REVENUE = {WORKER_FEE: accounts.REVENUE_WORKER_FEES, CLIENT_FEE: accounts.REVENUE_CLIENT_FEES,
           TRANSFER_FEE: accounts.REVENUE_TRANSFER_FEES}
# What an invoice line calls each kind (Japanese first: the invoice is Japanese).
DESCRIPTIONS = {WORKER_FEE: "システム利用料（受注者）", CLIENT_FEE: "システム利用料（発注者）",
                TRANSFER_FEE: "振込手数料"}
INVOICE_CURRENCY = "JPY"  # Japanese consumption tax: invoices are in yen


@dataclass(frozen=True, slots=True)
class Charge:
    party_id: str
    kind: str  # WORKER_FEE, CLIENT_FEE or TRANSFER_FEE
    time: datetime  # of the event that charged it
    position: int  # of that event in the log
    job_id: str | None  # None for a transfer fee
    item_id: str | None  # the released or funded item (None: a competition's prize)
    payout_id: str | None  # a transfer fee's payout
    amount: Decimal  # tax-included
    tax: Decimal  # the consumption tax posted with it
    rate: Decimal  # e.g. Decimal("0.10")

    @property
    def account(self) -> str:
        return REVENUE[self.kind]
