"""`/v1/payouts`: payouts by id, optionally of one status, a page at a time."""

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from settlement.api import models
from settlement.api.auth import Reader
from settlement.api.config import Schema
from settlement.api.database import Db
from settlement.api.openapi import CSV_ROWS, ERRORS
from settlement.api.params import DEFAULT_LIMIT, ID_PATTERN, STATUS_PATTERN, Limit
from settlement.api.queries import payouts as payout_queries
from settlement.api.render import amount, next_after, render

router = APIRouter(tags=["payouts"])


@router.get("/v1/payouts", response_model=models.Payouts, responses={**ERRORS, **CSV_ROWS})
def payouts(request: Request, _: Reader, db: Db, schema: Schema,
            status: Annotated[str | None, Query(pattern=STATUS_PATTERN)] = None,
            after: Annotated[str | None, Query(pattern=ID_PATTERN,
                                               description="last payout_id seen")] = None,
            limit: Limit = DEFAULT_LIMIT) -> Response:
    """Payouts by id, optionally of one status."""
    with db.connection() as conn:
        rows = payout_queries.payouts(conn, schema, status=status, after=after, limit=limit)
    out = [payout_row(p) for p in rows]
    return render({"payouts": out}, request, rows=out, row_model=models.Payout,
                  next_after=next_after(out, limit, "payout_id"))


def payout_row(p: dict[str, Any]) -> dict[str, Any]:
    return {"payout_id": p["payout_id"], "party_type": p["party_type"],
            "party_id": p["party_id"], "currency": p["currency"],
            "amount": amount(p["amount"]), "status": p["status"], "items": p["items"],
            "transfer_fee": amount(p["transfer_fee"]),
            "sent": amount(p["amount"] - p["transfer_fee"])}
