"""The service's own endpoints (tag `service`): liveness and Prometheus metrics."""

from fastapi import APIRouter
from fastapi.responses import Response

from settlement.api import models
from settlement.api.config import Schema
from settlement.api.database import Db
from settlement.api.metrics import metrics_response
from settlement.api.render import render

router = APIRouter(tags=["service"])


@router.get("/healthz", response_model=models.Health)
def healthz() -> Response:
    """Liveness: the process serves requests (the database is not consulted)."""
    return render({"status": "ok"})


@router.get("/metrics", responses={200: {
    "content": {"text/plain": {"schema": {"type": "string"}}},
    "description": "Prometheus text exposition"}})
def metrics(db: Db, schema: Schema) -> Response:
    """Prometheus metrics (see docs/api.md for the list)."""
    with db.connection() as conn:
        return metrics_response(conn, schema)
