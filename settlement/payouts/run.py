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

import copy
import gc
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent, project_aggregate
from eventsourcing.persistence import IntegrityError, Recording

from settlement.core.errors import SettlementError
from settlement.infra import failpoints
from settlement.ledger.payout_rules import PartyType
from settlement.parties.holds import holder_name
from settlement.payouts.aggregate import PartyPayouts
from settlement.payouts.bankfile import RunPayout, zengin_file
from settlement.payouts.decide import Pay, decide
from settlement.payouts.events import PayoutInitiated
from settlement.payouts.export import PayoutLine
from settlement.payouts.ids import party_payouts_id, payout_id_of
from settlement.payouts.policy import PayoutPolicy, load_policy
from settlement.payouts.report import HeldLine, PayoutRunReport
from settlement.payouts.runs import PayoutRun, run_stream_id
from settlement.payouts.scan import LedgerScan
from settlement.payouts.schedule import RunWindow, closing_window, now_window
from settlement.store.files import PayoutFile

SAVE_ATTEMPTS_MAX = 5  # per party; each failed attempt means another run stored first
BATCH_PARTIES = 1_000  # parties stored per transaction
AFTER_PARTY_SAVED = "payouts.after_party_saved"


@dataclass
class _Run:
    app: Application[UUID]
    scan: LedgerScan
    run: PayoutRun
    window: RunWindow
    policy: PayoutPolicy
    report: PayoutRunReport
    turned: Callable[[], None]


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
    with _rare_gc():
        return _run(app, run, scan, batch_parties, turned)


