"""`/v1/receivables`: workers' claims per item, a page at a time, with the totals
over every matching row."""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from settlement.api import models
from settlement.api.auth import Reader
from settlement.api.config import Config
from settlement.api.database import Db
from settlement.api.openapi import CSV_ROWS, ERRORS
from settlement.api.params import (
    DEFAULT_LIMIT,
    ID_PATTERN,
    AsOf,
    Currency,
    Limit,
    instant,
    pick_currency,
)
from settlement.api.queries import receivables as receivable_queries
from settlement.api.render import amount, iso, render
from settlement.projections.model.receivables import ReceivableRow, is_overdue

router = APIRouter(tags=["receivables"])
CURSOR_PATTERN = r"^[A-Za-z0-9._:-]{1,128}/[A-Za-z0-9._:-]{1,128}$"


@router.get("/v1/receivables", response_model=models.Receivables,
            responses={**ERRORS, **CSV_ROWS})
def receivables(request: Request, _: Reader, db: Db, config: Config,
                worker_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                client_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                currency: Currency = None, as_of: AsOf = None,
                after: Annotated[str | None, Query(
                    pattern=CURSOR_PATTERN,
                    description="`job_id/item_id` of the last row seen")] = None,
                limit: Limit = DEFAULT_LIMIT) -> Response:
    """Workers' claims per item: protected when held in escrow or payable, with the
    Freelance Act deadline; totals over every matching row."""
    at = instant("as_of", as_of)
    now = at or config.now()
    with db.connection() as conn:
        chosen = pick_currency(currency, lambda: receivable_queries.receivable_currencies(
            conn, config.schema, worker_id=worker_id, client_id=client_id, as_of=at))
        if chosen:
            rows, totals = receivable_queries.receivables_page(
                conn, config.schema, chosen, now=now, worker_id=worker_id,
                client_id=client_id, as_of=at, after=cursor(after), limit=limit)
        else:
            rows, totals = [], receivable_queries.ReceivableTotals(*(Decimal(0),) * 4)
    out = [receivable_row(r, paid, now) for r, paid in rows]
    body = {"as_of": iso(at), "currency": chosen, "rows": out, "totals": {
        "protected": amount(totals.protected), "unprotected": amount(totals.unprotected),
        "payable": amount(totals.payable), "overdue": amount(totals.overdue)}}
    last = f"{out[-1]['job_id']}/{out[-1]['item_id']}" if len(out) >= limit else None
    return render(body, request, rows=out, row_model=models.ReceivableRow, next_after=last)


def cursor(after: str | None) -> tuple[str, str] | None:
    """`job_id/item_id` (CURSOR_PATTERN) as the pair the page continues after."""
    if not after:
        return None
    job_id, item_id = after.split("/", 1)
    return job_id, item_id


def receivable_row(r: ReceivableRow, paid: bool, now: datetime) -> dict[str, Any]:
    return {"job_id": r.job_id, "item_id": r.item_id, "worker_id": r.worker_id,
            "client_id": r.client_id, "state": r.state, "amount": amount(r.amount),
            "net": amount(r.net), "protected": r.protected,
            "delivered_at": iso(r.delivered_at), "due_by": iso(r.due_by),
            "overdue": is_overdue(r, paid, now)}
