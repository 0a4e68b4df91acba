"""Every answer other than 200 in one shape, `{"error": {code, message,
parameter}}`: the exception handlers `create_app` installs. Validation errors
answer 400 (not FastAPI's 422), a missing projections schema 503
`projections_unavailable`, a database that cannot be reached or did not answer
in time 503 `database_unavailable` (every 503 with `Retry-After`): an outage is
not an internal error, and clients and load balancers should come back."""

import eventsourcing.persistence
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from settlement.api.render import ApiError, error_response
from settlement.infra.logging import get_logger

HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


def install_error_handlers(app: FastAPI) -> None:
    # Starlette types every handler as taking `Exception`; ours take the class
    # they are installed for, hence the ignores.
    app.add_exception_handler(ApiError, api_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, invalid_request)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(psycopg.errors.UndefinedTable, projections_unavailable)
    # Raised past `Database` (which answers lost connections itself): a statement
    # timeout, or the event store read by the chain verifier through eventsourcing.
    app.add_exception_handler(psycopg.errors.QueryCanceled, statement_timeout)
    app.add_exception_handler(psycopg.OperationalError, database_unavailable)
    app.add_exception_handler(eventsourcing.persistence.OperationalError, database_unavailable)
    app.add_exception_handler(Exception, internal_error)


def api_error(request: Request, exc: ApiError) -> Response:
    return error_response(exc)


def invalid_request(request: Request, exc: RequestValidationError) -> Response:
    """The first error names the parameter at fault (the last part of its location)."""
    first = exc.errors()[0] if exc.errors() else {}
    loc = [str(part) for part in first.get("loc", ())]
    parameter = loc[-1] if len(loc) > 1 else None
    message = f"{parameter}: {first.get('msg', 'invalid')}" if parameter else "invalid request"
    return error_response(ApiError(400, "invalid_parameter", message, parameter))


def http_error(request: Request, exc: StarletteHTTPException) -> Response:
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(ApiError(exc.status_code, code, str(exc.detail)), exc.headers)


def projections_unavailable(request: Request, exc: Exception) -> Response:
    return error_response(missing_projections(request.app.state.config.schema))


def missing_projections(schema: str) -> ApiError:
    return ApiError(503, "projections_unavailable",
                    f"the projections schema {schema!r} does not exist yet "
                    "(the projector creates it when it starts)")


def statement_timeout(request: Request, exc: Exception) -> Response:
    return error_response(ApiError(503, "database_unavailable",
                                   "the database did not answer in time"))


def database_unavailable(request: Request, exc: Exception) -> Response:
    get_logger(component="api").warning("api.database_unavailable", path=request.url.path,
                                        error=str(exc))
    return error_response(ApiError(503, "database_unavailable",
                                   "the database cannot be reached; try again shortly"))


def internal_error(request: Request, exc: Exception) -> Response:
    # The logger is looked up here, not at import, so it follows the logging
    # configuration the process set up after importing this module.
    get_logger(component="api").error("api.internal_error", path=request.url.path, exc_info=exc)
    return error_response(ApiError(500, "internal", "internal error"))
