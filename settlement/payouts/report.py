"""What a payout run reports: on stdout as one JSON line, and (its summary) in
the run's `PayoutRunCompleted` event."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from settlement.core.money import Money
from settlement.payouts.bankfile import BankFile, RunPayout
from settlement.payouts.decide import BELOW_MINIMUM
from settlement.payouts.export import PayoutLine
from settlement.payouts.schedule import RunWindow


@dataclass(frozen=True)
class HeldLine:
    """A party the run did not pay in a currency: held, or carried over."""

    party_type: str
    party_id: str
    amount: Money
    reason: str
    due_by: datetime | None

    @property
    def carried_over(self) -> bool:
        return self.reason == BELOW_MINIMUM


def _sums(amounts: list[Money]) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {}
    for money in amounts:
        code = money.currency.code
        totals[code] = totals.get(code, Decimal(0)) + money.amount
    return dict(sorted(totals.items()))


@dataclass
class PayoutRunReport:
    run_id: str
    # The snapshot the run decides on: every event stored when it started. A party
    # decided again after a conflict records a later position in its payout.
    as_of_position: int
    window: RunWindow | None = None
    created: list[PayoutLine] = field(default_factory=list)
    existing: list[PayoutLine] = field(default_factory=list)  # by earlier attempts of the run
    payouts: list[RunPayout] = field(default_factory=list)  # every payout of the run
    held: list[HeldLine] = field(default_factory=list)  # every hold of the run
    failed: list[str] = field(default_factory=list)  # "<party_type>:<party_id>: <error>"
    overdrawn: list[str] = field(default_factory=list)
    conflicts: int = 0
    files: list[BankFile] = field(default_factory=list)
    repeated: bool = False  # the run had completed before: nothing was decided

    @property
    def batch(self) -> list[PayoutLine]:
        """Every payout of the run, for the bank, by party and currency."""
        return sorted(self.created + self.existing, key=lambda line: (
            line.party_type, line.party_id, line.amount.currency.code))

    def totals(self) -> dict[str, Decimal]:
        return _sums([line.amount for line in self.batch])

    def run_summary(self) -> dict[str, Any]:
        """What the run's completion records: counts and totals per currency of
        payouts, fees, amounts sent, holds and carry-overs, and its files."""
        held = [h for h in self.held if not h.carried_over]
        carried = [h for h in self.held if h.carried_over]
        payouts = [p.payout for p in self.payouts]
        fees = [p.transfer_fee for p in payouts if p.transfer_fee is not None]
        totals: dict[str, dict[str, str]] = {}
        for name, amounts in (("paid", [p.amount for p in payouts]), ("fees", fees),
                              ("sent", [p.sent for p in payouts]),
                              ("held", [h.amount for h in held]),
                              ("carried_over", [h.amount for h in carried])):
            for currency, total in _sums(amounts).items():
                totals.setdefault(currency, {})[name] = str(total)
        return {"payouts": len(payouts), "held": len(held), "carried_over": len(carried),
                "failed": len(self.failed),
                "holds": dict(sorted(Counter(h.reason for h in held).items())),
                "totals": dict(sorted(totals.items())),
                "files": [f.summary() for f in self.files]}

    def summary(self) -> dict[str, Any]:
        window = self.window
        return {"run_id": self.run_id, "as_of_position": self.as_of_position,
                "closing": None if window is None or window.closing is None
                else window.closing.isoformat(),
                "payment_day": None if window is None else window.payment_day.isoformat(),
                "created": len(self.created), "skipped": len(self.existing),
                "repeated": self.repeated,
                "totals": {c: str(t) for c, t in self.totals().items()},
                "run": self.run_summary(),
                "conflicts": self.conflicts, "failed": self.failed, "overdrawn": self.overdrawn}
