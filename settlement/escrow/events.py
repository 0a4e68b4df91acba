"""Escrow events. Their `apply` only assigns facts already decided by a command:
it runs again on every replay, so it never validates, reads a clock or config.

Every event carries `causation_id` (the marketplace event or timer that caused
it) and `postings` (its balanced ledger lines); money-moving events carry the
movements with every computed amount.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, get_args, get_type_hints

from eventsourcing.domain import Aggregate

from settlement.core.money import Money
from settlement.core.movements import Funding, Movement, Refund, Release
from settlement.escrow import items as it
from settlement.escrow.items import Item
from settlement.ledger.posting import Posting

if TYPE_CHECKING:  # `base` imports this module to emit events
    from settlement.escrow.base import EscrowBase

_MOVEMENT_TYPES = (Funding, Release, Refund)


def movements_of(fields: Mapping[str, Any]) -> list[Movement]:
    """The movements among an event's fields, in field order."""
    return movements_in(fields.values())


def movements_in(values: Iterable[Any]) -> list[Movement]:
    """The movements among `values` (a list counts by its items), in order."""
    found: list[Movement] = []
    for value in values:
        if isinstance(value, _MOVEMENT_TYPES):
            found.append(value)
        elif isinstance(value, list):
            found += [v for v in value if isinstance(v, _MOVEMENT_TYPES)]
    return found


@functools.cache
def movement_fields(event_class: type) -> tuple[str, ...]:
    """The fields of `event_class` that can hold movements, in field order, read
    from its annotations once: `apply` then skips the other fields and never
    materialises the event's `__dict__` (both showed up in profiles)."""
    return tuple(name for name, hint in get_type_hints(event_class).items()
                 if _can_hold_movement(hint))


@functools.cache
def field_names(event_class: type) -> tuple[str, ...]:
    """The fields of `event_class`, in declaration order (the order its `__init__`
    assigns them, and so the order they are stored in)."""
    return tuple(f.name for f in dataclasses.fields(event_class))


def _can_hold_movement(hint: Any) -> bool:
    return hint in _MOVEMENT_TYPES or any(_can_hold_movement(a) for a in get_args(hint))


class EscrowEvent(Aggregate.Event):
    job_id: str
    causation_id: str
    postings: list[Posting]

    def apply(self, aggregate: EscrowBase) -> None:
        for movement in movements_in(getattr(self, f) for f in movement_fields(type(self))):
            aggregate.book(movement)
        self.evolve(aggregate)

    def evolve(self, escrow: EscrowBase) -> None:
        """Assign this event's facts (money bookkeeping is already done)."""


class Opened(Aggregate.Created):
    job_id: str
    client_id: str
    plan: dict[str, Any]
    withholding: bool
    terms: dict[str, Any] | None
    causation_id: str
    postings: list[Posting]


# Project ---------------------------------------------------------------------


class ProjectContracted(Opened):
    worker_id: str
    inspection_days: int
    milestones: list[dict[str, Any]]

    def apply(self, aggregate: EscrowBase) -> None:
        aggregate.open_as("project", worker_id=self.worker_id, inspection_days=self.inspection_days)
        aggregate.state = "active"
        for m in self.milestones:
            aggregate.add_item(m["milestone_id"], it.MILESTONE, m["amount"], m["tax"],
                               it.CONTRACTED, self.worker_id)


class MilestoneAdded(EscrowEvent):
    milestone_id: str
    amount: Money
    tax: Money

    def evolve(self, escrow: EscrowBase) -> None:
        escrow.add_item(self.milestone_id, it.MILESTONE, self.amount, self.tax, it.CONTRACTED,
                        escrow.worker_id)


class MilestoneFunded(EscrowEvent):
    funding: Funding

    def evolve(self, escrow: EscrowBase) -> None:
        escrow.items[self.funding.item_id].state = it.FUNDED


class MilestoneDelivered(EscrowEvent):
    milestone_id: str

    def evolve(self, escrow: EscrowBase) -> None:
        item = escrow.items[self.milestone_id]
        item.state, item.delivered_at = it.DELIVERED, self.timestamp


class RevisionRequested(EscrowEvent):
    milestone_id: str
    reason: str

    def evolve(self, escrow: EscrowBase) -> None:
        escrow.items[self.milestone_id].state = it.FUNDED


class MilestoneReleased(EscrowEvent):
    release: Release
    automatic: bool

    def evolve(self, escrow: EscrowBase) -> None:
        escrow.items[self.release.item_id].state = it.RELEASED


