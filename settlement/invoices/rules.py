"""An invoice from a party's charges of a month (SPEC §12), pure.

One line per charge in the order they were made; per rate the total
tax-included and the tax computed once, `floor(total × r / (1 + r))`. Where that
tax differs from the taxes posted with the charges (and by earlier invoices of
the same party and month: a correction), the difference moves between the
revenue account of the charges and `liabilities:consumption_tax`: the party's
charge is unchanged, the postings balance. Per rate the difference is split by
revenue account: each account its own `floor(total_a × r / (1 + r))` less what
it posted, the rest (the floors' remainder) to the account with the largest
total, ties by account code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from settlement.banking.calendar import jst_date
from settlement.core.money import Money, minor_unit
from settlement.invoices.charges import INVOICE_CURRENCY, Charge
from settlement.ledger import accounts
from settlement.ledger.posting import Posting, check_balanced

LINES_MAX = 4_000  # an invoice event stays far below the relay's 1 MiB record
ZERO = Decimal(0)
YEN = minor_unit(INVOICE_CURRENCY)  # Decimal(1)
TrueUps = Mapping[tuple[str, Decimal], Decimal]  # (revenue account, rate) → tax moved


@dataclass(frozen=True)
class RateTotal:
    rate: Decimal
    total: Decimal  # tax-included
    tax: Decimal  # floor(total × rate / (1 + rate))
    posted_tax: Decimal  # posted with the charges, and by earlier invoices of the month


@dataclass(frozen=True)
class Draft:
    party_id: str
    lines: list[dict[str, object]]
    totals: list[RateTotal]
    postings: list[Posting]
    true_ups: dict[tuple[str, Decimal], Decimal]  # what this invoice moves

    @property
    def total(self) -> Decimal:
        return sum((t.total for t in self.totals), ZERO)

    @property
    def tax(self) -> Decimal:
        return sum((t.tax for t in self.totals), ZERO)


def invoice_tax(total: Decimal, rate: Decimal) -> Decimal:
    """The consumption tax included in `total` at `rate`, rounded down once (as
    `core.money.floor`, to the yen, without building a Money: a hot path)."""
    return (total * rate / (1 + rate)).quantize(YEN, rounding=ROUND_FLOOR)


def yen(amount: Decimal) -> dict[str, str]:
    """An amount as an invoice's event carries it: plain JSON, the exact yen (the
    text `core.money.format_amount` writes)."""
    return {"amount": str(amount.quantize(YEN)), "currency": INVOICE_CURRENCY}


def line(charge: Charge) -> dict[str, object]:
    return {"date": jst_date(charge.time).isoformat(), "kind": charge.kind,
            "job_id": charge.job_id, "item_id": charge.item_id, "payout_id": charge.payout_id,
            "amount": yen(charge.amount),
            "rate": str(charge.rate),
            "position": charge.position}


def draft(party_id: str, charges: Sequence[Charge], trued_up: TrueUps | None = None) -> Draft:
    """The invoice of `charges` (one party's, one month's); `trued_up`: what earlier
    invoices of the same party and month moved already, per account and rate."""
    assert all(c.party_id == party_id for c in charges)
    ordered = sorted(charges, key=lambda c: (c.time, c.position, c.kind, c.item_id or ""))
    before = dict(trued_up or {})
    # One pass: Σ tax-included and Σ posted tax per rate, and per rate and account.
    per_rate: dict[Decimal, list[Decimal]] = {}
    per_account: dict[tuple[Decimal, str], list[Decimal]] = {}
    for c in ordered:
        for sums in (per_rate.setdefault(c.rate, [ZERO, ZERO]),
                     per_account.setdefault((c.rate, c.account), [ZERO, ZERO])):
            sums[0] += c.amount
            sums[1] += c.tax
    totals, moves = [], {}
    for rate in sorted(per_rate):
        total, posted = per_rate[rate]
        moved = sum((v for (_, r), v in before.items() if r == rate), ZERO)
        tax = invoice_tax(total, rate)
        totals.append(RateTotal(rate, total, tax, posted + moved))
        moves.update(_split(rate, tax - posted - moved, per_account, before))
    for (account, rate), amount in sorted(before.items()):
        if rate not in per_rate:  # a correction left no charge at it: all of it back
            moves[(account, rate)] = -amount
    return Draft(party_id, [line(c) for c in ordered], totals, true_up_postings(moves),
                 {k: v for k, v in moves.items() if v})


def _split(rate: Decimal, wanted: Decimal, per_account: Mapping[tuple[Decimal, str], list[Decimal]],
           before: TrueUps) -> dict[tuple[str, Decimal], Decimal]:
    """`wanted` (the tax to move at `rate`) per revenue account: each its own
    invoice-level difference, the rest to the largest (see the module's text)."""
    names = sorted(account for r, account in per_account if r == rate)
    moves = {(a, rate): invoice_tax(per_account[(rate, a)][0], rate) - per_account[(rate, a)][1]
             - before.get((a, rate), ZERO) for a in names}
    largest = max(names, key=lambda a: per_account[(rate, a)][0])  # ties: the first by code
    moves[(largest, rate)] += wanted - sum(moves.values(), ZERO)
    return moves


def true_up_postings(moves: Mapping[tuple[str, Decimal], Decimal]) -> list[Posting]:
    """Tax moved from revenue to `liabilities:consumption_tax` (a negative move: back
    to revenue): one line per account, debits first as the net of every rate."""
    net: dict[str, Decimal] = {}  # account → debit (negative: credit)
    for (account, _), amount in moves.items():
        net[account] = net.get(account, ZERO) + amount
        net[accounts.CONSUMPTION_TAX] = net.get(accounts.CONSUMPTION_TAX, ZERO) - amount
    lines = [Posting(account, "debit" if value > 0 else "credit",
                     Money(abs(value), INVOICE_CURRENCY))
             for account, value in sorted(net.items(), key=lambda kv: (kv[1] < 0, kv[0]))
             if value != 0]
    if lines:
        check_balanced(lines)
    return lines
