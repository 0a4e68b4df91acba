"""Reconciliation events (SPEC §13, §14), each the only event of its own stream.

`StatementImported` stores lines of a bank statement not stored before (at
most `LINES_PER_EVENT`, a file of more is several events) as rows of their own
(`store.statement_lines`, written in the event's transaction), and carries the
digest of exactly those rows (`digest`: count, first and last line id, SHA-256)
and the day balances the statement states for the first time; its stream is
named by its first line (or balance), which is stored once, so the stream is
too. It moves no money. `statement_id` (the file's SHA-256) keys it on
`settlement.events`. Events stored before the lines had rows of their own carry
them in `lines` instead of a digest (the projections still fold those).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from eventsourcing.domain import Aggregate

from settlement.core.money import Money
from settlement.ledger.accounts import BANK_FEES, SAFEGUARDED_CASH
from settlement.ledger.posting import Posting, check_balanced, posting
from settlement.store.statement_lines import LineDigest

STATEMENTS_NAMESPACE = uuid.UUID("5b0c4f7e-3d8a-4f4e-9a51-2f9c0d7e6a13")
LINES_PER_EVENT = 50_000  # rows of their own: the event stays small


def statement_stream_id(first_id: str) -> uuid.UUID:
    return uuid.uuid5(STATEMENTS_NAMESPACE, f"statement:{first_id}")


class StatementImported(Aggregate.Created):
    statement_id: str          # SHA-256 of the file
    source: str                # zengin / csv
    account: str               # masked
    digest: dict[str, Any]     # `LineDigest` of the rows stored with it
    balances: list[dict[str, Any]]
    causation_id: str
    postings: list[Posting]


class Statement(Aggregate):
    """A chunk of a statement as stored: its counts (the lines are rows of their own)."""

    def __init__(self, statement_id: str, source: str, account: str,
                 balances: list[dict[str, Any]], digest: dict[str, Any] | None = None,
                 lines: list[dict[str, Any]] | None = None) -> None:
        self.statement_id = statement_id
        self.source = source
        self.account = account
        # An event stored before the digest carries its lines (`lines`).
        self.lines = len(lines) if lines is not None else int((digest or {})["lines"])
        self.balances = len(balances)

    @classmethod
    def imported(cls, statement_id: str, source: str, account: str, digest: LineDigest,
                 balances: list[dict[str, Any]], at: datetime) -> Statement:
        assert digest.lines <= LINES_PER_EVENT and (digest.lines or balances)
        first = digest.first_line_id if digest.lines else balances[0]["balance_id"]
        return cls._create(StatementImported, id=statement_stream_id(first), timestamp=at,
                           statement_id=statement_id, source=source, account=account,
                           digest=digest.to_json(), balances=balances,
                           causation_id=f"statement:{statement_id}", postings=[])




DECISIONS_NAMESPACE = uuid.UUID("0e6f2b1a-77c4-4d35-8f0b-3c1e9a5d2b84")


def decision_stream_id(decision_id: str) -> uuid.UUID:
    return uuid.uuid5(DECISIONS_NAMESPACE, f"line-decision:{decision_id}")


class StatementLineDecided(Aggregate.Created):
    """Finance matched a line by hand (`match`, to `targets`: expected movement keys,
    see `matching.Expected`) or unmatched it (`unmatch`), with a reason. The latest
    decision on a line is the one that holds."""

    line_id: str
    decision_id: str
    action: str
    targets: list[str]
    reason: str
    causation_id: str
    postings: list[Posting]


class LineDecision(Aggregate):
    def __init__(self, line_id: str, decision_id: str, action: str, targets: list[str],
                 reason: str) -> None:
        self.line_id = line_id
        self.decision_id = decision_id
        self.action = action
        self.targets = targets
        self.reason = reason

    @classmethod
    def decide(cls, line_id: str, decision_id: str, action: str, targets: list[str],
               reason: str, at: datetime) -> LineDecision:
        return cls._create(StatementLineDecided, id=decision_stream_id(decision_id),
                           timestamp=at, line_id=line_id, decision_id=decision_id,
                           action=action, targets=targets, reason=reason,
                           causation_id=f"decision:{decision_id}", postings=[])


BANK_FEES_NAMESPACE = uuid.UUID("6a0d5c2e-91f3-4b7a-8c64-d2e51f0b3a97")


def bank_fee_stream_id(line_id: str) -> uuid.UUID:
    """One booking per statement line, ever: the stream's first version is stored once."""
    return uuid.uuid5(BANK_FEES_NAMESPACE, f"bank-fee:{line_id}")


class BankFeeBooked(Aggregate.Created):
    """Finance confirmed a debit line as the bank's charge: booked to
    `expenses:bank_fees` from the safeguarded cash (SPEC §6, §13)."""

    line_id: str
    decision_id: str
    amount: Money
    reason: str
    causation_id: str
    postings: list[Posting]


class BankFee(Aggregate):
    def __init__(self, line_id: str, decision_id: str, amount: Money, reason: str) -> None:
        self.line_id = line_id
        self.decision_id = decision_id
        self.amount = amount
        self.reason = reason

    @classmethod
    def book(cls, line_id: str, decision_id: str, amount: Money, reason: str,
             at: datetime) -> BankFee:
        postings = [posting(BANK_FEES, "debit", amount),
                    posting(SAFEGUARDED_CASH, "credit", amount)]
        check_balanced(postings)
        return cls._create(BankFeeBooked, id=bank_fee_stream_id(line_id), timestamp=at,
                           line_id=line_id, decision_id=decision_id, amount=amount,
                           reason=reason, causation_id=f"decision:{decision_id}",
                           postings=postings)


RECONCILIATION_EVENTS = (StatementImported, StatementLineDecided, BankFeeBooked)
