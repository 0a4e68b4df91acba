"""An escrow by job id: the summary and items of `/v1/escrows/{job_id}` (the
API's query and shape) and the timeline of the job's events from the audit log
(what happened when; the hashes stay on the auditors' pages)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response

from settlement.api.config import Config
from settlement.api.database import Db
from settlement.api.params import ID_PATTERN
from settlement.api.queries import audit as audit_queries
from settlement.api.queries import escrows as escrow_queries
from settlement.api.routes.escrows import escrow_body
from settlement.console.guard import SignedIn
from settlement.console.params import IdParam
from settlement.console.render import base, page

router = APIRouter()
TIMELINE_EVENTS_MAX = 500  # a job has tens of events; more are left to the audit log


@router.get("/escrows")
def find(request: Request, _: SignedIn, job_id: IdParam = None) -> Response:
    """The search box's target: the escrow's page, or the form again."""
    if job_id:
        return RedirectResponse(f"{base(request)}/escrows/{job_id}", status_code=303)
    return page(request, "escrow.html", job_id="", escrow=None, delivered={}, timeline=[])


@router.get("/escrows/{job_id}")
def escrow(request: Request, _: SignedIn, db: Db, config: Config,
           job_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> Response:
    with db.connection(snapshot=True) as conn:
        found = escrow_queries.escrow(conn, config.schema, job_id)
        timeline = audit_queries.audit_events(conn, config.schema, job_id=job_id,
                                              limit=TIMELINE_EVENTS_MAX) if found else []
    if found is None:
        return page(request, "escrow.html", status_code=404, job_id=job_id, escrow=None,
                    delivered={}, timeline=[])
    return page(request, "escrow.html", job_id=job_id, escrow=escrow_body(found),
                delivered={i["item_id"]: i["delivered_at"] for i in found["items"]},
                timeline=timeline)
