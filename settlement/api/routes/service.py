"""The service's own endpoints (tag `service`, no token: probes and scrapers):
liveness, readiness and Prometheus metrics."""

from fastapi import APIRouter
from fastapi.responses import Response

from settlement.api import models
from settlement.api.config import Config, Schema
from settlement.api.database import Db
from settlement.api.errors import missing_projections
from settlement.api.metrics import metrics_response
from settlement.api.openapi import UNAVAILABLE
from settlement.api.queries.progress import progress, projections_exist
from settlement.api.readiness import report
from settlement.api.render import render
from settlement.api.verifier import Verifier

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=models.Health)
async def healthz() -> Response:
    """Liveness: the process serves requests (the database is not consulted).

    `async`, so it runs on the event loop and never waits for a worker thread:
    during a database outage the threads may all be busy, and a liveness probe
    that timed out then would get a healthy process restarted."""
    return render({"status": "ok"})


@router.get("/readyz", response_model=models.Readiness, responses=UNAVAILABLE)
def readyz(db: Db, schema: Schema) -> Response:
    """Readiness: 200 when the database answers and the projections exist, with
    each part's progress (`status` degraded when one is stalled); 503 otherwise."""
    with db.connection(snapshot=True) as conn:
        if not projections_exist(conn, schema):
            raise missing_projections(schema)
        state = progress(conn, schema)
    return render(report(state))


@router.get("/metrics", responses={**UNAVAILABLE, 200: {
    "content": {"text/plain": {"schema": {"type": "string"}}},
    "description": "Prometheus text exposition"}})
def metrics(db: Db, schema: Schema, config: Config, verifier: Verifier) -> Response:
    """Prometheus metrics (see docs/api.md for the list)."""
    with db.connection(snapshot=True) as conn:
        response = metrics_response(conn, schema, config.now(), verifier.last)
    verifier.refresh_if_stale()  # in the background: the next scrapes show its result
    return response
