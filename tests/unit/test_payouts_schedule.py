"""A run's window (SPEC §11 closings, payment days), the transfer-fee table and the
payout configuration, as tables worked by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from settlement.core.errors import ConfigError
from settlement.core.money import Money
from settlement.payouts.policy import DEFAULT_PAYOUT_CONFIG, PayoutPolicy, load_policy
from settlement.payouts.schedule import closing_window, due_closing, now_window
from support.memory import POLICY

JST = ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(("closing", "payment_day", "next_payment_day"), [
    (date(2026, 11, 30), date(2026, 12, 15), date(2026, 12, 30)),  # 12/31 is a bank holiday
    (date(2026, 12, 15), date(2026, 12, 30), date(2027, 1, 15)),
    (date(2026, 12, 31), date(2027, 1, 15), date(2027, 1, 29)),    # 1/31 is a Sunday
    (date(2027, 4, 30), date(2027, 5, 14), date(2027, 5, 31)),     # 5/15 a Saturday
    (date(2026, 4, 30), date(2026, 5, 15), date(2026, 5, 29)),     # after Golden Week
    (date(2026, 4, 15), date(2026, 4, 30), date(2026, 5, 15)),     # 4/30 a Thursday
    (date(2025, 12, 31), date(2026, 1, 15), date(2026, 1, 30)),
    # 4/30/2029 is a substitute holiday (振替休日 for Showa Day, a Sunday): 4/27.
    (date(2029, 4, 15), date(2029, 4, 27), date(2029, 5, 15)),
])
def test_closing_windows(closing: date, payment_day: date, next_payment_day: date) -> None:
    window = closing_window(closing, datetime(2030, 1, 1, tzinfo=UTC))
    assert window.run_id == f"closing-{closing.isoformat()}"
    assert window.cutoff == datetime.combine(closing + timedelta(days=1), time(0), JST)
    assert (window.payment_day, window.next_payment_day) == (payment_day, next_payment_day)


def test_the_cutoff_is_the_next_midnight_in_japan() -> None:
    window = closing_window(date(2026, 11, 30), datetime(2026, 11, 30, 15, tzinfo=UTC))
    assert window.cutoff == datetime(2026, 12, 1, tzinfo=JST)


def test_a_now_run_pays_on_the_next_business_day() -> None:
    # Friday 2026-05-01 18:00 JST: the next business day is Thursday 5/7 (Golden Week).
    window = now_window(datetime(2026, 5, 1, 9, tzinfo=UTC))
    assert window.run_id == "run-20260501T090000Z" and window.closing is None
    assert window.payment_day == date(2026, 5, 7)
    assert window.next_payment_day == date(2026, 5, 29)  # the 5/15 closing's: month end


@pytest.mark.parametrize(("now", "closing"), [
    (datetime(2026, 12, 1, tzinfo=JST), date(2026, 11, 30)),
    (datetime(2026, 12, 15, 23, 59, tzinfo=JST), date(2026, 11, 30)),
    (datetime(2026, 12, 16, tzinfo=JST), date(2026, 12, 15)),
    (datetime(2027, 1, 2, tzinfo=JST), date(2026, 12, 31)),
    (datetime(2027, 3, 1, 0, 30, tzinfo=JST), date(2027, 2, 28)),
])
def test_the_due_closing_is_the_latest_whose_day_has_ended(now: datetime,
                                                           closing: date) -> None:
    assert due_closing(now) == closing


@pytest.mark.parametrize(("payable", "same_bank", "fee", "tax"), [
    (1_000, False, 440, 40),      # sent 560: below ¥30,000
    (30_200, False, 440, 40),     # sent 29,760: the lower band agrees
    (30_500, False, 440, 40),     # 30,060 would cost 660, 29,840 costs 440: never more
    (30_660, False, 660, 60),     # sent 30,000: the upper band agrees
    (100_000, True, 330, 30),
    (20_000, True, 110, 10),
    (440, False, 0, 0),           # nothing left to send: the platform bears it
])
def test_transfer_fees(payable: int, same_bank: bool, fee: int, tax: int) -> None:
    assert POLICY.fees.fee(Money(payable, "JPY"), same_bank) == (
        Money(fee, "JPY"), Money(tax, "JPY"))
    assert POLICY.fees.fee(Money("100.00", "USD"), same_bank) == (
        Money(0, "USD"), Money(0, "USD"))  # the table is for yen transfers


def test_the_sample_configuration_loads_and_round_trips() -> None:
    policy = load_policy(DEFAULT_PAYOUT_CONFIG)
    assert policy.minimum("JPY") == Decimal(1000) and policy.minimum("USD") == 0
    assert PayoutPolicy.from_json(policy.to_json()) == policy


@pytest.mark.parametrize(("text", "message"), [
    ("[transfer_fees]\nsame_bank = []\nother_bank = [{fee = '1'}]", "same_bank"),
    ("[transfer_fees]\nsame_bank = [{fee = '1'}, {below = '5', fee = '2'}]\n"
     "other_bank = [{fee = '1'}]", "bands rise"),
    ("[requester]\ncode = 'x'\n[transfer_fees]\nsame_bank = [{fee = '1'}]\n"
     "other_bank = [{fee = '1'}]", "requester"),
    ("minimums = { JPY = 'lots' }\n[transfer_fees]\nsame_bank = [{fee = '1'}]\n"
     "other_bank = [{fee = '1'}]", "minimums.JPY"),
    ("not toml [", "payout configuration"),
])
def test_bad_configuration_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "payouts.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load_policy(path)
    assert message in str(refused.value)
