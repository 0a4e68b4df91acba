"""The daily reconciliation report (SPEC §13), from the matching's result: per
statement day, the bank's closing balance against the ledger's
`assets:safeguarded_cash` at the end of that day (JST), the difference, the bank
lines still open, and the ledger's cash movements with no bank line that are
older than `WINDOW_BUSINESS_DAYS` business days (a funding the marketplace
reported whose money never came). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

from settlement.banking.calendar import add_business_days
from settlement.reconcile.matching import (
    WINDOW_BUSINESS_DAYS,
    BankLine,
    Expected,
    Match,
    Open,
)


class Results(Protocol):
    """What a matching decided, asked line by line (`results.StoredResults`)."""

    def match_of(self, line_id: str) -> Match | None: ...

    def open_of(self, line_id: str) -> Open | None: ...

    def holder(self, key: str) -> str | None: ...

    def known(self, key: str) -> bool: ...

    def matched_count(self) -> int: ...


@dataclass(frozen=True)
class Reconciled:
    """Everything matched at once: the lines left open (the matched ones are not
    kept: a statement has a million), the ledger's movements no line covers, the
    results to ask about the rest."""

    opened: Sequence[BankLine]  # the lines left open, in (booked, line_id) order
    unmatched: Sequence[Expected]  # the ledger's movements no line covers, by (day, key)
    result: Results
    closings: Mapping[date, Decimal]  # the bank's closing balance per statement day
    line_count: int = 0
    last_booked: date | None = None

    def open_lines(self, through: date | None = None) -> list[BankLine]:
        return [line for line in self.opened if through is None or line.booked <= through]

    def missing(self, as_of: date) -> list[Expected]:
        """The ledger's movements no line covers, dated at least the window before `as_of`."""
        cutoff = add_business_days(as_of, -WINDOW_BUSINESS_DAYS)
        return [e for e in self.unmatched if e.day <= cutoff]


def line_row(line: BankLine, reconciled: Reconciled) -> dict[str, Any]:
    found = reconciled.result.match_of(line.line_id)
    opened = reconciled.result.open_of(line.line_id)
    return {"line_id": line.line_id, "booked": line.booked.isoformat(),
            "direction": line.direction, "amount": str(line.amount), "currency": "JPY",
            "counterparty": line.counterparty, "reference": line.reference,
            "status": "matched" if found else "open",
            "rule": found.rule if found else None,
            "targets": list(found.targets) if found else [],
            "reason": opened.reason if opened else None,
            "candidates": [list(c) for c in opened.candidates] if opened else []}


def expected_row(e: Expected) -> dict[str, Any]:
    return {"key": e.key, "kind": e.kind, "direction": e.direction, "amount": str(e.amount),
            "currency": "JPY", "day": e.day.isoformat(), "payment_ref": e.ref or None}


def day_report(reconciled: Reconciled, day: date, ledger_cash: Decimal) -> dict[str, Any]:
    bank = reconciled.closings.get(day)
    open_lines = reconciled.open_lines(day)
    missing = reconciled.missing(day)
    return {
        "date": day.isoformat(), "currency": "JPY",
        "bank_closing_balance": None if bank is None else str(bank),
        "ledger_cash": str(ledger_cash),
        "difference": None if bank is None else str(bank - ledger_cash),
        "unmatched_lines": [line_row(line, reconciled) for line in open_lines],
        "unmatched_lines_amount": str(sum(line.amount for line in open_lines)),
        "ledger_without_bank": [expected_row(e) for e in missing],
        "ledger_without_bank_amount": str(sum(e.amount for e in missing)),
    }
