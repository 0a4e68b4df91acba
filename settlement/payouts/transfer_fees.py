"""Payee-borne transfer fees (SPEC §11 "Transfer fees"): the bank's actual charge
for a transfer, from a table by same bank / other bank and amount band, deducted
tax-included (SPEC §6: revenue:transfer_fees f − t, consumption tax t).

The platform bears every fee unless the marketplace marks a party
`transfer_fee_bearer: payee`; this module only prices the fee. The band is the
bank's: it applies to the amount sent, which is the payable less the fee. So
the fee is a band's fee f with the bank's charge on (payable − f) equal to f;
where no band agrees (the payable sits just above a band's edge) the largest f
below the bank's charge on (payable − f) is taken, the platform bearing the
rest: a payee is never charged more than the bank's actual charge. A payable
no fee leaves anything of is sent whole (the platform bears that fee).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from settlement.core.errors import ConfigError
from settlement.core.money import Money, floor, zero

BANDS_MAX = 16


@dataclass(frozen=True)
class FeeBand:
    fee: Decimal  # tax-included, in the table's currency
    below: Decimal | None = None  # the band holds amounts sent below this; None: the rest


@dataclass(frozen=True)
class TransferFees:
    currency: str
    tax_rate: Decimal
    same_bank: tuple[FeeBand, ...]
    other_bank: tuple[FeeBand, ...]

    def charge(self, sent: Decimal, same_bank: bool) -> Decimal:
        """The bank's charge for sending `sent`."""
        bands = self.same_bank if same_bank else self.other_bank
        return next(b.fee for b in bands if b.below is None or sent < b.below)

    def fee(self, payable: Money, same_bank: bool) -> tuple[Money, Money]:
        """(fee, its consumption tax) a payee bears on a payout of `payable`."""
        currency = payable.currency.code
        if currency != self.currency:
            return zero(currency), zero(currency)
        bands = self.same_bank if same_bank else self.other_bank
        fees = sorted({b.fee for b in bands if b.fee < payable.amount})
        agreeing = [f for f in fees if self.charge(payable.amount - f, same_bank) == f]
        below = [f for f in fees if self.charge(payable.amount - f, same_bank) > f]
        chosen = agreeing[0] if agreeing else max(below, default=Decimal(0))
        tax = floor(chosen * self.tax_rate / (1 + self.tax_rate), currency)
        return Money(chosen, currency), tax

    def to_json(self) -> dict[str, Any]:
        def bands(rows: tuple[FeeBand, ...]) -> list[dict[str, str]]:
            return [{"fee": str(b.fee), **({} if b.below is None else {"below": str(b.below)})}
                    for b in rows]

        return {"currency": self.currency, "consumption_tax_rate": str(self.tax_rate),
                "same_bank": bands(self.same_bank), "other_bank": bands(self.other_bank)}


def _decimal(value: object, where: str) -> Decimal:
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ConfigError(f"{where} must be a decimal string")
    try:
        number = Decimal(value)
    except ArithmeticError as exc:
        raise ConfigError(f"{where} must be a decimal string") from exc
    if not number.is_finite() or number < 0:
        raise ConfigError(f"{where} must be a non-negative decimal")
    return number


def _bands(rows: object, where: str) -> tuple[FeeBand, ...]:
    if not isinstance(rows, list) or not 1 <= len(rows) <= BANDS_MAX:
        raise ConfigError(f"{where} must list 1 to {BANDS_MAX} bands")
    bands = []
    for n, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ConfigError(f"{where}[{n}] must be a table")
        below = row.get("below")
        bands.append(FeeBand(_decimal(row.get("fee"), f"{where}[{n}].fee"),
                             None if below is None else _decimal(below, f"{where}[{n}].below")))
    edges = [b.below for b in bands[:-1]]
    if bands[-1].below is not None or None in edges or edges != sorted(set(edges)):  # type: ignore[type-var]
        raise ConfigError(f"{where}: bands rise by `below`, the last has none")
    return tuple(bands)


def parse_transfer_fees(data: Mapping[str, Any]) -> TransferFees:
    currency = data.get("currency", "JPY")
    if not isinstance(currency, str) or len(currency) != 3:
        raise ConfigError("transfer_fees.currency must be an ISO 4217 code")
    return TransferFees(currency, _decimal(data.get("consumption_tax_rate", "0.10"),
                                           "transfer_fees.consumption_tax_rate"),
                        _bands(data.get("same_bank"), "transfer_fees.same_bank"),
                        _bands(data.get("other_bank"), "transfer_fees.other_bank"))
