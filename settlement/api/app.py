"""The finance API (SPEC §7): an ASGI app (FastAPI) over the projections schema.

Connections are read-only. A page and the totals beside it come from one
statement (one snapshot); reads of several statements run in one REPEATABLE
READ transaction. Amounts are exact decimal strings
built from the `Decimal`s PostgreSQL returns and serialised by orjson: they are
never floats on the way. Only `/v1/audit/verify` reads outside the projections:
it recomputes the hash chain over the event store itself (read-only), since a
copy of the hashes cannot vouch for the events it was copied from.
"""


import hmac
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

import psycopg
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import IsolationLevel
from psycopg_pool import ConnectionPool
from starlette.exceptions import HTTPException as StarletteHTTPException

from settlement.api import models, queries
from settlement.api.render import ApiError, error_response, render
from settlement.infra.logging import get_logger
from settlement.ledger.balances import AccountBalance
from settlement.projections.model.receivables import is_overdue
from settlement.projections.storage.schema import LIVE_SCHEMA

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
ACCOUNT_PATTERN = r"^[A-Za-z0-9._:-]{1,300}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
STATUS_PATTERN = r"^[a-z_]{1,32}$"
FINANCE, AUDITOR = "finance", "auditor"

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": models.ErrorResponse, "description": description}
    for status, description in ((400, "invalid parameter (code names it)"),
                                (401, "missing or unknown bearer token"),
                                (403, "the token's role may not read this"),
                                (503, "the projections do not exist yet"))
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": models.ErrorResponse, "description": "no such resource"}}
CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "JSON, or CSV of the rows with `Accept: text/csv`",
          "headers": {"X-Next-After": {
              "schema": {"type": "string"},
              "description": "`after` for the next page; present when this page is full"}}}}

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"rows per page (≤ {MAX_LIMIT})")]
Currency = Annotated[str | None, Query(pattern=CURRENCY_PATTERN, description=(
    "ISO 4217 code; may be left out when the matching rows hold one currency"))]
AsOf = Annotated[str | None, Query(description="ISO 8601 instant with a UTC offset: the state "
                                               "after every event with time ≤ as_of",
                                   json_schema_extra={"format": "date-time"})]


@dataclass
class ApiConfig:
    database_url: str
    tokens: dict[str, str] = field(repr=False)
    schema: str = LIVE_SCHEMA
    pool_size: int = 8
    # Clock for `overdue` (tests pin it).
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


class Database:
    """A lazily opened pool of read-only connections."""

    def __init__(self, url: str, size: int) -> None:
        self._url, self._size = url, size
        self._pool: ConnectionPool[Any] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def _configure(conn: psycopg.Connection[Any]) -> None:
        # Autocommit: a one-statement read is a snapshot of its own, in one round trip;
        # reads of several statements ask for a `snapshot` transaction.
        conn.autocommit = True
        conn.execute("SET default_transaction_read_only = on")
        conn.isolation_level = IsolationLevel.REPEATABLE_READ

    @contextmanager
    def connection(self, snapshot: bool = False) -> Iterator[psycopg.Connection[Any]]:
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ConnectionPool(self._url, min_size=1, max_size=self._size,
                                                open=False, configure=self._configure,
                                                name="settlement-api")
                    self._pool.open(wait=True, timeout=30)
                pool = self._pool
        with pool.connection(timeout=30) as conn:
            if snapshot:
                with conn.transaction():
                    yield conn
            else:
                yield conn

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None


