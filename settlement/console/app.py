"""The console as an ASGI app mounted in the finance API under `/console`: the
same configuration, connection pool and chain verifier as the API, its own
sessions, pages and error pages, and headers that keep pages out of caches
and frames and let them run no script but the console's own."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from settlement.api.config import ApiConfig
from settlement.api.database import Database
from settlement.api.verifier import ChainVerifier
from settlement.console import errors
from settlement.console.queries.daily import DailyTotals
from settlement.console.routes import audit, escrows, ledger, overview, payouts, receivables
from settlement.console.routes import session as session_routes
from settlement.console.sessions import SessionStore

PATH = "/console"
ROUTERS = (session_routes.router, overview.router, ledger.router, escrows.router,
           receivables.router, payouts.router, audit.router)
HEADERS = [
    # The pages load only the console's own files; no inline script or style runs.
    (b"content-security-policy", b"default-src 'self'; script-src 'self'; style-src 'self'; "
     b"img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
     b"object-src 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),  # no-referrer would make forms send `Origin: null`
]
NO_STORE = (b"cache-control", b"no-store")  # pages and downloads show client money


def mount_console(api: FastAPI) -> None:
    """Serve the console under `/console` of the API app `create_app` built."""
    api.mount(PATH, create_console(api.state.config, api.state.database, api.state.verifier))


def create_console(config: ApiConfig, database: Database, verifier: ChainVerifier,
                   sessions: SessionStore | None = None) -> FastAPI:
    console = FastAPI(title="Settlement console", openapi_url=None, docs_url=None,
                      redoc_url=None)
    # The API's dependencies (`Config`, `Db`, `Schema`) read these from the app's state.
    console.state.config, console.state.database = config, database
    console.state.verifier, console.state.sessions = verifier, sessions or SessionStore()
    console.state.daily, console.state.verified = DailyTotals(), None
    console.mount("/static", StaticFiles(packages=[("settlement.console", "static")]),
                  name="static")
    for router in ROUTERS:
        console.include_router(router)
    errors.install(console)
    console.add_middleware(SecurityHeaders)
    return console


class SecurityHeaders:
    """Adds HEADERS to every answer, and no-store to all but the static files."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(f"{scope.get('root_path', '')}/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                headers += HEADERS if static else [*HEADERS, NO_STORE]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
