"""Payouts: the rows of `/v1/payouts` (the API's query and row shape), by id,
optionally of one status; and a payout run (the one completed last, or the one
asked for): its window and summary as `/v1/payout-runs/{run_id}`, the parties it
held or carried over with their reasons as `/v1/payouts/held`, and its Zengin
総合振込 file, served by the API's own route (the bytes the run stored, checked
against their SHA-256). Statements join this page when the tax issue adds them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from settlement.api import models
from settlement.api.config import Config
from settlement.api.database import Db
from settlement.api.params import DEFAULT_LIMIT, ID_PATTERN, Limit
from settlement.api.queries import payout_runs as run_queries
from settlement.api.queries import payouts as payout_queries
from settlement.api.render import next_after
from settlement.api.routes import payout_runs as run_routes
from settlement.api.routes.payouts import payout_row
from settlement.console.guard import SignedIn
from settlement.console.params import ID_CHARS, IdParam, StatusParam, given
from settlement.console.render import csv_download, page

router = APIRouter()
STATUSES = ("initiated", "settled", "failed")  # the payouts projection's statuses
HeldAfter = Annotated[str | None, Query(pattern=rf"^((worker|client)/{ID_CHARS}/[A-Z]{{3}})?$")]


def _payouts(db: Db, config: Config, status: str | None, after: str | None,
             limit: int) -> dict[str, Any]:
    with db.connection() as conn:
        rows = payout_queries.payouts(conn, config.schema, status=given(status),
                                      after=given(after), limit=limit)
    out = [payout_row(p) for p in rows]
    return {"payouts": out, "status": status or "", "statuses": STATUSES,
            "next_after": next_after(out, limit, "payout_id")}


def _run(db: Db, config: Config, run_id: str | None, held_after: str | None,
         limit: int) -> dict[str, Any]:
    """The run asked for (else the one completed last) and a page of its holds."""
    cursor: run_queries.HoldCursor | None = None
    if held_after:
        party_type, party_id, currency = held_after.split("/", 2)
        cursor = (party_type, party_id, currency)
    with db.connection(snapshot=True) as conn:
        chosen = given(run_id) or run_queries.latest_completed(conn, config.schema)
        run = run_queries.run(conn, config.schema, chosen) if chosen else None
        holds, _ = run_queries.holds(conn, config.schema, chosen, now=config.now(),
                                          after=cursor, limit=limit) if run and chosen \
            else ([], [])
    held = [run_routes.held_row(h) for h in holds]
    return {"run": run, "run_id": chosen, "holds": held,
            "held_next": (f"{held[-1]['party_type']}/{held[-1]['party_id']}/"
                          f"{held[-1]['currency']}" if len(held) >= limit else None)}


@router.get("/payouts")
def payouts(request: Request, _: SignedIn, db: Db, config: Config, status: StatusParam = None,
            after: IdParam = None, run_id: IdParam = None, held_after: HeldAfter = None,
            limit: Limit = DEFAULT_LIMIT) -> Response:
    return page(request, "payouts.html", **_payouts(db, config, status, after, limit),
                **_run(db, config, run_id, held_after, limit))


@router.get("/payouts.csv")
def payouts_csv(request: Request, _: SignedIn, db: Db, config: Config,
                status: StatusParam = None, after: IdParam = None,
                limit: Limit = DEFAULT_LIMIT) -> Response:
    data = _payouts(db, config, status, after, limit)
    return csv_download(list(models.Payout.model_fields), data["payouts"], "payouts",
                        data["next_after"])


@router.get("/payouts/held.csv")
def held_csv(request: Request, _: SignedIn, db: Db, config: Config, run_id: IdParam = None,
             held_after: HeldAfter = None, limit: Limit = DEFAULT_LIMIT) -> Response:
    data = _run(db, config, run_id, held_after, limit)
    return csv_download(list(models.HeldRow.model_fields), data["holds"],
                        f"held-{data['run_id']}", data["held_next"])


@router.get("/payout-runs/{run_id}/zengin")
def zengin(_: SignedIn, db: Db, run_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> Response:
    """The run's 総合振込 file, as `/v1/payout-runs/{run_id}/zengin` serves it."""
    return run_routes.zengin("console", db, run_id)
