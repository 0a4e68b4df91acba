"""Audit verification over the event store (SPEC §8): recompute the hash chain,
and check the statement lines stored beside their events (`statements`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from settlement.application.app import SettlementApplication
from settlement.audit.statements import StatementCheck
from settlement.ledger.chain import ChainedEvent, Verification, verify

PAGE_EVENTS = 5_000


def chain_rows(app: SettlementApplication) -> Iterator[tuple[int, ChainedEvent | None,
                                                             str | None, str | None]]:
    """Every stored event with its chain row, streamed in pages (memory bounded)."""
    after = 0
    while True:
        page = app.store.select_chain(after, PAGE_EVENTS)
        yield from page
        if len(page) < PAGE_EVENTS:
            return
        after = page[-1][0]


def verify_chain(app: SettlementApplication,
                 progress: Callable[[int], None] | None = None) -> Verification:
    """The chain recomputed over every event, then each statement event's stored
    lines against its digest (`statements`): the first position that fails."""
    lines = StatementCheck()

    def counted() -> Iterator[tuple[int, ChainedEvent | None, str | None, str | None]]:
        for n, row in enumerate(chain_rows(app), start=1):
            if progress is not None and n % PAGE_EVENTS == 0:
                progress(n)
            if row[1] is not None:
                lines.see(app.mapper, row[1])
            yield row

    result = verify(counted())
    bad = lines.first_bad(app.store) if result.ok else None
    return result if bad is None else Verification(False, result.events_checked, bad)
