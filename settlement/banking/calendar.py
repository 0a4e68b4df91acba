"""Japanese bank business days, closings and payment days (SPEC §11 "Closings").

A bank business day is any day except Saturday, Sunday, a Japanese public
holiday and 12/31–1/3 (銀行法施行令 第5条). Public holidays come from the
`holidays` library (`holidays.Japan`, category `public`), which includes the
substitute holidays (振替休日) and the sandwiched days (国民の休日). The year-end
days are this module's own rule, not the library's `bank` category, so the
contract's list stays visible here (a test checks the two agree).

A closing is the 15th or the last day of a month. Closing D covers events with
`time` before D+1 00:00 JST. Its payment day (取組日) is the month's last
business day for a closing on the 15th, and the 15th of the next month for a
month-end closing; a payment day that is no business day moves to the business
day before it.

Pure: no clock. Dates are Japanese dates given by the caller (see `jst_date`).
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from settlement.core.errors import InvalidInput

JST = ZoneInfo("Asia/Tokyo")

# `holidays.Japan` knows 1949–2099 and returns no holidays outside it, which
# would silently make every weekday a business day; so dates outside these
# years are refused.
CALENDAR_YEAR_MIN = 2000
CALENDAR_YEAR_MAX = 2099
# The longest run of non-business days so far is 10 (Golden Week 2019); rolling
# to a business day never needs more steps than this.
NON_BUSINESS_RUN_DAYS_MAX = 16
# Bounds the loop of `add_business_days`: a little over four years of business days.
BUSINESS_DAYS_ADDED_MAX = 1000

_YEAR_END_DAYS = frozenset({(12, 31), (1, 1), (1, 2), (1, 3)})
_ONE_DAY = timedelta(days=1)
CLOSING_MID_MONTH_DAY = 15


class OutsideCalendar(InvalidInput):
    """A date this calendar cannot judge (`date_outside_calendar`)."""

    code = "date_outside_calendar"


@functools.cache
def _public_holidays(year: int) -> frozenset[date]:
    # Imported on first use: `holidays` costs ~8 MB of memory in every process that
    # imports it (and ~16 MB once a country is loaded), and most processes that import
    # this module through the projections or the API never judge a date (a replay's
    # shard processes, for one).
    import holidays
    from holidays.constants import PUBLIC

    # Options are explicit: only the public category (the year end is ours),
    # observed days included (振替休日), no lazy expansion into other years.
    japan = holidays.Japan(
        years=year, expand=False, observed=True, language="ja", categories=(PUBLIC,)
    )
    return frozenset(japan.keys())


def _checked(day: date) -> date:
    if isinstance(day, datetime):
        raise TypeError("a bank calendar takes a date in Japan, not a datetime (see jst_date)")
    if not CALENDAR_YEAR_MIN <= day.year <= CALENDAR_YEAR_MAX:
        raise OutsideCalendar(
            f"{day.isoformat()} is outside {CALENDAR_YEAR_MIN}–{CALENDAR_YEAR_MAX}"
        )
    return day


def is_business_day(day: date) -> bool:
    """Whether Japanese banks are open on `day`."""
    _checked(day)
    if day.weekday() >= 5 or (day.month, day.day) in _YEAR_END_DAYS:
        return False
    return day not in _public_holidays(day.year)


def _roll(day: date, step: timedelta) -> date:
    for _ in range(NON_BUSINESS_RUN_DAYS_MAX):
        if is_business_day(day):
            return day
        day += step
    raise AssertionError(f"no business day within {NON_BUSINESS_RUN_DAYS_MAX} days of {day}")


def previous_business_day(day: date) -> date:
    """`day` itself if it is a business day, else the last business day before it."""
    return _roll(day, -_ONE_DAY)


def next_business_day(day: date) -> date:
    """`day` itself if it is a business day, else the first business day after it."""
    return _roll(day, _ONE_DAY)


def add_business_days(day: date, count: int) -> date:
    """The `count`-th business day after `day` (before it for a negative count),
    not counting `day` itself; `day` unchanged for a count of 0."""
    if abs(count) > BUSINESS_DAYS_ADDED_MAX:
        raise InvalidInput(
            f"{count} business days is beyond ±{BUSINESS_DAYS_ADDED_MAX}", "business_days_too_many"
        )
    step = _ONE_DAY if count > 0 else -_ONE_DAY
    _checked(day)
    for _ in range(abs(count)):
        day = _roll(day + step, step)
    return day


def month_end(day: date) -> date:
    """The last day of `day`'s month."""
    first_of_next = (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first_of_next - _ONE_DAY


def is_closing_day(day: date) -> bool:
    """Whether `day` is a closing: the 15th or the month's last day."""
    return day.day == CLOSING_MID_MONTH_DAY or day == month_end(day)


def closing_of(day: date) -> date:
    """The closing that covers `day` (a date in Japan): the first closing on or after it."""
    if day.day <= CLOSING_MID_MONTH_DAY:
        return day.replace(day=CLOSING_MID_MONTH_DAY)
    return month_end(day)


def next_closing(after: date) -> date:
    """The first closing strictly after `after`."""
    return closing_of(after + _ONE_DAY)


def _check_closing(day: date) -> None:
    if not is_closing_day(day):
        raise InvalidInput(
            f"{day.isoformat()} is neither the 15th nor a month end", "not_a_closing_day"
        )


def payment_day(closing: date) -> date:
    """The payment day (取組日) of `closing` (SPEC §11)."""
    _check_closing(closing)
    if closing.day == CLOSING_MID_MONTH_DAY:
        due = month_end(closing)
    else:
        due = (closing + _ONE_DAY).replace(day=CLOSING_MID_MONTH_DAY)
    return previous_business_day(due)


def closing_cutoff(closing: date) -> datetime:
    """The instant closing D covers up to, excluded: D+1 00:00 JST. A closing
    may start only at or after it."""
    _check_closing(closing)
    return datetime.combine(closing + _ONE_DAY, time(0), tzinfo=JST)


def jst_date(instant: datetime) -> date:
    """The date in Japan at `instant` (which must carry a UTC offset)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidInput(f"{instant.isoformat()} has no UTC offset", "instant_without_offset")
    return instant.astimezone(JST).date()
