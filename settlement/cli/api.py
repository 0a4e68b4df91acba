"""`settlement api`: serve the finance API on SETTLEMENT_API_ADDR with uvicorn,
over SETTLEMENT_DATABASE_URL (else the embedded PostgreSQL). SIGTERM or SIGINT
stops it cleanly: uvicorn finishes the requests in flight, then the pool closes.
With `--ssl-certfile` (and `--ssl-keyfile`) it serves HTTPS: uvicorn's own TLS,
the certificate checked before anything starts (docs/operations.md, "TLS")."""

from __future__ import annotations

import argparse
from typing import Any

from settlement.infra.config import Settings

CONFIG_INVALID_EXIT = 2  # as `settlement.cli.main` for a bad configuration


def add_commands(commands: Any) -> None:
    """Add `api` to the `settlement` subparsers `commands`."""
    api = commands.add_parser("api", help="serve the finance API (SPEC §7)")
    api.add_argument("--schema", default="projections", help="schema of the read models")
    api.add_argument("--pool-size", type=int, default=8, help="database connections")
    api.add_argument("--ssl-certfile", metavar="PEM",
                     help="serve HTTPS with this certificate chain (PEM; the key too, "
                          "unless --ssl-keyfile names it)")
    api.add_argument("--ssl-keyfile", metavar="PEM",
                     help="the certificate's private key (PEM, not encrypted)")
    api.set_defaults(func=_serve)


def tls_problem(certfile: str | None, keyfile: str | None) -> str | None:
    """Why uvicorn could not serve TLS with these files, or None (also when no TLS
    is asked for). A key that needs a passphrase is refused, never prompted for."""
    import ssl

    if certfile is None:
        return None if keyfile is None else "--ssl-keyfile needs --ssl-certfile"
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
            certfile, keyfile, password=lambda: b"")
    except (OSError, ssl.SSLError) as exc:
        return f"cannot load the certificate and key: {exc}"
    return None


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
    if problem := tls_problem(args.ssl_certfile, args.ssl_keyfile):
        log.error("api.tls_invalid", error=problem)
        return CONFIG_INVALID_EXIT
    if not settings.api_tokens:
        log.warning("api.no_tokens", hint="set SETTLEMENT_API_TOKENS: every request gets 401")
    with database(settings) as url:
        app = create_app(ApiConfig(url, settings.api_tokens, schema=args.schema,
                                   pool_size=args.pool_size))
        config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                                lifespan="on", timeout_graceful_shutdown=10,
                                ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
        server = Server(config)
        log.info("api.listening", addr=settings.api_addr, schema=args.schema,
                 tls=args.ssl_certfile is not None,
                 roles=sorted(set(settings.api_tokens.values())))
        try:
            server.run()
        finally:
            app.state.close()
        log.info("api.stopped")
    return 0
