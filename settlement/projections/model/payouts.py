"""Payouts (SPEC §6, §7 `GET /v1/payouts`): one row per payout, folded from the
payout events alone, and which items each payout pays.

Payout events are keyed by `payout_id` on `settlement.events`, so the events of
one payout arrive in order, but a party's payouts may arrive in any order
relative to each other and to the escrow events (other partitions). So:
- a payout event is a repeat when its position is not above the payout row's
  `position` (one payout's events are in one partition, in position order);
- which items are paid out is kept per (item, payout) in `payout_items`, and a
  receivable's `paid_out` is recomputed from it whenever either side changes, so
  the result does not depend on the order the partitions were read in.

`evolve_payout(view, event)` is pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from settlement.projections.model.envelope import Event, amount
from settlement.projections.model.errors import InvariantBroken, MalformedEvent
from settlement.projections.model.fastinit import fast_init

INITIATED, SETTLED, FAILED, RETURNED = "initiated", "settled", "failed", "returned"
EVENT_STATUS = {"payout_initiated": INITIATED, "payout_settled": SETTLED,
                "payout_failed": FAILED, "payout_returned": RETURNED,
                # A withholding remittance (SPEC §12) is paid and confirmed like a
                # payout, keyed by its client (party_type "withholding", no items).
                "withholding_remitted": INITIATED,
                "withholding_remittance_confirmed": SETTLED,
                "withholding_remittance_failed": FAILED}
# A payout in these states pays its items no more (a return: the bank sent it back).
UNPAID = frozenset({FAILED, RETURNED})
# The state each result comes from.
_FROM = {SETTLED: INITIATED, FAILED: INITIATED, RETURNED: SETTLED}
WORKER = "worker"


@fast_init
@dataclass(frozen=True, slots=True)
class PayoutView:
    payout_id: str
    party_type: str
    party_id: str
    currency: str
    amount: Any  # Decimal
    status: str
    items: tuple[Mapping[str, str], ...]
    position: int  # of the last event applied
    # Times of this batch's initiated / failed (or returned) event (not kept in
    # `payouts`: a `payout_items` row keeps them, for receivables as of an instant).
    initiated_at: datetime | None = None
    failed_at: datetime | None = None


@fast_init
@dataclass(frozen=True, slots=True)
class PayoutItemRow:
    job_id: str
    item_id: str
    payout_id: str
    party_type: str
    status: str
    initiated_at: datetime | None
    failed_at: datetime | None


def is_payout(event: Event) -> bool:
    return event.name in EVENT_STATUS


def payout_of(event: Event) -> str:
    try:
        data = event.data
        return str(data["payout_id"] if "payout_id" in data else data["remittance_id"])
    except KeyError as exc:
        raise MalformedEvent(f"position {event.position}: a payout event without "
                             "payout_id") from exc


def evolve_payout(view: PayoutView | None, event: Event) -> PayoutView:
    """The payout after `event` (not a repeat, see `is_repeat`)."""
    status = EVENT_STATUS[event.name]
    data = event.data
    if status == INITIATED:
        if view is not None:
            raise InvariantBroken(f"payout {payout_of(event)} initiated twice "
                                  f"(position {event.position})")
        money = data["amount"]
        return PayoutView(payout_of(event), data["party_type"], data["party_id"],
                          money["currency"], amount(money), INITIATED,
                          tuple(dict(i) for i in data.get("items") or ()), event.position,
                          initiated_at=event.time)
    if view is None:
        raise InvariantBroken(f"position {event.position}: payout {payout_of(event)} "
                              "was never initiated")
    if view.status != _FROM[status]:
        raise InvariantBroken(f"position {event.position}: payout {view.payout_id} is "
                              f"{view.status}, not {_FROM[status]}")
    return PayoutView(view.payout_id, view.party_type, view.party_id, view.currency,
                      view.amount, status, view.items, event.position, view.initiated_at,
                      event.time if status in UNPAID else None)


def item_rows(view: PayoutView) -> list[PayoutItemRow]:
    return [PayoutItemRow(item["job_id"], item["item_id"], view.payout_id, view.party_type,
                          view.status, view.initiated_at, view.failed_at)
            for item in view.items]


def view_of_row(row: tuple[Any, ...]) -> PayoutView:
    """A `payouts` row (in `PAYOUT_COLUMNS` order, items as a list) as a view."""
    payout_id, party_type, party_id, currency, money, status, items, position = row
    return PayoutView(payout_id, party_type, party_id, currency, money, status,
                      tuple(items or ()), position)
