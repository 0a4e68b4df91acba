"""What the OpenAPI document says beyond FastAPI's own: the error and CSV
responses the routes list, and validation errors described as the 400 they
answer (FastAPI would describe them as 422)."""

from typing import Any

from fastapi import FastAPI

from settlement.api import models

RETRY_AFTER = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"},
                               "description": "seconds to wait before trying again"}}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": models.ErrorResponse, "headers": RETRY_AFTER,
          "description": "`database_unavailable`: PostgreSQL cannot be reached or did not "
                         "answer in time; `projections_unavailable`: the projections do not "
                         "exist yet. Both pass: try again after `Retry-After`"}}
ERRORS: dict[int | str, dict[str, Any]] = {
    **{status: {"model": models.ErrorResponse, "description": description}
       for status, description in ((400, "invalid parameter (code names it)"),
                                   (401, "missing or unknown bearer token"),
                                   (403, "the token's role may not read this"))},
    **UNAVAILABLE,
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": models.ErrorResponse, "description": "no such resource"}}
CSV_ROWS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "JSON, or CSV of the rows with `Accept: text/csv`",
          "headers": {"X-Next-After": {
              "schema": {"type": "string"},
              "description": "`after` for the next page; present when this page is full"}}}}


def document_errors_as_400(app: FastAPI) -> None:
    """Validation errors answer 400 in the error shape: say so in the document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _without_validation_errors(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _without_validation_errors(document: dict[str, Any]) -> dict[str, Any]:
    for path in document.get("paths", {}).values():
        for operation in path.values():
            operation.get("responses", {}).pop("422", None)
            for parameter in operation.get("parameters", ()):
                parameter["schema"] = _not_null(parameter["schema"])
    for name in ("HTTPValidationError", "ValidationError"):
        document.get("components", {}).get("schemas", {}).pop(name, None)
    return document


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
