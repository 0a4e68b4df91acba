"""Bank business days, closings and payment days (SPEC §11 "Closings").

Expected dates are read off the 2025–2028 calendars by hand: weekdays and the
holidays of 祝日法 (including 振替休日 and 国民の休日), and 12/31–1/3.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import holidays
import pytest
from holidays.constants import BANK, PUBLIC
from hypothesis import given
from hypothesis import strategies as st

from settlement.banking.calendar import (
    CALENDAR_YEAR_MAX,
    CALENDAR_YEAR_MIN,
    JST,
    OutsideCalendar,
    add_business_days,
    closing_cutoff,
    closing_of,
    is_business_day,
    is_closing_day,
    jst_date,
    month_end,
    next_business_day,
    next_closing,
    payment_day,
    previous_business_day,
)
from settlement.core.errors import InvalidInput

D = date.fromisoformat

# Day → whether banks are open, with the reason for each closed day.
BUSINESS_DAYS = [
    ("2026-04-28", True),   # Tuesday
    ("2026-04-29", False),  # 昭和の日 (Wednesday)
    ("2026-04-30", True),
    ("2026-05-01", True),   # Friday between the two parts of Golden Week
    ("2026-05-02", False),  # Saturday
    ("2026-05-03", False),  # 憲法記念日, a Sunday
    ("2026-05-04", False),  # みどりの日
    ("2026-05-05", False),  # こどもの日
    ("2026-05-06", False),  # 振替休日 for 5/3 falling on a Sunday
    ("2026-05-07", True),
    ("2026-09-18", True),   # Friday before the 2026 Silver Week
    ("2026-09-21", False),  # 敬老の日
    ("2026-09-22", False),  # 国民の休日: sandwiched between two holidays
    ("2026-09-23", False),  # 秋分の日
    ("2026-09-24", True),
    ("2027-03-22", False),  # 振替休日 for 春分の日 on Sunday 3/21
    ("2025-11-24", False),  # 振替休日 for 勤労感謝の日 on Sunday 11/23
    ("2026-12-30", True),
    ("2026-12-31", False),  # year end (a Thursday, no public holiday)
    ("2027-01-01", False),  # 元日
    ("2025-01-02", False),  # year end on a Thursday: a bank holiday, no public holiday
    ("2025-01-03", False),  # year end on a Friday
    ("2027-01-04", True),   # first business day of 2027
    ("2026-07-20", False),  # 海の日
    ("2026-07-21", True),
]


@pytest.mark.parametrize(("day", "open_"), BUSINESS_DAYS)
def test_business_days(day: str, open_: bool) -> None:
    assert is_business_day(D(day)) is open_


ROLLS = [  # day, previous business day, next business day
    ("2026-05-02", "2026-05-01", "2026-05-07"),
    ("2026-05-06", "2026-05-01", "2026-05-07"),
    ("2026-05-07", "2026-05-07", "2026-05-07"),
    ("2026-04-29", "2026-04-28", "2026-04-30"),
    ("2026-09-19", "2026-09-18", "2026-09-24"),
    ("2026-09-22", "2026-09-18", "2026-09-24"),
    ("2026-12-31", "2026-12-30", "2027-01-04"),
    ("2027-01-03", "2026-12-30", "2027-01-04"),
    ("2025-01-01", "2024-12-30", "2025-01-06"),  # 2025-01-04/05 are a weekend
]


@pytest.mark.parametrize(("day", "previous", "next_"), ROLLS)
def test_rolling_to_a_business_day(day: str, previous: str, next_: str) -> None:
    assert previous_business_day(D(day)) == D(previous)
    assert next_business_day(D(day)) == D(next_)


ADDED = [  # day, count, result
    ("2026-04-28", 1, "2026-04-30"),
    ("2026-04-28", 2, "2026-05-01"),
    ("2026-04-28", 3, "2026-05-07"),
    ("2026-05-07", -1, "2026-05-01"),
    ("2026-05-07", -2, "2026-04-30"),
    ("2026-05-03", 1, "2026-05-07"),
    ("2026-05-03", -1, "2026-05-01"),
    ("2026-05-03", 0, "2026-05-03"),
    ("2026-12-29", 2, "2027-01-04"),
    ("2026-09-18", 1, "2026-09-24"),
]


@pytest.mark.parametrize(("day", "count", "result"), ADDED)
def test_add_business_days(day: str, count: int, result: str) -> None:
    assert add_business_days(D(day), count) == D(result)


PAYMENT_DAYS = [  # closing, payment day (取組日)
    ("2026-04-15", "2026-04-30"),  # month end is a Thursday
    ("2026-04-30", "2026-05-15"),  # after Golden Week, a Friday
    ("2026-05-15", "2026-05-29"),  # 5/31 is a Sunday
    ("2026-01-15", "2026-01-30"),  # 1/31 is a Saturday
    ("2026-02-28", "2026-03-13"),  # 3/15 is a Sunday
    ("2025-08-31", "2025-09-12"),  # 9/15 is 敬老の日 (Monday), then a weekend
    ("2026-12-15", "2026-12-30"),  # 12/31 is a bank holiday
    ("2026-12-31", "2027-01-15"),  # a Friday
    ("2027-12-15", "2027-12-30"),  # 12/31 is a Friday, a bank holiday
    ("2027-12-31", "2028-01-14"),  # 2028-01-15 is a Saturday
    ("2028-02-15", "2028-02-29"),  # leap year: 2/29 is a Tuesday
    ("2028-02-29", "2028-03-15"),
]


@pytest.mark.parametrize(("closing", "paid"), PAYMENT_DAYS)
def test_payment_days(closing: str, paid: str) -> None:
    assert payment_day(D(closing)) == D(paid)


@pytest.mark.parametrize("day", ["2026-05-14", "2026-05-16", "2026-02-27", "2028-02-28"])
def test_payment_day_of_a_day_that_is_no_closing(day: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        payment_day(D(day))
    assert refused.value.code == "not_a_closing_day"


CLOSINGS = [  # day, is a closing, the closing covering it, the next closing after it
    ("2026-05-01", False, "2026-05-15", "2026-05-15"),
    ("2026-05-15", True, "2026-05-15", "2026-05-31"),
    ("2026-05-16", False, "2026-05-31", "2026-05-31"),
    ("2026-05-31", True, "2026-05-31", "2026-06-15"),
    ("2026-02-28", True, "2026-02-28", "2026-03-15"),
    ("2028-02-28", False, "2028-02-29", "2028-02-29"),
    ("2026-12-31", True, "2026-12-31", "2027-01-15"),
    ("2026-04-30", True, "2026-04-30", "2026-05-15"),
]


@pytest.mark.parametrize(("day", "closing", "covering", "following"), CLOSINGS)
def test_closings(day: str, closing: bool, covering: str, following: str) -> None:
    assert is_closing_day(D(day)) is closing
    assert closing_of(D(day)) == D(covering)
    assert next_closing(D(day)) == D(following)


def test_a_closing_covers_up_to_the_next_midnight_in_japan() -> None:
    cutoff = closing_cutoff(D("2026-05-15"))
    assert cutoff == datetime(2026, 5, 15, 15, 0, tzinfo=UTC)
    assert cutoff.tzinfo is JST
    assert closing_cutoff(D("2026-12-31")) == datetime(2026, 12, 31, 15, 0, tzinfo=UTC)
    last_covered = datetime(2026, 5, 15, 14, 59, 59, 999999, tzinfo=UTC)
    assert closing_of(jst_date(last_covered)) == D("2026-05-15")
    assert closing_of(jst_date(cutoff)) == D("2026-05-31")
    with pytest.raises(InvalidInput) as refused:
        closing_cutoff(D("2026-05-16"))
    assert refused.value.code == "not_a_closing_day"


def test_jst_date_needs_an_offset() -> None:
    assert jst_date(datetime(2026, 12, 31, 15, 0, tzinfo=UTC)) == D("2027-01-01")
    with pytest.raises(InvalidInput) as refused:
        jst_date(datetime(2026, 12, 31, 15, 0))
    assert refused.value.code == "instant_without_offset"


@pytest.mark.parametrize("day", [date(CALENDAR_YEAR_MIN - 1, 12, 30), date(2100, 1, 4)])
def test_dates_outside_the_calendar_are_refused(day: date) -> None:
    with pytest.raises(OutsideCalendar) as refused:
        is_business_day(day)
    assert refused.value.code == "date_outside_calendar"


def test_a_datetime_is_no_date_in_japan() -> None:
    with pytest.raises(TypeError):
        is_business_day(datetime(2026, 5, 7, 12, 0, tzinfo=UTC))


def test_too_many_business_days_are_refused() -> None:
    with pytest.raises(InvalidInput) as refused:
        add_business_days(D("2026-05-07"), 1001)
    assert refused.value.code == "business_days_too_many"


def test_the_year_end_rule_agrees_with_the_librarys_bank_category() -> None:
    """Every weekday of the calendar's years: closed exactly when `holidays` lists
    a public or bank holiday (its `bank` category is 12/31–1/3)."""
    japan = holidays.Japan(
        years=range(CALENDAR_YEAR_MIN, CALENDAR_YEAR_MAX + 1), categories=(PUBLIC, BANK)
    )
    day = date(CALENDAR_YEAR_MIN, 1, 1)
    while day.year <= CALENDAR_YEAR_MAX:
        if day.weekday() < 5:
            assert is_business_day(day) is (day not in japan), day
        day += timedelta(days=1)


# Far enough from the calendar's ends for ±40 business days (under 70 calendar days).
days = st.dates(date(CALENDAR_YEAR_MIN, 3, 15), date(CALENDAR_YEAR_MAX, 10, 15))


def business_days_between(start: date, end: date) -> int:
    """Business days in (start, end], by brute force."""
    return sum(is_business_day(start + timedelta(days=i)) for i in range(1, (end - start).days + 1))


@given(days)
def test_rolling_lands_on_the_nearest_business_day(day: date) -> None:
    before, after = previous_business_day(day), next_business_day(day)
    assert is_business_day(before) and is_business_day(after)
    assert before <= day <= after
    assert business_days_between(before, day) == 0
    assert business_days_between(day - timedelta(days=1), after - timedelta(days=1)) == 0


@given(days, st.integers(-40, 40))
def test_adding_business_days_counts_business_days(day: date, count: int) -> None:
    result = add_business_days(day, count)
    if count >= 0:
        assert business_days_between(day, result) == count
    else:
        assert business_days_between(result - timedelta(days=1), day - timedelta(days=1)) == -count
    if count != 0:
        assert is_business_day(result)
    if is_business_day(day):
        assert add_business_days(result, -count) == day


@given(days)
def test_the_next_closing_is_the_first_closing_after(day: date) -> None:
    following = next_closing(day)
    assert following > day and is_closing_day(following)
    between = [day + timedelta(days=i) for i in range(1, (following - day).days)]
    assert not any(is_closing_day(other) for other in between)
    assert closing_of(day) == (day if is_closing_day(day) else following)


@given(days)
def test_payment_day_is_the_last_business_day_on_or_before_the_due_day(day: date) -> None:
    closing = closing_of(day)
    due = month_end(closing) if closing.day == 15 else next_closing(closing)
    paid = payment_day(closing)
    assert is_business_day(paid)
    assert closing < paid <= due
    assert business_days_between(paid, due) == 0


@given(st.datetimes(datetime(2001, 1, 1), datetime(2098, 12, 1), timezones=st.just(UTC)))
def test_every_instant_belongs_to_the_closing_whose_window_holds_it(instant: datetime) -> None:
    closing = closing_of(jst_date(instant))
    if closing.day == 15:
        previous = closing.replace(day=1) - timedelta(days=1)
    else:
        previous = closing.replace(day=15)
    assert closing_cutoff(previous) <= instant < closing_cutoff(closing)
