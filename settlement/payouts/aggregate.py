"""A party's payouts: one stream per worker (paid from `worker_payable`) and per
client (paid back from `client_refundable`).

Every payout of a party is an event of the same stream, so two payout runs
that decide on the same party race for the same version: the event store
stores one and refuses the other, which then decides again from what was
stored. Commands validate in the documented order and emit one event; time
comes in as an argument.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from settlement.banking.accounts import BankAccount
from settlement.core.commands import identifier
from settlement.core.errors import InvalidInput, NotFound, Rejected
from settlement.core.money import Money
from settlement.ledger.payout_rules import (
    CLIENT,
    WORKER,
    PartyType,
    failed_with_fee,
    initiated_with_fee,
    payout_account,
    returned_postings,
    settled_postings,
)
from settlement.payouts import events as ev
from settlement.payouts.ids import party_payouts_id, payout_id_of

# About 270 years of daily runs: far above use, and it bounds a stream's replay.
PAYOUTS_PER_PARTY_MAX = 100_000


def run_causation(run_id: str) -> str:
    return f"payout-run:{run_id}"


def _check_party(party_type: str, party_id: str) -> None:
    if party_type not in (WORKER, CLIENT):
        raise InvalidInput(f"party type {party_type!r} is neither worker nor client",
                           "invalid_party_type")
    identifier(party_id, "party_id")


def _payout(account: str, amount: Money, fee: Money | None,
            fee_tax: Money | None) -> dict[str, Any]:
    """A payout's money fields, checked (payout_not_positive, fee_exceeds_payout)."""
    zero = Money(0, amount.currency)
    fee, fee_tax = fee or zero, fee_tax or zero
    if amount.amount <= 0:
        raise Rejected(f"payout of {amount.amount} is not positive", "payout_not_positive")
    if not 0 <= fee_tax.amount <= fee.amount < amount.amount:
        raise Rejected("a transfer fee must leave something to send", "fee_exceeds_payout")
    return {"account": account, "amount": amount, "transfer_fee": fee,
            "transfer_fee_tax": fee_tax,
            "postings": initiated_with_fee(account, amount, fee, fee_tax)}


