"""The finance API (SPEC §7): an ASGI app (FastAPI) over the projections schema.

Connections are read-only. A page and the totals beside it come from one
statement (one snapshot); reads of several statements run in one REPEATABLE
READ transaction. Amounts are exact decimal strings
built from the `Decimal`s PostgreSQL returns and serialised by orjson: they are
never floats on the way. Only `/v1/audit/verify` reads outside the projections:
it recomputes the hash chain over the event store itself (read-only), since a
copy of the hashes cannot vouch for the events it was copied from.

`create_app` wires the parts: `routes/` (one router per resource) over
`queries/` (their SQL), `auth` (tokens and roles), `errors` (the error shape),
`params` (shared parameters), `render` (JSON and CSV) and `openapi`.
"""

from functools import partial

from fastapi import FastAPI

from settlement.api.config import ApiConfig
from settlement.api.database import Database
from settlement.api.errors import install_error_handlers
from settlement.api.openapi import document_errors_as_400
from settlement.api.routes import (
    audit,
    balances,
    entries,
    escrows,
    invoices,
    low_price,
    parties,
    payout_runs,
    payouts,
    receivables,
    reconciliation,
    safeguarding,
    service,
    statements,
    withholding,
)
from settlement.api.verifier import ChainVerifier
from settlement.console.app import mount_console

__all__ = ["ApiConfig", "create_app"]

# In this order in the OpenAPI document.
ROUTERS = (service.router, balances.router, entries.router, escrows.router,
           receivables.router, safeguarding.router, payout_runs.router, payouts.router,
           parties.router, low_price.router, statements.router, withholding.router,
           invoices.router, reconciliation.router, audit.router)


def create_app(config: ApiConfig) -> FastAPI:
    """The ASGI app; `app.state.close()` releases its connections."""
    app = FastAPI(title="Settlement finance API", version="1.0.0",
                  description="Ledger projections for finance and auditors (SPEC §7). "
                              "Amounts are exact decimal strings.",
                  docs_url=None, redoc_url=None)
    app.state.config = config
    app.state.database = Database(config.database_url, config.pool_size, config.limits)
    app.state.verifier = ChainVerifier(config.database_url, app.state.database)
    # Closed by its owner (`settlement api` once uvicorn stopped), not on ASGI
    # lifespan shutdown: test clients run a lifespan per request.
    app.state.close = partial(_close, app)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    document_errors_as_400(app)
    mount_console(app)  # the web pages under /console (settlement/console/)
    return app


def _close(app: FastAPI) -> None:
    app.state.verifier.close()  # first: it reads through the database's pool
    app.state.database.close()
