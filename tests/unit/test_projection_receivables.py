"""Receivables protection: the worker's claim, protected or not, due 60 days after
delivery, overdue only when unpaid past that."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from settlement.core.fees import FeePlan
from settlement.projections.model.changes import fold
from settlement.projections.model.envelope import parse
from settlement.projections.model.receivables import ReceivableRow, due_by, is_overdue
from support.projections import rich_day, run

START = datetime(2026, 11, 26, 9, tzinfo=UTC)


def receivables_after(events: list[dict], count: int) -> dict[tuple[str, str], ReceivableRow]:
    changes = fold([parse(e) for e in events[:count]], {}, {})
    return {(r.job_id, r.item_id): r for r in changes.receivables()}


@pytest.fixture(scope="module")
def events(plans: dict[str, FeePlan]) -> list[dict]:
    return run(rich_day(START, "r"), plans)[0]


@pytest.fixture(scope="module")
def final(events: list[dict]) -> dict[tuple[str, str], ReceivableRow]:
    return receivables_after(events, len(events))


def test_due_by_is_00_00_jst_of_the_61st_day_counting_delivery_as_the_first(final: dict) -> None:
    delivered = datetime(2026, 11, 26, 9, 6, tzinfo=UTC)  # m1 delivered again at 18:06 JST
    row = final[("r-project", "m1")]
    assert row.delivered_at == delivered
    # Day 1 is 11/26 (JST), day 60 is 1/24: due at 1/25 00:00 JST.
    assert row.due_by == datetime(2027, 1, 24, 15, 0, tzinfo=UTC)
    assert due_by(None) is None


def test_contracted_and_not_funded_is_unprotected_exposure(events: list[dict],
                                                           final: dict) -> None:
    idle = final[("r-idle", "m1")]
    assert (idle.state, idle.amount, idle.protected, idle.due_by) == (
        "contracted", Decimal("7000"), False, None)
    added = final[("r-usd", "m3")]
    assert (added.state, added.amount, added.protected, added.currency) == (
        "contracted", Decimal("20.00"), False, "USD")


def test_held_in_escrow_is_protected(events: list[dict]) -> None:
    # After the first funding (2 events), m1 is held and m2 not yet funded.
    early = receivables_after(events, 2)
    assert early[("r-project", "m1")].protected and early[("r-project", "m1")].state == "funded"
    assert not early[("r-project", "m2")].protected
    delivered = receivables_after(events, 4)[("r-project", "m1")]
    assert (delivered.state, delivered.protected) == ("delivered", True)
    disputed = receivables_after(events, 9)[("r-project", "m2")]
    assert (disputed.state, disputed.protected, disputed.amount) == (
        "disputed", True, Decimal("55000"))


def test_released_or_resolved_is_payable_for_the_worker_part(final: dict) -> None:
    released = final[("r-project", "m1")]
    assert (released.state, released.protected, released.amount, released.net) == (
        "released", True, Decimal("110000"), Decimal("76690"))
    resolved = final[("r-project", "m2")]
    assert (resolved.state, resolved.protected, resolved.amount, resolved.net) == (
        "resolved", True, Decimal("30000"), Decimal("23637"))
    assert final[("r-tasks", "s1")].amount == Decimal("1000")  # auto-approved by the timer


def test_cancelled_rejected_and_unawarded_claim_nothing(final: dict) -> None:
    for key, state in [(("r-usd", "m2"), "cancelled"), (("r-task", "s2"), "rejected"),
                       (("r-few", "e1"), "entered"), (("r-split", "e1"), "entered")]:
        row = final[key]
        assert (row.state, row.amount, row.protected) == (state, Decimal(0), False), key


def test_overdue_only_past_the_deadline_and_unpaid(final: dict) -> None:
    row = final[("r-project", "m1")]
    assert row.due_by is not None
    assert not is_overdue(row, paid_out=False, now=row.due_by)
    assert is_overdue(row, paid_out=False, now=row.due_by + timedelta(seconds=1))
    assert not is_overdue(row, paid_out=True, now=row.due_by + timedelta(days=1))
    void = final[("r-task", "s2")]
    assert not is_overdue(void, paid_out=False, now=void.due_by + timedelta(days=1))