class PartyPayouts(Aggregate):
    def __init__(self, party_type: PartyType, party_id: str) -> None:
        self.party_type = party_type
        self.party_id = party_id
        self.account = payout_account(party_type, party_id)
        self.payouts: dict[str, ev.Payout] = {}
        self.holds: dict[tuple[str, str], ev.Hold] = {}  # (run id, currency) → hold
        self.as_of_position = 0  # of the latest payout: later ones may not decide on less

    @classmethod
    def open(cls, party_type: str, party_id: str, *, run_id: str, at: datetime) -> PartyPayouts:
        _check_party(party_type, party_id)
        return cls._create(ev.PartyPayoutsOpened, id=party_payouts_id(party_type, party_id),
                           timestamp=at, party_type=party_type, party_id=party_id,
                           causation_id=run_causation(run_id), postings=[])

    @classmethod
    def open_paying(cls, party_type: PartyType, party_id: str, *, run_id: str, amount: Money,
                    as_of_position: int, at: datetime, items: Sequence[Mapping[str, str]],
                    bank_account: BankAccount | None = None, fee: Money | None = None,
                    fee_tax: Money | None = None) -> PartyPayouts:
        """A new stream with its first payout in one event (`PayoutStreamOpened`);
        the rejections of `open`, then those of `initiate`."""
        _check_party(party_type, party_id)
        payout_id = payout_id_of(run_id, party_type, party_id, amount.currency.code)
        fields = _payout(payout_account(party_type, party_id), amount, fee, fee_tax)
        return cls._create(ev.PayoutStreamOpened, id=party_payouts_id(party_type, party_id),
                           timestamp=at, party_type=party_type, party_id=party_id,
                           payout_id=payout_id, causation_id=run_causation(run_id),
                           as_of_position=as_of_position, run_id=run_id,
                           items=[dict(item) for item in items], bank_account=bank_account,
                           **fields)

    def initiate(self, run_id: str, amount: Money, as_of_position: int, at: datetime,
                 items: Sequence[Mapping[str, str]] = (), *,
                 bank_account: BankAccount | None = None,
                 fee: Money | None = None, fee_tax: Money | None = None) -> str:
        """Pay `amount` out of the party's account, decided on the ledger as of
        `as_of_position`; returns the payout id. `items`: what it pays,
        `{job_id, item_id, amount}` each; `bank_account`: where it is sent;
        `fee`, `fee_tax`: a payee-borne transfer fee (tax-included) and its tax.

        Rejections, in order: invalid_identifier (run id), payout_exists,
        payout_not_positive, fee_exceeds_payout, stale_balance, too_many_payouts.
        """
        payout_id = payout_id_of(run_id, self.party_type, self.party_id, amount.currency.code)
        if payout_id in self.payouts:
            raise Rejected(f"payout {payout_id} exists", "payout_exists")
        fields = _payout(self.account, amount, fee, fee_tax)
        if as_of_position < self.as_of_position:
            raise Rejected(f"balance as of position {as_of_position} is older than the last "
                           f"payout's ({self.as_of_position})", "stale_balance")
        if len(self.payouts) >= PAYOUTS_PER_PARTY_MAX:
            raise Rejected(f"{self.account} has {PAYOUTS_PER_PARTY_MAX} payouts",
                           "too_many_payouts")
        self._emit(ev.PayoutInitiated, payout_id, run_causation(run_id), at,
                   as_of_position=as_of_position, run_id=run_id,
                   items=[dict(item) for item in items], bank_account=bank_account, **fields)
        return payout_id

    def hold(self, run_id: str, amount: Money, reason: str, due_by: datetime | None,
             at: datetime) -> None:
        """Record that run `run_id` leaves `amount` payable, and why (`hold_exists`
        if it already said so for this currency)."""
        if (run_id, amount.currency.code) in self.holds:
            raise Rejected(f"run {run_id} already held {self.account}", "hold_exists")
        self.trigger_event(ev.PayoutHeld, timestamp=at, party_type=self.party_type,
                           party_id=self.party_id, run_id=run_id, amount=amount,
                           reason=reason, due_by=due_by, causation_id=run_causation(run_id),
                           postings=[])

    def settle(self, payout_id: str, bank_ref: str, *, causation_id: str, at: datetime) -> None:
        """The bank paid it: in transit → cash. Rejections as `_initiated`."""
        payout = self._initiated(payout_id)
        self._emit(ev.PayoutSettled, payout_id, causation_id, at, bank_ref=bank_ref,
                   amount=payout.sent, postings=settled_postings(payout.sent))

    def fail(self, payout_id: str, reason: str, *, causation_id: str, at: datetime) -> None:
        """The bank refused it: every line reversed, the payable back where it was."""
        payout = self._initiated(payout_id)
        zero = Money(0, payout.amount.currency)
        self._emit(ev.PayoutFailed, payout_id, causation_id, at, reason=reason,
                   account=payout.account, amount=payout.amount,
                   postings=failed_with_fee(payout.account, payout.amount,
                                            payout.transfer_fee or zero,
                                            payout.transfer_fee_tax or zero))

    def return_(self, payout_id: str, reason: str, *, causation_id: str,
                at: datetime) -> None:
        """The bank sent a settled transfer back: what was sent is payable again.
        Rejections, in order: unknown_payout, payout_not_settled (still
        initiated), payout_already_failed, payout_already_returned."""
        payout = self._payout(payout_id)
        if payout.status != ev.SETTLED:
            self._refuse_status(payout, "payout_not_settled")
        self._emit(ev.PayoutReturned, payout_id, causation_id, at, reason=reason,
                   account=payout.account, amount=payout.sent,
                   postings=returned_postings(payout.account, payout.sent))

    def _payout(self, payout_id: str) -> ev.Payout:
        payout = self.payouts.get(payout_id)
        if payout is None:
            raise NotFound(f"unknown payout {payout_id}", "unknown_payout")
        return payout

    def _initiated(self, payout_id: str) -> ev.Payout:
        """Rejections, in order: unknown_payout, payout_already_settled,
        payout_already_failed, payout_already_returned."""
        payout = self._payout(payout_id)
        if payout.status != ev.INITIATED:
            self._refuse_status(payout, "")
        return payout

    @staticmethod
    def _refuse_status(payout: ev.Payout, initiated_code: str) -> None:
        codes = {ev.INITIATED: initiated_code, ev.SETTLED: "payout_already_settled",
                 ev.FAILED: "payout_already_failed", ev.RETURNED: "payout_already_returned"}
        raise Rejected(f"payout {payout.payout_id} is {payout.status}", codes[payout.status])

    def _emit(self, event_class: type[ev.PayoutEvent], payout_id: str, causation_id: str,
              at: datetime, **fields: Any) -> None:
        self.trigger_event(event_class, timestamp=at, payout_id=payout_id,
                           party_type=self.party_type, party_id=self.party_id,
                           causation_id=causation_id, **fields)

    def payouts_of_run(self, run_id: str) -> list[ev.Payout]:
        return [p for p in self.payouts.values() if p.run_id == run_id]

    def holds_of_run(self, run_id: str) -> list[ev.Hold]:
        return [h for (run, _), h in sorted(self.holds.items()) if run == run_id]

    def state_digest(self) -> dict[str, Any]:
        """Everything observable about the stream, for comparing live and replayed."""
        return {"id": str(self.id), "version": self.version, "party_type": self.party_type,
                "party_id": self.party_id, "as_of_position": self.as_of_position,
                "payouts": {k: vars(v).copy() for k, v in self.payouts.items()},
                "holds": {f"{r}:{c}": vars(h).copy() for (r, c), h in self.holds.items()}}
