"""Timer passes (SPEC §2 timers, §9 `settlement timers run --now T`): every
automatic action due at `now` (auto-accept, auto-approve, the award deadline),
applied as escrow events.

Which escrows may have a timer is read from the event store (the authority):
`TimerScan` follows the notification log and keeps the jobs that may still act
on their own (`due_timers` at the end of time is not empty) with the time their
next timer comes due; a pass reads as stored only the jobs with a new event or a
timer due at `now`, applies what is due and saves it. The actions have
deterministic causation ids and change the state they were due on, so a repeated
pass does nothing. A save that loses to another writer (the input consumer)
reads the escrow again and decides again. The periodic loop inside `settlement
run` keeps one scan and reads on from where the last pass stopped; a pass that
fails because PostgreSQL is away is run again once it is back (the outage is
logged once, `settlement.infra.outage`), and each completed pass is progress for
the process's `Liveness` (heartbeat and watchdog).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from eventsourcing.application import project_aggregate
from eventsourcing.persistence import IntegrityError

from settlement.application.app import SettlementApplication
from settlement.core.errors import InvalidInput, SettlementError
from settlement.core.months import Month
from settlement.escrow import Escrow, escrow_id
from settlement.escrow.events import EscrowEvent, Opened
from settlement.infra import pool
from settlement.infra.liveness import Liveness
from settlement.infra.logging import get_logger
from settlement.infra.outage import Outages, away
from settlement.invoices.issuer import Issuer
from settlement.invoices.monthly import invoice_pass
from settlement.payouts.closing import closing_pass
from settlement.payouts.policy import PayoutPolicy

LOG_PAGE_EVENTS = 1_000
SAVE_ATTEMPTS_MAX = 5
END_OF_TIME = datetime.max.replace(tzinfo=UTC)


@dataclass
class TimerPassReport:
    now: datetime
    jobs_checked: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    conflicts: int = 0
    failed: list[str] = field(default_factory=list)

    @property
    def applied(self) -> int:
        return sum(self.actions.values())

    def summary(self) -> dict[str, Any]:
        return {"now": self.now.isoformat(), "jobs_checked": self.jobs_checked,
                "applied": self.applied, "actions": dict(sorted(self.actions.items())),
                "conflicts": self.conflicts, "failed": self.failed}


class TimerScan:
    """The jobs that may still have a timer, read from the log up to `position`:
    job id → when its next timer is due (None: it has events not looked at yet)."""

    def __init__(self) -> None:
        self.position = 0
        self.jobs: dict[str, datetime | None] = {}

    def advance(self, app: SettlementApplication, turned: Callable[[], None] = lambda: None) -> int:
        end = app.recorder.max_notification_id() or 0
        read = 0
        while self.position < end:
            turned()  # a long history is read page by page: the watchdog sees it move
            page = app.recorder.select_notifications(self.position + 1, LOG_PAGE_EVENTS, stop=end)
            for notification in page:
                event = app.mapper.to_domain_event(notification)
                if isinstance(event, EscrowEvent | Opened):
                    self.jobs[event.job_id] = None
                self.position = notification.id
            read += len(page)
            if not page:
                self.position = end
        return read


def load_escrow(app: SettlementApplication, job_id: str) -> Escrow | None:
    """The escrow as stored now (never a cached copy)."""
    escrow = project_aggregate(None, app.repository.event_store.get(escrow_id(job_id)))
    return escrow if isinstance(escrow, Escrow) else None


def timer_pass(app: SettlementApplication, now: datetime, scan: TimerScan | None = None,
               turned: Callable[[], None] = lambda: None) -> TimerPassReport:
    """Apply every timer due at `now` (`scan`: the loop's scan, read on; `turned`
    is called as the pass goes on)."""
    if now.tzinfo is None:
        raise InvalidInput("now must carry a timezone", "time_format")
    scan = scan if scan is not None else TimerScan()
    scan.advance(app, turned)
    report = TimerPassReport(now)
    for job_id, due in sorted(scan.jobs.items()):
        if due is not None and due > now:
            continue
        turned()
        report.jobs_checked += 1
        next_due = _run_job(app, job_id, now, report)
        if next_due is None:
            del scan.jobs[job_id]  # nothing can ever be due again, unless a new event
        else:
            scan.jobs[job_id] = next_due
    return report


def _run_job(app: SettlementApplication, job_id: str, now: datetime,
             report: TimerPassReport) -> datetime | None:
    """Apply the job's due timers; when its next timer is due (None: never)."""
    for _ in range(SAVE_ATTEMPTS_MAX):
        escrow = load_escrow(app, job_id)
        if escrow is None:
            return None
        try:
            done = escrow.run_timers(now)
        except SettlementError as error:  # a timer the domain refuses: report, keep going
            report.failed.append(f"{job_id}: {error}")
            return now
        if done:
            try:
                app.save(escrow)
            except IntegrityError:
                report.conflicts += 1
                continue
            report.actions.update(action.action for action in done)
        return min((action.due_at for action in escrow.due_timers(END_OF_TIME)), default=None)
    report.failed.append(f"{job_id}: still conflicting after {SAVE_ATTEMPTS_MAX} attempts")
    return now


def run_timers_cli(app: SettlementApplication, now: datetime, out: TextIO = sys.stdout) -> int:
    """`settlement timers run --now T`: one pass, a JSON summary line; exit 1 if a
    job's timers could not be applied."""
    report = timer_pass(app, now)
    out.write(json.dumps(report.summary()) + "\n")
    return 1 if report.failed else 0


async def timer_loop(app: SettlementApplication, stop: asyncio.Event, interval_s: float,
                     clock: Any = None, liveness: Liveness | None = None,
                     closings: PayoutPolicy | None = None,
                     invoices: Issuer | None = None) -> int:
    """A pass every `interval_s` at the wall clock's `now` until `stop` is set;
    returns how many actions were applied. The clock is read here, at the edge:
    the domain only ever sees the `now` it is given. With `closings`, each pass
    also runs the payout closing whose day has ended, once (SPEC §11); with
    `invoices` (the platform as issuer), it issues the month that has ended (SPEC
    §12), once per process (issuing is idempotent)."""
    log = get_logger(component="timers")
    liveness = liveness or Liveness.off()
    outages = Outages(log, "timers", liveness.waiting)
    clock = clock or (lambda: datetime.now(UTC))
    scan = TimerScan()
    invoiced: set[Month] = set()
    applied = 0
    log.info("timers.started", interval_s=interval_s)
    while not stop.is_set():
        try:
            report = await asyncio.to_thread(timer_pass, app, now := clock(), scan, liveness.turned)
            if closings is not None:
                closed = await asyncio.to_thread(closing_pass, app, now, closings,
                                                 liveness.turned)
                if closed is not None:
                    log.info("payouts.closing", **closed.summary())
            if invoices is not None:
                issued = await asyncio.to_thread(invoice_pass, app, now, invoices, invoiced,
                                                 liveness.turned)
                if issued is not None:
                    log.info("invoices.issued", **issued.summary())
        except Exception as error:
            dependency = away(error)
            if dependency is None:
                raise
            if not await outages.wait_out(dependency, error,
                                          lambda: asyncio.to_thread(pool.check, app), stop):
                break
            continue  # the pass that failed is due now
        liveness.progressed()
        applied += report.applied
        if report.applied or report.failed or report.conflicts:
            log.info("timers.pass", **report.summary())
        try:
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
        except TimeoutError:
            pass
    log.info("timers.stopped", applied=applied)
    return applied
