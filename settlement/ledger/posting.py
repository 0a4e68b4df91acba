"""A posting line, and the checks every set of postings must pass."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from settlement.core.errors import LedgerError
from settlement.core.money import Money

Side = Literal["debit", "credit"]


@dataclass(frozen=True)
class Posting:
    account: str
    side: Side
    amount: Money

    def signed(self) -> Decimal:
        """Debits positive, credits negative: a balanced set sums to zero."""
        return self.amount.amount if self.side == "debit" else -self.amount.amount


def posting(account: str, side: Side, amount: Money) -> Posting:
    """`Posting(account, side, amount)`, built without the frozen dataclass's
    per-field `object.__setattr__` (every event makes a handful)."""
    line = _object_new(Posting)
    line.__dict__.update(account=account, side=side, amount=amount)
    return line


_object_new = object.__new__


def check_balanced(postings: Iterable[Posting]) -> None:
    """Refuse unbalanced, cross-currency, zero or negative postings."""
    lines = list(postings)
    # Every event checks its postings: first a quick pass over well-formed lines,
    # and only if it sees anything wrong, the checks below (which name the problem).
    if lines:
        currency = lines[0].amount.currency.code
        debits = credits = _ZERO
        for p in lines:
            amount = p.amount
            if amount.currency.code != currency or amount.amount <= 0:
                break
            if p.side == "debit":
                debits += amount.amount
            elif p.side == "credit":
                credits += amount.amount
            else:
                break
        else:
            if debits == credits:
                return
    _diagnose(lines)


_ZERO = Decimal(0)


def _diagnose(lines: list[Posting]) -> None:
    """Raise for the first problem of `lines`, in the documented order."""
    currencies = {p.amount.currency.code for p in lines}
    if len(currencies) > 1:
        raise LedgerError(f"postings mix currencies {sorted(currencies)}", "ledger_cross_currency")
    total = Decimal(0)  # one currency at most, so one total
    for p in lines:
        if p.side not in ("debit", "credit"):
            raise LedgerError(f"posting side {p.side!r} is neither debit nor credit")
        if p.amount.amount <= 0:
            raise LedgerError(f"posting to {p.account} of {p.amount.amount} is not positive")
        total += p.signed()
    if total != 0:
        raise LedgerError(f"postings do not balance: { {currencies.pop(): total} }")
