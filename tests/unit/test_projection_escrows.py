"""Escrow summary and item rows, hand-checked."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from settlement.core.fees import FeePlan
from settlement.projections.model.changes import fold
from settlement.projections.model.envelope import parse
from settlement.projections.model.escrows import EscrowRow, ItemRow, escrow_row, item_row, item_view
from settlement.service.scenario import marketplace_day
from support.projections import cloud_events

START = datetime(2026, 11, 26, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def day(plans: dict[str, FeePlan]) -> list[dict]:
    return cloud_events(marketplace_day(START, "d"), plans)


def at(minute: int) -> datetime:
    return START.replace(minute=minute)


def test_task_summary_when_it_closes(day: list[dict]) -> None:
    # Up to `task_closed` (the 23rd event): 5,000 funded with a 275 client fee; s1
    # released (fee 75 + 7); s2 rejected; 8 free slots refunded; s3's 500 still held.
    changes = fold([parse(e) for e in day[:23]], {}, {})
    assert escrow_row(changes.jobs["d-task"]) == EscrowRow(
        job_id="d-task", format="task", state="closed", currency="JPY", client_id="client-a",
        funded=Decimal("5000"), held=Decimal("500"), released=Decimal("500"),
        refunded=Decimal("4000"), fees=Decimal("357"), withholding=Decimal(0), version=8,
        opened_at=at(16), updated_at=at(23))
    assert [row for row in changes.item_rows() if row.job_id == "d-task"] == [
        ItemRow("d-task", "s1", "submission", "released", Decimal("500"), "JPY", "worker-4",
                at(18), Decimal("500"), Decimal("418")),
        ItemRow("d-task", "s2", "submission", "rejected", Decimal("500"), "JPY", "worker-5",
                at(19), Decimal(0), Decimal(0)),
        ItemRow("d-task", "s3", "submission", "pending", Decimal("500"), "JPY", "worker-4",
                at(20), Decimal(0), Decimal(0)),
    ]


def test_project_summary_after_a_release_with_withholding_and_a_dispute(day: list[dict]) -> None:
    changes = fold([parse(e) for e in day], {}, {})
    row = escrow_row(changes.jobs["d-project"])
    assert (row.state, row.funded, row.held, row.released, row.refunded) == (
        "active", Decimal("165000"), Decimal(0), Decimal("140000"), Decimal("25000"))
    # Fees with their tax: 21,000 + 2,100 and 3,000 + 300; withholding 10,210 + 3,063.
    assert (row.fees, row.withholding, row.version) == (Decimal("26400"), Decimal("13273"), 10)


def test_an_item_reads_back_from_its_row(day: list[dict]) -> None:
    changes = fold([parse(e) for e in day], {}, {})
    for (job_id, _), item in changes.items.items():
        assert item_view(item_row(changes.jobs[job_id], item)) == item
