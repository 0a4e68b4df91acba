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
    transfer_fee: Amount = Field(description="payee-borne transfer fee, tax-included "
                                             "(0 when the platform bears it)")
    sent: Amount = Field(description="what the bank transfers: amount − transfer_fee")


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


Age = Annotated[float, Field(ge=0, description="seconds, by the database's clock")]


class PartReadiness(BaseModel):
    part: str = Field(description="heartbeat name, e.g. settlement-ingest-1, relay, timers")
    kind: str = Field(pattern="^(ingest|relay|projector|timers|supervisor|other)$")
    pid: int
    beat_age_s: Age
    progress_age_s: Age | None = Field(description="since its last progress; null: none yet")
    lag: int | None = Field(description="records or events behind, where the part knows")
    problem: str | None = Field(description="why it counts as stalled; null when it does not")


class RelayReadiness(BaseModel):
    relay: str
    position: int
    lag: int = Field(description="head − position")
    progress_age_s: Age = Field(description="since the stored position last moved")


class ProjectorReadiness(BaseModel):
    projector: str = Field(description="the projector's consumer group")
    position: int = Field(description="highest event position applied (over its partitions)")
    lag: int = Field(description="head − position")


class ChildReadiness(BaseModel):
    name: str
    status: str = Field(description="running or backing_off")
    restarts: int
    restart_delay_s: float


class Readiness(BaseModel):
    status: str = Field(pattern="^(ok|degraded)$",
                        description="degraded: some part is stalled (see problems)")
    problems: list[str]
    head: int = Field(description="the event store's highest position")
    ingest_lag: int | None = Field(description="Σ lag of the input consumers' heartbeats")
    relay_lag: int | None
    projector_lag: int | None
    last_timer_pass_age_s: Age | None
    relays: list[RelayReadiness]
    projectors: list[ProjectorReadiness]
    parts: list[PartReadiness]
    children: list[ChildReadiness] = Field(description="the supervisor's, from its heartbeat")


class BankAccount(BaseModel):
    bank_code: str
    branch_code: str
    account_type: str = Field(pattern="^(ordinary|current|savings)$")
    account_number: str = Field(pattern=r"^\*{4}[0-9]{3}$", description="masked: ****567")
    holder_kana: str
    bank_name_kana: str | None
    branch_name_kana: str | None


class Party(BaseModel):
    party_id: str
    kind: str = Field(pattern="^(individual|corporation)$")
    name: str
    name_kana: str
    address: str | None = Field(description="shown to the auditor role only (SPEC §10)")
    invoice_registration_number: str | None
    bank_account: BankAccount | None
    kyc_verified: bool
    transfer_fee_bearer: str = Field(pattern="^(platform|payee)$")
    hold: str | None = Field(description="`bank_account_returned` while a returned transfer "
                                          "holds the party")
    returned_payout_id: str | None
    registered_at: Timestamp | None
    updated_at: Timestamp


class HeldRow(BaseModel):
    party_type: str
    party_id: str
    currency: str
    amount: Amount
    reason: str = Field(description="kyc_missing, bank_account_missing, "
                                    "bank_account_returned, name_not_representable, or "
                                    "below_minimum (carried over)")
    status: str = Field(pattern="^(held|carried_over)$")
    due_by: Timestamp | None = Field(description="the earliest payment deadline among its "
                                                 "items (SPEC §2)")
    overdue: bool = Field(description="due_by has passed")


class HeldTotals(BaseModel):
    currency: str
    held: Amount
    carried_over: Amount
    overdue: Amount


class Held(BaseModel):
    run_id: str | None = Field(description="the run reported: the given one, else the run "
                                           "completed last; null before any")
    holds: list[HeldRow]
    totals: list[HeldTotals] = Field(description="over every matching hold (all pages)")


class PayoutRun(BaseModel):
    run_id: str
    closing: str | None = Field(description="YYYY-MM-DD; null for a --now run")
    payment_day: str = Field(description="取組日, YYYY-MM-DD")
    cutoff: Timestamp | None
    as_of_position: int = Field(description="the run covers events stored up to here")
    status: str = Field(pattern="^(started|completed)$")
    summary: Any = Field(description="counts and totals of payouts, fees, amounts sent, "
                                     "holds and carry-overs, and the Zengin file's SHA-256")
    time: Timestamp


class LowPriceRow(BaseModel):
    job_id: str
    item_id: str
    kind: str = Field(description="milestone, entry (an award) or submission")
    state: str
    client_id: str
    worker_id: str | None
    currency: str
    amount: Amount
    plan: str = Field(description="the fee plan the job recorded when it opened")
    floor: Amount = Field(description="that plan's minimum_item: amount ≥ floor")


class LowPrice(BaseModel):
    margin: Amount = Field(description="rows have amount ≤ floor × (1 + margin); 0.10")
    rows: list[LowPriceRow]