class MilestoneCancelled(EscrowEvent):
    milestone_id: str
    reason: str
    refund: Refund | None

    def evolve(self, escrow: EscrowBase) -> None:
        escrow.items[self.milestone_id].state = it.CANCELLED


# Competition -----------------------------------------------------------------


class CompetitionOpened(Opened):
    prize: Money
    tax: Money
    guaranteed: bool
    entry_deadline: datetime
    award_deadline: datetime
    min_entries: int

    def apply(self, aggregate: EscrowBase) -> None:
        aggregate.open_as(
            "competition",
            prize=self.prize,
            prize_tax=self.tax,
            guaranteed=self.guaranteed,
            entry_deadline=self.entry_deadline,
            award_deadline=self.award_deadline,
            min_entries=self.min_entries,
        )


class CompetitionFunded(EscrowEvent):
    funding: Funding

    def evolve(self, escrow: EscrowBase) -> None:
        escrow.state = "funded"


class EntrySubmitted(EscrowEvent):
    entry_id: str
    worker_id: str

    def evolve(self, escrow: EscrowBase) -> None:
        zero = Money(0, escrow.currency)
        escrow.add_item(self.entry_id, it.ENTRY, zero, zero, it.ENTERED, self.worker_id,
                        self.timestamp)


class CompetitionAwarded(EscrowEvent):
    releases: list[Release]
    automatic: bool

    def evolve(self, escrow: EscrowBase) -> None:
        for release in self.releases:
            item = escrow.items[release.item_id]
            item.state, item.amount = it.RELEASED, release.gross
        escrow.state = "awarded"


class CompetitionRefunded(EscrowEvent):
    """Refunded at the award deadline: no award, or fewer than `min_entries` entries."""

    reason: str
    refund: Refund

    def evolve(self, escrow: EscrowBase) -> None:
        escrow.state = "refunded"


class CompetitionCancelled(EscrowEvent):
    reason: str
    refund: Refund | None

    def evolve(self, escrow: EscrowBase) -> None:
        escrow.state = "cancelled"


# Task ------------------------------------------------------------------------


class TaskOpened(Opened):
    unit_price: Money
    quantity: int
    tax: Money
    approval_days: int

    def apply(self, aggregate: EscrowBase) -> None:
        aggregate.open_as(
            "task",
            unit_price=self.unit_price,
            quantity=self.quantity,
            unit_tax=self.tax,
            approval_days=self.approval_days,
            slots_taken=0,
        )


class TaskFunded(EscrowEvent):
    funding: Funding

    def evolve(self, escrow: EscrowBase) -> None:
        escrow.state = "funded"


class SubmissionReceived(EscrowEvent):
    submission_id: str
    worker_id: str

    def evolve(self, escrow: EscrowBase) -> None:
        escrow.add_item(self.submission_id, it.SUBMISSION, escrow.unit_price, escrow.unit_tax,
                        it.PENDING, self.worker_id, self.timestamp)
        escrow.slots_taken += 1


class SubmissionApproved(EscrowEvent):
    release: Release
    automatic: bool

    def evolve(self, escrow: EscrowBase) -> None:
        escrow.items[self.release.item_id].state = it.RELEASED


class SubmissionRejected(EscrowEvent):
    """A rejected submission frees its slot; once the task is closed the slot is refunded."""

    submission_id: str
    reason: str
    refund: Refund | None

    def evolve(self, escrow: EscrowBase) -> None:
        escrow.items[self.submission_id].state = it.REJECTED
        escrow.slots_taken -= 1


class TaskClosed(EscrowEvent):
    refund: Refund | None

    def evolve(self, escrow: EscrowBase) -> None:
        escrow.state = "closed"


# Disputes --------------------------------------------------------------------


class DisputeOpened(EscrowEvent):
    item_id: str
    opened_by: str
    reason: str

    def evolve(self, escrow: EscrowBase) -> None:
        item = escrow.items[self.item_id]
        escrow.disputes[self.item_id] = item.state
        item.state = it.DISPUTED


class DisputeResolved(EscrowEvent):
    item_id: str
    release: Release | None
    refund: Refund | None

    def evolve(self, escrow: EscrowBase) -> None:
        item = escrow.items[self.item_id]
        item.state = it.RESOLVED
        if item.kind == it.ENTRY:
            item.amount = self.release.gross if self.release else item.amount
            escrow.state = "resolved"
        del escrow.disputes[self.item_id]


__all__ = ["Item", "EscrowEvent", "Opened", "movements_of"]
