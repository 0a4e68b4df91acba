"""Disputes: any funded, not yet released item can be disputed by either side.

A disputed item is frozen (no acceptance, approval, award, auto-action or
cancellation). Resolution splits its amount exactly: the worker part is
released with fees, the client part refunded. In a competition the disputed
item is an entry and what freezes is the whole prize.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from settlement.core.errors import Rejected
from settlement.core.money import Money
from settlement.escrow import events as ev
from settlement.escrow import items as it
from settlement.escrow.base import EscrowBase

PARTIES = ("client", "worker")


class DisputeCommands(EscrowBase):
    def open_dispute(self, item_id: str, opened_by: str, reason: str, *,
                     causation_id: str, at: datetime) -> None:
        if opened_by not in PARTIES:
            raise Rejected(f"opened_by must be client or worker, got {opened_by!r}",
                           "invalid_party")
        item = self.items.get(item_id)
        if item is None:
            raise Rejected(f"job {self.job_id} has no item {item_id}", "unknown_item")
        if item.state == it.DISPUTED or (item.kind == it.ENTRY and self.disputes):
            raise Rejected(f"item {item_id} is already disputed", "item_disputed")
        if not self._disputable(item):
            raise Rejected(f"item {item_id} is {item.state}: only funded, unreleased items "
                           "can be disputed", "item_not_disputable")
        self._emit(ev.DisputeOpened, causation_id=causation_id, at=at,
                   item_id=item_id, opened_by=opened_by, reason=reason)

    def resolve_dispute(self, item_id: str, worker_amount: Money, client_amount: Money, *,
                        causation_id: str, at: datetime) -> None:
        item = self.items.get(item_id)
        if item is None:
            raise Rejected(f"job {self.job_id} has no item {item_id}", "unknown_item")
        if item.state != it.DISPUTED:
            raise Rejected(f"item {item_id} is not disputed", "item_not_disputed")
        self._require_currency(worker_amount)
        self._require_currency(client_amount)
        if worker_amount.amount < 0 or client_amount.amount < 0:
            raise Rejected("split amounts cannot be negative", "amount_not_positive")
        basis = self._prize_item() if item.kind == it.ENTRY else item
        if worker_amount + client_amount != basis.amount:
            raise Rejected(
                f"worker {worker_amount.amount} + client {client_amount.amount} must equal "
                f"{basis.amount.amount}", "amount_mismatch")
        release = None
        if worker_amount.amount > 0:
            release = self._release(basis, str(item.worker_id), worker_amount)
            release = release if basis is item else replace(release, item_id=item_id)
        self._emit(ev.DisputeResolved, causation_id=causation_id, at=at, item_id=item_id,
                   release=release, refund=self._refund(item_id, client_amount))

    def _disputable(self, item: it.Item) -> bool:
        if item.kind == it.MILESTONE:
            return item.state in (it.FUNDED, it.DELIVERED)
        if item.kind == it.SUBMISSION:
            return item.state == it.PENDING
        return item.state == it.ENTERED and self.state == "funded"
