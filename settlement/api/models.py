"""Response shapes of the finance API (SPEC §7), for the OpenAPI document.

Handlers build their responses themselves (amounts as exact decimal strings,
serialised by orjson); these models describe them, and the tests check every
response against the document.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

AMOUNT_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
Amount = Annotated[str, Field(pattern=AMOUNT_PATTERN, examples=["11000", "105.00"],
                              description="exact decimal string, never a JSON number")]
Timestamp = Annotated[str, Field(description="ISO 8601 with a UTC offset",
                                 examples=["2026-11-26T09:00:00+00:00"])]


class ErrorBody(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. invalid_parameter")
    message: str
    parameter: str | None = Field(None, description="the query or path parameter at fault")


class ErrorResponse(BaseModel):
    error: ErrorBody


class AccountRow(BaseModel):
    account: str
    debits: Amount
    credits: Amount
    balance: Amount = Field(description="on the natural side: assets debits − credits, "
                                        "liabilities and revenue credits − debits")


class Balances(BaseModel):
    as_of: Timestamp | None = Field(description="the as_of asked for; null = latest")
    currency: str | None = Field(description="null only when the ledger is empty")
    accounts: list[AccountRow]
    total: Amount = Field(description="Σ balance over every matching account (all pages)")


class TrialBalance(BaseModel):
    as_of: Timestamp | None
    currency: str | None
    accounts: list[AccountRow]
    total_debits: Amount = Field(description="over every account (all pages)")
    total_credits: Amount


class EntryRow(BaseModel):
    position: int
    time: Timestamp
    job_id: str | None
    event_type: str
    side: str = Field(pattern="^(debit|credit)$")
    amount: Amount
    running_balance: Amount


class Entries(BaseModel):
    account: str
    currency: str | None
    entries: list[EntryRow]


class EscrowItem(BaseModel):
    item_id: str
    state: str
    amount: Amount
    worker_id: str | None


class Escrow(BaseModel):
    job_id: str
    format: str
    state: str
    currency: str
    client_id: str
    funded: Amount
    held: Amount
    released: Amount
    refunded: Amount
    fees: Amount
    withholding: Amount
    items: list[EscrowItem]


class ReceivableRow(BaseModel):
    job_id: str
    item_id: str
    worker_id: str | None
    client_id: str
    state: str
    amount: Amount = Field(description="the worker's claim, gross")
    net: Amount = Field(description="what the worker is owed of a released claim")
    protected: bool
    delivered_at: Timestamp | None
    due_by: Timestamp | None
    overdue: bool


class ReceivableTotals(BaseModel):
    protected: Amount
    unprotected: Amount
    payable: Amount = Field(description="Σ net of released claims not paid out")
    overdue: Amount


class Receivables(BaseModel):
    as_of: Timestamp | None
    currency: str | None
    rows: list[ReceivableRow]
    totals: ReceivableTotals = Field(description="over every matching row (all pages)")


class Safeguarding(BaseModel):
    currency: str | None
    cash: Amount
    obligations: Amount
    coverage_ratio: Amount | None = Field(description="cash / obligations, rounded down to 6 "
                                                      "places; null when nothing is owed")
    shortfall: Amount


class Payout(BaseModel):
    payout_id: str
    party_type: str
    party_id: str
    currency: str
    amount: Amount
    status: str
    items: Any


class Payouts(BaseModel):
    payouts: list[Payout]


class AuditEvent(BaseModel):
    position: int
    job_id: str | None
    version: int
    type: str
    time: Timestamp
    causation_id: str
    data: dict[str, Any]
    hash: str | None
    prev_hash: str | None


class AuditEvents(BaseModel):
    events: list[AuditEvent]


class Verification(BaseModel):
    ok: bool
    events_checked: int
    first_bad_position: int | None


class Health(BaseModel):
    status: str
