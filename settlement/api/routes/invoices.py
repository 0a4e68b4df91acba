"""`/v1/invoices` (list, JSON or CSV), `/v1/invoices/{number}` (JSON; its lines
as CSV) and `/v1/invoices/{number}/pdf` (or `Accept: application/pdf`): the
qualified invoices for the platform's charges (SPEC §12), all from the same
data, the invoice's event. The data is checked against the SHA-256 recorded
when it was issued, and the PDF against the copy stored with its SHA-256."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from settlement.api import invoice_models as models
from settlement.api.auth import Reader
from settlement.api.config import Config, Schema
from settlement.api.database import Db
from settlement.api.documents import pdf_response
from settlement.api.openapi import CSV_ROWS, ERRORS, NOT_FOUND
from settlement.api.params import DEFAULT_LIMIT, ID_PATTERN, Limit
from settlement.api.queries import invoices as queries
from settlement.api.render import ApiError, amount, next_after, render, to_csv, wants_csv
from settlement.core.errors import InvalidInput
from settlement.core.months import Month
from settlement.invoices.charges import DESCRIPTIONS
from settlement.invoices.document import (
    DOCUMENT_KIND,
    document_data,
    document_sha256,
    render_pdf,
)

router = APIRouter(tags=["tax documents"])
NUMBER_PATTERN = r"^INV-[0-9]{6}-[0-9]{6}$"
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
Number = Annotated[str, Path(pattern=NUMBER_PATTERN, examples=["INV-202612-000001"])]
LINE_COLUMNS = ("date", "kind", "description", "job_id", "item_id", "payout_id", "amount",
                "rate")
PDF: dict[int | str, dict[str, Any]] = {200: {
    "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    "description": "the invoice as an A4 PDF; `X-Content-SHA256` is its SHA-256"}}
ONE: dict[int | str, dict[str, Any]] = {200: {
    "content": {"text/csv": {"schema": {"type": "string"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    "description": "JSON; with `Accept: text/csv` one line per charge; with "
                   "`Accept: application/pdf` the PDF"}}


@router.get("/v1/invoices", response_model=models.Invoices, responses={**ERRORS, **CSV_ROWS})
def invoices(request: Request, _: Reader, db: Db, config: Config,
             party_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
             month: Annotated[str | None, Query(pattern=MONTH_PATTERN,
                                                description="the invoiced month (JST)")] = None,
             after: Annotated[str | None, Query(pattern=NUMBER_PATTERN,
                                                description="last number seen")] = None,
             limit: Limit = DEFAULT_LIMIT) -> Response:
    """Issued invoices by number, optionally of one party and invoiced month (400
    `month_not_over`: a month not over in Japan has no invoices yet)."""
    if month is not None and _month(month).end > config.now():
        raise ApiError(400, "month_not_over", f"{month} is not over in Japan", "month")
    with db.connection() as conn:
        rows = queries.invoices(conn, config.schema, party_id=party_id, month=month,
                                after=after, limit=limit)
    out = [_row(r) for r in rows]
    return render({"invoices": out}, request, rows=out, row_model=models.InvoiceRow,
                  next_after=next_after(out, limit, "number"))


def _month(text: str) -> Month:
    try:
        return Month.parse(text)
    except InvalidInput as exc:
        raise ApiError(400, "invalid_month", exc.message, "month") from exc


def _row(r: dict[str, Any]) -> dict[str, Any]:
    return {"number": r["number"], "party_id": r["party_id"], "period": r["period"],
            "issued_on": r["issued_on"].isoformat(), "corrects": r["corrects"],
            "total": amount(r["total"]), "tax": amount(r["tax"]), "currency": r["currency"],
            "document_sha256": r["document_sha256"]}


def _load(db: Db, schema: str, number: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The invoice's row and the data it shows, checked against its recorded SHA-256;
    404 `invoice_not_found`."""
    with db.connection() as conn:
        found = queries.invoice(conn, schema, number)
    if found is None:
        raise ApiError(404, "invoice_not_found", f"no invoice {number}", "number")
    data = document_data(found["document"])
    if document_sha256(data) != found["document_sha256"]:
        raise ApiError(500, "document_changed", f"invoice {number} no longer has the data "
                       "it was issued with")
    return found, data


@router.get("/v1/invoices/{number}", response_model=models.Invoice,
            responses={**ERRORS, **NOT_FOUND, **ONE})
def invoice(request: Request, _: Reader, db: Db, schema: Schema, number: Number) -> Response:
    """One invoice: the six items of a 適格請求書 (issuer and registration number,
    dates, what was charged, total and tax per rate, recipient)."""
    if "application/pdf" in request.headers.get("accept", "").lower():
        return invoice_pdf(_, db, schema, number)
    found, data = _load(db, schema, number)
    lines = [{"date": line["date"], "kind": line["kind"],
              "description": DESCRIPTIONS.get(line["kind"], line["kind"]),
              "job_id": line["job_id"], "item_id": line["item_id"],
              "payout_id": line["payout_id"], "amount": line["amount"]["amount"],
              "rate": line["rate"]} for line in data["lines"]]
    if wants_csv(request):
        return Response(to_csv(LINE_COLUMNS, lines), media_type="text/csv; charset=utf-8")
    return render({
        "number": data["number"], "party_id": data["party_id"], "period": data["period"],
        "issued_on": data["issued_on"], "issuer": data["issuer"],
        "recipient": data["recipient"], "currency": data["total"]["currency"],
        "lines": lines,
        "totals": [{"rate": t["rate"], "total": t["total"]["amount"],
                    "tax": t["tax"]["amount"]} for t in data["totals"]],
        "total": data["total"]["amount"], "tax": data["tax"]["amount"],
        "corrects": data["corrects"], "corrected_by": found["corrected_by"],
        "document_sha256": found["document_sha256"]})


@router.get("/v1/invoices/{number}/pdf", responses={**ERRORS, **NOT_FOUND, **PDF},
            response_class=Response)
def invoice_pdf(_: Reader, db: Db, schema: Schema, number: Number) -> Response:
    """The invoice as an A4 PDF (Japanese text), the same bytes on every render;
    500 `document_changed` if it no longer matches the copy stored for it."""
    _found, data = _load(db, schema, number)
    return pdf_response(db, DOCUMENT_KIND, number, render_pdf(data), f"invoice {number}")
