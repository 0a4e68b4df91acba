"""The query and path parameters the routes share (patterns, page limits, the
currency and `as_of`), and how an instant or a currency is read from them."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Query

from settlement.api.render import ApiError
from settlement.core.times import NotAnInstant, parse_instant

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
ACCOUNT_PATTERN = r"^[A-Za-z0-9._:-]{1,300}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
STATUS_PATTERN = r"^[a-z_]{1,32}$"

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"rows per page (≤ {MAX_LIMIT})")]
Currency = Annotated[str | None, Query(pattern=CURRENCY_PATTERN, description=(
    "ISO 4217 code; may be left out when the matching rows hold one currency"))]
AsOf = Annotated[str | None, Query(description="ISO 8601 instant with a UTC offset: the state "
                                               "after every event with time ≤ as_of",
                                   json_schema_extra={"format": "date-time"})]


def instant(name: str, value: str | None) -> datetime | None:
    """The instant the parameter `name` gives, in UTC (None when left out); a 400
    naming `name` when it is no ISO 8601 instant or carries no UTC offset."""
    if value is None:
        return None
    try:
        return parse_instant(value).astimezone(UTC)
    except NotAnInstant as exc:
        if exc.missing_offset:
            raise ApiError(400, "invalid_parameter", f"{name} must carry a UTC offset "
                           "(e.g. 2026-11-26T09:00:00Z)", name) from exc
        raise _not_an_instant(name) from exc
    except (ValueError, OverflowError) as exc:  # in UTC, before year 1 or after 9999
        raise _not_an_instant(name) from exc


def _not_an_instant(name: str) -> ApiError:
    return ApiError(400, "invalid_parameter", f"{name} is not an ISO 8601 instant", name)


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
