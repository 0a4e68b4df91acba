"""Withholding remittances (SPEC §6, §12): one stream per client, keyed by the
client's party id on the wire (§14).

A remittance pays a month's withheld tax to the tax office out of
`liabilities:withholding_tax:<client_id>`: remitted → Dr withholding_tax W;
Cr payouts_in_transit W (pending), then confirmed like a payout → Dr
payouts_in_transit W; Cr cash W. It never enters a Zengin file.

A month may be remitted more than once only for what it did not cover yet: a
remittance records the month's withheld total it was decided on, and the next
one for the month pays only what was withheld beyond it (a late release), so
remitting a month twice adds nothing. Events only assign; commands validate in
the documented order.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime

from eventsourcing.domain import Aggregate

from settlement.core.commands import identifier
from settlement.core.errors import NotFound, Rejected
from settlement.core.money import Money
from settlement.core.months import Month
from settlement.ledger import accounts
from settlement.ledger.posting import Posting, check_balanced
from settlement.tax.withholding import due_date

REMITTANCES_NAMESPACE = uuid.UUID("5b1f3c0e-8d47-4a8e-9a51-3f6c2d7e9b14")
PARTY_TYPE = "withholding"  # how a remittance reads among payouts (`payouts` table)
REMITTANCE_PREFIX = "wr-"
PENDING, CONFIRMED, FAILED = "pending", "confirmed", "failed"
REMITTANCES_PER_CLIENT_MAX = 10_000  # ~800 years of monthly remittances


@functools.lru_cache(maxsize=4_096)
def remittance_stream_id(client_id: str) -> uuid.UUID:
    return uuid.uuid5(REMITTANCES_NAMESPACE, f"withholding:{client_id}")


def remittance_id_of(client_id: str, month: Month, sequence: int) -> str:
    """`wr-YYYYMM-N-<stream hex>`: names the month and leads to the stream."""
    return f"{REMITTANCE_PREFIX}{month.compact}-{sequence}-{remittance_stream_id(client_id).hex}"


def stream_of_remittance(remittance_id: str) -> uuid.UUID | None:
    parts = remittance_id.split("-")
    if len(parts) != 4 or parts[0] + "-" != REMITTANCE_PREFIX or len(parts[3]) != 32:
        return None
    try:
        return uuid.UUID(hex=parts[3])
    except ValueError:
        return None


@dataclass
class Remittance:
    remittance_id: str
    month: str
    amount: Money
    covers: Money  # the month's withheld total this remittance brought it up to
    due_date: str
    remitted_at: datetime
    status: str = PENDING
    bank_ref: str | None = None
    reason: str | None = None


def _pair(debit: str, credit: str, amount: Money) -> list[Posting]:
    lines = [Posting(debit, "debit", amount), Posting(credit, "credit", amount)]
    check_balanced(lines)
    return lines


class WithholdingRemitted(Aggregate.Event):
    party_id: str  # the client
    party_type: str
    remittance_id: str
    month: str
    due_date: str
    account: str
    amount: Money
    covers: Money
    items: list[dict[str, str]]  # none: a payout's shape, so it folds like one
    causation_id: str
    postings: list[Posting]

    def apply(self, aggregate: ClientWithholding) -> None:
        aggregate.remittances[self.remittance_id] = Remittance(
            self.remittance_id, self.month, self.amount, self.covers, self.due_date,
            self.timestamp)


class RemittanceStreamOpened(WithholdingRemitted, Aggregate.Created):
    """A client's stream opened with its first remittance: published as one."""

    wire_name = "withholding_remitted"


class WithholdingRemittanceConfirmed(Aggregate.Event):
    party_id: str
    party_type: str
    remittance_id: str
    bank_ref: str
    amount: Money
    causation_id: str
    postings: list[Posting]

    def apply(self, aggregate: ClientWithholding) -> None:
        remittance = aggregate.remittances[self.remittance_id]
        remittance.status, remittance.bank_ref = CONFIRMED, self.bank_ref


class WithholdingRemittanceFailed(Aggregate.Event):
    """The bank refused the payment: every line reversed, the month's tax owed
    again (a later `remit` pays it anew)."""

    party_id: str
    party_type: str
    remittance_id: str
    reason: str
    amount: Money
    causation_id: str
    postings: list[Posting]

    def apply(self, aggregate: ClientWithholding) -> None:
        remittance = aggregate.remittances[self.remittance_id]
        remittance.status, remittance.reason = FAILED, self.reason


REMITTANCE_EVENTS = (WithholdingRemitted, WithholdingRemittanceConfirmed,
                     WithholdingRemittanceFailed)


