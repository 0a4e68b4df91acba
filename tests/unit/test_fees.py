"""Fees, consumption tax and withholding (SPEC §5), every expectation by hand.

Plans from the shipped settlement/core/fee_plans.toml:
- tiered: worker 20% up to 100,000, 10% up to 200,000, 5% beyond; tax 10% on top.
- flat: worker 16.5% tax-included, client 5.5% tax-included, tax rate 10%.
- usd_standard: worker 10%, client 5%, both tax-excluded, tax rate 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from settlement.core.errors import ConfigError, Rejected
from settlement.core.fees import (
    DEFAULT_FEE_PLANS,
    FeePlan,
    Tier,
    exact,
    load_fee_plans,
    recorded_plan,
    withholding_tax,
)
from settlement.core.money import Money

PLANS = load_fee_plans(DEFAULT_FEE_PLANS)
TIERED, FLAT, USD = PLANS["tiered"], PLANS["flat"], PLANS["usd_standard"]


def jpy(amount: int | str) -> Money:
    return Money(Decimal(amount), "JPY")


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


# (gross, cumulative) → (fee, fee_tax, net) on the tiered plan, no withholding.
TIERED_RELEASES = [
    (11_000, 0, 2_200, 220, 8_580),  # SPEC worked example
    # 90,000 + 20,000 crosses 100,000: 10,000×0.20 + 10,000×0.10 = 3,000.
    (20_000, 90_000, 3_000, 300, 16_700),
    (100_000, 0, 20_000, 2_000, 78_000),  # ends exactly on the boundary
    (10_000, 100_000, 1_000, 100, 8_900),  # starts exactly on the boundary
    (50_000, 200_000, 2_500, 250, 47_250),  # open third tier
    # 150,000 + 100,000: 50,000×0.10 + 50,000×0.05 = 7,500.
    (100_000, 150_000, 7_500, 750, 91_750),
    # All three tiers: 20,000 + 10,000 + 50,000×0.05 = 32,500.
    (250_000, 0, 32_500, 3_250, 214_250),
    (11, 0, 2, 0, 9),  # 2.2 → 2; tax 0.2 → 0
    (19, 0, 3, 0, 16),  # 3.8 → 3, never half-up
    (99, 0, 19, 1, 79),  # 19.8 → 19; tax 1.9 → 1
    (7, 99_999, 0, 0, 7),  # 1×0.20 + 6×0.10 = 0.8 → 0
]


@pytest.mark.parametrize(("gross", "cumulative", "fee", "fee_tax", "net"), TIERED_RELEASES)
def test_tiered_release(gross: int, cumulative: int, fee: int, fee_tax: int, net: int) -> None:
    fees = TIERED.release(jpy(gross), jpy(cumulative), jpy(0), withholding=False)
    assert fees.gross == jpy(gross)
    assert (fees.fee, fees.fee_tax, fees.withholding, fees.net) == (
        jpy(fee), jpy(fee_tax), jpy(0), jpy(net)
    )


def test_successive_releases_sum_to_one_combined_release() -> None:
    # 60,000 at 0 → 12,000; 60,000 at 60,000 → 40,000×0.20 + 20,000×0.10 = 10,000;
    # 100,000 at 120,000 → 80,000×0.10 + 20,000×0.05 = 9,000. Together 31,000,
    # as one release of 220,000: 20,000 + 10,000 + 20,000×0.05 = 31,000.
    steps = [(60_000, 0, 12_000, 1_200), (60_000, 60_000, 10_000, 1_000),
             (100_000, 120_000, 9_000, 900)]
    for gross, cumulative, fee, fee_tax in steps:
        fees = TIERED.release(jpy(gross), jpy(cumulative), jpy(0), withholding=False)
        assert (fees.fee, fees.fee_tax) == (jpy(fee), jpy(fee_tax))
    combined = TIERED.release(jpy(220_000), jpy(0), jpy(0), withholding=False)
    assert (combined.fee, combined.fee_tax) == (jpy(31_000), jpy(3_100))


def test_each_release_is_floored_on_its_own() -> None:
    # 19 then 19: 3.8 → 3 twice = 6; one release of 38: 7.6 → 7.
    first = TIERED.release(jpy(19), jpy(0), jpy(0), withholding=False)
    second = TIERED.release(jpy(19), jpy(19), jpy(0), withholding=False)
    assert first.fee + second.fee == jpy(6)
    assert TIERED.release(jpy(38), jpy(0), jpy(0), withholding=False).fee == jpy(7)


# Flat plan, tax included: total = floor(G×0.165), tax = floor(total×0.1/1.1)
# = floor(total/11), fee = total − tax. (gross, cumulative) → (fee, fee_tax, net).
FLAT_RELEASES = [
    (10_000, 0, 1_500, 150, 8_350),  # total 1,650; 1,650/11 = 150
    (11_000, 0, 1_650, 165, 9_185),  # total 1,815; 1,815/11 = 165
    (12_345, 0, 1_851, 185, 10_309),  # 2,036.925 → 2,036; 2,036/11 = 185.09 → 185
    (100, 0, 15, 1, 84),  # 16.5 → 16; 16/11 → 1
    (6, 0, 0, 0, 6),  # 0.99 → 0
    (10_000, 500_000, 1_500, 150, 8_350),  # one open tier: cumulative changes nothing
]


@pytest.mark.parametrize(("gross", "cumulative", "fee", "fee_tax", "net"), FLAT_RELEASES)
def test_flat_tax_included_release(
    gross: int, cumulative: int, fee: int, fee_tax: int, net: int
) -> None:
    fees = FLAT.release(jpy(gross), jpy(cumulative), jpy(0), withholding=False)
    assert (fees.fee, fees.fee_tax, fees.withholding, fees.net) == (
        jpy(fee), jpy(fee_tax), jpy(0), jpy(net)
    )


# usd_standard, 10% tax-excluded with tax rate 0: (gross, cumulative) → (fee, net).
USD_RELEASES = [
    ("123.45", "0", "12.34", "111.11"),  # 12.345 → 12.34
    ("0.09", "0", "0.00", "0.09"),  # 0.009 → 0.00
    ("19.99", "50.00", "1.99", "18.00"),  # 1.999 → 1.99
    ("1000000.01", "0", "100000.00", "900000.01"),  # 100,000.001 → 100,000.00
]


@pytest.mark.parametrize(("gross", "cumulative", "fee", "net"), USD_RELEASES)
def test_usd_release_with_cents(gross: str, cumulative: str, fee: str, net: str) -> None:
    fees = USD.release(usd(gross), usd(cumulative), usd("0"), withholding=False)
    assert (fees.fee, fees.fee_tax, fees.withholding, fees.net) == (
        usd(fee), usd("0"), usd("0"), usd(net)
    )
    assert str(fees.fee.amount) == fee


# (plan, amount) → (fee, fee_tax, total) of the client fee.
CLIENT_FEES = [
    # flat, 5.5% tax-included: total = floor(A×0.055), tax = floor(total/11).
    (FLAT, jpy(10_000), jpy(500), jpy(50), jpy(550)),
    (FLAT, jpy(12_345), jpy(617), jpy(61), jpy(678)),  # 678.975 → 678; 678/11 = 61.6 → 61
    (FLAT, jpy(100), jpy(5), jpy(0), jpy(5)),  # 5.5 → 5; 5/11 → 0
    # usd_standard, 5% tax-excluded at rate 0.
    (USD, usd("100.00"), usd("5.00"), usd("0"), usd("5.00")),
    (USD, usd("123.45"), usd("6.17"), usd("0"), usd("6.17")),  # 6.1725 → 6.17
    (USD, usd("0.19"), usd("0"), usd("0"), usd("0")),  # 0.0095 → 0.00
    # tiered has no client rate.
    (TIERED, jpy(10_000), jpy(0), jpy(0), jpy(0)),
]


@pytest.mark.parametrize(("plan", "amount", "fee", "fee_tax", "total"), CLIENT_FEES)
def test_client_fee(plan: FeePlan, amount: Money, fee: Money, fee_tax: Money, total: Money) -> None:
    client = plan.client_fee(amount)
    assert (client.fee, client.fee_tax, client.total) == (fee, fee_tax, total)


# Withholding base → tax: 10.21% up to 1,000,000, then 102,100 + 20.42% of the rest.
WITHHOLDING = [
    (0, 0),
    (9, 0),  # 0.9189 → 0
    (10, 1),  # 1.021 → 1
    (100_000, 10_210),
    (999_999, 102_099),  # 102,099.8979 → 102,099
    (1_000_000, 102_100),
    (1_000_001, 102_100),  # 102,100 + floor(0.2042)
    (1_000_005, 102_101),  # 102,100 + floor(1.021)
    (2_000_000, 306_300),  # 102,100 + 204,200
]


@pytest.mark.parametrize(("base", "tax"), WITHHOLDING)
def test_withholding_tax(base: int, tax: int) -> None:
    assert withholding_tax(jpy(base)) == jpy(tax)


def test_withholding_on_usd_is_refused() -> None:
    with pytest.raises(Rejected) as raised:
        withholding_tax(usd("1000.00"))
    assert raised.value.code == "withholding_currency"


# Tiered release with withholding: (gross, tax share) → (fee, fee_tax, W, net).
WITHHELD_RELEASES = [
    # Base 110,000 − 10,000 = 100,000 → W 10,210. Fee 20,000 + 10,000×0.10 = 21,000.
    (110_000, 10_000, 21_000, 2_100, 10_210, 76_690),
    # Base 11,000 → W floor(1,123.1) = 1,123.
    (11_000, 0, 2_200, 220, 1_123, 7_457),
]


@pytest.mark.parametrize(("gross", "share", "fee", "fee_tax", "withheld", "net"), WITHHELD_RELEASES)
def test_release_with_withholding(
    gross: int, share: int, fee: int, fee_tax: int, withheld: int, net: int
) -> None:
    fees = TIERED.release(jpy(gross), jpy(0), jpy(share), withholding=True)
    assert (fees.fee, fees.fee_tax, fees.withholding, fees.net) == (
        jpy(fee), jpy(fee_tax), jpy(withheld), jpy(net)
    )


def test_release_with_withholding_on_a_usd_plan_is_refused() -> None:
    with pytest.raises(Rejected) as raised:
        USD.release(usd("100.00"), usd("0"), usd("0"), withholding=True)
    assert raised.value.code == "withholding_currency"


@pytest.mark.parametrize(
    "call",
    [
        lambda: TIERED.release(usd("100.00"), usd("0"), usd("0"), withholding=False),
        lambda: USD.release(jpy(100), jpy(0), jpy(0), withholding=False),
        lambda: FLAT.client_fee(usd("100.00")),
        lambda: USD.client_fee(jpy(100)),
    ],
)
def test_amounts_in_another_currency_than_the_plan_are_refused(call: Callable[[], object]) -> None:
    with pytest.raises(Rejected) as raised:
        call()
    assert raised.value.code == "currency_mismatch"


def test_fees_above_the_gross_are_refused() -> None:
    # 99% + 10% tax on 100: fee 99, tax 9.9 → 9, 108 > 100.
    greedy = FeePlan("greedy", "JPY", (Tier(Decimal("0.99")),), False, Decimal("0.10"))
    with pytest.raises(Rejected) as raised:
        greedy.release(jpy(100), jpy(0), jpy(0), withholding=False)
    assert raised.value.code == "fees_exceed_gross"


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("0", "0"),
        ("100000", "20000"),
        ("150000.5", "25000.05"),  # 20,000 + 50,000.5×0.10, unrounded
        ("250000", "32500"),
    ],
)
def test_exact_is_the_unrounded_marginal_sum(amount: str, expected: str) -> None:
    assert exact(TIERED.worker_tiers, Decimal(amount)) == Decimal(expected)


def test_default_plans_load() -> None:
    assert set(PLANS) == {"tiered", "flat", "usd_standard"}
    assert TIERED.worker_tiers == (
        Tier(Decimal("0.20"), Decimal("100000")),
        Tier(Decimal("0.10"), Decimal("200000")),
        Tier(Decimal("0.05")),
    )
    assert (TIERED.currency, TIERED.worker_fee_tax_included) == ("JPY", False)
    assert (TIERED.consumption_tax_rate, TIERED.client_rate) == (Decimal("0.10"), Decimal(0))
    assert FLAT.worker_tiers == (Tier(Decimal("0.165")),)
    assert (FLAT.worker_fee_tax_included, FLAT.client_fee_tax_included) == (True, True)
    assert FLAT.client_rate == Decimal("0.055")
    assert (USD.currency, USD.client_rate, USD.consumption_tax_rate) == (
        "USD", Decimal("0.05"), Decimal("0")
    )


GOOD_TIERS = '[{up_to = "100000", rate = "0.20"}, {rate = "0.10"}]'


def plan_toml(tiers: str = GOOD_TIERS, currency: str = '"JPY"', tax: str = '"0.10"',
              client: str = '"0"') -> str:
    return (f"[plans.p]\ncurrency = {currency}\nworker_tiers = {tiers}\n"
            f"worker_fee_tax_included = false\nconsumption_tax_rate = {tax}\n"
            f"client_rate = {client}\n")


BAD_FILES = [
    (plan_toml(tiers="[{rate = 0.2}]"), "must be a decimal string"),  # TOML float
    (plan_toml(tax="0.1"), "must be a decimal string"),
    (plan_toml(client="0.05"), "must be a decimal string"),
    (plan_toml(tiers='[{rate = "abc"}]'), "is not a decimal"),
    (plan_toml(tiers='[{rate = "NaN"}]'), "is not finite"),
    (plan_toml(tiers='[{up_to = "200000", rate = "0.2"}, {up_to = "100000", rate = "0.1"},'
                     ' {rate = "0.05"}]'), "tier bounds must increase"),
    (plan_toml(tiers='[{up_to = "100000", rate = "0.2"}, {up_to = "100000", rate = "0.1"},'
                     ' {rate = "0.05"}]'), "tier bounds must increase"),
    (plan_toml(tiers='[{rate = "0.2"}, {up_to = "100000", rate = "0.1"}]'),
     "only the last tier may be open-ended"),
    (plan_toml(tiers='[{up_to = "100000", rate = "0.2"}]'),
     "only the last tier may be open-ended"),
    (plan_toml(tiers="[]"), "only the last tier may be open-ended"),
    (plan_toml(tiers='[{rate = "1"}]'), r"rates must be in \[0, 1\)"),
    (plan_toml(tiers='[{rate = "1.5"}]'), r"rates must be in \[0, 1\)"),
    (plan_toml(tiers='[{rate = "-0.1"}]'), r"rates must be in \[0, 1\)"),
    (plan_toml(client='"1"'), r"rates must be in \[0, 1\)"),
    (plan_toml(tax='"1"'), r"rates must be in \[0, 1\)"),
    (plan_toml(currency='"XYZ"'), "unknown currency"),
    ('[plans.p]\nworker_tiers = [{rate = "0.1"}]\n', "is invalid"),  # no currency
    ("", "defines no"),
    ("[plans]\n", "defines no"),
    ("[plans.p\n", "cannot read fee plans"),  # not TOML
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_bad_fee_plan_files_are_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "plans.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as raised:
        load_fee_plans(path)
    assert raised.value.code == "config_invalid"


def test_a_good_plan_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "plans.toml"
    path.write_text(plan_toml(), encoding="utf-8")
    plan = load_fee_plans(path)["p"]
    assert plan.worker_tiers == (Tier(Decimal("0.20"), Decimal("100000")), Tier(Decimal("0.10")))


def test_a_missing_plan_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read fee plans"):
        load_fee_plans(tmp_path / "absent.toml")


def test_tiered_plan_as_recorded() -> None:
    assert TIERED.to_dict() == {
        "name": "tiered",
        "currency": "JPY",
        "worker_tiers": [
            {"rate": "0.20", "up_to": "100000"},
            {"rate": "0.10", "up_to": "200000"},
            {"rate": "0.05"},
        ],
        "worker_fee_tax_included": False,
        "consumption_tax_rate": "0.10",
        "client_rate": "0",
        "client_fee_tax_included": False,
    }


@pytest.mark.parametrize("plan", [TIERED, FLAT, USD], ids=lambda p: p.name)
def test_plan_round_trips_through_its_recorded_form(plan: FeePlan) -> None:
    recorded = json.loads(json.dumps(plan.to_dict()))
    assert FeePlan.from_dict(plan.name, recorded) == plan


def test_a_recorded_plan_reads_back_equal_and_is_parsed_once() -> None:
    plan = load_fee_plans(DEFAULT_FEE_PLANS)["tiered"]
    assert recorded_plan(plan.to_dict()) == plan
    assert recorded_plan(plan.to_dict()) is recorded_plan(dict(reversed(plan.to_dict().items())))
