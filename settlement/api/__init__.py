"""The finance API (SPEC §7): `settlement.api.app.create_app` builds the ASGI app
over the projections; `settlement api` (`settlement.cli.api`) serves it with
uvicorn. See docs/api.md. Nothing is imported here, so the CLI stays light."""