def create_app(config: ApiConfig) -> FastAPI:
    """The ASGI app; `app.state.close()` releases its connections."""
    from settlement.api.audit import ChainVerifier
    from settlement.api.metrics import metrics_response

    log = get_logger(component="api")
    db = Database(config.database_url, config.pool_size)
    verifier = ChainVerifier(config.database_url)
    schema = config.schema
    bearer = HTTPBearer(auto_error=False, description="`SETTLEMENT_API_TOKENS` token")

    app = FastAPI(title="Settlement finance API", version="1.0.0",
                  description="Ledger projections for finance and auditors (SPEC §7). "
                              "Amounts are exact decimal strings.",
                  docs_url=None, redoc_url=None)

    def close() -> None:
        db.close()
        verifier.close()

    # Closed by its owner (`settlement api` once uvicorn stopped), not on ASGI
    # lifespan shutdown: test clients run a lifespan per request.
    app.state.close = close

    def role(credentials: Annotated[HTTPAuthorizationCredentials | None,
                                    Depends(bearer)]) -> str:
        token = credentials.credentials if credentials else ""
        found = None
        for known, known_role in config.tokens.items():
            if hmac.compare_digest(token.encode(), known.encode()):
                found = known_role
        if not token or found is None:
            raise ApiError(401, "unauthorized", "a valid bearer token is required")
        return found

    def reader(role_: Annotated[str, Depends(role)]) -> str:
        return role_  # finance and auditors read the finance endpoints

    def auditor(role_: Annotated[str, Depends(role)]) -> str:
        if role_ != AUDITOR:
            raise ApiError(403, "forbidden", "only the auditor role may read audit endpoints")
        return role_

    # Errors: one shape, `{"error": {code, message, parameter}}` --------------------

    @app.exception_handler(ApiError)
    def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(part) for part in first.get("loc", ())]
        parameter = loc[-1] if len(loc) > 1 else None
        message = f"{parameter}: {first.get('msg', 'invalid')}" if parameter else "invalid request"
        return error_response(ApiError(400, "invalid_parameter", message, parameter))

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error_response(ApiError(exc.status_code, codes.get(exc.status_code, "http_error"),
                                       str(exc.detail)), exc.headers)

    @app.exception_handler(psycopg.errors.UndefinedTable)
    def _not_ready(request: Request, exc: Exception) -> Response:
        return error_response(ApiError(503, "projections_unavailable",
                                       f"the projections schema {schema!r} does not exist yet "
                                       "(the projector creates it when it starts)"))

    @app.exception_handler(Exception)
    def _internal(request: Request, exc: Exception) -> Response:
        log.error("api.internal_error", path=request.url.path, exc_info=exc)
        return error_response(ApiError(500, "internal", "internal error"))

    # Endpoints -------------------------------------------------------------------

    @app.get("/healthz", response_model=models.Health, tags=["service"])
    def healthz() -> Response:
        """Liveness: the process serves requests (the database is not consulted)."""
        return render({"status": "ok"})

    @app.get("/metrics", tags=["service"], responses={200: {
        "content": {"text/plain": {"schema": {"type": "string"}}},
        "description": "Prometheus text exposition"}})
    def metrics() -> Response:
        """Prometheus metrics (see docs/api.md for the list)."""
        with db.connection() as conn:
            return metrics_response(conn, schema)

    @app.get("/v1/balances", response_model=models.Balances, tags=["ledger"],
             responses={**ERRORS, **CSV})
    def balances(request: Request, _: Annotated[str, Depends(reader)],
                 prefix: Annotated[str | None, Query(pattern=ACCOUNT_PATTERN)] = None,
                 account: Annotated[str | None, Query(pattern=ACCOUNT_PATTERN)] = None,
                 currency: Currency = None, as_of: AsOf = None,
                 after: Annotated[str | None, Query(pattern=ACCOUNT_PATTERN,
                                                    description="last account code seen")] = None,
                 limit: Limit = DEFAULT_LIMIT) -> Response:
        """Balances per account of one currency, filtered by code prefix or exact code."""
        at = instant("as_of", as_of)
        with db.connection() as conn:
            chosen = pick_currency(currency, lambda: queries.balance_currencies(
                conn, schema, as_of=at, prefix=prefix, account=account))
            rows, _d, _c, total = (queries.balances_page(
                conn, schema, chosen, as_of=at, prefix=prefix, account=account, after=after,
                limit=limit) if chosen else ([], Decimal(0), Decimal(0), Decimal(0)))
        accounts = [account_row(b) for b in rows]
        body = {"as_of": iso(at), "currency": chosen, "accounts": accounts, "total": amount(total)}
        return render(body, request, rows=accounts, row_model=models.AccountRow,
                      next_after=next_after(accounts, limit, "account"))

    @app.get("/v1/trial-balance", response_model=models.TrialBalance, tags=["ledger"],
             responses={**ERRORS, **CSV})
    def trial_balance(request: Request, _: Annotated[str, Depends(reader)],
                      currency: Currency = None, as_of: AsOf = None,
                      after: Annotated[str | None, Query(pattern=ACCOUNT_PATTERN)] = None,
                      limit: Limit = DEFAULT_LIMIT) -> Response:
        """Every account of one currency with the total debits and credits (equal when
        the ledger balances)."""
        at = instant("as_of", as_of)
        with db.connection() as conn:
            chosen = pick_currency(currency, lambda: queries.balance_currencies(conn, schema,
                                                                                as_of=at))
            rows, debits, credits, _t = (queries.balances_page(
                conn, schema, chosen, as_of=at, after=after, limit=limit)
                if chosen else ([], Decimal(0), Decimal(0), Decimal(0)))
        accounts = [account_row(b) for b in rows]
        body = {"as_of": iso(at), "currency": chosen, "accounts": accounts,
                "total_debits": amount(debits), "total_credits": amount(credits)}
        return render(body, request, rows=accounts, row_model=models.AccountRow,
                      next_after=next_after(accounts, limit, "account"))

    @app.get("/v1/accounts/{account}/entries", response_model=models.Entries, tags=["ledger"],
             responses={**ERRORS, **CSV})
    def entries(request: Request, _: Annotated[str, Depends(reader)],
                account: Annotated[str, Path(pattern=ACCOUNT_PATTERN)],
                currency: Currency = None,
                start: Annotated[str | None, Query(alias="from", json_schema_extra={
                    "format": "date-time"}, description="entries with time ≥ from")] = None,
                end: Annotated[str | None, Query(alias="to", json_schema_extra={
                    "format": "date-time"}, description="entries with time ≤ to")] = None,
                after: Annotated[int, Query(ge=0, le=2**62, description=(
                    "last position seen"))] = 0,
                limit: Limit = DEFAULT_LIMIT) -> Response:
        """The account's entries in ledger order with the running balance after each
        (counting every earlier entry). A page never ends inside a position."""
        t0, t1 = instant("from", start), instant("to", end)
        with db.connection(snapshot=True) as conn:
            chosen = pick_currency(currency, lambda: queries.account_currencies(conn, schema,
                                                                                account))
            rows = (queries.account_entries(conn, schema, account, chosen, start=t0, end=t1,
                                            after=after, limit=limit) if chosen else [])
        out = [{"position": e.position, "time": iso(e.time), "job_id": e.job_id,
                "event_type": e.event_type, "side": e.side, "amount": amount(e.amount),
                "running_balance": amount(e.running_balance)} for e in rows]
        body = {"account": account, "currency": chosen, "entries": out}
        return render(body, request, rows=out, row_model=models.EntryRow,
                      next_after=next_after(out, limit, "position"))

    @app.get("/v1/escrows/{job_id}", response_model=models.Escrow, tags=["escrows"],
             responses={**ERRORS, **NOT_FOUND})
    def escrow(_: Annotated[str, Depends(reader)],
               job_id: Annotated[str, Path(pattern=ID_PATTERN)]) -> Response:
        """One escrow's summary and its items."""
        with db.connection(snapshot=True) as conn:
            found = queries.escrow(conn, schema, job_id)
        if found is None:
            raise ApiError(404, "escrow_not_found", f"no escrow for job {job_id}", "job_id")
        body = {key: found[key] for key in ("job_id", "format", "state", "currency",
                                            "client_id")}
        body |= {key: amount(found[key]) for key in ("funded", "held", "released", "refunded",
                                                     "fees", "withholding")}
        body["items"] = [{"item_id": i["item_id"], "state": i["state"],
                          "amount": amount(i["amount"]), "worker_id": i["worker_id"]}
                         for i in found["items"]]
        return render(body)

    @app.get("/v1/receivables", response_model=models.Receivables, tags=["receivables"],
             responses={**ERRORS, **CSV})
    def receivables(request: Request, _: Annotated[str, Depends(reader)],
                    worker_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                    client_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                    currency: Currency = None, as_of: AsOf = None,
                    after: Annotated[str | None, Query(
                        pattern=r"^[A-Za-z0-9._:-]{1,128}/[A-Za-z0-9._:-]{1,128}$",
                        description="`job_id/item_id` of the last row seen")] = None,
                    limit: Limit = DEFAULT_LIMIT) -> Response:
        """Workers' claims per item: protected when held in escrow or payable, with the
        Freelance Act deadline; totals over every matching row."""
        at = instant("as_of", as_of)
        cursor = tuple(after.split("/", 1)) if after else None
        now = at or config.now()
        with db.connection() as conn:
            chosen = pick_currency(currency, lambda: queries.receivable_currencies(
                conn, schema, worker_id=worker_id, client_id=client_id, as_of=at))
            if chosen:
                rows, totals = queries.receivables_page(
                    conn, schema, chosen, now=now, worker_id=worker_id, client_id=client_id,
                    as_of=at, after=cursor, limit=limit)  # type: ignore[arg-type]
            else:
                rows, totals = [], queries.ReceivableTotals(*(Decimal(0),) * 4)
        out = [{"job_id": r.job_id, "item_id": r.item_id, "worker_id": r.worker_id,
                "client_id": r.client_id, "state": r.state, "amount": amount(r.amount),
                "net": amount(r.net), "protected": r.protected,
                "delivered_at": iso(r.delivered_at), "due_by": iso(r.due_by),
                "overdue": is_overdue(r, paid, now)} for r, paid in rows]
        body = {"as_of": iso(at), "currency": chosen, "rows": out, "totals": {
            "protected": amount(totals.protected), "unprotected": amount(totals.unprotected),
            "payable": amount(totals.payable), "overdue": amount(totals.overdue)}}
        last = f"{out[-1]['job_id']}/{out[-1]['item_id']}" if len(out) >= limit else None
        return render(body, request, rows=out, row_model=models.ReceivableRow,
                      next_after=last)

    @app.get("/v1/safeguarding", response_model=models.Safeguarding, tags=["ledger"],
             responses=ERRORS)
    def safeguarding(_: Annotated[str, Depends(reader)], currency: Currency = None,
                     as_of: AsOf = None) -> Response:
        """Safeguarded cash against every liability (client money owed)."""
        at = instant("as_of", as_of)
        with db.connection() as conn:
            chosen = pick_currency(currency, lambda: queries.balance_currencies(conn, schema,
                                                                                as_of=at))
            s = queries.safeguarding(conn, schema, chosen, at) if chosen else None
        if s is None:
            return render({"currency": None, "cash": "0", "obligations": "0",
                           "coverage_ratio": None, "shortfall": "0"})
        return render({"currency": s.currency, "cash": amount(s.cash),
                       "obligations": amount(s.obligations),
                       "coverage_ratio": None if s.coverage_ratio is None else amount(
                           s.coverage_ratio), "shortfall": amount(s.shortfall)})

    @app.get("/v1/payouts", response_model=models.Payouts, tags=["payouts"],
             responses={**ERRORS, **CSV})
    def payouts(request: Request, _: Annotated[str, Depends(reader)],
                status: Annotated[str | None, Query(pattern=STATUS_PATTERN)] = None,
                after: Annotated[str | None, Query(pattern=ID_PATTERN,
                                                   description="last payout_id seen")] = None,
                limit: Limit = DEFAULT_LIMIT) -> Response:
        """Payouts by id, optionally of one status."""
        with db.connection() as conn:
            rows = queries.payouts(conn, schema, status=status, after=after, limit=limit)
        out = [{"payout_id": p["payout_id"], "party_type": p["party_type"],
                "party_id": p["party_id"], "currency": p["currency"],
                "amount": amount(p["amount"]), "status": p["status"], "items": p["items"]}
               for p in rows]
        return render({"payouts": out}, request, rows=out, row_model=models.Payout,
                      next_after=next_after(out, limit, "payout_id"))

    @app.get("/v1/audit/events", response_model=models.AuditEvents, tags=["audit"],
             responses={**ERRORS, **CSV})
    def audit_events(request: Request, _: Annotated[str, Depends(auditor)],
                     job_id: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
                     after: Annotated[int, Query(ge=0, le=2**62,
                                                 description="last position seen")] = 0,
                     limit: Limit = DEFAULT_LIMIT) -> Response:
        """The audit log in global order, with each event's hash and prev_hash."""
        with db.connection() as conn:
            rows = queries.audit_events(conn, schema, job_id=job_id, after=after, limit=limit)
        out = [{**row, "time": iso(row["time"])} for row in rows]
        return render({"events": out}, request, rows=out, row_model=models.AuditEvent,
                      next_after=next_after(out, limit, "position"))

    @app.get("/v1/audit/verify", response_model=models.Verification, tags=["audit"],
             responses=ERRORS)
    def audit_verify(_: Annotated[str, Depends(auditor)]) -> Response:
        """Recompute the hash chain over the event store (SPEC §8)."""
        result = verifier.verify()
        return render({"ok": result.ok, "events_checked": result.events_checked,
                       "first_bad_position": result.first_bad_position})

    _document_errors_as_400(app)
    return app


