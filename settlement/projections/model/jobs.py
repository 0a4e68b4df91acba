"""The per-job view: what an escrow looks like after each of its events, folded
from the events alone (SPEC §2), the way `settlement.escrow` applies them.

`evolve(job, items, event)` is pure: it returns the job's new view (see `views`)
and the items the event changed. `items` needs to hold only the items the event
names (`item_ids`), so a job with many items never has to be read whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from settlement.projections.model.envelope import Event, amount
from settlement.projections.model.errors import InvariantBroken, UnknownEventType
from settlement.projections.model.fastinit import fast_init
from settlement.projections.model.views import ENTRY, MILESTONE, SUBMISSION, ZERO, ItemView, JobView


@fast_init
@dataclass(frozen=True, slots=True)
class Step:
    job: JobView
    items: dict[str, ItemView]  # the items this event created or changed


Items = Mapping[str, ItemView]
# What a handler decides: the job's state after the event, and the items it changed.
Change = tuple[str, list[ItemView]]
Handler = Callable[[JobView, Items, Event], Change]


def item_ids(event: Event) -> set[str]:
    """Every item id the event names: the items `evolve` may read."""
    data = event.data
    ids = {data[key] for key in ("milestone_id", "entry_id", "submission_id", "item_id")
           if key in data}
    ids.update(movement["item_id"] for movement in _movements(data))
    ids.update(m["milestone_id"] for m in data.get("milestones") or ())
    return ids


def job_of(event: Event) -> str:
    """The job whose view the event folds into (every escrow event has one);
    `UnknownEventType` for any other event."""
    name = event.name
    if event.job_id is None or not (name in OPENERS or name in HANDLERS):
        raise UnknownEventType(f"no projection folds {event.type} (position {event.position})")
    return event.job_id


def evolve(job: JobView | None, items: Items, event: Event) -> Step:
    name = event.name
    opener = OPENERS.get(name)
    if opener is not None:
        if job is not None:
            raise InvariantBroken(f"job {event.job_id} opened twice (position {event.position})")
        job, changed = opener(event)
        return Step(job, {item.item_id: item for item in changed})
    handler = HANDLERS.get(name)
    if handler is None:
        raise UnknownEventType(f"no projection folds {event.type} (position {event.position})")
    if job is None:
        raise InvariantBroken(f"position {event.position}: job {event.job_id} is not open")
    state, changed = handler(job, items, event)
    # Built once, positionally: `dataclasses.replace` was a third of the fold (profiled).
    job = JobView(job.job_id, job.format, state, job.currency, job.client_id, job.worker_id,
                  job.unit_price, event.version, job.opened_at, event.stamp,
                  *_booked(job, event.data))
    if job.held < 0:
        raise InvariantBroken(f"escrow {job.job_id} below zero at position {event.position}")
    return Step(job, {item.item_id: item for item in changed})


# Money ---------------------------------------------------------------------------------


def _movements(data: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("funding", "release", "refund"):
        if data.get(key):
            yield data[key]
    yield from data.get("releases") or ()


def _booked(job: JobView, data: Mapping[str, Any]) -> tuple[Decimal, ...]:
    """The job's sums (funded, released, refunded, fees, withheld) after the
    event's movements, as `Escrow.book` keeps them."""
    funded, released, refunded, fees, withheld = (
        job.funded, job.released, job.refunded, job.fees, job.withheld)
    if not (data.get("funding") or data.get("release") or data.get("releases")
            or data.get("refund")):  # no movement: the sums as they were
        return funded, released, refunded, fees, withheld
    if funding := data.get("funding"):
        funded += amount(funding["amount"])
        fees += amount(funding["client_fee"]) + amount(funding["client_fee_tax"])
    for release in _releases(data):
        released += amount(release["gross"])
        fees += amount(release["fee"]) + amount(release["fee_tax"])
        withheld += amount(release["withholding"])
    if refund := data.get("refund"):
        refunded += amount(refund["amount"])
    return funded, released, refunded, fees, withheld


