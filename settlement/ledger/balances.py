"""Balances and the trial balance from postings (SPEC §6).

`balance` is on the account's natural side: assets debits − credits,
liabilities and revenue credits − debits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from settlement.ledger.accounts import natural_sign
from settlement.ledger.posting import Posting


@dataclass
class AccountBalance:
    account: str
    currency: str
    debits: Decimal = Decimal(0)
    credits: Decimal = Decimal(0)

    @property
    def balance(self) -> Decimal:
        return natural_sign(self.account) * (self.debits - self.credits)


@dataclass(frozen=True)
class TrialBalance:
    currency: str
    accounts: list[AccountBalance]

    @property
    def total_debits(self) -> Decimal:
        return sum((a.debits for a in self.accounts), Decimal(0))

    @property
    def total_credits(self) -> Decimal:
        return sum((a.credits for a in self.accounts), Decimal(0))

    @property
    def balanced(self) -> bool:
        return self.total_debits == self.total_credits


def trial_balances(postings: Iterable[Posting]) -> dict[str, TrialBalance]:
    """One trial balance per currency, accounts sorted by code."""
    table: dict[tuple[str, str], AccountBalance] = {}
    for p in postings:
        key = (p.amount.currency.code, p.account)
        line = table.setdefault(key, AccountBalance(p.account, key[0]))
        if p.side == "debit":
            line.debits += p.amount.amount
        else:
            line.credits += p.amount.amount
    currencies = sorted({currency for currency, _ in table})
    return {
        c: TrialBalance(c, [table[k] for k in sorted(table) if k[0] == c]) for c in currencies
    }
