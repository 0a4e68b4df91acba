"""A payout run as a stream of its own (keyed by the run id, SPEC §14): started
with the snapshot it decides on, completed with its summary.

`PayoutRunStarted` records the window (closing, cutoff, payment days), the
notification log position P the run covers (every event stored when it
started) and the policy; finishing a crashed run reads them back, so it
decides on the same snapshot by the same rules and writes the same file. Two
processes starting the same run race for the stream's first version: one
stores it, the other reads it. `PayoutRunCompleted` carries the summary
(counts, totals, holds, carry-overs, the Zengin file's SHA-256); it is stored
once, so a completed run is a no-op that reports it.
"""

from __future__ import annotations

import functools
import uuid
from datetime import date, datetime
from typing import Any

from eventsourcing.domain import Aggregate

from settlement.core.errors import Rejected
from settlement.ledger.posting import Posting
from settlement.payouts.policy import PayoutPolicy
from settlement.payouts.schedule import RunWindow

RUNS_NAMESPACE = uuid.UUID("8d2f7f1c-0b6e-4e57-9c7a-5a0d3e1b6c29")


@functools.lru_cache(maxsize=256)
def run_stream_id(run_id: str) -> uuid.UUID:
    return uuid.uuid5(RUNS_NAMESPACE, f"payout-run:{run_id}")


def _iso(day: date | None) -> str | None:
    return None if day is None else day.isoformat()


class PayoutRunStarted(Aggregate.Created):
    run_id: str
    closing: str | None
    cutoff: datetime | None
    payment_day: str
    next_payment_day: str
    as_of_position: int
    policy: dict[str, Any]
    causation_id: str
    postings: list[Posting]


class PayoutRunCompleted(Aggregate.Event):
    """The summary, with the window again: a reader needs no other event."""

    run_id: str
    closing: str | None
    cutoff: datetime | None
    payment_day: str
    as_of_position: int
    summary: dict[str, Any]
    causation_id: str
    postings: list[Posting]

    def apply(self, aggregate: PayoutRun) -> None:
        aggregate.summary = self.summary


RUN_EVENTS = (PayoutRunStarted, PayoutRunCompleted)


class PayoutRun(Aggregate):
    def __init__(self, run_id: str, closing: str | None, cutoff: datetime | None,
                 payment_day: str, next_payment_day: str, as_of_position: int,
                 policy: dict[str, Any]) -> None:
        self.run_id = run_id
        self.closing = closing
        self.cutoff = cutoff
        self.payment_day = payment_day
        self.next_payment_day = next_payment_day
        self.as_of_position = as_of_position
        self.policy_data = policy
        self.summary: dict[str, Any] | None = None

    @classmethod
    def start(cls, window: RunWindow, as_of_position: int, policy: PayoutPolicy) -> PayoutRun:
        return cls._create(
            PayoutRunStarted, id=run_stream_id(window.run_id), timestamp=window.now,
            run_id=window.run_id, closing=_iso(window.closing), cutoff=window.cutoff,
            payment_day=window.payment_day.isoformat(),
            next_payment_day=window.next_payment_day.isoformat(),
            as_of_position=as_of_position, policy=policy.to_json(),
            causation_id=f"payout-run:{window.run_id}", postings=[])

    def complete(self, summary: dict[str, Any], at: datetime) -> None:
        if self.summary is not None:
            raise Rejected(f"run {self.run_id} is complete", "run_completed")
        self.trigger_event(PayoutRunCompleted, timestamp=at, run_id=self.run_id,
                           closing=self.closing, cutoff=self.cutoff,
                           payment_day=self.payment_day, as_of_position=self.as_of_position,
                           summary=summary, causation_id=f"payout-run:{self.run_id}",
                           postings=[])

    @property
    def policy(self) -> PayoutPolicy:
        return PayoutPolicy.from_json(self.policy_data)

    def window(self, now: datetime) -> RunWindow:
        """The window the run started with (its business time `now` if it is resumed)."""
        return RunWindow(self.run_id, now,
                         None if self.closing is None else date.fromisoformat(self.closing),
                         self.cutoff, date.fromisoformat(self.payment_day),
                         date.fromisoformat(self.next_payment_day))
