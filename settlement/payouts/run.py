"""One payout run (SPEC §9 `settlement payouts run --now T`): one payout per party
and currency with a positive payable or refundable balance, and the batch as CSV
for the bank.

A released amount is never paid twice:
- balances come from the event store up to a position P, payouts included, and
  each party's payouts are stored on top of the stream version seen at P (a
  concurrent run makes one of the two saves fail; the loser reads on and
  decides again);
- payout ids are deterministic per run, party and currency, so repeating a run
  (or finishing one that crashed) skips what it already made and exports the
  whole batch again, earlier attempts' payouts included.
Each party is stored in its own transaction: one failure does not block others.
Kafka needs nothing here: the relay publishes stored `PayoutInitiated` events
as `settlement.payout_initiated`.
"""

from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from settlement.core.errors import InvalidInput, SettlementError
from settlement.infra import failpoints
from settlement.ledger.payout_rules import PartyType
from settlement.payouts.aggregate import PartyPayouts
from settlement.payouts.events import PayoutInitiated
from settlement.payouts.export import PayoutLine, export_csv
from settlement.payouts.ids import checked_run_id, party_payouts_id, payout_id_of, run_id_of
from settlement.payouts.scan import LedgerScan

SAVE_ATTEMPTS_MAX = 5  # per party; each failed attempt means another run stored first
AFTER_PARTY_SAVED = "payouts.after_party_saved"


@dataclass
class PayoutRunReport:
    run_id: str
    # Where the run first read the log to; a party decided again after a conflict
    # records the later position in its own `PayoutInitiated`.
    as_of_position: int
    created: list[PayoutLine] = field(default_factory=list)
    existing: list[PayoutLine] = field(default_factory=list)  # by earlier attempts of the run
    failed: list[str] = field(default_factory=list)  # "<party_type>:<party_id>: <error>"
    overdrawn: list[str] = field(default_factory=list)
    conflicts: int = 0

    @property
    def batch(self) -> list[PayoutLine]:
        """Every payout of the run, for the bank, by party and currency."""
        return sorted(self.created + self.existing, key=lambda line: (
            line.party_type, line.party_id, line.amount.currency.code))

    def totals(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        for line in self.batch:
            currency = line.amount.currency.code
            totals[currency] = totals.get(currency, Decimal(0)) + line.amount.amount
        return dict(sorted(totals.items()))

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "as_of_position": self.as_of_position,
                "created": len(self.created), "skipped": len(self.existing),
                "totals": {c: str(t) for c, t in self.totals().items()},
                "conflicts": self.conflicts, "failed": self.failed, "overdrawn": self.overdrawn}


def payout_run(app: Application[UUID], now: datetime, run_id: str | None = None, *,
               scan: LedgerScan | None = None) -> PayoutRunReport:
    """Pay every party its positive balance as of the log's end (`scan`: the scan
    to read on from; tests pass one that lets a rival run in after its read)."""
    if now.tzinfo is None:
        raise InvalidInput("now must carry a timezone", "time_format")
    run_id = checked_run_id(run_id or run_id_of(now))
    scan = scan if scan is not None else LedgerScan()
    scan.advance(app)
    report = PayoutRunReport(run_id, scan.position)
    for party_type, party_id in scan.payable_parties():
        _pay(app, scan, party_type, party_id, now, report)
    made = {line.payout_id for line in report.created}
    report.existing = [line for line in _lines_of_run(scan, run_id) if line.payout_id not in made]
    report.overdrawn = scan.overdrawn()
    return report


def _pay(app: Application[UUID], scan: LedgerScan, party_type: PartyType, party_id: str,
         now: datetime, report: PayoutRunReport) -> None:
    for _ in range(SAVE_ATTEMPTS_MAX):
        try:
            party = _decide(scan, party_type, party_id, report.run_id, now)
        except SettlementError as error:
            report.failed.append(f"{party_type}:{party_id}: {error}")
            return
        lines = [_line(party, e.payout_id) for e in party.pending_events
                 if isinstance(e, PayoutInitiated)]
        if not lines:
            return
        try:
            app.save(party)
        except IntegrityError:
            report.conflicts += 1
            scan.advance(app)
            continue
        report.created += lines
        failpoints.hit(AFTER_PARTY_SAVED)
        return
    report.failed.append(f"{party_type}:{party_id}: still conflicting after "
                         f"{SAVE_ATTEMPTS_MAX} attempts")


def _decide(scan: LedgerScan, party_type: PartyType, party_id: str, run_id: str,
            now: datetime) -> PartyPayouts:
    """The party's stream as of the scan, with a new payout for each currency
    with a positive balance that this run has not paid yet."""
    stored = scan.parties.get(party_payouts_id(party_type, party_id))
    # A copy: if the save fails, the scan's stream must not hold the refused payouts.
    party = (copy.deepcopy(stored) if stored is not None
             else PartyPayouts.open(party_type, party_id, run_id=run_id, at=now))
    for amount in scan.payable(party_type, party_id):
        if payout_id_of(run_id, party_type, party_id, amount.currency.code) not in party.payouts:
            party.initiate(run_id, amount, scan.position, now,
                           scan.open_items(party_type, party_id, amount.currency.code))
    return party


def _line(party: PartyPayouts, payout_id: str) -> PayoutLine:
    payout = party.payouts[payout_id]
    return PayoutLine(payout_id, party.party_type, party.party_id, payout.account, payout.amount)


def _lines_of_run(scan: LedgerScan, run_id: str) -> list[PayoutLine]:
    return [_line(party, payout.payout_id) for party in scan.parties.values()
            for payout in party.payouts_of_run(run_id)]


def run_payouts_cli(app: Application[UUID], now: datetime, csv_path: Path | None,
                    run_id: str | None = None, out: TextIO = sys.stdout) -> int:
    """`settlement payouts run`: run, export the batch, print a JSON summary line.
    Exit status 1 if a party could not be paid or an account is overdrawn."""
    report = payout_run(app, now, run_id)
    if csv_path is not None:
        export_csv(report.batch, csv_path)
    out.write(json.dumps(report.summary()) + "\n")
    return 1 if report.failed or report.overdrawn else 0

