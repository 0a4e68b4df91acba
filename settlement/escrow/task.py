"""Task commands: `unit_price × quantity` deposited, submissions approved or rejected.

Capacity: approved, pending, disputed and resolved submissions take a slot;
a rejection frees it. Never more than `quantity` slots are taken
(`quantity_exceeded`). Closing refunds the free slots at once; pending ones stay
reserved until decided, and a slot freed after closing is refunded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from settlement.core.errors import Rejected
from settlement.core.fees import FeePlan
from settlement.core.money import Money
from settlement.escrow import events as ev
from settlement.escrow import items as it
from settlement.escrow.base import EscrowBase

QUANTITY_MAX = 100_000


class TaskCommands(EscrowBase):
    @classmethod
    def open_task(cls, *, job_id: str, client_id: str, plan: FeePlan, unit_price: Money,
                  quantity: int, tax: Money, approval_days: int, withholding: bool,
                  terms: dict[str, Any] | None, causation_id: str, at: datetime) -> Self:
        plan.require_currency(unit_price)
        plan.require_currency(tax)
        if not 1 <= quantity <= QUANTITY_MAX:
            raise Rejected(f"quantity must be 1 to {QUANTITY_MAX}", "quantity_invalid")
        if tax.amount > unit_price.amount:
            raise Rejected("tax cannot exceed the unit price", "tax_exceeds_amount")
        # Each submission is paid the unit price: that is the item amount.
        plan.require_minimum(unit_price, "unit price")
        return cls.open(
            ev.TaskOpened, job_id=job_id, client_id=client_id, plan=plan, unit_price=unit_price,
            quantity=quantity, tax=tax, approval_days=approval_days, withholding=withholding,
            terms=terms, causation_id=causation_id, at=at,
        )

    def fund_task(self, amount: Money, payment_ref: str, *, causation_id: str,
                  at: datetime) -> None:
        self._require_format("task")
        self._require_task_state("opened", code="task_already_funded")
        funding = self._funding("capacity", self.unit_price * self.quantity, amount, payment_ref)
        self._emit(ev.TaskFunded, causation_id=causation_id, at=at, funding=funding)

    def receive_submission(self, submission_id: str, worker_id: str, *,
                           causation_id: str, at: datetime) -> None:
        self._require_format("task")
        self._require_task_state("funded", code="task_not_funded")
        self._new_item_id(submission_id)
        if self.slots_taken >= self.quantity:
            raise Rejected(f"all {self.quantity} slots are taken", "quantity_exceeded")
        self._emit(ev.SubmissionReceived, causation_id=causation_id, at=at,
                   submission_id=submission_id, worker_id=worker_id)

    def approve_submission(self, submission_id: str, *, causation_id: str, at: datetime,
                           automatic: bool = False) -> None:
        self._require_format("task")
        submission = self._item(submission_id, it.SUBMISSION)
        submission.require_state(it.PENDING, code="submission_not_pending")
        release = self._release(submission, str(submission.worker_id), submission.amount)
        self._emit(ev.SubmissionApproved, causation_id=causation_id, at=at,
                   release=release, automatic=automatic)

    def reject_submission(self, submission_id: str, reason: str, *,
                          causation_id: str, at: datetime) -> None:
        self._require_format("task")
        submission = self._item(submission_id, it.SUBMISSION)
        submission.require_state(it.PENDING, code="submission_not_pending")
        refund = self._refund(submission_id, submission.amount) if self.state == "closed" else None
        self._emit(ev.SubmissionRejected, causation_id=causation_id, at=at,
                   submission_id=submission_id, reason=reason, refund=refund)

    def close_task(self, *, causation_id: str, at: datetime) -> None:
        self._require_format("task")
        if self.state == "closed":
            raise Rejected(f"task {self.job_id} is closed", "job_closed")
        free = self.quantity - self.slots_taken if self.state == "funded" else 0
        refund = self._refund("capacity", self.unit_price * free) if free else None
        self._emit(ev.TaskClosed, causation_id=causation_id, at=at, refund=refund)

    def _require_task_state(self, *states: str, code: str) -> None:
        if self.state not in states:
            closed = self.state == "closed"
            raise Rejected(f"task {self.job_id} is {self.state}", "job_closed" if closed else code)
