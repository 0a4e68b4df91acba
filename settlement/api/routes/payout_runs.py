"""`/v1/payout-runs/{run_id}` (a run's window and summary), its Zengin file
(`…/zengin`, the bytes the run stored), and `/v1/payouts/held` (what a run held
or carried over, and why; SPEC §11)."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from settlement.api import models
from settlement.api.auth import Reader
from settlement.api.config import Config, Schema
from settlement.api.database import Db
from settlement.api.openapi import CSV_ROWS, ERRORS, NOT_FOUND
from settlement.api.params import DEFAULT_LIMIT, ID_PATTERN, STATUS_PATTERN, Limit
from settlement.api.queries import payout_runs as run_queries
from settlement.api.render import ApiError, amount, iso, render
from settlement.banking.zengin import file_sha256

router = APIRouter(tags=["payouts"])
HOLD_CURSOR = r"^(worker|client)/[A-Za-z0-9._:-]{1,128}/[A-Z]{3}$"
CARRIED = "below_minimum"
ZENGIN: dict[int | str, dict[str, Any]] = {200: {
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    "description": "the 総合振込 file as stored (Shift_JIS, 120-byte records and CRLF); "
                   "`X-Content-SHA256` is the SHA-256 its run recorded"}}


@router.get("/v1/payouts/held", response_model=models.Held, responses={**ERRORS, **CSV_ROWS})
def held(request: Request, _: Reader, db: Db, config: Config,
         run_id: Annotated[str | None, Query(pattern=ID_PATTERN, description=(
             "the run (default: the run completed last)"))] = None,
         reason: Annotated[str | None, Query(pattern=STATUS_PATTERN)] = None,
         party_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
         after: Annotated[str | None, Query(pattern=HOLD_CURSOR, description=(
             "`party_type/party_id/currency` of the last row seen"))] = None,
         limit: Limit = DEFAULT_LIMIT) -> Response:
    """What a run left payable: held (a coded reason) or carried over (below the
    minimum), with the earliest payment deadline and whether it has passed."""
    now = config.now()
    cursor = tuple(after.split("/", 2)) if after else None
    with db.connection(snapshot=True) as conn:
        chosen = run_id or run_queries.latest_completed(conn, config.schema)
        rows, totals = ([], []) if chosen is None else run_queries.holds(
            conn, config.schema, chosen, now=now, reason=reason, party_id=party_id,
            after=cursor, limit=limit)  # type: ignore[arg-type]
    out = [held_row(row) for row in rows]
    body = {"run_id": chosen, "holds": out, "totals": [
        {"currency": t["currency"], "held": amount(t["held"]),
         "carried_over": amount(t["carried_over"]), "overdue": amount(t["overdue"])}
        for t in totals]}
    last = (f"{out[-1]['party_type']}/{out[-1]['party_id']}/{out[-1]['currency']}"
            if len(out) >= limit else None)
    return render(body, request, rows=out, row_model=models.HeldRow, next_after=last)


def held_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"party_type": row["party_type"], "party_id": row["party_id"],
            "currency": row["currency"], "amount": amount(row["amount"]),
            "reason": row["reason"],
            "status": "carried_over" if row["reason"] == CARRIED else "held",
            "due_by": iso(row["due_by"]), "overdue": bool(row["overdue"])}


@router.get("/v1/payout-runs/{run_id}", response_model=models.PayoutRun,
            responses={**ERRORS, **NOT_FOUND})
def payout_run(_: Reader, db: Db, schema: Schema,
               run_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> Response:
    """A payout run: its closing, payment day and snapshot, and once completed its
    summary (payouts, holds, carry-overs, totals, the Zengin file's SHA-256)."""
    with db.connection() as conn:
        found = run_queries.run(conn, schema, run_id)
    if found is None:
        raise ApiError(404, "payout_run_not_found", f"no payout run {run_id}", "run_id")
    return render({"run_id": found["run_id"], "closing": _day(found["closing"]),
                   "payment_day": _day(found["payment_day"]), "cutoff": iso(found["cutoff"]),
                   "as_of_position": found["as_of_position"], "status": found["status"],
                   "summary": found["summary"], "time": iso(found["time"])})


def _day(value: Any) -> str | None:
    return None if value is None else value.isoformat()


@router.get("/v1/payout-runs/{run_id}/zengin", responses={**ERRORS, **NOT_FOUND, **ZENGIN},
            response_class=Response)
def zengin(_: Reader, db: Db, run_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> Response:
    """The run's 総合振込 file, byte for byte as the run stored it."""
    with db.connection() as conn:
        found = run_queries.zengin_file(conn, run_id)
    if found is None:
        raise ApiError(404, "zengin_file_not_found", f"no Zengin file for run {run_id}",
                       "run_id")
    if file_sha256(found.content) != found.sha256:  # checked where it is read, too
        raise ApiError(500, "zengin_file_corrupt", f"the file of run {run_id} does not match "
                       "its SHA-256")
    return Response(found.content, media_type="application/octet-stream", headers={
        "Content-Disposition": f'attachment; filename="{run_id}.zengin"',
        "X-Content-SHA256": found.sha256})
