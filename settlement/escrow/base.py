"""`EscrowBase`: the state of one job's escrow and the steps its commands share.

Each command mixin (`project`, `competition`, `task`, `dispute`, `timers`)
subclasses it, and `Escrow` (`aggregate`) combines them; so the type checker
sees, in every mixin, the attributes and helpers it uses. Events (`events`)
assign this state; the bookkeeping methods below are called from them only.

As aggregate classes, the mixins get `Event` and `Created` classes of their own
from the library; none is ever emitted: the escrow's events are those of
`events`, whose topics name that module.
"""

from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any, Self

from eventsourcing.domain import Aggregate

from settlement.core.errors import Rejected
from settlement.core.fees import FeePlan, recorded_plan
from settlement.core.money import Money, floor, zero
from settlement.core.movements import Funding, Movement, Refund, Release
from settlement.escrow import events as ev
from settlement.escrow.items import ENTRY, Item
from settlement.ledger.rules import postings_for

ESCROW_NAMESPACE = uuid.UUID("6f1c1a52-5b0e-4d7e-9a55-3b1f1e0c2a10")
ITEMS_MAX = 200_000


@functools.lru_cache(maxsize=16_384)
def escrow_id(job_id: str) -> uuid.UUID:
    """Deterministic id: the same job always maps to the same escrow. Cached: asked
    several times per command (a SHA-1 each: 6 % of the input consumer's time at
    2,000 records/s, profiled); UUIDs are immutable, so sharing one is safe."""
    return uuid.uuid5(ESCROW_NAMESPACE, f"escrow:{job_id}")


