"""Event bookkeeping reads movements from the fields annotated to hold them."""

from __future__ import annotations

from datetime import UTC, datetime

from settlement.application import handlers
from settlement.core.commands import Command
from settlement.core.fees import DEFAULT_FEE_PLANS, load_fee_plans
from settlement.escrow import Escrow, events
from settlement.service.scenario import marketplace_day


def test_annotated_movement_fields_find_every_movement_of_the_sample_day() -> None:
    plans = load_fee_plans(DEFAULT_FEE_PLANS)
    escrows: dict[str, Escrow] = {}
    seen = 0
    for e in marketplace_day(datetime(2026, 11, 26, 9, tzinfo=UTC)):
        cmd = Command.create(e["id"], e["type"], datetime.fromisoformat(e["time"]), e["data"])
        escrows[cmd.job_id] = handlers.apply(escrows.get(cmd.job_id), cmd, plans)
        for event in escrows[cmd.job_id].collect_events():
            event_class: type = type(event)
            by_annotation = events.movements_in(
                getattr(event, name) for name in events.movement_fields(event_class))
            assert by_annotation == events.movements_of(vars(event))
            seen += len(by_annotation)
    assert seen >= 10  # fundings, releases (an award of two), refunds
