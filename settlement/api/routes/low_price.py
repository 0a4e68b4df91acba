"""`/v1/reports/low-price`: the items whose amount came at most 10 % above their
fee plan's floor (the low-price guard, `settlement.core.floors`), a page at a
time, for finance to review against the Crowdsourcing Association's check item 8
("no unfairly low pay")."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from settlement.api import models
from settlement.api.auth import Reader
from settlement.api.config import Schema
from settlement.api.database import Db
from settlement.api.openapi import CSV_ROWS, ERRORS
from settlement.api.params import DEFAULT_LIMIT, ID_PATTERN, Currency, Limit
from settlement.api.queries import low_price as low_price_queries
from settlement.api.render import amount, render
from settlement.api.routes.receivables import CURSOR_PATTERN, cursor
from settlement.core.floors import NEAR_FLOOR_MARGIN

router = APIRouter(tags=["reports"])


@router.get("/v1/reports/low-price", response_model=models.LowPrice,
            responses={**ERRORS, **CSV_ROWS})
def low_price(request: Request, _: Reader, db: Db, schema: Schema,
              plan: Annotated[str | None, Query(pattern=ID_PATTERN,
                                                description="one fee plan's items")] = None,
              currency: Currency = None,
              after: Annotated[str | None, Query(
                  pattern=CURSOR_PATTERN,
                  description="`job_id/item_id` of the last row seen")] = None,
              limit: Limit = DEFAULT_LIMIT) -> Response:
    """Items with floor ≤ amount ≤ floor × 1.10, the floor being the `minimum_item`
    of the fee plan their job recorded when it opened; jobs without a floor have
    none. By job and item."""
    with db.connection() as conn:
        found = low_price_queries.low_price_page(conn, schema, plan=plan, currency=currency,
                                                 after=cursor(after), limit=limit)
    rows = [{"job_id": r.job_id, "item_id": r.item_id, "kind": r.kind, "state": r.state,
             "client_id": r.client_id, "worker_id": r.worker_id, "currency": r.currency,
             "amount": amount(r.amount), "plan": r.plan, "floor": amount(r.floor)}
            for r in found]
    last = f"{rows[-1]['job_id']}/{rows[-1]['item_id']}" if len(rows) >= limit else None
    return render({"margin": amount(NEAR_FLOOR_MARGIN), "rows": rows}, request, rows=rows,
                  row_model=models.LowPriceRow, next_after=last)
