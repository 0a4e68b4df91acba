"""Trial balance, balances and an account's entries: each a page of the API's
rows (`/v1/trial-balance`, `/v1/balances`, `/v1/accounts/{account}/entries`,
read by the API's queries and shaped by its row functions), as a table and as
the API's CSV of the same page."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from settlement.api import models
from settlement.api.config import Config
from settlement.api.database import Db
from settlement.api.params import ACCOUNT_PATTERN, DEFAULT_LIMIT, Limit
from settlement.api.queries import balances as balance_queries
from settlement.api.queries import entries as entry_queries
from settlement.api.render import amount, next_after
from settlement.api.routes.balances import account_row
from settlement.api.routes.entries import entry_row
from settlement.console.guard import SignedIn
from settlement.console.params import (
    AccountAfter,
    CurrencyParam,
    DayParam,
    PositionAfter,
    Prefix,
    end_of,
    given,
    pick,
    start_of,
)
from settlement.console.render import csv_download, page

router = APIRouter()
# The prefixes the balances page offers (SPEC §6 accounts).
PREFIXES = ("assets:", "liabilities:escrow:", "liabilities:worker_payable:",
            "liabilities:client_refundable:", "liabilities:", "revenue:", "expenses:")
AccountPath = Annotated[str, Path(pattern=ACCOUNT_PATTERN)]


def _balances(request: Request, db: Db, config: Config, currency: str | None,
              as_of: str | None, after: str | None, limit: int,
              prefix: str | None = None) -> dict[str, Any]:
    """A page of balances of one currency with the totals over every matching account."""
    at = end_of("as_of", as_of)
    with db.connection(snapshot=True) as conn:
        currencies = balance_queries.balance_currencies(conn, config.schema)
        chosen = pick(given(currency), currencies)
        rows, debits, credits, total = balance_queries.balances_page(
            conn, config.schema, chosen, as_of=at, prefix=given(prefix), after=given(after),
            limit=limit) if chosen else ([], 0, 0, 0)
    accounts = [account_row(b) for b in rows]
    return {"currencies": currencies, "currency": chosen, "as_of": as_of or "", "at": at,
            "accounts": accounts, "total_debits": amount(debits),
            "total_credits": amount(credits), "total": amount(total),
            "next_after": next_after(accounts, limit, "account")}


@router.get("/trial-balance")
def trial_balance(request: Request, _: SignedIn, db: Db, config: Config,
                  currency: CurrencyParam = None, as_of: DayParam = None,
                  after: AccountAfter = None, limit: Limit = DEFAULT_LIMIT) -> Response:
    data = _balances(request, db, config, currency, as_of, after, limit)
    return page(request, "trial_balance.html", **data)


@router.get("/trial-balance.csv")
def trial_balance_csv(request: Request, _: SignedIn, db: Db, config: Config,
                      currency: CurrencyParam = None, as_of: DayParam = None,
                      after: AccountAfter = None, limit: Limit = DEFAULT_LIMIT) -> Response:
    data = _balances(request, db, config, currency, as_of, after, limit)
    return csv_download(list(models.AccountRow.model_fields), data["accounts"],
                        f"trial-balance-{data['currency']}", data["next_after"])


@router.get("/balances")
def balances(request: Request, _: SignedIn, db: Db, config: Config,
             currency: CurrencyParam = None, as_of: DayParam = None, prefix: Prefix = None,
             after: AccountAfter = None, limit: Limit = DEFAULT_LIMIT) -> Response:
    data = _balances(request, db, config, currency, as_of, after, limit, prefix)
    return page(request, "balances.html", prefixes=PREFIXES, prefix=prefix or "", **data)


@router.get("/balances.csv")
def balances_csv(request: Request, _: SignedIn, db: Db, config: Config,
                 currency: CurrencyParam = None, as_of: DayParam = None, prefix: Prefix = None,
                 after: AccountAfter = None, limit: Limit = DEFAULT_LIMIT) -> Response:
    data = _balances(request, db, config, currency, as_of, after, limit, prefix)
    return csv_download(list(models.AccountRow.model_fields), data["accounts"],
                        f"balances-{data['currency']}", data["next_after"])


def _entries(db: Db, config: Config, account: str, currency: str | None,
             start: datetime | None, end: datetime | None, after: int,
             limit: int) -> dict[str, Any]:
    with db.connection(snapshot=True) as conn:
        currencies = entry_queries.account_currencies(conn, config.schema, account)
        chosen = pick(given(currency), currencies)
        rows = entry_queries.account_entries(conn, config.schema, account, chosen, start=start,
                                             end=end, after=after, limit=limit) if chosen else []
    out = [entry_row(e) for e in rows]
    return {"account": account, "currencies": currencies, "currency": chosen, "entries": out,
            "next_after": next_after(out, limit, "position")}


@router.get("/accounts/{account}/entries")
def entries(request: Request, _: SignedIn, db: Db, config: Config, account: AccountPath,
            currency: CurrencyParam = None, start: DayParam = None, end: DayParam = None,
            after: PositionAfter = 0, limit: Limit = DEFAULT_LIMIT) -> Response:
    data = _entries(db, config, account, currency, start_of("start", start),
                    end_of("end", end), after, limit)
    return page(request, "entries.html", start=start or "", end=end or "", **data)


@router.get("/accounts/{account}/entries.csv")
def entries_csv(request: Request, _: SignedIn, db: Db, config: Config, account: AccountPath,
                currency: CurrencyParam = None, start: DayParam = None, end: DayParam = None,
                after: PositionAfter = 0, limit: Limit = DEFAULT_LIMIT) -> Response:
    data = _entries(db, config, account, currency, start_of("start", start),
                    end_of("end", end), after, limit)
    return csv_download(list(models.EntryRow.model_fields), data["entries"],
                        f"entries-{data['currency']}", data["next_after"])
