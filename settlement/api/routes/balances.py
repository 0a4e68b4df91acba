"""`/v1/balances` and `/v1/trial-balance`: the balances of one currency per
account, a page at a time, with the totals over every matching account."""

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from settlement.api import models
from settlement.api.auth import Reader
from settlement.api.config import Schema
from settlement.api.database import Db
from settlement.api.openapi import CSV_ROWS, ERRORS
from settlement.api.params import (
    ACCOUNT_PATTERN,
    DEFAULT_LIMIT,
    AsOf,
    Currency,
    Limit,
    instant,
    pick_currency,
)
from settlement.api.queries import balances as balance_queries
from settlement.api.render import amount, iso, next_after, render
from settlement.ledger.balances import AccountBalance

router = APIRouter(tags=["ledger"])


@router.get("/v1/balances", response_model=models.Balances, responses={**ERRORS, **CSV_ROWS})
def balances(request: Request, _: Reader, db: Db, schema: Schema,
             prefix: Annotated[str | None, Query(pattern=ACCOUNT_PATTERN)] = None,
             account: Annotated[str | None, Query(pattern=ACCOUNT_PATTERN)] = None,
             currency: Currency = None, as_of: AsOf = None,
             after: Annotated[str | None, Query(pattern=ACCOUNT_PATTERN,
                                                description="last account code seen")] = None,
             limit: Limit = DEFAULT_LIMIT) -> Response:
    """Balances per account of one currency, filtered by code prefix or exact code."""
    at = instant("as_of", as_of)
    with db.connection() as conn:
        chosen = pick_currency(currency, lambda: balance_queries.balance_currencies(
            conn, schema, as_of=at, prefix=prefix, account=account))
        rows, _d, _c, total = (balance_queries.balances_page(
            conn, schema, chosen, as_of=at, prefix=prefix, account=account, after=after,
            limit=limit) if chosen else ([], Decimal(0), Decimal(0), Decimal(0)))
    accounts = [account_row(b) for b in rows]
    body = {"as_of": iso(at), "currency": chosen, "accounts": accounts, "total": amount(total)}
    return render(body, request, rows=accounts, row_model=models.AccountRow,
                  next_after=next_after(accounts, limit, "account"))


@router.get("/v1/trial-balance", response_model=models.TrialBalance,
            responses={**ERRORS, **CSV_ROWS})
def trial_balance(request: Request, _: Reader, db: Db, schema: Schema,
                  currency: Currency = None, as_of: AsOf = None,
                  after: Annotated[str | None, Query(pattern=ACCOUNT_PATTERN)] = None,
                  limit: Limit = DEFAULT_LIMIT) -> Response:
    """Every account of one currency with the total debits and credits (equal when
    the ledger balances)."""
    at = instant("as_of", as_of)
    with db.connection() as conn:
        chosen = pick_currency(currency, lambda: balance_queries.balance_currencies(
            conn, schema, as_of=at))
        rows, debits, credits, _t = (balance_queries.balances_page(
            conn, schema, chosen, as_of=at, after=after, limit=limit)
            if chosen else ([], Decimal(0), Decimal(0), Decimal(0)))
    accounts = [account_row(b) for b in rows]
    body = {"as_of": iso(at), "currency": chosen, "accounts": accounts,
            "total_debits": amount(debits), "total_credits": amount(credits)}
    return render(body, request, rows=accounts, row_model=models.AccountRow,
                  next_after=next_after(accounts, limit, "account"))


def account_row(b: AccountBalance) -> dict[str, str]:
    return {"account": b.account, "debits": amount(b.debits), "credits": amount(b.credits),
            "balance": amount(b.balance)}
