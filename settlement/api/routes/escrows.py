"""`/v1/escrows/{job_id}`: one escrow's summary and its items."""

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import Response

from settlement.api import models
from settlement.api.auth import Reader
from settlement.api.config import Schema
from settlement.api.database import Db
from settlement.api.openapi import ERRORS, NOT_FOUND
from settlement.api.params import ID_PATTERN
from settlement.api.queries import escrows as escrow_queries
from settlement.api.render import ApiError, amount, render

router = APIRouter(tags=["escrows"])
SUMMARY_FIELDS = ("job_id", "format", "state", "currency", "client_id")
AMOUNT_FIELDS = ("funded", "held", "released", "refunded", "fees", "withholding")


@router.get("/v1/escrows/{job_id}", response_model=models.Escrow,
            responses={**ERRORS, **NOT_FOUND})
def escrow(_: Reader, db: Db, schema: Schema,
           job_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> Response:
    """One escrow's summary and its items."""
    with db.connection(snapshot=True) as conn:
        found = escrow_queries.escrow(conn, schema, job_id)
    if found is None:
        raise ApiError(404, "escrow_not_found", f"no escrow for job {job_id}", "job_id")
    return render(escrow_body(found))


def escrow_body(found: dict[str, Any]) -> dict[str, Any]:
    body = {key: found[key] for key in SUMMARY_FIELDS}
    body |= {key: amount(found[key]) for key in AMOUNT_FIELDS}
    body["items"] = [{"item_id": i["item_id"], "state": i["state"],
                      "amount": amount(i["amount"]), "worker_id": i["worker_id"]}
                     for i in found["items"]]
    return body
