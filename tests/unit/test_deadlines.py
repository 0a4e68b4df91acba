"""The Freelance Act deadline counted as the law counts it (SPEC §2): the day of
delivery is the first of the 60 days, in Japanese time; due at 00:00 JST of the 61st."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.core.deadlines import payment_due_by

JST = ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(("delivered", "due"), [
    # The example: day 1 is 1/6, day 60 is 3/6.
    (datetime(2026, 1, 6, 18, 0, tzinfo=JST), datetime(2026, 3, 7, tzinfo=JST)),
    # Delivered one minute after midnight or before it: a day apart.
    (datetime(2026, 1, 6, 0, 1, tzinfo=JST), datetime(2026, 3, 7, tzinfo=JST)),
    (datetime(2026, 1, 5, 23, 59, tzinfo=JST), datetime(2026, 3, 6, tzinfo=JST)),
    # Given in UTC, a JST date a day later than the UTC one.
    (datetime(2026, 12, 31, 15, 30, tzinfo=UTC), datetime(2027, 3, 2, tzinfo=JST)),
    # Across a month end of 30 days, and a leap day (2028-02-29 is day 60).
    (datetime(2026, 4, 30, 12, tzinfo=JST), datetime(2026, 6, 29, tzinfo=JST)),
    (datetime(2027, 12, 31, 12, tzinfo=JST), datetime(2028, 2, 29, tzinfo=JST)),
    (datetime(2028, 1, 1, 9, tzinfo=JST), datetime(2028, 3, 1, tzinfo=JST)),
])
def test_hand_computed_deadlines(delivered: datetime, due: datetime) -> None:
    assert payment_due_by(delivered) == due
    assert payment_due_by(delivered).utcoffset() == timedelta(hours=9)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1),
                    timezones=st.just(UTC)))
def test_never_earlier_than_the_old_rule_minus_a_day_nor_later_than_it_plus_one(
        delivered: datetime) -> None:
    due = payment_due_by(delivered)
    # 60 whole JST days after the delivery day began, and within 60 days and a day.
    assert delivered + timedelta(days=59) < due <= delivered + timedelta(days=60)
    assert due.astimezone(JST).time().isoformat() == "00:00:00"


def test_a_time_without_a_timezone_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        payment_due_by(datetime(2026, 1, 6, 18))
