"""`/v1/accounts/{account}/entries`: an account's entries in ledger order with the
running balance after each, a page at a time."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from settlement.api import models
from settlement.api.auth import Reader
from settlement.api.config import Schema
from settlement.api.database import Db
from settlement.api.openapi import CSV_ROWS, ERRORS
from settlement.api.params import (
    ACCOUNT_PATTERN,
    DEFAULT_LIMIT,
    Currency,
    Limit,
    instant,
    pick_currency,
)
from settlement.api.queries import entries as entry_queries
from settlement.api.render import amount, iso, next_after, render

router = APIRouter(tags=["ledger"])


@router.get("/v1/accounts/{account}/entries", response_model=models.Entries,
            responses={**ERRORS, **CSV_ROWS})
def entries(request: Request, _: Reader, db: Db, schema: Schema,
            account: Annotated[str, Path(pattern=ACCOUNT_PATTERN)],
            currency: Currency = None,
            start: Annotated[str | None, Query(alias="from", json_schema_extra={
                "format": "date-time"}, description="entries with time ≥ from")] = None,
            end: Annotated[str | None, Query(alias="to", json_schema_extra={
                "format": "date-time"}, description="entries with time ≤ to")] = None,
            after: Annotated[int, Query(ge=0, le=2**62, description=(
                "last position seen"))] = 0,
            limit: Limit = DEFAULT_LIMIT) -> Response:
    """The account's entries in ledger order with the running balance after each
    (counting every earlier entry). A page never ends inside a position."""
    t0, t1 = instant("from", start), instant("to", end)
    with db.connection(snapshot=True) as conn:
        chosen = pick_currency(currency, lambda: entry_queries.account_currencies(
            conn, schema, account))
        rows = (entry_queries.account_entries(conn, schema, account, chosen, start=t0, end=t1,
                                              after=after, limit=limit) if chosen else [])
    out = [entry_row(e) for e in rows]
    body = {"account": account, "currency": chosen, "entries": out}
    return render(body, request, rows=out, row_model=models.EntryRow,
                  next_after=next_after(out, limit, "position"))


def entry_row(e: entry_queries.EntryRow) -> dict[str, Any]:
    return {"position": e.position, "time": iso(e.time), "job_id": e.job_id,
            "event_type": e.event_type, "side": e.side, "amount": amount(e.amount),
            "running_balance": amount(e.running_balance)}
