"""The audit hash chain (SPEC §8, contract).

Every stored event carries `hash = sha256(prev_hash ‖ canonical_json(event))` over
the global order; the first event's `prev_hash` is GENESIS. The canonical form
covers the event's position, stream, version, type and its stored bytes, so an
edited, deleted, inserted or swapped row breaks the chain at its position.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from uuid import UUID

import orjson

GENESIS = "0" * 64


@dataclass(frozen=True)
class ChainedEvent:
    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: bytes


def canonical_json(event: ChainedEvent) -> bytes:
    """Keys sorted, no spaces, the stored state as text (it is UTF-8 JSON)."""
    return orjson.dumps({
        "originator_id": str(event.originator_id), "originator_version": event.originator_version,
        "position": event.position, "state": event.state.decode("utf-8"), "topic": event.topic,
    }, option=orjson.OPT_SORT_KEYS)


def link(prev_hash: str, event: ChainedEvent) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_json(event)).hexdigest()


def chain(prev_hash: str, events: Iterable[ChainedEvent]) -> Iterator[tuple[int, str, str]]:
    """(position, hash, prev_hash) for each event in order, continuing from `prev_hash`."""
    for event in events:
        current = link(prev_hash, event)
        yield event.position, current, prev_hash
        prev_hash = current


@dataclass(frozen=True)
class Verification:
    ok: bool
    events_checked: int
    first_bad_position: int | None


def verify(rows: Iterable[tuple[int, ChainedEvent | None, str | None, str | None]]) -> Verification:
    """Recompute the chain over `(position, event, stored_hash, stored_prev_hash)` rows in
    position order (event None: the event row is gone; hash None: the chain row is
    gone) and report the first position that does not match."""
    prev, checked = GENESIS, 0
    for position, event, stored_hash, stored_prev in rows:
        checked += 1
        if event is None or stored_hash is None or stored_prev != prev:
            return Verification(False, checked, position)
        expected = link(prev, event)
        if expected != stored_hash:
            return Verification(False, checked, position)
        prev = expected
    return Verification(True, checked, None)
