"""What the command mixins (`project`, `competition`, `task`, `dispute`, `timers`)
use of the escrow they are mixed into, for the type checker.

`Escrow` inherits the mixins, so a mixin cannot name `Escrow` as its base. Each
mixin's base is this protocol while type checking and `object` at run time, so
`Escrow`'s method resolution order is untouched. The format attributes are set
by the opening event (`Escrow.open_as`).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from settlement.core.fees import FeePlan
from settlement.core.money import Money
from settlement.core.movements import Funding, Refund, Release
from settlement.escrow.items import Item

if TYPE_CHECKING:
    from settlement.escrow import events as ev
    from settlement.escrow.aggregate import Escrow


class EscrowState(Protocol):
    # Every format.
    job_id: str
    format: str
    state: str
    currency: str
    items: dict[str, Item]
    disputes: dict[str, str]

    # Project.
    worker_id: str
    inspection_days: int

    # Competition.
    prize: Money
    prize_tax: Money
    guaranteed: bool
    entry_deadline: datetime
    award_deadline: datetime
    min_entries: int

    # Task.
    unit_price: Money
    quantity: int
    unit_tax: Money
    approval_days: int
    slots_taken: int

    @classmethod
    def open(cls, event_class: type[ev.Opened], *, job_id: str, causation_id: str,
             at: datetime, plan: FeePlan, **fields: Any) -> Escrow: ...

    @property
    def held(self) -> Money: ...

    def released_to_worker(self, worker_id: str) -> Money: ...

    def _emit(self, event_class: type[ev.EscrowEvent], *, causation_id: str, at: datetime,
              **fields: Any) -> None: ...

    def _require_format(self, format_: str) -> None: ...

    def _item(self, item_id: str, kind: str) -> Item: ...

    def _new_item_id(self, item_id: str) -> None: ...

    def _require_currency(self, amount: Money) -> None: ...

    def _funding(self, item_id: str, base: Money, paid: Money, payment_ref: str) -> Funding: ...

    def _release(self, item: Item, worker_id: str, gross: Money,
                 cumulative: Money | None = None) -> Release: ...

    def _refund(self, item_id: str, amount: Money) -> Refund | None: ...

    # Commands of one mixin that another one calls.

    def accept_milestone(self, milestone_id: str, *, causation_id: str, at: datetime,
                         automatic: bool = False) -> None: ...

    def approve_submission(self, submission_id: str, *, causation_id: str, at: datetime,
                           automatic: bool = False) -> None: ...

    def award(self, awards: list[tuple[str, Money]], *, causation_id: str, at: datetime,
              automatic: bool = False) -> None: ...

    def _prize_item(self) -> Item: ...
