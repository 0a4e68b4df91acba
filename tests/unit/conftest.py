"""Shared fixtures of the escrow unit tests: the shipped fee plans, and a journal
that checks every event the tests collect (balanced postings, faithful replay)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from settlement.core.errors import SettlementError
from settlement.core.fees import DEFAULT_FEE_PLANS, FeePlan, load_fee_plans
from settlement.escrow import Escrow
from settlement.ledger.posting import check_balanced


class Journal:
    """Every event collected from the escrows of one test, in order per escrow.

    `take` checks each new event's postings balance (SPEC §6) and that replaying
    the escrow's whole history rebuilds exactly the live state: event bodies
    only assign facts, so replay must agree with the commands that decided them.
    """

    def __init__(self) -> None:
        self.history: dict[str, list[Any]] = {}

    def take(self, escrow: Escrow) -> list[Any]:
        new = list(escrow.collect_events())
        for event in new:
            check_balanced(event.postings)
        history = self.history.setdefault(escrow.job_id, [])
        history.extend(new)
        assert replay(history).state_digest() == escrow.state_digest()
        return new

    def one(self, escrow: Escrow) -> Any:
        """The single event the last command emitted."""
        [event] = self.take(escrow)
        return event

    def rejects(self, escrow: Escrow, code: str, command: Callable[[], object]) -> None:
        """`command` is refused with `code` and leaves no event and no state change."""
        self.take(escrow)
        before = escrow.state_digest()
        with pytest.raises(SettlementError) as refused:
            command()
        assert refused.value.code == code, refused.value
        assert escrow.collect_events() == []
        assert escrow.state_digest() == before


def replay(events: list[Any]) -> Escrow:
    escrow = None
    for event in events:
        escrow = event.mutate(escrow)
    assert isinstance(escrow, Escrow)
    return escrow


@pytest.fixture(scope="session")
def plans() -> dict[str, FeePlan]:
    return load_fee_plans(DEFAULT_FEE_PLANS)


@pytest.fixture
def journal() -> Journal:
    return Journal()
