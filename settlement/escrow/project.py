"""Project commands: milestones contracted → funded → delivered → released.

Checks run in this order, each with its code: format (`wrong_format`), item
(`unknown_item`, `duplicate_item`), item state (`item_disputed`, then the
state's own code), currency (`currency_mismatch`), amount (`amount_mismatch`;
a contracted or added milestone below the plan's floor: `amount_below_minimum`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from settlement.core.errors import Rejected
from settlement.core.fees import FeePlan
from settlement.core.money import Money, zero
from settlement.escrow import events as ev
from settlement.escrow import items as it
from settlement.escrow.base import EscrowBase

MILESTONES_MAX = 100


class ProjectCommands(EscrowBase):
    def add_milestone(self, milestone_id: str, amount: Money, tax: Money, *,
                      causation_id: str, at: datetime) -> None:
        self._require_format("project")
        self._new_item_id(milestone_id)
        if len(self.items) >= MILESTONES_MAX:
            raise Rejected(f"a project has at most {MILESTONES_MAX} milestones", "too_many_items")
        self._require_currency(amount)
        self._require_currency(tax)
        if tax.amount > amount.amount:
            raise Rejected("tax cannot exceed the milestone amount", "tax_exceeds_amount")
        # The floor recorded with the job, like its rates: the contract's terms.
        self.plan.require_minimum(amount, f"milestone {milestone_id}")
        self._emit(ev.MilestoneAdded, causation_id=causation_id, at=at,
                   milestone_id=milestone_id, amount=amount, tax=tax)

    def fund_milestone(self, milestone_id: str, amount: Money, payment_ref: str, *,
                       causation_id: str, at: datetime) -> None:
        self._require_format("project")
        milestone = self._item(milestone_id, it.MILESTONE)
        milestone.require_state(it.CONTRACTED, code="milestone_already_funded")
        funding = self._funding(milestone_id, milestone.amount, amount, payment_ref)
        self._emit(ev.MilestoneFunded, causation_id=causation_id, at=at, funding=funding)

    def deliver_milestone(self, milestone_id: str, *, causation_id: str, at: datetime) -> None:
        self._require_format("project")
        milestone = self._item(milestone_id, it.MILESTONE)
        milestone.require_state(it.FUNDED, code="milestone_not_funded")
        self._emit(ev.MilestoneDelivered, causation_id=causation_id, at=at,
                   milestone_id=milestone_id)

    def request_revision(self, milestone_id: str, reason: str, *,
                         causation_id: str, at: datetime) -> None:
        self._require_format("project")
        milestone = self._item(milestone_id, it.MILESTONE)
        milestone.require_state(it.DELIVERED, code="milestone_not_delivered")
        self._emit(ev.RevisionRequested, causation_id=causation_id, at=at,
                   milestone_id=milestone_id, reason=reason)

    def accept_milestone(self, milestone_id: str, *, causation_id: str, at: datetime,
                         automatic: bool = False) -> None:
        self._require_format("project")
        milestone = self._item(milestone_id, it.MILESTONE)
        milestone.require_state(it.DELIVERED, code="milestone_not_delivered")
        release = self._release(milestone, self.worker_id, milestone.amount)
        self._emit(ev.MilestoneReleased, causation_id=causation_id, at=at,
                   release=release, automatic=automatic)

    def cancel_milestone(self, milestone_id: str, reason: str, *,
                         causation_id: str, at: datetime) -> None:
        """A contracted or funded milestone may be cancelled; held money is refunded.
        A delivered one must first go back (revision) or be disputed."""
        self._require_format("project")
        milestone = self._item(milestone_id, it.MILESTONE)
        milestone.require_state(it.CONTRACTED, it.FUNDED, code="milestone_not_cancellable")
        held = milestone.amount if milestone.state == it.FUNDED else zero(self.currency)
        self._emit(ev.MilestoneCancelled, causation_id=causation_id, at=at,
                   milestone_id=milestone_id, reason=reason,
                   refund=self._refund(milestone_id, held))

    @classmethod
    def contract_project(cls, *, job_id: str, client_id: str, worker_id: str, plan: FeePlan,
                         milestones: list[tuple[str, Money, Money]], withholding: bool,
                         inspection_days: int, terms: dict[str, Any] | None,
                         causation_id: str, at: datetime) -> Self:
        if not 1 <= len(milestones) <= MILESTONES_MAX:
            raise Rejected(f"a project has 1 to {MILESTONES_MAX} milestones", "too_many_items")
        ids = [m[0] for m in milestones]
        if len(set(ids)) != len(ids):
            raise Rejected("milestone ids repeat", "duplicate_item")
        for milestone_id, amount, tax in milestones:
            plan.require_currency(amount)
            plan.require_currency(tax)
            if tax.amount > amount.amount:
                raise Rejected("tax cannot exceed the milestone amount", "tax_exceeds_amount")
            plan.require_minimum(amount, f"milestone {milestone_id}")
        return cls.open(
            ev.ProjectContracted, job_id=job_id, client_id=client_id, worker_id=worker_id,
            plan=plan, withholding=withholding, inspection_days=inspection_days, terms=terms,
            milestones=[{"milestone_id": i, "amount": a, "tax": t} for i, a, t in milestones],
            causation_id=causation_id, at=at,
        )
