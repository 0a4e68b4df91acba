"""Receivables protection (SPEC §2 payment deadline, §7 `GET /v1/receivables`).

One row per item: the worker's claim, whether it is protected (its amount held
in escrow, or already released and payable) and the Freelance Act deadline:
paid out within 60 days counting the day of delivery (`core.deadlines`).
`overdue` depends on the reader's `now`, so it is derived when read
(`is_overdue`), never stored. `paid_out` is true while a worker payout that has
not failed (nor come back from the bank) names the item (see `payouts`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from settlement.core.deadlines import payment_due_by
from settlement.projections.model.envelope import Event
from settlement.projections.model.fastinit import fast_init
from settlement.projections.model.views import ZERO, ItemView, JobView

# Held in escrow (funded, delivered, disputed, a pending submission) or payable.
PROTECTED_STATES = frozenset({"funded", "delivered", "disputed", "pending", "released",
                              "resolved"})
PAYABLE_STATES = frozenset({"released", "resolved"})
# Nothing is owed for these any more.
VOID_STATES = frozenset({"cancelled", "rejected"})


@fast_init
@dataclass(frozen=True, slots=True)
class ReceivableRow:
    job_id: str
    item_id: str
    worker_id: str | None
    client_id: str
    state: str
    amount: Decimal  # the worker's claim, gross (`claim`)
    net: Decimal  # what the worker is owed of a released claim
    currency: str
    protected: bool
    delivered_at: datetime | None
    due_by: datetime | None


@fast_init
@dataclass(frozen=True, slots=True)
class ReceivableChange:
    """A receivable as it stood after one event: `as_of` reads these."""

    row: ReceivableRow
    version: int
    position: int
    time: datetime


def claim(item: ItemView) -> Decimal:
    """What the worker can claim: the released gross once released or resolved,
    nothing once cancelled or rejected, else the item's amount (a competition
    entry's is 0 until it is awarded)."""
    if item.state in PAYABLE_STATES:
        return item.released
    if item.state in VOID_STATES:
        return ZERO
    return item.amount


def due_by(delivered_at: datetime | None) -> datetime | None:
    """The Freelance Act deadline of an item delivered at `delivered_at` (SPEC §2)."""
    return None if delivered_at is None else _due_by(delivered_at)


# An item's receivable is made again at each of its events and when it is written
# out, with the same delivery time (2.2 µs each: a time zone conversion). Equal
# instants have one deadline whatever their offsets, so any of them is the key.
_due_by = functools.lru_cache(maxsize=8_192)(payment_due_by)


def receivable(job: JobView, item: ItemView) -> ReceivableRow:
    amount = claim(item)
    return ReceivableRow(
        job.job_id, item.item_id, item.worker_id, job.client_id, item.state, amount, item.net,
        job.currency, item.state in PROTECTED_STATES and amount > 0, item.delivered_at,
        due_by(item.delivered_at),
    )


def change(job: JobView, item: ItemView, event: Event) -> ReceivableChange:
    return ReceivableChange(receivable(job, item), event.version, event.position, event.time)


def is_overdue(row: ReceivableRow, paid_out: bool, now: datetime) -> bool:
    """Past its deadline with a claim still unpaid."""
    return row.due_by is not None and now > row.due_by and not paid_out and row.amount > 0