class EscrowBase(Aggregate):
    # The state is declared in `__init__`, not as class annotations: the library's
    # metaclass turns an aggregate class with annotations into a dataclass.
    def __init__(
        self,
        job_id: str,
        client_id: str,
        plan: dict[str, Any],
        withholding: bool,
        terms: dict[str, Any] | None,
    ) -> None:
        self.job_id = job_id
        self.client_id = client_id
        self.plan_data = plan
        self.plan = recorded_plan(plan)
        self.currency = self.plan.currency
        self.withholding = withholding
        self.terms = terms
        self.format = ""
        self.state = "opened"
        self.items: dict[str, Item] = {}
        self.disputes: dict[str, str] = {}  # item id -> state before the dispute
        self.released_to: dict[str, Money] = {}  # cumulative gross per worker
        self.funded = zero(self.currency)
        self.released = zero(self.currency)
        self.refunded = zero(self.currency)
        self.fees = zero(self.currency)
        self.withheld = zero(self.currency)
        # The format's parameters, set by its opening event (`open_as`). Declared
        # without a value: an escrow holds only its own format's attributes.
        self.worker_id: str  # project
        self.inspection_days: int
        self.prize: Money  # competition
        self.prize_tax: Money
        self.guaranteed: bool
        self.entry_deadline: datetime
        self.award_deadline: datetime
        self.min_entries: int
        self.unit_price: Money  # task
        self.quantity: int
        self.unit_tax: Money
        self.approval_days: int
        self.slots_taken: int

    # Creation ------------------------------------------------------------------

    @classmethod
    def open(cls, event_class: type[ev.Opened], *, job_id: str, causation_id: str,
             at: datetime, plan: FeePlan, **fields: Any) -> Self:
        if fields.get("withholding") and plan.currency != "JPY":
            raise Rejected("withholding applies to JPY jobs only", "withholding_currency")
        return cls._create(
            event_class, id=escrow_id(job_id), timestamp=at, job_id=job_id,
            plan=plan.to_dict(), causation_id=causation_id, postings=[], **fields,
        )

    def open_as(self, format_: str, **attributes: Any) -> None:
        """Called by the opening event: the format and its parameters."""
        self.format = format_
        for name, value in attributes.items():
            setattr(self, name, value)

    # Bookkeeping (called from events only) --------------------------------------

    def add_item(self, item_id: str, kind: str, amount: Money, tax: Money, state: str,
                 worker_id: str | None = None, delivered_at: datetime | None = None) -> Item:
        item = Item(item_id, kind, amount, tax, state, worker_id, delivered_at)
        self.items[item_id] = item
        return item

    def book(self, movement: Movement) -> None:
        if isinstance(movement, Funding):
            self.funded += movement.amount
            self.fees += movement.client_fee + movement.client_fee_tax
        elif isinstance(movement, Release):
            self.released += movement.gross
            self.fees += movement.fee + movement.fee_tax
            self.withheld += movement.withholding
            worker = movement.worker_id
            self.released_to[worker] = self.released_to_worker(worker) + movement.gross
        else:
            self.refunded += movement.amount
        # `held` without its two intermediate `Money` objects (this runs for every movement)
        assert self.funded.amount - self.released.amount - self.refunded.amount >= 0, \
            f"escrow {self.job_id} below zero"

    def released_to_worker(self, worker_id: str) -> Money:
        return self.released_to.get(worker_id, zero(self.currency))

    @property
    def held(self) -> Money:
        return self.funded - self.released - self.refunded

    # Shared command steps -------------------------------------------------------

    def _emit(self, event_class: type[ev.EscrowEvent], *, causation_id: str, at: datetime,
              **fields: Any) -> None:
        """Emit the next event, as `trigger_event` would: the same event object (its
        fields in declaration order, so it is stored byte for byte alike), applied,
        then pending. Built directly: the library's generic path (keyword copies,
        the frozen dataclass's per-field `object.__setattr__`, re-checking the id
        and version it just set) was a sixth of deciding a command (profiled)."""
        postings = postings_for(self.job_id, self.client_id, ev.movements_of(fields))
        fields.update(originator_id=self.id, originator_version=self.version + 1,
                      timestamp=at, job_id=self.job_id, causation_id=causation_id,
                      postings=postings)
        names = ev.field_names(event_class)
        if len(fields) != len(names):
            raise TypeError(f"{event_class.__name__} has fields {names}, got {sorted(fields)}")
        event = object.__new__(event_class)
        vars(event).update({name: fields[name] for name in names})
        event.apply(self)
        self.version = event.originator_version
        self.modified_on = at
        self.pending_events.append(event)

    def _require_format(self, format_: str) -> None:
        if self.format != format_:
            raise Rejected(f"job {self.job_id} is a {self.format}, not a {format_}", "wrong_format")

    def _item(self, item_id: str, kind: str) -> Item:
        item = self.items.get(item_id)
        if item is None or item.kind != kind:
            raise Rejected(f"job {self.job_id} has no {kind} {item_id}", "unknown_item")
        return item

    def _new_item_id(self, item_id: str) -> None:
        if item_id in self.items:
            raise Rejected(f"job {self.job_id} already has item {item_id}", "duplicate_item")
        if len(self.items) >= ITEMS_MAX:
            raise Rejected(f"job {self.job_id} has {ITEMS_MAX} items", "too_many_items")

    def _require_currency(self, amount: Money) -> None:
        if amount.currency.code != self.currency:
            raise Rejected(
                f"job {self.job_id} is in {self.currency}, got {amount.currency.code}",
                "currency_mismatch",
            )

    def _funding(self, item_id: str, base: Money, paid: Money, payment_ref: str) -> Funding:
        """The funding of `base`, if `paid` is exactly base plus the plan's client fee."""
        self._require_currency(paid)
        client_fee = self.plan.client_fee(base)
        expected = base + client_fee.total
        if paid != expected:
            raise Rejected(
                f"funding of {item_id} must be {expected.amount} {self.currency} "
                f"(amount {base.amount} + client fee {client_fee.total.amount}), got {paid.amount}",
                "amount_mismatch",
            )
        return Funding(item_id, base, client_fee.fee, client_fee.fee_tax, payment_ref)

    def _release(self, item: Item, worker_id: str, gross: Money,
                 cumulative: Money | None = None) -> Release:
        """Release `gross` of `item` to `worker_id`, with the plan's fees on the
        worker's cumulative gross in this escrow (or the given running total)."""
        tax_share = self._tax_share(item, gross)
        before = self.released_to_worker(worker_id) if cumulative is None else cumulative
        fees = self.plan.release(gross, before, tax_share, self.withholding)
        return Release(item.item_id, worker_id, gross, fees.fee, fees.fee_tax,
                       fees.withholding, fees.net)

    def _tax_share(self, item: Item, gross: Money) -> Money:
        if item.tax.amount == 0 or item.amount.amount == 0:
            return zero(self.currency)
        return floor(item.tax.amount * gross.amount / item.amount.amount, self.currency)

    def _refund(self, item_id: str, amount: Money) -> Refund | None:
        return Refund(item_id, amount) if amount.amount > 0 else None

    def _prize_item(self) -> Item:
        """A competition's prize as one item: what awards and a disputed entry split."""
        return Item("prize", ENTRY, self.prize, self.prize_tax, self.state)
