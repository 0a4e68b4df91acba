"""The console's answers other than 200, as pages: sign-in needed (a redirect to
the form), 403 (wrong role, refused form), 400 (a parameter, with the API's
message), 404, 405, 503 with `Retry-After` (no projections yet; the database
unreachable or too slow, as the API answers them) and 500 (logged)."""

from __future__ import annotations

from urllib.parse import urlencode

import eventsourcing.persistence
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from settlement.api.render import RETRY_AFTER_S, ApiError
from settlement.console.guard import SESSION_COOKIE, Refused, SignInRequired
from settlement.console.render import base, page
from settlement.infra.logging import get_logger

GIVEN_SHOWN_MAX = 200  # characters of a refused parameter repeated on the 400 page


def install(app: FastAPI) -> None:
    # Starlette types every handler as taking `Exception`; ours take the class
    # they are installed for, hence the ignores.
    app.add_exception_handler(SignInRequired, sign_in_required)  # type: ignore[arg-type]
    app.add_exception_handler(Refused, refused)  # type: ignore[arg-type]
    app.add_exception_handler(ApiError, api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(psycopg.errors.UndefinedTable, projections_unavailable)
    # As the API: a statement timeout, or the event store unreachable (the chain
    # verifier reads it through eventsourcing), is an outage, not an internal error.
    app.add_exception_handler(psycopg.errors.QueryCanceled, database_unavailable)
    app.add_exception_handler(psycopg.OperationalError, database_unavailable)
    app.add_exception_handler(eventsourcing.persistence.OperationalError, database_unavailable)
    app.add_exception_handler(Exception, internal_error)


def sign_in_required(request: Request, exc: SignInRequired) -> Response:
    """To the sign-in form, which brings the reader back here afterwards. htmx
    follows redirects itself, so its requests are told to load the form instead."""
    params = {"next": _local(request)}
    if SESSION_COOKIE in request.cookies:
        params["ended"] = "1"  # it had a session, now expired, revoked or signed out
    target = f"{base(request)}/sign-in?{urlencode(params)}"
    if request.headers.get("hx-request"):
        return Response(status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _local(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def refused(request: Request, exc: Refused) -> Response:
    return error_page(request, 403, "error_403", "error_403_text" if exc.reason == "role"
                      else "error_csrf")


def api_error(request: Request, exc: ApiError) -> Response:
    """The API's own errors: a parameter (400), the database away (503)."""
    key = {503: "error_database", 404: "error_404"}.get(exc.status, "error_400")
    return error_page(request, exc.status, key, message=exc.message)


def invalid_request(request: Request, exc: RequestValidationError) -> Response:
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ())]
    parameter = loc[-1] if len(loc) > 1 else "request"
    given = str(first.get("input", ""))[:GIVEN_SHOWN_MAX]  # shown as text (autoescaped)
    return error_page(request, 400, "error_400",
                      message=f"{parameter} {given!r}: {first.get('msg', 'invalid')}")


def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    key = {404: "error_404", 405: "error_405"}.get(exc.status_code, "error_400")
    return error_page(request, exc.status_code, key)


def projections_unavailable(request: Request, exc: Exception) -> Response:
    return error_page(request, 503, "error_503")


def database_unavailable(request: Request, exc: Exception) -> Response:
    get_logger(component="console").warning("console.database_unavailable",
                                            path=request.url.path, error=type(exc).__name__)
    return error_page(request, 503, "error_database")


def internal_error(request: Request, exc: Exception) -> Response:
    get_logger(component="console").error("console.internal_error", path=request.url.path,
                                          exc_info=exc)
    return error_page(request, 500, "error_500")


def error_page(request: Request, status: int, title: str, text: str | None = None,
               message: str | None = None) -> Response:
    response = page(request, "error.html", status_code=status, title_key=title,
                    text_key=text, message=message)
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response