@contextmanager
def _rare_gc() -> Iterator[None]:
    """No cyclic garbage collection during a run: it holds a view of every party and
    item, which every full collection walked, so a closing of 100,000 parties took
    three times as long per party as one of 10,000 (measured). What a run makes
    is freed by reference counting; a cycle left waits for the next collection."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        holder_name.cache_clear()
        if enabled:
            gc.enable()


def _run(app: Application[UUID], run: PayoutRun, scan: LedgerScan | None,
         batch_parties: int, turned: Callable[[], None]) -> PayoutRunReport:
    scan = scan if scan is not None else LedgerScan()
    scan.frame(run.as_of_position, run.cutoff)
    scan.advance(app, turned)
    window = run.window(run.created_on)
    this = _Run(app, scan, run, window, run.policy,
                PayoutRunReport(run.run_id, run.as_of_position, window), turned)
    if run.summary is None:
        _decide_all(this, batch_parties)
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


def _decide_all(this: _Run, batch_parties: int) -> None:
    """Decide party by party; store a batch at a time, one batch behind the deciding
    (a thread stores batch N while N+1 is decided: they hold other parties)."""
    pending: list[PartyPayouts] = []
    in_flight: _InFlight | None = None
    with ThreadPoolExecutor(1, "payouts-store") as writer:
        for party_type, party_id in this.scan.payable_parties():
            try:
                party = _decide(this, party_type, party_id)
            except SettlementError as error:
                this.report.failed.append(f"{party_type}:{party_id}: {error}")
                continue
            if party is not None:
                pending.append(party)
            if len(pending) >= batch_parties:
                in_flight = _store_behind(this, writer, in_flight, pending)
                pending = []
        if pending:
            in_flight = _store_behind(this, writer, in_flight, pending)
        _settle(this, in_flight)


_InFlight = tuple["Future[list[Recording[UUID]]]", list[PartyPayouts], list[list[PayoutLine]]]


def _store_behind(this: _Run, writer: ThreadPoolExecutor, in_flight: _InFlight | None,
                  parties: list[PartyPayouts]) -> _InFlight:
    """Settle the batch in flight, then start storing `parties` in one transaction."""
    _settle(this, in_flight)
    lines = [_new_lines(party) for party in parties]  # storing collects the pending events
    return writer.submit(_store, this.app, parties), parties, lines


def _settle(this: _Run, in_flight: _InFlight | None) -> None:
    """Wait for the batch in flight; after a conflict, decide its parties again one
    by one."""
    if in_flight is None:
        return
    future, parties, lines = in_flight
    try:
        recordings = future.result()
    except IntegrityError:
        this.report.conflicts += 1
        this.scan.advance(this.app)
        for party in parties:
            _pay(this, party.party_type, party.party_id)
        return
    this.scan.take_saved(parties, recordings)
    for party_lines in lines:
        this.report.created += party_lines
        failpoints.hit(AFTER_PARTY_SAVED)
    this.turned()


def _pay(this: _Run, party_type: PartyType, party_id: str) -> None:
    for _ in range(SAVE_ATTEMPTS_MAX):
        try:
            party = _decide(this, party_type, party_id)
        except SettlementError as error:
            this.report.failed.append(f"{party_type}:{party_id}: {error}")
            return
        if party is None:
            return
        lines = _new_lines(party)
        try:
            this.scan.take_saved([party], _store(this.app, [party]))
        except IntegrityError:
            this.report.conflicts += 1
            this.scan.advance(this.app)
            continue
        this.report.created += lines
        failpoints.hit(AFTER_PARTY_SAVED)
        return
    this.report.failed.append(f"{party_type}:{party_id}: still conflicting after "
                              f"{SAVE_ATTEMPTS_MAX} attempts")


def _store(app: Application[UUID], parties: list[PartyPayouts]) -> list[Recording[UUID]]:
    """`app.save(*parties)` without its per-object protocol checks (a tenth of a
    closing, profiled): they are our own payout streams."""
    processing = ProcessingEvent[UUID]()
    processing.events = [event for party in parties for event in party.collect_events()]
    processing.aggregates = {party.id: party for party in parties}
    return app._record(processing)


def _decide(this: _Run, party_type: PartyType, party_id: str) -> PartyPayouts | None:
    """The party's stream as of the scan with what this run decides for it (a
    payout or a hold per currency it has not decided yet); None if nothing new."""
    scan, run_id, at = this.scan, this.window.run_id, this.window.now
    stored = scan.parties.get(party_payouts_id(party_type, party_id))
    # A copy: if the save fails, the scan's stream must not hold the refused events.
    party = copy.deepcopy(stored) if stored is not None else None
    for payable in scan.payables(party_type, party_id):
        currency = payable.amount.currency.code
        if party is not None and (payout_id_of(run_id, party_type, party_id, currency)
                                  in party.payouts or (run_id, currency) in party.holds):
            continue
        decision = decide(payable, scan.record_of(party_id), this.policy, this.window)
        if isinstance(decision, Pay):
            account, fee, fee_tax = decision.bank_account, decision.fee, decision.fee_tax
            if party is None:  # a new stream opens with its first payout: one event
                party = PartyPayouts.open_paying(
                    party_type, party_id, run_id=run_id, amount=payable.amount,
                    as_of_position=scan.position, at=at, items=payable.items,
                    bank_account=account, fee=fee, fee_tax=fee_tax)
            else:
                party.initiate(run_id, payable.amount, scan.position, at, payable.items,
                               bank_account=account, fee=fee, fee_tax=fee_tax)
        else:
            if party is None:
                party = PartyPayouts.open(party_type, party_id, run_id=run_id, at=at)
            party.hold(run_id, payable.amount, decision.reason, payable.due_by, at)
    return party if party is not None and party.pending_events else None


def _line(party: PartyPayouts, payout_id: str) -> PayoutLine:
    payout = party.payouts[payout_id]
    return PayoutLine(payout_id, party.party_type, party.party_id, payout.account, payout.amount)


def _new_lines(party: PartyPayouts) -> list[PayoutLine]:
    """The payouts among the party's pending events."""
    return [_line(party, e.payout_id) for e in party.pending_events
            if isinstance(e, PayoutInitiated)]


def _collect(this: _Run) -> bool:
    """Every payout and hold of the run as stored, and its file; False if the file
    cannot be made, or differs from the one the completed run recorded."""
    report, run_id = this.report, this.window.run_id
    made = {line.payout_id for line in report.created}
    for party in this.scan.parties.values():
        for payout in party.payouts_of_run(run_id):
            report.payouts.append(RunPayout(party.party_type, party.party_id, payout))
            if payout.payout_id not in made:
                report.existing.append(_line(party, payout.payout_id))
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


def _complete(this: _Run) -> None:
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
