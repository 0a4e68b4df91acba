"""Response shapes of the invoices (SPEC §12), for the OpenAPI document."""

from __future__ import annotations

from pydantic import BaseModel, Field

from settlement.api.models import Amount


class InvoiceRow(BaseModel):
    number: str = Field(examples=["INV-202612-000001"])
    party_id: str
    period: str = Field(description="the invoiced month in Japan (YYYY-MM)")
    issued_on: str = Field(description="the date of issue in Japan")
    corrects: str | None = Field(description="the invoice this one corrects")
    total: Amount = Field(description="tax-included")
    tax: Amount = Field(description="Σ over the rates of floor(total × r / (1 + r))")
    currency: str
    document_sha256: str = Field(description="SHA-256 of the data the invoice shows")


class Invoices(BaseModel):
    invoices: list[InvoiceRow]


class Issuer(BaseModel):
    name: str
    address: str
    registration_number: str = Field(examples=["T7000012050002"])


class Recipient(BaseModel):
    name: str
    registration_number: str | None


class InvoiceLine(BaseModel):
    date: str = Field(description="of the charge, in Japan")
    kind: str = Field(description="worker_fee, client_fee or transfer_fee")
    description: str
    job_id: str | None
    item_id: str | None
    payout_id: str | None
    amount: Amount = Field(description="tax-included")
    rate: str = Field(examples=["0.10"])


class RateTotal(BaseModel):
    rate: str
    total: Amount = Field(description="tax-included")
    tax: Amount = Field(description="floor(total × rate / (1 + rate))")


class Invoice(BaseModel):
    number: str
    party_id: str
    period: str
    issued_on: str
    issuer: Issuer
    recipient: Recipient
    currency: str
    lines: list[InvoiceLine]
    totals: list[RateTotal]
    total: Amount
    tax: Amount
    corrects: str | None
    corrected_by: str | None = Field(description="the correction that replaces it, if any")
    document_sha256: str
