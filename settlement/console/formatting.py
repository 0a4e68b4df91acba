"""How the console writes values for people: amounts with their currency's symbol
and digit groups, exact (the API's decimal strings, never through a float), the
coverage ratio as a percentage, instants in Japanese time with the offset shown.

Every value also goes into the page machine-readable (`<data value>`, `<time
datetime>`) as the API wrote it, so a reader (or a test) can check the figure
behind the formatting."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

from settlement.core.deadlines import JST
from settlement.core.errors import InvalidMoney
from settlement.core.money import exponent

# A symbol where it is unambiguous to the readers; other currencies show their code.
SYMBOLS = {"JPY": "¥", "USD": "$", "EUR": "€", "GBP": "£"}
MINUS = "−"  # U+2212: a minus sign, not a hyphen
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # then the offset (strftime's %:z is Python 3.12)


def money(value: str | Decimal | None, currency: str | None) -> str:
    """¥1,234,567, $1,234.56, −¥5,000; digits are padded to the currency's minor
    unit but never rounded (an amount with more places keeps them)."""
    if value is None:
        return ""
    d = Decimal(value)
    places = _places(currency)
    exp = d.as_tuple().exponent
    if isinstance(exp, int) and exp > -places:
        d = d.quantize(Decimal(1).scaleb(-places))  # adds zeros only: exact
    digits = f"{abs(d):,f}"
    sign = MINUS if d < 0 else ""
    symbol = SYMBOLS.get(currency or "")
    return f"{sign}{symbol}{digits}" if symbol else f"{sign}{digits} {currency or ''}".rstrip()


def _places(currency: str | None) -> int:
    try:
        return exponent(currency) if currency else 0
    except InvalidMoney:  # an unknown code: show the digits as recorded
        return 0


def percent(ratio: str | Decimal | None) -> str:
    """A ratio as a percentage, exactly (1.149510 → 114.9510 %); '—' for none."""
    if ratio is None:
        return "—"
    return f"{Decimal(ratio).scaleb(2):f} %"


def count(value: int) -> str:
    return f"{value:,}"


def instant(value: str | datetime | None) -> str:
    """2026-11-26 18:02:00 +09:00: the instant in Japanese time, offset shown."""
    if value is None:
        return ""
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = at.astimezone(JST)
    return f"{local.strftime(TIME_FORMAT)} {local.isoformat()[-6:]}"  # the offset, ±HH:MM


def jst_day(value: str | datetime) -> date:
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(JST).date()


def end_of_day(day: date) -> datetime:
    """The last instant of `day` in Japan: "as of day D" means after every event
    of D (times are stored to the microsecond)."""
    return datetime.combine(day + timedelta(days=1), time(0), JST) - timedelta(microseconds=1)


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time(0), JST)
