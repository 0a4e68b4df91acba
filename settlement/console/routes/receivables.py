"""Receivables: the totals and rows of `/v1/receivables` (the API's query and row
shape), after the overdue claims listed first, oldest deadline first. Filters by
worker and client; "as of" a day in Japan as the API's `as_of`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from settlement.api import models
from settlement.api.config import Config
from settlement.api.database import Db
from settlement.api.params import DEFAULT_LIMIT, Limit
from settlement.api.queries import balances as balance_queries
from settlement.api.queries import receivables as receivable_queries
from settlement.api.render import amount
from settlement.api.routes.receivables import cursor, receivable_row
from settlement.console.guard import SignedIn
from settlement.console.params import (
    ID_CHARS,
    CurrencyParam,
    DayParam,
    IdParam,
    end_of,
    given,
    pick,
)
from settlement.console.queries.overdue import Cursor, overdue
from settlement.console.render import csv_download, page

router = APIRouter()
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
After = Annotated[str | None, Query(pattern=rf"^({ID_CHARS}/{ID_CHARS})?$")]
OverdueAfter = Annotated[str | None, Query(pattern=rf"^([0-9]{{1,19}}/{ID_CHARS}/{ID_CHARS})?$")]


def overdue_key(row: dict[str, Any]) -> str:
    """`overdue_after` for the page after `row`: its deadline in µs, job and item."""
    micros = (datetime.fromisoformat(row["due_by"]) - EPOCH) // timedelta(microseconds=1)
    return f"{micros}/{row['job_id']}/{row['item_id']}"


def overdue_cursor(key: str | None) -> Cursor | None:
    if not key:
        return None
    micros, job_id, item_id = key.split("/", 2)
    return EPOCH + timedelta(microseconds=int(micros)), job_id, item_id


def _read(db: Db, config: Config, worker_id: str | None, client_id: str | None,
          currency: str | None, as_of: str | None, limit: int, *,
          after: str | None = None, overdue_after: str | None = None,
          claims: bool = True, late: bool = True) -> dict[str, Any]:
    """The page's data: `claims` the API's page and totals, `late` the overdue page."""
    at = end_of("as_of", as_of)
    now = at or config.now()
    worker, client = given(worker_id), given(client_id)
    data: dict[str, Any] = {"as_of": as_of or "", "worker_id": worker_id or "",
                            "client_id": client_id or "", "rows": [], "overdue_rows": [],
                            "next_after": None, "overdue_next": None}
    with db.connection(snapshot=True) as conn:
        data["currencies"] = balance_queries.balance_currencies(conn, config.schema)
        chosen = data["currency"] = pick(given(currency), data["currencies"])
        if chosen and claims:
            rows, totals = receivable_queries.receivables_page(
                conn, config.schema, chosen, now=now, worker_id=worker, client_id=client,
                as_of=at, after=cursor(given(after)), limit=limit)
            data["rows"] = out = [receivable_row(r, paid, now) for r, paid in rows]
            data["totals"] = {name: amount(getattr(totals, name))
                              for name in ("protected", "unprotected", "payable", "overdue")}
            if len(out) >= limit:
                data["next_after"] = f"{out[-1]['job_id']}/{out[-1]['item_id']}"
        if chosen and late:
            found = overdue(conn, config.schema, chosen, now=now, worker_id=worker,
                            client_id=client, as_of=at,
                            after=overdue_cursor(given(overdue_after)), limit=limit)
            data["overdue_count"] = found.count
            data["overdue_rows"] = out = [receivable_row(r, False, now) for r in found.rows]
            if len(out) >= limit:
                data["overdue_next"] = overdue_key(out[-1])
    return data


@router.get("/receivables")
def receivables(request: Request, _: SignedIn, db: Db, config: Config,
                worker_id: IdParam = None, client_id: IdParam = None,
                currency: CurrencyParam = None, as_of: DayParam = None, after: After = None,
                overdue_after: OverdueAfter = None, limit: Limit = DEFAULT_LIMIT) -> Response:
    data = _read(db, config, worker_id, client_id, currency, as_of, limit, after=after,
                 overdue_after=overdue_after)
    return page(request, "receivables.html", **data)


@router.get("/receivables.csv")
def receivables_csv(request: Request, _: SignedIn, db: Db, config: Config,
                    worker_id: IdParam = None, client_id: IdParam = None,
                    currency: CurrencyParam = None, as_of: DayParam = None,
                    after: After = None, limit: Limit = DEFAULT_LIMIT) -> Response:
    data = _read(db, config, worker_id, client_id, currency, as_of, limit, after=after,
                 late=False)
    return csv_download(list(models.ReceivableRow.model_fields), data["rows"],
                        f"receivables-{data['currency']}", data["next_after"])


@router.get("/receivables/overdue.csv")
def overdue_csv(request: Request, _: SignedIn, db: Db, config: Config,
                worker_id: IdParam = None, client_id: IdParam = None,
                currency: CurrencyParam = None, as_of: DayParam = None,
                overdue_after: OverdueAfter = None, limit: Limit = DEFAULT_LIMIT) -> Response:
    data = _read(db, config, worker_id, client_id, currency, as_of, limit,
                 overdue_after=overdue_after, claims=False)
    return csv_download(list(models.ReceivableRow.model_fields), data["overdue_rows"],
                        f"receivables-overdue-{data['currency']}", data["overdue_next"])