# Helpers ----------------------------------------------------------------------------


def amount(value: Decimal | int) -> str:
    """An exact decimal string: plain notation, no negative zero."""
    d = Decimal(value)
    return format(d if d != 0 else abs(d), "f")


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def instant(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ApiError(400, "invalid_parameter",
                           f"{name} must carry a UTC offset (e.g. 2026-11-26T09:00:00Z)", name)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ApiError(400, "invalid_parameter", f"{name} is not an ISO 8601 instant",
                       name) from exc


def pick_currency(given: str | None, currencies: Callable[[], list[str]]) -> str | None:
    """The currency asked for, else the only one the matching rows hold (None if none)."""
    if given:
        return given
    found = currencies()
    if len(found) > 1:
        raise ApiError(400, "currency_required",
                       f"the matching rows hold several currencies ({', '.join(found)}): "
                       "pass currency=", "currency")
    return found[0] if found else None


def account_row(b: AccountBalance) -> dict[str, str]:
    return {"account": b.account, "debits": amount(b.debits), "credits": amount(b.credits),
            "balance": amount(b.balance)}


def next_after(rows: list[dict[str, Any]], limit: int, key: str) -> str | None:
    return str(rows[-1][key]) if rows and len(rows) >= limit else None


def _document_errors_as_400(app: FastAPI) -> None:
    """Validation errors answer 400 in the error shape: say so in the document
    (FastAPI would describe them as 422)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            for path in document.get("paths", {}).values():
                for operation in path.values():
                    operation.get("responses", {}).pop("422", None)
                    for parameter in operation.get("parameters", ()):
                        parameter["schema"] = _not_null(parameter["schema"])
            for name in ("HTTPValidationError", "ValidationError"):
                document.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional query parameter is left out, never sent as null: describe it as
    its type alone (`anyOf: [T, null]` → T)."""
    branches = schema.get("anyOf")
    if not branches:
        return schema
    typed = [b for b in branches if b.get("type") != "null"]
    if len(typed) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**typed[0], **rest}
