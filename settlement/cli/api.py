"""`settlement api`: serve the finance API on SETTLEMENT_API_ADDR with uvicorn,
over SETTLEMENT_DATABASE_URL (else the embedded PostgreSQL). SIGTERM or SIGINT
stops it cleanly: uvicorn finishes the requests in flight, then the pool closes."""

from __future__ import annotations

import argparse
from typing import Any

from settlement.infra.config import Settings


def add_commands(commands: Any) -> None:
    """Add `api` to the `settlement` subparsers `commands`."""
    api = commands.add_parser("api", help="serve the finance API (SPEC §7)")
    api.add_argument("--schema", default="projections", help="schema of the read models")
    api.add_argument("--pool-size", type=int, default=8, help="database connections")
    api.set_defaults(func=_serve)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from settlement.api.app import ApiConfig, create_app
    from settlement.api.server import Server, json_library_logs
    from settlement.infra.config import split_addr
    from settlement.infra.logging import get_logger
    from settlement.infra.postgres import database

    log = get_logger(component="api")
    json_library_logs()
    host, port = split_addr(settings.api_addr)
    if not settings.api_tokens:
        log.warning("api.no_tokens", hint="set SETTLEMENT_API_TOKENS: every request gets 401")
    with database(settings) as url:
        app = create_app(ApiConfig(url, settings.api_tokens, schema=args.schema,
                                   pool_size=args.pool_size))
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                lifespan="on", timeout_graceful_shutdown=10)
        server = Server(config)
        log.info("api.listening", addr=settings.api_addr, schema=args.schema,
                 roles=sorted(set(settings.api_tokens.values())))
        try:
            server.run()
        finally:
            app.state.close()
        log.info("api.stopped")
    return 0
