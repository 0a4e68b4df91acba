"""An invoice as its recipient reads it: the document data (plain JSON, the same
from the stored event and from its published form) and the A4 PDF rendered from
it (`settlement/documents/pdf.py`, deterministic: the same data, the same bytes).

`document_sha256` of the data is recorded in the invoice's event when it is
issued; the PDF's own SHA-256 is stored with its bytes (`files`) the first time
it is rendered, so every later rendering is checked against both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson

from settlement.core.money import Money, format_amount
from settlement.documents.pdf import Document, render
from settlement.invoices.charges import DESCRIPTIONS

# The fields of an invoice event that the invoice shows (its postings are the
# ledger's business, its number is in it).
DOCUMENT_FIELDS = ("number", "party_id", "period", "issued_on", "issuer", "recipient",
                   "lines", "totals", "total", "tax", "corrects")
DOCUMENT_KIND = "invoice"  # its PDFs in `settlement_documents` (settlement/store/documents.py)
_COLUMNS = ("日付 Date", "内容 Item", "案件・明細 Job / Ref", "税率 Rate", "金額（税込） Amount")
_WIDTHS_MM = (24, 52, 62, 18, 24)  # 180 mm: A4 less the margins


def document_data(fields: Mapping[str, Any]) -> dict[str, Any]:
    """What the invoice shows, from an event's fields (stored or published). Its
    lines and totals are plain JSON already (`rules.line`, `rules.yen`): shared,
    not copied (nothing changes them)."""
    return {name: _shown(fields.get(name)) for name in DOCUMENT_FIELDS}


def _shown(value: Any) -> Any:
    if isinstance(value, Money):
        return {"amount": format_amount(value), "currency": value.currency.code}
    return value


def document_sha256(data: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(data, option=orjson.OPT_SORT_KEYS)).hexdigest()


def yen(money: Mapping[str, str]) -> str:
    return f"¥{Decimal(money['amount']):,}"


def percent(rate: str) -> str:
    return f"{(Decimal(rate) * 100).normalize():f}%"


def pdf_document(data: Mapping[str, Any]) -> Document:
    issuer, recipient = data["issuer"], data["recipient"]
    parties = [("請求書番号 Invoice No.", data["number"]),
               ("発行日 Issued", data["issued_on"]),
               ("対象期間 Period", data["period"]),
               ("宛先 To", f"{recipient['name']} 様"),
               ("発行者 Issuer", issuer["name"]),
               ("住所 Address", issuer["address"]),
               ("登録番号 Registration No.", issuer["registration_number"])]
    if recipient.get("registration_number"):
        parties.append(("宛先登録番号 Recipient Registration No.",
                        recipient["registration_number"]))
    if data.get("corrects"):
        parties.append(("訂正対象 Corrects", data["corrects"]))
    rows = [[line["date"], DESCRIPTIONS.get(line["kind"], line["kind"]), _reference(line),
             percent(line["rate"]), yen(line["amount"])] for line in data["lines"]]
    totals: list[tuple[str, str]] = []
    for total in data["totals"]:
        rate = percent(total["rate"])
        totals += [(f"{rate}対象 合計（税込） Total at {rate}", yen(total["total"])),
                   (f"{rate}対象 消費税 Tax at {rate}", yen(total["tax"]))]
    totals += [("合計（税込） Total", yen(data["total"])), ("消費税 Tax", yen(data["tax"]))]
    notes = ["消費税は請求書ごと・税率ごとに一回、1円未満切り捨てで計算しています。"
             " Consumption tax is computed once per invoice and rate, rounded down."]
    return Document("適格請求書 Qualified Invoice", parties, _COLUMNS, rows, totals, notes,
                    frozenset({4}), _WIDTHS_MM)


def _reference(line: Mapping[str, Any]) -> str:
    """The job and item a fee was charged on, or the payout of a transfer fee."""
    if line["payout_id"]:
        return str(line["payout_id"])
    return " / ".join(str(part) for part in (line["job_id"], line["item_id"]) if part)


def render_pdf(data: Mapping[str, Any]) -> bytes:
    return render(pdf_document(data))
