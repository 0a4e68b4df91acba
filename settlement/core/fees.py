"""Fee plans and the fee, tax and withholding arithmetic of SPEC §5.

Pure: amounts in, every part of the computation out, so events can record them
and history never depends on today's plan file.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson

from settlement.core.errors import ConfigError, InvalidMoney, Rejected
from settlement.core.floors import minimum_item, require_floor
from settlement.core.money import Money, currency_of, floor, zero

WITHHOLDING_THRESHOLD = Decimal(1_000_000)
WITHHOLDING_RATE_LOW = Decimal("0.1021")
WITHHOLDING_RATE_HIGH = Decimal("0.2042")
WITHHOLDING_BASE_TAX = Decimal(102_100)


@dataclass(frozen=True)
class Tier:
    """A marginal tier: `rate` applies to the part of the cumulative gross up to `up_to`."""

    rate: Decimal
    up_to: Decimal | None = None


@dataclass(frozen=True)
class ReleaseFees:
    """Every part of one release of gross G to a worker."""

    gross: Money
    fee: Money
    fee_tax: Money
    withholding: Money
    net: Money


@dataclass(frozen=True)
class ClientFee:
    """The client fee on an amount being funded; `total` is what the payment adds."""

    fee: Money
    fee_tax: Money

    @property
    def total(self) -> Money:
        return self.fee + self.fee_tax


def exact(tiers: tuple[Tier, ...], amount: Decimal) -> Decimal:
    """Σ rate × the part of `amount` inside each tier, unrounded."""
    total, lower = Decimal(0), Decimal(0)
    for tier in tiers:
        upper = amount if tier.up_to is None else min(amount, tier.up_to)
        if upper > lower:
            total += tier.rate * (upper - lower)
        if tier.up_to is None or amount <= tier.up_to:
            break
        lower = tier.up_to
    return total


def withholding_tax(base: Money) -> Money:
    """Japanese withholding on a payment to an individual (JPY only)."""
    if base.currency.code != "JPY":
        raise Rejected("withholding applies to JPY only", "withholding_currency")
    b = base.amount
    if b <= WITHHOLDING_THRESHOLD:
        return floor(b * WITHHOLDING_RATE_LOW, "JPY")
    high = floor((b - WITHHOLDING_THRESHOLD) * WITHHOLDING_RATE_HIGH, "JPY")
    return Money(WITHHOLDING_BASE_TAX, "JPY") + high


@dataclass(frozen=True)
class FeePlan:
    name: str
    currency: str
    worker_tiers: tuple[Tier, ...]
    worker_fee_tax_included: bool
    consumption_tax_rate: Decimal
    client_rate: Decimal = Decimal(0)
    client_fee_tax_included: bool = False
    # The low-price guard (`floors`): the least amount an item may be offered at.
    minimum_item: Decimal | None = None

    def _split_tax(self, fee_exact: Decimal, tax_included: bool) -> tuple[Money, Money]:
        r = self.consumption_tax_rate
        if tax_included:
            fee_total = floor(fee_exact, self.currency)
            fee_tax = floor(fee_total.amount * r / (1 + r), self.currency)
            return fee_total - fee_tax, fee_tax
        fee = floor(fee_exact, self.currency)
        return fee, floor(fee.amount * r, self.currency)

    def release(
        self, gross: Money, cumulative: Money, tax_share: Money, withholding: bool
    ) -> ReleaseFees:
        """Fees on releasing `gross` to a worker who was already released `cumulative`
        in this escrow; `tax_share` is the consumption tax included in `gross`."""
        for amount in (gross, cumulative, tax_share):
            self.require_currency(amount)
        if not 0 <= tax_share.amount <= gross.amount:
            raise Rejected(f"tax share {tax_share.amount} outside 0..{gross.amount}",
                           "tax_exceeds_amount")
        cum, g = cumulative.amount, gross.amount
        fee_exact = exact(self.worker_tiers, cum + g) - exact(self.worker_tiers, cum)
        fee, fee_tax = self._split_tax(fee_exact, self.worker_fee_tax_included)
        withheld = withholding_tax(gross - tax_share) if withholding else zero(self.currency)
        net = gross - fee - fee_tax - withheld
        if net.amount < 0:
            raise Rejected(f"fees {fee + fee_tax + withheld} exceed gross {gross}",
                           "fees_exceed_gross")
        return ReleaseFees(gross, fee, fee_tax, withheld, net)

    def client_fee(self, amount: Money) -> ClientFee:
        """The client fee on the amount being funded (one tier, `client_rate`)."""
        self.require_currency(amount)
        fee, fee_tax = self._split_tax(amount.amount * self.client_rate,
                                       self.client_fee_tax_included)
        return ClientFee(fee, fee_tax)

    def require_minimum(self, amount: Money, what: str) -> None:
        """Refuse an offered item amount below the plan's `minimum_item`
        (`amount_below_minimum`); the currency is checked before."""
        require_floor(self.name, self.minimum_item, amount, what)

    def require_currency(self, amount: Money) -> None:
        if amount.currency.code != self.currency:
            raise Rejected(
                f"plan {self.name} is in {self.currency}, amount is in {amount.currency.code}",
                "currency_mismatch",
            )

    def to_dict(self) -> dict[str, Any]:
        """The plan as recorded with a job, so later plan edits never change it.
        `minimum_item` only when the plan has one: a plan without stays recorded as
        before the low-price guard, and its jobs refuse nothing."""
        return {
            "name": self.name,
            "currency": self.currency,
            "worker_tiers": [
                {"rate": str(t.rate)} | ({} if t.up_to is None else {"up_to": str(t.up_to)})
                for t in self.worker_tiers
            ],
            "worker_fee_tax_included": self.worker_fee_tax_included,
            "consumption_tax_rate": str(self.consumption_tax_rate),
            "client_rate": str(self.client_rate),
            "client_fee_tax_included": self.client_fee_tax_included,
        } | ({} if self.minimum_item is None else {"minimum_item": str(self.minimum_item)})

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> FeePlan:
        try:
            currency = currency_of(data["currency"]).code
            tiers = tuple(
                Tier(rate=_decimal(t["rate"]), up_to=_decimal(t["up_to"]) if "up_to" in t else None)
                for t in data["worker_tiers"]
            )
            plan = cls(
                name=name,
                currency=currency,
                worker_tiers=tiers,
                worker_fee_tax_included=bool(data["worker_fee_tax_included"]),
                consumption_tax_rate=_decimal(data["consumption_tax_rate"]),
                client_rate=_decimal(data.get("client_rate", "0")),
                client_fee_tax_included=bool(data.get("client_fee_tax_included", False)),
                minimum_item=minimum_item(name, currency, data.get("minimum_item")),
            )
        except (KeyError, TypeError, InvalidMoney) as exc:
            raise ConfigError(f"fee plan {name!r} is invalid: {exc}") from exc
        plan._check()
        return plan

    def _check(self) -> None:
        bounds = [t.up_to for t in self.worker_tiers]
        if not self.worker_tiers or bounds[-1] is not None or None in bounds[:-1]:
            raise ConfigError(f"fee plan {self.name!r}: only the last tier may be open-ended")
        closed = [b for b in bounds if b is not None]
        if closed != sorted(set(closed)):
            raise ConfigError(f"fee plan {self.name!r}: tier bounds must increase")
        rates = [t.rate for t in self.worker_tiers] + [self.client_rate, self.consumption_tax_rate]
        if any(not Decimal(0) <= r < Decimal(1) for r in rates):
            raise ConfigError(f"fee plan {self.name!r}: rates must be in [0, 1)")


def recorded_plan(data: Mapping[str, Any]) -> FeePlan:
    """The plan a job recorded (`FeePlan.to_dict`), parsed once per distinct content.
    Every new escrow and every replay parsed its own copy (a third of opening a
    job, profiled); plans are frozen, so escrows can share one."""
    return _parsed_plan(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))


@functools.lru_cache(maxsize=256)
def _parsed_plan(canonical: bytes) -> FeePlan:
    data = orjson.loads(canonical)
    return FeePlan.from_dict(data["name"], data)


def _decimal(value: object) -> Decimal:
    if not isinstance(value, str):
        raise ConfigError(f"{value!r} must be a decimal string, not {type(value).__name__}")
    try:
        result = Decimal(value)
    except InvalidOperation as exc:
        raise ConfigError(f"{value!r} is not a decimal") from exc
    if not result.is_finite():
        raise ConfigError(f"{value!r} is not finite")
    return result


def load_fee_plans(path: Path) -> dict[str, FeePlan]:
    """Read the plans of a TOML file (`[plans.<name>]` tables)."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read fee plans {path}: {exc}") from exc
    plans = document.get("plans")
    if not isinstance(plans, dict) or not plans:
        raise ConfigError(f"{path} defines no [plans.<name>] table")
    return {name: FeePlan.from_dict(name, data) for name, data in plans.items()}


DEFAULT_FEE_PLANS = Path(__file__).with_name("fee_plans.toml")
