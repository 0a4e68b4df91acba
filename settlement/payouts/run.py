"""One payout run: a closing (SPEC §11 `settlement payouts run --closing D`) or a
`--now` run (SPEC §9). One payout per party and currency with something payable
and nothing holding it, a hold (or carry-over) recorded for every other, and,
for JPY, the 総合振込 file; then the run's summary.

A released amount is never paid twice, and a run's file never changes:
- the run starts by storing its window and snapshot position P (`runs`); every
  attempt and every process finishing it decides on that snapshot, by the
  policy it started with;
- each party's payouts are stored on top of the stream version the scan saw (a
  concurrent run makes one of two saves fail; the loser reads on and decides
  again), parties `batch_parties` to a transaction, one by one after a conflict;
- payout ids are deterministic per run, party and currency, so repeating a run
  (or finishing one that crashed) skips what it already made;
- the file is built from the run's payouts as stored, and the completion (the
  summary, the file's SHA-256 and the file itself) is stored once: a completed
  run is a no-op that reports it and exports the same batch and file again.
Kafka needs nothing here: the relay publishes the stored events.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from uuid import UUID

from eventsourcing.application import Application, project_aggregate
from eventsourcing.persistence import IntegrityError

from settlement.core.errors import SettlementError
from settlement.parties.holds import holder_name
from settlement.payouts.bankfile import RunPayout, zengin_file
from settlement.payouts.deciding import AFTER_PARTY_SAVED, RunState, decide_all, line_of
from settlement.payouts.policy import PayoutPolicy, load_policy
from settlement.payouts.report import HeldLine, PayoutRunReport
from settlement.payouts.runs import PayoutRun, run_stream_id
from settlement.payouts.scan import LedgerScan
from settlement.payouts.schedule import RunWindow, closing_window, now_window
from settlement.store.files import PayoutFile

BATCH_PARTIES = 1_000  # parties stored per transaction
__all__ = ["AFTER_PARTY_SAVED", "BATCH_PARTIES", "load_run", "payout_run"]


def payout_run(app: Application[UUID], now: datetime, run_id: str | None = None, *,
               closing: date | None = None, policy: PayoutPolicy | None = None,
               scan: LedgerScan | None = None, batch_parties: int = BATCH_PARTIES,
               turned: Callable[[], None] = lambda: None) -> PayoutRunReport:
    """Run (or finish, or repeat) closing `closing`, else the `--now` run `run_id`
    (`scan`: tests pass one that lets a rival run in after its read; `turned`: told
    after each page read and each batch stored, so a watchdog sees the run move)."""
    if not 1 <= batch_parties <= BATCH_PARTIES * 10:
        raise ValueError(f"batch_parties must be 1 to {BATCH_PARTIES * 10}")
    window = closing_window(closing, now) if closing is not None else now_window(now, run_id)
    run = _started(app, window, policy if policy is not None else load_policy())
    try:
        with _no_cyclic_gc():
            return _run(app, run, scan, batch_parties, turned)
    finally:
        holder_name.cache_clear()


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """No cyclic garbage collection during a run: it holds a view of every party and
    item, which every full collection walked, so a closing of 100,000 parties took
    three times as long per party as one of 10,000 (measured). What a run makes
    is freed by reference counting; a cycle left waits for the next collection."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


no_cyclic_gc = _no_cyclic_gc  # the invoices' issue holds as many views (settlement.invoices)


def _run(app: Application[UUID], run: PayoutRun, scan: LedgerScan | None,
         batch_parties: int, turned: Callable[[], None]) -> PayoutRunReport:
    scan = scan if scan is not None else LedgerScan()
    scan.frame(run.as_of_position, run.cutoff)
    scan.advance(app, turned)
    window = run.window(run.created_on)
    this = RunState(app, scan, run, window, run.policy,
                PayoutRunReport(run.run_id, run.as_of_position, window), turned)
    if run.summary is None:
        decide_all(this, batch_parties)
        scan.advance(app)  # what this and any other attempt stored for the run
    filed = _collect(this)
    this.report.repeated = run.summary is not None
    if run.summary is None and filed:
        _complete(this)
    this.report.overdrawn = scan.overdrawn()
    return this.report


def load_run(app: Application[UUID], run_id: str) -> PayoutRun | None:
    """The run as stored now (None if it never started)."""
    run = project_aggregate(None, app.repository.event_store.get(run_stream_id(run_id)))
    return run if isinstance(run, PayoutRun) else None


def _started(app: Application[UUID], window: RunWindow, policy: PayoutPolicy) -> PayoutRun:
    """The run's stream: as stored, else started now on the log's current end."""
    stored = load_run(app, window.run_id)
    if stored is not None:
        return stored
    run = PayoutRun.start(window, app.recorder.max_notification_id() or 0, policy)
    try:
        app.save(run)
    except IntegrityError:  # another process started it first: take its snapshot
        stored = load_run(app, window.run_id)
        assert stored is not None
        return stored
    return run


def _collect(this: RunState) -> bool:
    """Every payout and hold of the run as stored, and its file; False if the file
    cannot be made, or differs from the one the completed run recorded."""
    report, run_id = this.report, this.window.run_id
    made = {line.payout_id for line in report.created}
    for party in this.scan.parties.values():
        for payout in party.payouts_of_run(run_id):
            report.payouts.append(RunPayout(party.party_type, party.party_id, payout))
            if payout.payout_id not in made:
                report.existing.append(line_of(party, payout.payout_id))
        report.held += [HeldLine(party.party_type, party.party_id, hold.amount, hold.reason,
                                 hold.due_by) for hold in party.holds_of_run(run_id)]
    report.payouts.sort(key=lambda p: (p.party_type, p.party_id, p.payout.payout_id))
    report.held.sort(key=lambda h: (h.party_type, h.party_id, h.amount.currency.code))
    try:
        found = zengin_file(this.policy.requester, this.window.payment_day, report.payouts)
    except SettlementError as error:
        report.failed.append(f"run {run_id}: {error}")
        return False
    report.files = [found] if found is not None else []
    recorded = [f["sha256"] for f in (this.run.summary or {}).get("files", [])]
    if this.run.summary is not None and recorded != [f.sha256 for f in report.files]:
        report.failed.append(f"run {run_id}: its payouts no longer make the file it recorded")
        return False
    return True


def _complete(this: RunState) -> None:
    """Store the summary and the file with it, once."""
    run, report = this.run, this.report
    run.complete(report.run_summary(), this.window.now)
    files = [PayoutFile(run.run_id, f.currency, f.sha256, f.content) for f in report.files]
    try:
        this.app.save(run, files=files)
    except IntegrityError:  # another process completed it first, with the same file
        stored = load_run(this.app, run.run_id)
        assert stored is not None and stored.summary is not None
        run.summary = stored.summary
