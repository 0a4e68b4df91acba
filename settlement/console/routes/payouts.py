"""Payouts: the rows of `/v1/payouts` (the API's query and row shape), by id,
optionally of one status. Payout runs with their bank files, held parties and
statements join this page when the payout-runs issue adds them to the API."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from settlement.api import models
from settlement.api.config import Config
from settlement.api.database import Db
from settlement.api.params import DEFAULT_LIMIT, Limit
from settlement.api.queries import payouts as payout_queries
from settlement.api.render import next_after
from settlement.api.routes.payouts import payout_row
from settlement.console.guard import SignedIn
from settlement.console.params import IdParam, StatusParam, given
from settlement.console.render import csv_download, page

router = APIRouter()
STATUSES = ("initiated", "settled", "failed")  # the payouts projection's statuses


def _payouts(db: Db, config: Config, status: str | None, after: str | None,
             limit: int) -> dict[str, Any]:
    with db.connection() as conn:
        rows = payout_queries.payouts(conn, config.schema, status=given(status),
                                      after=given(after), limit=limit)
    out = [payout_row(p) for p in rows]
    return {"payouts": out, "status": status or "", "statuses": STATUSES,
            "next_after": next_after(out, limit, "payout_id")}


@router.get("/payouts")
def payouts(request: Request, _: SignedIn, db: Db, config: Config, status: StatusParam = None,
            after: IdParam = None, limit: Limit = DEFAULT_LIMIT) -> Response:
    return page(request, "payouts.html", **_payouts(db, config, status, after, limit))


@router.get("/payouts.csv")
def payouts_csv(request: Request, _: SignedIn, db: Db, config: Config,
                status: StatusParam = None, after: IdParam = None,
                limit: Limit = DEFAULT_LIMIT) -> Response:
    data = _payouts(db, config, status, after, limit)
    return csv_download(list(models.Payout.model_fields), data["payouts"], "payouts",
                        data["next_after"])
