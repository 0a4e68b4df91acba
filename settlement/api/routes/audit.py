"""`/v1/audit/*` (auditors only): the audit log with each event's hashes, and the
hash chain recomputed over the event store."""

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from settlement.api import models
from settlement.api.auth import Auditor
from settlement.api.config import Schema
from settlement.api.database import Db
from settlement.api.openapi import CSV_ROWS, ERRORS
from settlement.api.params import DEFAULT_LIMIT, ID_PATTERN, Limit
from settlement.api.queries import audit as audit_queries
from settlement.api.render import iso, next_after, render
from settlement.api.verifier import Verifier

router = APIRouter(tags=["audit"])


@router.get("/v1/audit/events", response_model=models.AuditEvents,
            responses={**ERRORS, **CSV_ROWS})
def audit_events(request: Request, _: Auditor, db: Db, schema: Schema,
                 job_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                 after: Annotated[int, Query(ge=0, le=2**62,
                                             description="last position seen")] = 0,
                 limit: Limit = DEFAULT_LIMIT) -> Response:
    """The audit log in global order, with each event's hash and prev_hash."""
    with db.connection() as conn:
        rows = audit_queries.audit_events(conn, schema, job_id=job_id, after=after, limit=limit)
    out = [{**row, "time": iso(row["time"])} for row in rows]
    return render({"events": out}, request, rows=out, row_model=models.AuditEvent,
                  next_after=next_after(out, limit, "position"))


@router.get("/v1/audit/verify", response_model=models.Verification, responses=ERRORS)
def audit_verify(_: Auditor, verifier: Verifier) -> Response:
    """Recompute the hash chain over the event store (SPEC §8)."""
    result = verifier.verify()
    return render({"ok": result.ok, "events_checked": result.events_checked,
                   "first_bad_position": result.first_bad_position})
