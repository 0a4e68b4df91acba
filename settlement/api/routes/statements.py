"""`/v1/statements/{payout_id}` (SPEC §12): a payout's payment statement (支払明細)
as JSON, CSV (`Accept: text/csv`) or an A4 PDF (`…/pdf`), all from the same
data. The PDF is the same bytes for the same payout; where `settlement tax
statement` stored it, the one served must match the stored SHA-256."""

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from settlement.api import tax_models
from settlement.api.auth import Reader
from settlement.api.config import Schema
from settlement.api.database import Db
from settlement.api.documents import pdf_response
from settlement.api.openapi import ERRORS, NOT_FOUND
from settlement.api.params import ID_PATTERN
from settlement.api.queries import tax as tax_queries
from settlement.api.render import ApiError, render, to_csv, wants_csv
from settlement.documents import pdf
from settlement.tax import statement as st

router = APIRouter(tags=["tax documents"])
STATEMENT_KIND = "statement"
PDF: dict[int | str, dict[str, object]] = {200: {
    "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    "description": "the statement as an A4 PDF; `X-Content-SHA256` is its SHA-256"}}
CSV: dict[int | str, dict[str, object]] = {200: {
    "content": {"text/csv": {"schema": {"type": "string"}}},
    "description": "JSON, or with `Accept: text/csv` one line per item, then the "
                   "`total`, the `transfer_fee` and the amount `sent`"}}
PayoutId = Annotated[str, Path(pattern=ID_PATTERN)]


def load(db: Db, schema: str, payout_id: str) -> tuple[st.Statement, str]:
    """The payout's statement and its status now; 404 `payout_not_found`."""
    with db.connection(snapshot=True) as conn:
        found = tax_queries.statement(conn, schema, payout_id)
    if found is None:
        raise ApiError(404, "payout_not_found", f"no payout {payout_id}", "payout_id")
    return found


@router.get("/v1/statements/{payout_id}", response_model=tax_models.Statement,
            responses={**ERRORS, **NOT_FOUND, **CSV})
def statement(request: Request, _: Reader, db: Db, schema: Schema,
              payout_id: PayoutId) -> Response:
    """A payout's payment statement: each item's gross, fee, fee tax, withholding
    and net, the transfer fee, the amount sent, the bank account (masked)."""
    found, status = load(db, schema, payout_id)
    if wants_csv(request):
        return Response(to_csv(st.LINE_COLUMNS, st.csv_lines(found)),
                        media_type="text/csv; charset=utf-8")
    return render(st.to_json(found, status))


@router.get("/v1/statements/{payout_id}/pdf", responses={**ERRORS, **NOT_FOUND, **PDF},
            response_class=Response)
def statement_pdf(_: Reader, db: Db, schema: Schema, payout_id: PayoutId) -> Response:
    """The statement as an A4 PDF (Japanese text), the same bytes on every render;
    500 `document_changed` if it no longer matches the copy stored for it."""
    found, _status = load(db, schema, payout_id)
    return pdf_response(db, STATEMENT_KIND, payout_id, pdf.render(st.document(found)),
                        f"the statement of {payout_id}")
