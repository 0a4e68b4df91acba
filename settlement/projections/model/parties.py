"""Parties, payout runs and holds (SPEC §10, §11): rows folded from one event
each, no earlier state needed.

Every party event carries the party's whole record after it, a run's events
its whole window (the completion its summary too), a hold everything it says;
so a row is the latest event's, and an event at a position not above the
stored row's is a repeat (the upserts check it, see `storage.writes`). The
account number arrives masked: the read models never hold it whole.

`party_row(event)`, `run_row(event)`, `hold_row(event)` are pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from settlement.projections.model.envelope import Event, amount
from settlement.projections.model.errors import MalformedEvent
from settlement.projections.model.fastinit import fast_init
from settlement.projections.model.reconciliation import STATEMENT_EVENTS

PARTY_EVENTS = frozenset({"party_registered", "party_updated", "transfer_returned"})
RUN_EVENTS = frozenset({"payout_run_started", "payout_run_completed"})
HOLD_EVENTS = frozenset({"payout_held"})
KEYED_EVENTS = PARTY_EVENTS | RUN_EVENTS | HOLD_EVENTS | STATEMENT_EVENTS


def is_keyed(event: Event) -> bool:
    """Whether `event` folds into a row of its own key alone (see the module doc)."""
    return event.name in KEYED_EVENTS


@fast_init
@dataclass(frozen=True, slots=True)
class PartyRow:
    party_id: str
    kind: str
    name: str
    name_kana: str
    address: str | None
    invoice_registration_number: str | None
    bank_account: Mapping[str, Any] | None  # the number masked
    kyc_verified: bool
    transfer_fee_bearer: str
    hold: str | None
    returned_payout_id: str | None
    registered_at: datetime | None  # only a registration knows it (kept by the upsert)
    updated_at: datetime
    position: int


@fast_init
@dataclass(frozen=True, slots=True)
class RunRow:
    run_id: str
    closing: date | None
    payment_day: date
    cutoff: datetime | None
    as_of_position: int
    status: str  # started / completed
    summary: Mapping[str, Any] | None
    time: datetime
    position: int


@fast_init
@dataclass(frozen=True, slots=True)
class HoldRow:
    run_id: str
    party_type: str
    party_id: str
    currency: str
    amount: Any  # Decimal
    reason: str
    due_by: datetime | None
    time: datetime
    position: int


def _field(event: Event, name: str) -> Any:
    try:
        return event.data[name]
    except KeyError as exc:
        raise MalformedEvent(f"position {event.position}: {event.name} without {name}") from exc


def party_row(event: Event) -> PartyRow:
    record = _field(event, "record")
    return PartyRow(_field(event, "party_id"), record["kind"], record["name"],
                    record["name_kana"], record.get("address"),
                    record.get("invoice_registration_number"), record.get("bank_account"),
                    bool(record.get("kyc_verified")), record.get("transfer_fee_bearer",
                                                                 "platform"),
                    record.get("hold"), record.get("returned_payout_id"),
                    event.time if event.name == "party_registered" else None, event.time,
                    event.position)


def _date(value: str | None) -> date | None:
    return None if value is None else date.fromisoformat(value)


def run_row(event: Event) -> RunRow:
    cutoff = _field(event, "cutoff")
    completed = event.name == "payout_run_completed"
    return RunRow(_field(event, "run_id"), _date(_field(event, "closing")),
                  date.fromisoformat(_field(event, "payment_day")),
                  None if cutoff is None else datetime.fromisoformat(cutoff),
                  _field(event, "as_of_position"), "completed" if completed else "started",
                  _field(event, "summary") if completed else None, event.time, event.position)


def hold_row(event: Event) -> HoldRow:
    money = _field(event, "amount")
    due_by = event.data.get("due_by")
    return HoldRow(_field(event, "run_id"), _field(event, "party_type"),
                   _field(event, "party_id"), money["currency"], amount(money),
                   _field(event, "reason"),
                   None if due_by is None else datetime.fromisoformat(due_by), event.time,
                   event.position)