def _releases(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [data["release"]] if data.get("release") else list(data.get("releases") or ())


# Openers -------------------------------------------------------------------------------


def _opened(event: Event, format_: str, state: str, **fields: Any) -> JobView:
    data = event.data
    return JobView(job_of(event), format_, state, data["plan"]["currency"], data["client_id"],
                   fields.get("worker_id"), fields.get("unit_price"), event.version,
                   event.stamp, event.stamp)


Opening = tuple[JobView, list[ItemView]]


def _project_contracted(event: Event) -> Opening:
    worker = event.data["worker_id"]
    job = _opened(event, "project", "active", worker_id=worker)
    return job, [ItemView(m["milestone_id"], MILESTONE, "contracted", amount(m["amount"]), worker)
                 for m in event.data["milestones"]]


def _competition_opened(event: Event) -> Opening:
    return _opened(event, "competition", "opened"), []


def _task_opened(event: Event) -> Opening:
    return _opened(event, "task", "opened", unit_price=amount(event.data["unit_price"])), []


OPENERS: dict[str, Callable[[Event], Opening]] = {
    "project_contracted": _project_contracted,
    "competition_opened": _competition_opened,
    "task_opened": _task_opened,
}


# Item changes ----------------------------------------------------------------------------


def _item(job: JobView, items: Items, item_id: str) -> ItemView:
    item = items.get(item_id)
    if item is None:
        raise InvariantBroken(f"job {job.job_id} has no item {item_id}")
    return item


def _moved(item: ItemView, state: str) -> ItemView:
    return ItemView(item.item_id, item.kind, state, item.amount, item.worker_id,
                    item.delivered_at, item.released, item.net)


def _set_state(key: str, state: str) -> Handler:
    """A handler moving the item named by `key` to `state`."""

    def handler(job: JobView, items: Items, event: Event) -> Change:
        return job.state, [_moved(_item(job, items, _item_id(event.data, key)), state)]

    return handler


def _item_id(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    return str(value["item_id"] if isinstance(value, Mapping) else value)


def _job_state(state: str) -> Handler:
    def handler(job: JobView, items: Items, event: Event) -> Change:
        return state, []

    return handler


def _paid(item: ItemView, release: Mapping[str, Any], state: str = "released",
          item_amount: Decimal | None = None) -> ItemView:
    """The item after `release`: its gross and net added to what the worker was paid."""
    return ItemView(item.item_id, item.kind, state,
                    item.amount if item_amount is None else item_amount, item.worker_id,
                    item.delivered_at, item.released + amount(release["gross"]),
                    item.net + amount(release["net"]))


def _milestone_added(job: JobView, items: Items, event: Event) -> Change:
    data = event.data
    return job.state, [ItemView(data["milestone_id"], MILESTONE, "contracted",
                                amount(data["amount"]), job.worker_id)]


def _delivered(job: JobView, items: Items, event: Event) -> Change:
    item = _item(job, items, event.data["milestone_id"])
    return job.state, [ItemView(item.item_id, item.kind, "delivered", item.amount,
                                item.worker_id, event.time, item.released, item.net)]


def _release(job: JobView, items: Items, event: Event) -> Change:
    release = event.data["release"]
    return job.state, [_paid(_item(job, items, release["item_id"]), release)]


def _entry_submitted(job: JobView, items: Items, event: Event) -> Change:
    data = event.data
    return job.state, [ItemView(data["entry_id"], ENTRY, "entered", ZERO, data["worker_id"],
                                event.time)]


def _awarded(job: JobView, items: Items, event: Event) -> Change:
    return "awarded", [_paid(_item(job, items, r["item_id"]), r, item_amount=amount(r["gross"]))
                       for r in event.data["releases"]]


def _submission_received(job: JobView, items: Items, event: Event) -> Change:
    data = event.data
    if job.unit_price is None:
        raise InvariantBroken(f"job {job.job_id} is not a task (position {event.position})")
    return job.state, [ItemView(data["submission_id"], SUBMISSION, "pending", job.unit_price,
                                data["worker_id"], event.time)]


def _dispute_resolved(job: JobView, items: Items, event: Event) -> Change:
    """The worker part is released, the client part refunded; a competition's
    disputed entry takes the worker part as its amount and closes the competition."""
    item = _item(job, items, event.data["item_id"])
    release = event.data.get("release")
    entry = item.kind == ENTRY
    if release:
        item = _paid(item, release, "resolved", amount(release["gross"]) if entry else None)
    else:
        item = _moved(item, "resolved")
    return ("resolved" if entry else job.state), [item]


HANDLERS: dict[str, Handler] = {
    "milestone_added": _milestone_added,
    "milestone_funded": _set_state("funding", "funded"),
    "milestone_delivered": _delivered,
    "revision_requested": _set_state("milestone_id", "funded"),
    "milestone_released": _release,
    "milestone_cancelled": _set_state("milestone_id", "cancelled"),
    "competition_funded": _job_state("funded"),
    "entry_submitted": _entry_submitted,
    "competition_awarded": _awarded,
    "competition_refunded": _job_state("refunded"),
    "competition_cancelled": _job_state("cancelled"),
    "task_funded": _job_state("funded"),
    "submission_received": _submission_received,
    "submission_approved": _release,
    "submission_rejected": _set_state("submission_id", "rejected"),
    "task_closed": _job_state("closed"),
    "dispute_opened": _set_state("item_id", "disputed"),
    "dispute_resolved": _dispute_resolved,
}
# Every event a job's view folds (the openers' and the handlers').
JOB_EVENTS = frozenset(OPENERS) | frozenset(HANDLERS)