def _remitted(client_id: str, month: Month, sequence: int, withheld: Money, amount: Money,
              at: datetime) -> dict[str, object]:
    remittance_id = remittance_id_of(client_id, month, sequence)
    return {"timestamp": at, "party_id": client_id, "party_type": PARTY_TYPE,
            "remittance_id": remittance_id, "month": str(month),
            "due_date": due_date(month).isoformat(),
            "account": accounts.withholding_tax(client_id), "amount": amount,
            "covers": withheld, "items": [], "causation_id": f"tax-remit:{month}",
            "postings": _pair(accounts.withholding_tax(client_id),
                              accounts.PAYOUTS_IN_TRANSIT, amount)}


class ClientWithholding(Aggregate):
    def __init__(self, party_id: str) -> None:
        self.party_id = party_id
        self.remittances: dict[str, Remittance] = {}

    @classmethod
    def open_remitting(cls, client_id: str, month: Month, withheld: Money,
                       at: datetime) -> ClientWithholding:
        """A client's first remittance: the month's `withheld` total."""
        identifier(client_id, "client_id")
        _check_positive(withheld)
        return cls._create(RemittanceStreamOpened, id=remittance_stream_id(client_id),
                           **_remitted(client_id, month, 1, withheld, withheld, at))

    def covered(self, month: Month, currency: str) -> Money:
        """The month's withheld total its remittances have covered so far."""
        covers = [r.covers for r in self.remittances.values()
                  if r.month == str(month) and r.covers.currency.code == currency
                  and r.status != FAILED]
        return max(covers, key=lambda m: m.amount, default=Money(0, currency))

    def remit(self, month: Month, withheld: Money, at: datetime) -> str | None:
        """Remit what `withheld` (the month's total now) adds to what was covered
        (by remittances not failed);
        None when nothing (remitting the same month twice adds nothing).
        Rejections: withheld_decreased (the total fell below what was remitted),
        too_many_remittances."""
        covered = self.covered(month, withheld.currency.code)
        if withheld.amount < covered.amount:
            raise Rejected(f"{month} withheld {withheld.amount}, below the "
                           f"{covered.amount} remitted", "withheld_decreased")
        if withheld.amount == covered.amount:
            return None
        if len(self.remittances) >= REMITTANCES_PER_CLIENT_MAX:
            raise Rejected(f"{self.party_id} has {len(self.remittances)} remittances",
                           "too_many_remittances")
        sequence = 1 + sum(1 for r in self.remittances.values() if r.month == str(month))
        fields = _remitted(self.party_id, month, sequence, withheld, withheld - covered, at)
        self.trigger_event(WithholdingRemitted, **fields)
        return str(fields["remittance_id"])

    def _pending(self, remittance_id: str) -> Remittance:
        """Rejections, in order: unknown_remittance, remittance_already_confirmed,
        remittance_already_failed."""
        remittance = self.remittances.get(remittance_id)
        if remittance is None:
            raise NotFound(f"unknown remittance {remittance_id}", "unknown_remittance")
        if remittance.status != PENDING:
            raise Rejected(f"remittance {remittance_id} is {remittance.status}",
                           f"remittance_already_{remittance.status}")
        return remittance

    def fail(self, remittance_id: str, reason: str, *, causation_id: str,
             at: datetime) -> None:
        """The bank refused it: in transit → the withholding account again.
        Rejections as `_pending`."""
        remittance = self._pending(remittance_id)
        self.trigger_event(WithholdingRemittanceFailed, timestamp=at, party_id=self.party_id,
                           party_type=PARTY_TYPE, remittance_id=remittance_id, reason=reason,
                           amount=remittance.amount, causation_id=causation_id,
                           postings=_pair(accounts.PAYOUTS_IN_TRANSIT,
                                          accounts.withholding_tax(self.party_id),
                                          remittance.amount))

    def confirm(self, remittance_id: str, bank_ref: str, *, causation_id: str,
                at: datetime) -> None:
        """The tax office has it: in transit → cash. Rejections, in order:
        invalid_identifier (bank_ref), then those of `_pending`."""
        identifier(bank_ref, "bank_ref")
        remittance = self._pending(remittance_id)
        self.trigger_event(WithholdingRemittanceConfirmed, timestamp=at,
                           party_id=self.party_id, party_type=PARTY_TYPE,
                           remittance_id=remittance_id, bank_ref=bank_ref,
                           amount=remittance.amount, causation_id=causation_id,
                           postings=_pair(accounts.PAYOUTS_IN_TRANSIT,
                                          accounts.SAFEGUARDED_CASH, remittance.amount))


def _check_positive(amount: Money) -> None:
    if amount.amount <= 0:
        raise Rejected(f"nothing to remit ({amount.amount})", "remittance_not_positive")
