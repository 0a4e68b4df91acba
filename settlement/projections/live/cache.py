"""The projector's views in memory: each job's view and items, and each payout, as
the batches this process folded left them, so a batch reads from PostgreSQL only
what no batch of this process has touched yet.

Valid only while this process owns the partitions those jobs and payouts are
read from (both are keyed to one partition), and only for batches that reach
PostgreSQL: the projector clears it on every rebalance, position conflict and
failed batch, and a new process starts with it empty. It is updated with a
batch's changes before that batch is stored, so the next batch can be folded
while the last one is written; what it does not hold is read from the store,
which then holds no batch in flight for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice

from settlement.projections.model.changes import Changes, ItemKey
from settlement.projections.model.envelope import Event
from settlement.projections.model.invoices import is_invoice
from settlement.projections.model.jobs import item_ids, job_of
from settlement.projections.model.parties import is_keyed
from settlement.projections.model.payouts import PayoutView, is_payout, payout_of
from settlement.projections.model.reconciliation import is_bank_fee
from settlement.projections.model.views import ItemView, JobView

MAX_JOBS = 200_000
MAX_PAYOUTS = 50_000


@dataclass(slots=True)
class _Job:
    view: JobView | None  # None: the store has no view of it (a job new to the store)
    items: dict[str, ItemView] = field(default_factory=dict)
    # Every item the job has is in `items`: true of a job new to the store, all of
    # whose items were then made by batches this cache saw.
    complete: bool = False


@dataclass(frozen=True, slots=True)
class Wanted:
    """What a batch needs that the cache does not hold: read it from the store."""

    job_ids: list[str]
    item_keys: list[ItemKey]
    payout_ids: list[str]

    def __bool__(self) -> bool:
        return bool(self.job_ids or self.item_keys or self.payout_ids)


@dataclass(frozen=True, slots=True)
class Needs:
    """The jobs, items and payouts a batch's events name."""

    job_ids: set[str]
    item_keys: set[ItemKey]
    payout_ids: set[str]


def needs(events: Sequence[Event]) -> Needs:
    job_ids: set[str] = set()
    keys: set[ItemKey] = set()
    payout_ids: set[str] = set()
    for event in events:
        if is_keyed(event) or is_invoice(event) or is_bank_fee(event):
            continue  # it needs no earlier state (see model.parties, model.invoices)
        if is_payout(event):
            payout_ids.add(payout_of(event))
            continue
        job_id = job_of(event)
        job_ids.add(job_id)
        keys.update((job_id, item_id) for item_id in item_ids(event))
    return Needs(job_ids, keys, payout_ids)


class ViewCache:
    def __init__(self, max_jobs: int = MAX_JOBS, max_payouts: int = MAX_PAYOUTS) -> None:
        self.max_jobs, self.max_payouts = max_jobs, max_payouts
        self._jobs: dict[str, _Job] = {}  # least recently changed first
        self._payouts: dict[str, PayoutView] = {}
        self._invoices: dict[str, None] = {}  # numbers folded here (an ordered set)

    def __len__(self) -> int:
        return len(self._jobs) + len(self._payouts)

    def clear(self) -> None:
        self._jobs.clear()
        self._payouts.clear()
        self._invoices.clear()

    def folded_invoices(self, numbers: Sequence[str]) -> set[str]:
        """Which of the invoice `numbers` a batch of this process folded already."""
        return {n for n in numbers if n in self._invoices}

    def wanted(self, needs: Needs) -> Wanted:
        jobs = self._jobs
        job_ids = sorted(j for j in needs.job_ids if j not in jobs)
        keys = []
        for key in needs.item_keys:
            job = jobs.get(key[0])
            if job is None or not (job.complete or key[1] in job.items):
                keys.append(key)
        return Wanted(job_ids, sorted(keys),
                      sorted(p for p in needs.payout_ids if p not in self._payouts))

    def loaded(self, wanted: Wanted, jobs: dict[str, JobView], items: dict[ItemKey, ItemView],
               payouts: dict[str, PayoutView]) -> None:
        """Keep what was read from the store for `wanted` (nothing stored: a new job)."""
        for job_id in wanted.job_ids:
            view = jobs.get(job_id)
            self._jobs[job_id] = _Job(view, complete=view is None)
        for (job_id, item_id), item in items.items():
            self._jobs[job_id].items[item_id] = item
        self._payouts.update(payouts)

    def inputs(self, needs: Needs) -> tuple[dict[str, JobView], dict[ItemKey, ItemView],
                                            dict[str, PayoutView]]:
        """What `fold` starts from: the views, items and payouts the events name."""
        jobs = self._jobs
        views = {}
        for job_id in needs.job_ids:
            view = jobs[job_id].view
            if view is not None:
                views[job_id] = view
        items = {}
        for key in needs.item_keys:
            item = jobs[key[0]].items.get(key[1])
            if item is not None:
                items[key] = item
        payouts = self._payouts
        return views, items, {p: payouts[p] for p in needs.payout_ids if p in payouts}

    def update(self, changes: Changes) -> None:
        """Take a folded batch's changes (before it is stored: see the module doc)."""
        jobs = self._jobs
        for job_id, view in changes.jobs.items():
            job = jobs.pop(job_id, None) or _Job(None, complete=True)
            job.view = view
            jobs[job_id] = job  # now the most recently changed
        for (job_id, item_id), item in changes.items.items():
            jobs[job_id].items[item_id] = item
        for payout_id, payout in changes.payouts.items():
            self._payouts.pop(payout_id, None)
            self._payouts[payout_id] = payout
        self._invoices.update(dict.fromkeys(changes.invoices))
        # Only between batches (none in flight): what is dropped is stored.
        for cache, limit in ((jobs, self.max_jobs), (self._payouts, self.max_payouts),
                             (self._invoices, self.max_payouts)):
            if len(cache) > limit:
                for key in list(islice(cache, len(cache) - limit)):
                    del cache[key]
