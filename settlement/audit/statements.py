"""The statement lines stored beside their events, checked against the events
(SPEC §8, §13): each `StatementImported` event carries the digest of exactly
the rows it stored (`store.statement_lines.LineDigest`: how many, the first and
last line's id, the SHA-256 of their canonical rows). A row changed, deleted,
moved to another event or added to one makes its event's digest differ, and
`verify_chain` reports that event's position.

A row no event names is read by nothing (the projections, rebuilds and the
export take a statement's rows by its event's digest), so it cannot change a
figure; `settlement audit verify` does not look for such rows.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from settlement.ledger.chain import ChainedEvent
from settlement.reconcile.events import StatementImported
from settlement.store.statement_lines import HASHED, LineDigest, canonical

IMPORTED_TOPIC = get_topic(StatementImported)


class StatementCheck:
    """Fed every stored event of a verification pass (`see`), keeps the digests of
    the statement events (a few per million lines) to check after it (`first_bad`)."""

    def __init__(self) -> None:
        self._digests: list[tuple[int, dict[str, Any]]] = []

    def see(self, mapper: Any, event: ChainedEvent) -> None:
        if event.topic != IMPORTED_TOPIC:
            return
        domain = mapper.to_domain_event(Notification(
            id=event.position, originator_id=event.originator_id,
            originator_version=event.originator_version, topic=event.topic, state=event.state))
        digest = getattr(domain, "digest", None)
        if isinstance(digest, dict):  # an older event carries its lines itself
            self._digests.append((event.position, digest))

    def first_bad(self, store: Any) -> int | None:
        """The position of the first event whose stored rows do not match its digest."""
        for position, digest in self._digests:
            if stored_digest(store, str(digest.get("first_line_id", ""))) != digest:
                return position
        return None


def stored_digest(store: Any, chunk: str) -> dict[str, Any]:
    """The digest of the rows stored under `chunk`, in their order (`store`: the
    application's recorder)."""
    width = len(HASHED)
    rows = (canonical(*row[:width]) for row in store.select_statement_lines(chunk)) \
        if chunk else iter(())
    return LineDigest.of(rows).to_json()
