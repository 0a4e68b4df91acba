"""The low-price guard (issue 18, point 5): a fee plan's `minimum_item` refuses an
offered amount below it — at, just below and just above the floor, per plan, in
each format — and a plan without one refuses nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from moneyed import Money

from settlement.core.errors import ConfigError, SettlementError
from settlement.core.fees import FeePlan, load_fee_plans, recorded_plan
from settlement.core.floors import near_floor
from settlement.core.money import money, zero
from settlement.escrow import Escrow
from settlement.escrow import events as ev

if TYPE_CHECKING:
    from conftest import Journal

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
AT: dict[str, Any] = {"causation_id": "mkt-2", "at": T0 + timedelta(hours=1)}
FLOORED = Path(__file__).resolve().parents[1] / "fixtures" / "fee_plans_floored.toml"


def jpy(amount: int | str) -> Money:
    return money(Decimal(amount), "JPY", allow_zero=True)


def usd(amount: str) -> Money:
    return money(Decimal(amount), "USD", allow_zero=True)


@pytest.fixture(scope="module")
def floored() -> dict[str, FeePlan]:
    return load_fee_plans(FLOORED)


def contract(plan: FeePlan, *amounts: Money, job_id: str = "job-1") -> Escrow:
    return Escrow.contract_project(
        job_id=job_id, client_id="c1", worker_id="w1", plan=plan,
        milestones=[(f"m{n}", a, zero(plan.currency)) for n, a in enumerate(amounts, 1)],
        withholding=False, inspection_days=14, terms=None, causation_id="mkt-1", at=T0)


def open_competition(plan: FeePlan, prize: Money) -> Escrow:
    return Escrow.open_competition(
        job_id="comp-1", client_id="c1", plan=plan, prize=prize, tax=zero(plan.currency),
        guaranteed=True, entry_deadline=T0 + timedelta(days=7),
        award_deadline=T0 + timedelta(days=14), min_entries=0, withholding=False,
        terms=None, causation_id="mkt-1", at=T0)


def open_task(plan: FeePlan, unit_price: Money) -> Escrow:
    return Escrow.open_task(
        job_id="task-1", client_id="c1", plan=plan, unit_price=unit_price, quantity=3,
        tax=zero(plan.currency), approval_days=14, withholding=False, terms=None,
        causation_id="mkt-1", at=T0)


def refused_code(opening: Callable[[], object]) -> str:
    with pytest.raises(SettlementError) as refused:
        opening()
    return refused.value.code


@pytest.mark.parametrize(("plan", "amount", "accepted"), [
    ("tiered", jpy(3_000), True),  # at the floor
    ("tiered", jpy(2_999), False),  # one yen below
    ("tiered", jpy(3_001), True),  # one yen above
    ("flat", jpy(5_000), True),
    ("flat", jpy(4_999), False),
    ("flat", jpy(3_000), False),  # tiered's floor is not flat's
    ("usd_standard", usd("25.50"), True),
    ("usd_standard", usd("25.49"), False),  # one cent below
    ("usd_standard", usd("25.51"), True),
    ("open", jpy(1), True),  # a plan without a floor refuses nothing
])
def test_a_contract_is_held_to_its_plans_floor(floored: dict[str, FeePlan], plan: str,
                                              amount: Money, accepted: bool) -> None:
    if accepted:
        escrow = contract(floored[plan], amount)
        assert escrow.items["m1"].amount == amount
    else:
        assert refused_code(lambda: contract(floored[plan], amount)) == "amount_below_minimum"


def test_one_milestone_below_the_floor_refuses_the_whole_contract(
        floored: dict[str, FeePlan]) -> None:
    with pytest.raises(SettlementError, match="milestone m2: 2999 JPY is below") as refused:
        contract(floored["tiered"], jpy(50_000), jpy(2_999), jpy(3_000))
    assert refused.value.code == "amount_below_minimum"


@pytest.mark.parametrize(("amount", "accepted"), [(2_999, False), (3_000, True), (3_001, True)])
def test_an_added_milestone_is_held_to_the_floor(floored: dict[str, FeePlan], journal: Journal,
                                                 amount: int, accepted: bool) -> None:
    escrow = contract(floored["tiered"], jpy(10_000))
    if accepted:
        escrow.add_milestone("m2", jpy(amount), jpy(0), **AT)
        journal.take(escrow)
        assert escrow.items["m2"].amount == jpy(amount)
    else:  # refused, nothing changed
        journal.rejects(escrow, "amount_below_minimum",
                        lambda: escrow.add_milestone("m2", jpy(amount), jpy(0), **AT))
        assert "m2" not in escrow.items


def test_the_floor_is_recorded_with_the_job_and_governs_its_added_milestones(
        floored: dict[str, FeePlan], plans: dict[str, FeePlan], journal: Journal) -> None:
    """The opening event copies the floor with the rates: the job keeps the floor it
    was contracted under, whatever the plan file says later (and replay agrees)."""
    escrow = contract(floored["tiered"], jpy(10_000))
    [opened] = journal.take(escrow)
    assert isinstance(opened, ev.ProjectContracted)
    assert opened.plan["minimum_item"] == "3000"
    assert recorded_plan(opened.plan).minimum_item == Decimal(3000)

    # The shipped plan: no floor, none recorded, nothing refused.
    unfloored = contract(plans["tiered"], jpy(1), job_id="job-2")
    assert "minimum_item" not in journal.take(unfloored)[0].plan
    unfloored.add_milestone("m2", jpy(1), jpy(0), **AT)
    assert unfloored.items["m2"].amount == jpy(1)


def test_the_currency_is_checked_before_the_floor(floored: dict[str, FeePlan],
                                                  journal: Journal) -> None:
    escrow = contract(floored["tiered"], jpy(10_000))
    journal.rejects(escrow, "currency_mismatch",
                    lambda: escrow.add_milestone("m2", usd("1.00"), usd("0"), **AT))


@pytest.mark.parametrize(("prize", "accepted"), [(2_999, False), (3_000, True)])
def test_a_competitions_prize_is_held_to_the_floor(floored: dict[str, FeePlan], prize: int,
                                                   accepted: bool) -> None:
    if accepted:
        assert open_competition(floored["tiered"], jpy(prize)).prize == jpy(prize)
    else:
        code = refused_code(lambda: open_competition(floored["tiered"], jpy(prize)))
        assert code == "amount_below_minimum"


@pytest.mark.parametrize(("unit_price", "accepted"), [(4_999, False), (5_000, True)])
def test_a_tasks_unit_price_is_held_to_the_floor(floored: dict[str, FeePlan], unit_price: int,
                                                 accepted: bool) -> None:
    """The unit price, not `unit_price × quantity`: each submission is paid it."""
    if accepted:
        assert open_task(floored["flat"], jpy(unit_price)).unit_price == jpy(unit_price)
    else:
        code = refused_code(lambda: open_task(floored["flat"], jpy(unit_price)))
        assert code == "amount_below_minimum"


def test_no_floor_is_shipped(plans: dict[str, FeePlan]) -> None:
    assert {name: plan.minimum_item for name, plan in plans.items()} == dict.fromkeys(plans)
    assert open_task(plans["tiered"], jpy(1)).unit_price == jpy(1)
    assert open_competition(plans["flat"], jpy(1)).prize == jpy(1)


@pytest.mark.parametrize(("value", "message"), [
    ("3000.0", "must be a decimal string such as \"3000\", not float"),  # a TOML float
    ('"0"', "amount_not_positive"),
    ('"-5"', "amount_not_positive"),
    ('"1000.5"', "amount_too_precise"),  # JPY has no decimals
    ('"1e3"', "amount_format"),
    ('"abc"', "amount_format"),
    ('"10000000000001"', "amount_too_large"),
    ("3000", "not int"),  # a TOML integer
])
def test_a_bad_floor_stops_the_service_at_start_up(tmp_path: Path, value: str,
                                                   message: str) -> None:
    path = tmp_path / "plans.toml"
    text = FLOORED.read_text(encoding="utf-8").replace('minimum_item = "3000"',
                                                       f"minimum_item = {value}")
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_fee_plans(path)
    assert raised.value.code == "config_invalid"
    assert "fee plan 'tiered': minimum_item" in raised.value.message
    assert message in raised.value.message


def test_a_bad_floor_stops_a_command_with_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "plans.toml"
    path.write_text(FLOORED.read_text(encoding="utf-8").replace(
        'minimum_item = "5000"', 'minimum_item = "0"'), encoding="utf-8")
    env = {**os.environ, "SETTLEMENT_FEE_PLANS": str(path)}
    done = subprocess.run([sys.executable, "-m", "settlement.cli", "api"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    line = json.loads(done.stderr.strip())  # one JSON line, no traceback
    assert line["event"] == "config.invalid"
    assert line["error"].startswith("config_invalid: fee plan 'flat': minimum_item '0' is not")


@pytest.mark.parametrize(("floor", "amount", "near"), [
    (Decimal(3000), Decimal(2999), False),
    (Decimal(3000), Decimal(3000), True),  # at the floor
    (Decimal(3000), Decimal(3300), True),  # exactly 10 % above
    (Decimal(3000), Decimal(3301), False),
    (Decimal("25.50"), Decimal("28.05"), True),
    (Decimal("25.50"), Decimal("28.06"), False),
    (None, Decimal(1), False),  # no floor: never near one
])
def test_near_the_floor_means_at_most_ten_percent_above_it(
        floor: Decimal | None, amount: Decimal, near: bool) -> None:
    assert near_floor(floor, amount) is near
