"""Payout postings (SPEC §6) and the accounts a payout pays from.

Payout P initiated → Dr worker_payable (or client_refundable) P; Cr
payouts_in_transit P. Settled → Dr payouts_in_transit P; Cr cash P. Failed →
Dr payouts_in_transit P; Cr the payable/refundable account it came from.

With a payee-borne transfer fee f (tax-included, its tax t; Part II): Cr
payouts_in_transit P−f; Cr revenue:transfer_fees f−t; Cr consumption_tax t,
and the amount sent S = P−f is what settles; a failure reverses every line.
Returned after settlement → Dr cash S; Cr the account P came from S.
"""

from __future__ import annotations

from typing import Literal

from settlement.core.money import Money
from settlement.ledger import accounts
from settlement.ledger.posting import Posting, Side, check_balanced

PartyType = Literal["worker", "client"]
WORKER: PartyType = "worker"
CLIENT: PartyType = "client"
_PAYABLE_PREFIXES: dict[PartyType, str] = {
    WORKER: accounts.worker_payable(""),
    CLIENT: accounts.client_refundable(""),
}


def payout_account(party_type: PartyType, party_id: str) -> str:
    """The account a party's payouts are paid from."""
    return _PAYABLE_PREFIXES[party_type] + party_id


def party_of_account(account: str) -> tuple[PartyType, str] | None:
    """`(party_type, party_id)` of a payable or refundable account; None for any other."""
    for party_type, prefix in _PAYABLE_PREFIXES.items():
        if account.startswith(prefix) and len(account) > len(prefix):
            return party_type, account[len(prefix):]
    return None


def _pair(debit: str, credit: str, amount: Money) -> list[Posting]:
    lines = [Posting(debit, "debit", amount), Posting(credit, "credit", amount)]
    check_balanced(lines)  # also refuses a zero or negative amount
    return lines


def initiated_postings(account: str, amount: Money) -> list[Posting]:
    return _pair(account, accounts.PAYOUTS_IN_TRANSIT, amount)


def settled_postings(amount: Money) -> list[Posting]:
    return _pair(accounts.PAYOUTS_IN_TRANSIT, accounts.SAFEGUARDED_CASH, amount)


def failed_postings(account: str, amount: Money) -> list[Posting]:
    return _pair(accounts.PAYOUTS_IN_TRANSIT, account, amount)


def _lines(*lines: tuple[str, Side, Money]) -> list[Posting]:
    """The lines with a positive amount (zero lines are omitted), checked."""
    kept = [Posting(account, side, amount) for account, side, amount in lines
            if amount.amount != 0]
    check_balanced(kept)  # also refuses a negative amount
    return kept


def initiated_with_fee(account: str, amount: Money, fee: Money, fee_tax: Money) -> list[Posting]:
    """Payout `amount` out of `account` with a payee-borne `fee` (tax-included, its
    tax `fee_tax`): in transit only the amount sent."""
    return _lines((account, "debit", amount),
                  (accounts.PAYOUTS_IN_TRANSIT, "credit", amount - fee),
                  (accounts.REVENUE_TRANSFER_FEES, "credit", fee - fee_tax),
                  (accounts.CONSUMPTION_TAX, "credit", fee_tax))


def failed_with_fee(account: str, amount: Money, fee: Money, fee_tax: Money) -> list[Posting]:
    """Every line of `initiated_with_fee` reversed."""
    return [Posting(p.account, "credit" if p.side == "debit" else "debit", p.amount)
            for p in initiated_with_fee(account, amount, fee, fee_tax)]


def returned_postings(account: str, sent: Money) -> list[Posting]:
    """A settled transfer the bank sent back: cash → the account it came from."""
    return _pair(accounts.SAFEGUARDED_CASH, account, sent)
