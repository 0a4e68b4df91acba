"""Reading many aggregates with one query, into the repository's cache.

`Repository.get` costs one round trip per aggregate it does not hold; a batch
opening hundreds of new escrows paid one query each just to learn that none
existed yet (a fifth of a batch's time, profiled).
"""

from __future__ import annotations

from collections.abc import Collection
from itertools import groupby
from uuid import UUID

from eventsourcing.application import Repository, project_aggregate

from settlement.store.recorder import SettlementRecorder


def preload(repository: Repository[UUID], recorder: SettlementRecorder,
            aggregate_ids: Collection[UUID]) -> set[UUID]:
    """Read every aggregate of `aggregate_ids` the cache lacks, with one query, and
    put it in the cache as `repository.get` would; return the ids of those that do
    not exist. `repository.get` then serves the others (copies, fast-forwards) as usual.
    """
    cache = repository.cache
    missing = [i for i in aggregate_ids if cache is None or i not in cache.cache]
    if not missing:
        return set()
    mapper = repository.event_store.mapper
    stored = recorder.select_events_of(missing)
    found = set()
    for aggregate_id, events in groupby(stored, key=lambda e: e.originator_id):
        found.add(aggregate_id)
        aggregate = project_aggregate(None, (mapper.to_domain_event(e) for e in events))
        if cache is not None:
            cache.put(aggregate_id, aggregate)
    return set(missing) - found
