"""Pipelined batches (the input consumer's): a batch decided on top of one that is
not committed yet sees its escrows and command ids, and is dropped with it when
that commit fails."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from settlement.application.app import APPLIED, DUPLICATE, ConcurrentModification
from settlement.application.app import SettlementApplication as App
from settlement.core.commands import Command
from settlement.store.recorder import PositionUpdate

T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)


def cmd(event_id: str, type_: str, job_id: str, **data: Any) -> Command:
    return Command.create(event_id, type_, T0, {"job_id": job_id, **data})


def opened(job_id: str) -> Command:
    return cmd(f"{job_id}-open", "task.opened", job_id, client_id="c1", fee_plan="tiered",
               unit_price={"amount": "1000", "currency": "JPY"}, quantity=2)


def funded(job_id: str) -> Command:
    return cmd(f"{job_id}-fund", "task.funded", job_id,
               amount={"amount": "2000", "currency": "JPY"}, payment_ref="p1")


def position(start: int, end: int) -> list[PositionUpdate]:
    return [PositionUpdate("g", "jobs", 0, start, end)]


def test_next_batch_continues_from_the_uncommitted_one(owner_app: App) -> None:
    first = owner_app.prepare([opened("j1")])
    second = owner_app.prepare([funded("j1"), opened("j1")], ahead=first)
    assert [o.status for o in second.outcomes] == [APPLIED, DUPLICATE]
    owner_app.commit(first, position(0, 1))
    owner_app.commit(second, position(1, 3))
    escrow = owner_app.escrow("j1")
    assert escrow is not None and escrow.state == "funded" and escrow.version == 2
    assert owner_app.store.select_positions("g") == {("jobs", 0): 3}


def test_failed_commit_abandons_the_batch_decided_on_top_of_it(owner_app: App) -> None:
    owner_app.handle_batch([opened("j2")], position(0, 1))
    first = owner_app.prepare([funded("j2")])
    second = owner_app.prepare([cmd("j2-s1", "task.submission_received", "j2",
                                    submission_id="s1", worker_id="w1")], ahead=first)
    with pytest.raises(ConcurrentModification):
        owner_app.commit(first, position(5, 6))  # a stale position: nothing is stored
    owner_app.abandon(second)
    escrow = owner_app.escrow("j2")
    assert escrow is not None and escrow.state == "opened" and escrow.version == 1
    # Read again from the start, the same commands apply as if nothing had happened.
    outcomes = owner_app.handle_batch([funded("j2")], position(1, 2))
    assert [o.status for o in outcomes] == [APPLIED]
