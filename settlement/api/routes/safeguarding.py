"""`/v1/safeguarding`: safeguarded cash against every liability (client money owed)."""

from fastapi import APIRouter
from fastapi.responses import Response

from settlement.api import models
from settlement.api.auth import Reader
from settlement.api.config import Schema
from settlement.api.database import Db
from settlement.api.openapi import ERRORS
from settlement.api.params import AsOf, Currency, instant, pick_currency
from settlement.api.queries import balances as balance_queries
from settlement.api.queries import safeguarding as safeguarding_queries
from settlement.api.render import amount, render

router = APIRouter(tags=["ledger"])
NOTHING_SAFEGUARDED = {"currency": None, "cash": "0", "obligations": "0",
                       "coverage_ratio": None, "shortfall": "0"}


@router.get("/v1/safeguarding", response_model=models.Safeguarding, responses=ERRORS)
def safeguarding(_: Reader, db: Db, schema: Schema, currency: Currency = None,
                 as_of: AsOf = None) -> Response:
    """Safeguarded cash against every liability (client money owed)."""
    at = instant("as_of", as_of)
    with db.connection() as conn:
        chosen = pick_currency(currency, lambda: balance_queries.balance_currencies(
            conn, schema, as_of=at))
        s = safeguarding_queries.safeguarding(conn, schema, chosen, at) if chosen else None
    if s is None:
        return render(NOTHING_SAFEGUARDED)
    return render({"currency": s.currency, "cash": amount(s.cash),
                   "obligations": amount(s.obligations),
                   "coverage_ratio": None if s.coverage_ratio is None else amount(
                       s.coverage_ratio), "shortfall": amount(s.shortfall)})
