"""`settlement demo`: run the sample marketplace day through the application and
print every escrow and the trial balance computed from the recorded postings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TextIO

from settlement.application.app import SettlementApplication
from settlement.core.commands import Command, timestamp
from settlement.core.money import Money
from settlement.escrow.events import EscrowEvent, Opened
from settlement.ledger.balances import trial_balances
from settlement.ledger.posting import Posting
from settlement.service.scenario import marketplace_day

READ_BATCH_EVENTS = 500


def recorded_postings(app: SettlementApplication) -> Iterator[Posting]:
    """Every posting of every stored event, in notification order."""
    start = 1
    while True:
        notifications = app.notification_log.select(start=start, limit=READ_BATCH_EVENTS)
        for notification in notifications:
            event = app.mapper.to_domain_event(notification)
            if isinstance(event, (EscrowEvent, Opened)):
                yield from event.postings
        if len(notifications) < READ_BATCH_EVENTS:
            return
        start = notifications[-1].id + 1


def run_demo(app: SettlementApplication, out: TextIO, prefix: str | None = None) -> bool:
    """Apply the scenario, print states and the trial balance; True if it balances."""
    prefix = prefix or datetime.now(UTC).strftime("demo%Y%m%d%H%M%S")
    events = marketplace_day(datetime(2026, 11, 26, 9, tzinfo=UTC), prefix)
    commands = [Command.create(e["id"], e["type"], timestamp(e, "time"), e["data"]) for e in events]
    for outcome in app.handle_batch(commands):
        if outcome.error:
            out.write(f"rejected {outcome.command.command_id}: {outcome.error}\n")
    for job_id in sorted({c.job_id for c in commands}):
        _print_escrow(app, job_id, out)
    balanced = True
    for currency, tb in trial_balances(recorded_postings(app)).items():
        out.write(f"\ntrial balance {currency} (all recorded events)\n")
        for line in tb.accounts:
            out.write(f"  {line.account:<48} {line.debits:>14} {line.credits:>14}\n")
        out.write(f"  {'total':<48} {tb.total_debits:>14} {tb.total_credits:>14}  "
                  f"{'balanced' if tb.balanced else 'UNBALANCED'}\n")
        balanced = balanced and tb.balanced
    return balanced


def _print_escrow(app: SettlementApplication, job_id: str, out: TextIO) -> None:
    escrow = app.escrow(job_id)
    assert escrow is not None
    amount = _amount
    out.write(f"\n{job_id} ({escrow.format}, {escrow.state}) funded {amount(escrow.funded)} "
              f"held {amount(escrow.held)} released {amount(escrow.released)} "
              f"refunded {amount(escrow.refunded)} fees {amount(escrow.fees)} "
              f"withheld {amount(escrow.withheld)}\n")
    for item in escrow.items.values():
        out.write(f"  {item.kind:<10} {item.item_id:<6} {item.state:<10} "
                  f"{amount(item.amount):>14} {item.worker_id or ''}\n")


def _amount(value: Money) -> str:
    return f"{value.amount} {value.currency.code}"
