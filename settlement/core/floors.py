"""The low-price guard: a fee plan's minimum item amount (the Crowdsourcing
Association's check item 8, "no unfairly low pay").

A plan may name `minimum_item`, a decimal string in the plan's currency. An
amount a client offers below it (a milestone, a competition's prize, a task's
unit price) is refused with `amount_below_minimum`; a plan without one refuses
nothing. Pure: the floor comes in with the plan, recorded with the job like its
rates (`FeePlan.to_dict`).
"""

from __future__ import annotations

from decimal import Decimal

from settlement.core.errors import BelowMinimum, ConfigError, InvalidMoney
from settlement.core.money import Money, parse_money

# The low-price report lists the items at most this far above their floor.
NEAR_FLOOR_MARGIN = Decimal("0.10")


def minimum_item(plan: str, currency: str, value: object) -> Decimal | None:
    """The plan's `minimum_item` read from its TOML table (None when absent): a
    positive decimal string within the currency's decimals and at most 10^12."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"fee plan {plan!r}: minimum_item must be a decimal string "
                          f"such as \"3000\", not {type(value).__name__}")
    try:
        return parse_money({"amount": value, "currency": currency}).amount
    except InvalidMoney as exc:
        raise ConfigError(f"fee plan {plan!r}: minimum_item {value!r} is not a positive "
                          f"{currency} amount ({exc.code}: {exc.message})") from exc


def require_floor(plan: str, floor: Decimal | None, amount: Money, what: str) -> None:
    """Refuse `amount` (of `what`, e.g. "milestone m1") below the plan's floor."""
    if floor is not None and amount.amount < floor:
        currency = amount.currency.code
        raise BelowMinimum(f"{what}: {amount.amount} {currency} is below the minimum item "
                           f"amount {floor} {currency} of fee plan {plan}")


def near_floor(floor: Decimal | None, amount: Decimal) -> bool:
    """Whether `amount` is at the floor or at most 10 % above it (the report's rows)."""
    return floor is not None and floor <= amount <= floor * (1 + NEAR_FLOOR_MARGIN)
