"""The application on the real (embedded) PostgreSQL: persistence, idempotency,
concurrency and atomicity of a batch."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from settlement.application.app import (
    APPLIED,
    DUPLICATE,
    REJECTED,
    ConcurrentModification,
    SettlementApplication,
)
from settlement.core.commands import Command
from settlement.core.money import Money
from settlement.ledger.balances import trial_balances
from settlement.service.day import recorded_postings, run_demo
from settlement.store.recorder import PositionUpdate

T0 = datetime(2026, 11, 26, 10, tzinfo=UTC)


def jpy(amount: int) -> dict[str, str]:
    return {"amount": str(amount), "currency": "JPY"}


def cmd(event_id: str, type_: str, **data: Any) -> Command:
    return Command.create(event_id, type_, T0, {"job_id": "job-42", **data})


CONTRACT = cmd("mkt-1", "project.contracted", client_id="c1", worker_id="w1", fee_plan="tiered",
               milestones=[{"milestone_id": "m1", "amount": jpy(11000)},
                           {"milestone_id": "m2", "amount": jpy(20000)}],
               terms={"scope": "logo"})
FUND_M1 = cmd("mkt-2", "project.milestone_funded", milestone_id="m1", amount=jpy(11000),
              payment_ref="pay-1")
FUND_M2 = cmd("mkt-3", "project.milestone_funded", milestone_id="m2", amount=jpy(20000),
              payment_ref="pay-2")


@pytest.fixture
def app(es_env: dict[str, str]) -> Any:
    application = SettlementApplication(es_env)
    yield application
    application.close()


def last_position(app: SettlementApplication) -> int:
    return app.recorder.max_notification_id() or 0


def test_saved_escrow_reloads_equal_in_a_new_process_view(app: SettlementApplication,
                                                          es_env: dict[str, str]) -> None:
    outcomes = app.handle_batch([CONTRACT, FUND_M1,
                                 cmd("mkt-4", "project.milestone_delivered", milestone_id="m1"),
                                 cmd("mkt-5", "project.milestone_accepted", milestone_id="m1")])
    assert [o.status for o in outcomes] == [APPLIED] * 4
    live = app.escrow("job-42")
    other = SettlementApplication(es_env)
    try:
        reloaded = other.escrow("job-42")
        assert reloaded is not None and live is not None
        assert reloaded.state_digest() == live.state_digest()
        assert reloaded.items["m1"].state == "released"
        assert reloaded.released_to["w1"].amount == 11000
        assert reloaded.terms == {"scope": "logo"}
    finally:
        other.close()


def test_duplicate_command_is_a_no_op(app: SettlementApplication) -> None:
    app.handle_batch([CONTRACT, FUND_M1])
    before = last_position(app)
    again = app.handle_batch([CONTRACT, FUND_M1])
    assert [o.status for o in again] == [DUPLICATE, DUPLICATE]
    assert last_position(app) == before
    assert app.escrow("job-42").funded.amount == 11000  # type: ignore[union-attr]


def test_duplicate_within_one_batch_is_a_no_op(app: SettlementApplication) -> None:
    outcomes = app.handle_batch([CONTRACT, FUND_M1, FUND_M1])
    assert [o.status for o in outcomes] == [APPLIED, APPLIED, DUPLICATE]
    assert app.escrow("job-42").funded.amount == 11000  # type: ignore[union-attr]


def test_same_id_with_other_content_is_a_conflict(app: SettlementApplication) -> None:
    app.handle_batch([CONTRACT, FUND_M1])
    before = last_position(app)
    altered = Command.create("mkt-2", "project.milestone_funded", T0,
                             {"job_id": "job-42", "milestone_id": "m2", "amount": jpy(20000),
                              "payment_ref": "pay-2"})
    [outcome] = app.handle_batch([altered])
    assert outcome.status == REJECTED and outcome.error is not None
    assert outcome.error.code == "conflict"
    assert last_position(app) == before
    assert app.escrow("job-42").items["m2"].state == "contracted"  # type: ignore[union-attr]


def test_rejected_command_is_recorded_and_its_repeat_is_a_no_op(app: SettlementApplication) -> None:
    app.handle_batch([CONTRACT])
    accept = cmd("mkt-9", "project.milestone_accepted", milestone_id="m1")
    [first] = app.handle_batch([accept])
    assert first.status == REJECTED and first.error
    assert first.error.code == "milestone_not_delivered"
    [second] = app.handle_batch([accept])
    assert second.status == DUPLICATE


def test_concurrent_modification_of_one_escrow_gives_exactly_one_conflict(
    app: SettlementApplication, es_env: dict[str, str]
) -> None:
    app.handle_batch([CONTRACT])
    other = SettlementApplication(es_env)
    try:
        mine, theirs = app.escrow("job-42"), other.escrow("job-42")
        assert mine is not None and theirs is not None
        mine.fund_milestone("m1", FUND_M1_MONEY, "pay-1", causation_id="a", at=T0)
        theirs.fund_milestone("m2", FUND_M2_MONEY, "pay-2", causation_id="b", at=T0)
        results = []
        for application, escrow in ((app, mine), (other, theirs)):
            try:
                application.save(escrow)
                results.append("saved")
            except IntegrityError:
                results.append("conflict")
        assert results == ["saved", "conflict"]
        reloaded = SettlementApplication(es_env).escrow("job-42")
        assert reloaded is not None and reloaded.funded.amount == 11000
    finally:
        other.close()


def test_stale_cached_escrow_conflicts_then_the_retry_applies(es_env: dict[str, str]) -> None:
    # Without fast-forwarding, the second process trusts its cached (stale) escrow.
    stale = SettlementApplication({**es_env, "AGGREGATE_CACHE_FASTFORWARD": "n"})
    fresh = SettlementApplication(es_env)
    try:
        stale.handle_batch([CONTRACT])
        stale.escrow("job-42")
        assert fresh.handle(FUND_M1).status == APPLIED
        with pytest.raises(ConcurrentModification):
            stale.handle(FUND_M2)
        assert stale.handle(FUND_M2).status == APPLIED  # evicted, reloaded, applied
        assert fresh.escrow("job-42").funded.amount == 31000  # type: ignore[union-attr]
    finally:
        stale.close()
        fresh.close()


def test_batch_is_atomic_with_its_consumer_positions(app: SettlementApplication) -> None:
    first = PositionUpdate("ingest", "jobs", 0, start=0, end=2)
    app.handle_batch([CONTRACT, FUND_M1], positions=[first])
    before = last_position(app)
    stale = PositionUpdate("ingest", "jobs", 0, start=0, end=3)  # another consumer moved on
    with pytest.raises(ConcurrentModification):
        app.handle_batch([FUND_M2], positions=[stale])
    assert last_position(app) == before
    assert app.store.select_commands(["mkt-3"]) == {}
    assert app.store.select_positions("ingest") == {("jobs", 0): 2}
    assert app.escrow("job-42").items["m2"].state == "contracted"  # type: ignore[union-attr]


def test_demo_day_balances_from_recorded_postings(app: SettlementApplication) -> None:
    out = io.StringIO()
    assert run_demo(app, out, prefix="it")
    text = out.getvalue()
    assert "it-project (project" in text and "it-contest (competition, awarded)" in text
    assert "rejected it-" not in text
    [jpy_tb] = trial_balances(recorded_postings(app)).values()
    assert jpy_tb.balanced and jpy_tb.total_debits > 0


FUND_M1_MONEY = Money(Decimal(11000), "JPY")
FUND_M2_MONEY = Money(Decimal(20000), "JPY")
