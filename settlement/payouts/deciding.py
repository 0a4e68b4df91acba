"""Deciding a run party by party and storing what it decided (SPEC §11): a payout
or a hold per party and currency (`decide`), stored a batch of parties per
transaction, one batch behind the deciding, and decided again one by one after a
conflict with another run.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, Recording

from settlement.core.errors import SettlementError
from settlement.infra import failpoints
from settlement.ledger.payout_rules import PartyType
from settlement.payouts.aggregate import PartyPayouts
from settlement.payouts.decide import Pay, decide
from settlement.payouts.events import PayoutInitiated
from settlement.payouts.export import PayoutLine
from settlement.payouts.ids import party_payouts_id, payout_id_of
from settlement.payouts.policy import PayoutPolicy
from settlement.payouts.report import PayoutRunReport
from settlement.payouts.runs import PayoutRun
from settlement.payouts.scan import LedgerScan
from settlement.payouts.schedule import RunWindow

SAVE_ATTEMPTS_MAX = 5  # per party; each failed attempt means another run stored first
AFTER_PARTY_SAVED = "payouts.after_party_saved"


@dataclass
class RunState:
    """What one attempt of a run works with."""

    app: Application[UUID]
    scan: LedgerScan
    run: PayoutRun
    window: RunWindow
    policy: PayoutPolicy
    report: PayoutRunReport
    turned: Callable[[], None]


def decide_all(this: RunState, batch_parties: int) -> None:
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


def _store_behind(this: RunState, writer: ThreadPoolExecutor, in_flight: _InFlight | None,
                  parties: list[PartyPayouts]) -> _InFlight:
    """Settle the batch in flight, then start storing `parties` in one transaction."""
    _settle(this, in_flight)
    lines = [_new_lines(party) for party in parties]  # storing collects the pending events
    return writer.submit(_store, this.app, parties), parties, lines


def _settle(this: RunState, in_flight: _InFlight | None) -> None:
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


def _pay(this: RunState, party_type: PartyType, party_id: str) -> None:
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


def _decide(this: RunState, party_type: PartyType, party_id: str) -> PartyPayouts | None:
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


def line_of(party: PartyPayouts, payout_id: str) -> PayoutLine:
    payout = party.payouts[payout_id]
    return PayoutLine(payout_id, party.party_type, party.party_id, payout.account, payout.amount)


def _new_lines(party: PartyPayouts) -> list[PayoutLine]:
    """The payouts among the party's pending events."""
    return [line_of(party, e.payout_id) for e in party.pending_events
            if isinstance(e, PayoutInitiated)]
