"""Auditors' pages (the 403 page for finance): the audit log of `/v1/audit/events`
(the API's query), optionally of one job; the hash chain recomputed over the
event store on request (the `/v1/audit/verify` verifier, its last result kept
for the page); the replay status."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from settlement.api import models
from settlement.api.config import Config
from settlement.api.database import Db
from settlement.api.params import DEFAULT_LIMIT, Limit
from settlement.api.queries import audit as audit_queries
from settlement.api.render import iso, next_after
from settlement.console.guard import AuditorOnly, check_csrf, posted_form
from settlement.console.params import IdParam, PositionAfter, given
from settlement.console.queries.status import replay_status
from settlement.console.render import base, csv_download, page
from settlement.infra.logging import get_logger

router = APIRouter(prefix="/audit")


def _events(db: Db, config: Config, job_id: str | None, after: int,
            limit: int) -> dict[str, Any]:
    with db.connection() as conn:
        rows = audit_queries.audit_events(conn, config.schema, job_id=given(job_id),
                                          after=after, limit=limit)
    out = [{**row, "time": iso(row["time"])} for row in rows]  # as the API writes them
    return {"events": out, "job_id": job_id or "",
            "next_after": next_after(out, limit, "position")}


@router.get("/events")
def events(request: Request, _: AuditorOnly, db: Db, config: Config, job_id: IdParam = None,
           after: PositionAfter = 0, limit: Limit = DEFAULT_LIMIT) -> Response:
    return page(request, "audit_events.html", **_events(db, config, job_id, after, limit))


@router.get("/events.csv")
def events_csv(request: Request, _: AuditorOnly, db: Db, config: Config,
               job_id: IdParam = None, after: PositionAfter = 0,
               limit: Limit = DEFAULT_LIMIT) -> Response:
    data = _events(db, config, job_id, after, limit)
    return csv_download(list(models.AuditEvent.model_fields), data["events"], "audit-events",
                        data["next_after"])


@router.get("/verify")
def verification(request: Request, session: AuditorOnly) -> Response:
    return page(request, "audit_verify.html", verified=request.app.state.verified,
                csrf=session.csrf)


@router.post("/verify")
async def verify(request: Request, session: AuditorOnly, config: Config) -> Response:
    """Recompute the chain (seconds per 100,000 events, one at a time), keep the
    result for the page and show it (post, then redirect, then get)."""
    check_csrf(await posted_form(request), session.csrf)
    result = await run_in_threadpool(request.app.state.verifier.verify)
    request.app.state.verified = {**asdict(result), "at": config.now()}
    get_logger(component="console").info("console.chain_verified", ok=result.ok,
                                         events_checked=result.events_checked)
    return RedirectResponse(f"{base(request)}/audit/verify", status_code=303)


@router.get("/replay")
def replay(request: Request, _: AuditorOnly, db: Db, config: Config) -> Response:
    with db.connection(snapshot=True) as conn:
        status = replay_status(conn, config.schema)
    return page(request, "audit_replay.html", status=status)
