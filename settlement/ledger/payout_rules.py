"""Payout postings (SPEC §6) and the accounts a payout pays from.

Payout P initiated → Dr worker_payable (or client_refundable) P; Cr
payouts_in_transit P. Settled → Dr payouts_in_transit P; Cr cash P. Failed →
Dr payouts_in_transit P; Cr the payable/refundable account it came from.
"""

from __future__ import annotations

from typing import Literal

from settlement.core.money import Money
from settlement.ledger import accounts
from settlement.ledger.posting import Posting, check_balanced

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
