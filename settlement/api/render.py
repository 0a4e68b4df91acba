"""Responses of the finance API: JSON by orjson (amounts are already exact
strings), CSV of a list's rows on `Accept: text/csv`, and the one error shape;
and how values are written in them (`amount`, `iso`, `next_after`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel

from settlement.documents import cells

JSON = "application/json"
CSV = "text/csv; charset=utf-8"
NEXT_AFTER = "X-Next-After"  # `after` for the next page, when the page was full
# Every 503 says when to try again: long enough for a restarting database or a
# projector creating its schema, short enough that clients come back soon.
RETRY_AFTER_S = 5


class ApiError(Exception):
    """An answer other than 200: status, stable code, message and the parameter at fault."""

    def __init__(self, status: int, code: str, message: str,
                 parameter: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.parameter = status, code, message, parameter


def error_response(error: ApiError, headers: Mapping[str, str] | None = None) -> Response:
    body = {"error": {"code": error.code, "message": error.message,
                      "parameter": error.parameter}}
    extra = dict(headers or {})
    if error.status == 401:
        extra["WWW-Authenticate"] = "Bearer"
    if error.status == 503:
        extra["Retry-After"] = str(RETRY_AFTER_S)
    return Response(orjson.dumps(body), status_code=error.status, media_type=JSON,
                    headers=extra)


def wants_csv(request: Request | None) -> bool:
    return request is not None and "text/csv" in request.headers.get("accept", "").lower()


def render(body: Mapping[str, Any], request: Request | None = None, *,
           rows: Sequence[Mapping[str, Any]] | None = None,
           row_model: type[BaseModel] | None = None,
           next_after: str | None = None) -> Response:
    headers = {NEXT_AFTER: next_after} if next_after is not None else None
    if rows is not None and row_model is not None and wants_csv(request):
        return Response(to_csv(list(row_model.model_fields), rows), media_type=CSV,
                        headers=headers)
    return Response(orjson.dumps(body), media_type=JSON, headers=headers)


def to_csv(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """A header line and one line per row; null is empty, booleans true/false,
    nested values JSON; no cell a spreadsheet would run as a formula
    (`documents.cells`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(row[name]) for name in columns])
    return out.getvalue()


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return cells.safe(orjson.dumps(value).decode())
    return cells.safe(str(value))


def amount(value: Decimal | int) -> str:
    """An exact decimal string: plain notation, no negative zero."""
    d = value if type(value) is Decimal else Decimal(value)
    return format(d, "f") if d else format(abs(d), "f")


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def next_after(rows: list[dict[str, Any]], limit: int, key: str) -> str | None:
    """`after` for the next page: the last row's `key`, when the page is full."""
    return str(rows[-1][key]) if rows and len(rows) >= limit else None
