"""Response shapes of the tax documents (SPEC §12), for the OpenAPI document:
payment statements, withholding per month and the annual 支払調書 data."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from settlement.api.models import Amount


class StatementItem(BaseModel):
    job_id: str
    item_id: str
    gross: Amount
    fee: Amount
    fee_tax: Amount
    withholding: Amount
    net: Amount


class StatementTotals(BaseModel):
    gross: Amount
    fee: Amount
    fee_tax: Amount
    withholding: Amount
    net: Amount


class Statement(BaseModel):
    payout_id: str
    party_type: str
    party_id: str
    currency: str
    status: str
    initiated_at: str
    payment_date: str = Field(description="the payout's date in Japan (JST)")
    items: list[StatementItem]
    totals: StatementTotals
    amount: Amount = Field(description="paid out of the party's account")
    transfer_fee: Amount = Field(description="payee-borne, tax-included (0: platform-borne)")
    transfer_fee_tax: Amount
    sent: Amount = Field(description="what the bank transfers: amount − transfer_fee")
    bank_account: dict[str, Any] | None = Field(description="the account number masked")


class StatementLine(BaseModel):
    """A CSV line: `item`s, their `total`, the `transfer_fee` (deducted, in net)
    and the amount `sent` (in net)."""

    line: str
    job_id: str
    item_id: str
    gross: str
    fee: str
    fee_tax: str
    withholding: str
    net: str


class Remittance(BaseModel):
    remittance_id: str
    amount: Amount
    status: str = Field(description="pending (in transit) or confirmed")


class MonthlyWithholding(BaseModel):
    """A client's 所得税徴収高計算書 data: 支払年月 (`month`), 人員 (`workers`),
    支給額 (`gross`, tax-included), 税額 (`withheld`)."""

    client_id: str
    currency: str
    month: str
    workers: int
    gross: Amount
    withheld: Amount
    releases: int
    due_date: str = Field(description="the 10th of the next month, or the next business day")
    remitted: Amount
    outstanding: Amount


class Withholding(BaseModel):
    month: str
    due_date: str
    clients: list[MonthlyWithholding]
    remittances: dict[str, list[Remittance]] = Field(description="per client id")


class AnnualPayment(BaseModel):
    """One 支払調書 row, in the CSV's column order."""

    year: int
    client_id: str
    worker_id: str
    name: str | None
    address: str | None = Field(description="as registered; for the auditor role only")
    currency: str
    gross: Amount = Field(description="paid in the year, tax-included")
    withheld: Amount
    releases: int


class Annual(BaseModel):
    year: int
    complete: bool = Field(description="false while the year is not over")
    threshold: Amount
    payments: list[AnnualPayment]
