"""From recorded money movements to balanced postings (SPEC §6).

Funding A = item + client fee C → Dr cash A; Cr escrow A−C; Cr revenue:client c;
Cr consumption_tax C−c. Release G → Dr escrow G; Cr worker_payable net; Cr
revenue:worker fee; Cr consumption_tax fee_tax; Cr withholding_tax W. Refund R →
Dr escrow R; Cr client_refundable R. Zero lines are omitted.
"""

from __future__ import annotations

from collections.abc import Iterable

from settlement.core.money import Money
from settlement.core.movements import Funding, Movement, Refund, Release
from settlement.ledger import accounts
from settlement.ledger.posting import Posting, Side, check_balanced, posting


def _lines(*lines: tuple[str, Side, Money]) -> list[Posting]:
    """Postings of the `(account, side, amount)` lines, zero lines omitted."""
    return [posting(account, side, amount) for account, side, amount in lines
            if amount.amount != 0]


def funding_postings(job_id: str, funding: Funding) -> list[Posting]:
    return _lines(
        (accounts.SAFEGUARDED_CASH, "debit", funding.total),
        (accounts.escrow(job_id), "credit", funding.amount),
        (accounts.REVENUE_CLIENT_FEES, "credit", funding.client_fee),
        (accounts.CONSUMPTION_TAX, "credit", funding.client_fee_tax),
    )


def release_postings(job_id: str, client_id: str, release: Release) -> list[Posting]:
    return _lines(
        (accounts.escrow(job_id), "debit", release.gross),
        (accounts.worker_payable(release.worker_id), "credit", release.net),
        (accounts.REVENUE_WORKER_FEES, "credit", release.fee),
        (accounts.CONSUMPTION_TAX, "credit", release.fee_tax),
        (accounts.withholding_tax(client_id), "credit", release.withholding),
    )


def refund_postings(job_id: str, client_id: str, refund: Refund) -> list[Posting]:
    return _lines(
        (accounts.escrow(job_id), "debit", refund.amount),
        (accounts.client_refundable(client_id), "credit", refund.amount),
    )


def postings_for(job_id: str, client_id: str, movements: Iterable[Movement]) -> list[Posting]:
    """All postings of one event's movements, checked to balance in one currency."""
    lines: list[Posting] = []
    for movement in movements:
        if isinstance(movement, Funding):
            lines += funding_postings(job_id, movement)
        elif isinstance(movement, Release):
            lines += release_postings(job_id, client_id, movement)
        else:
            lines += refund_postings(job_id, client_id, movement)
    check_balanced(lines)
    return lines
