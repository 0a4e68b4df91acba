"""Bank statements (SPEC §13): a row per statement line and per stated day
balance, folded from `statement_imported` events alone, and finance's latest
decision per line from `statement_line_decided`.

A line (a balance) is in one event only (the importer stores each id once), so
its row never changes: an event read twice adds nothing (`storage.writes`
inserts the rows unless their key is there). A decision row is the latest
decision's, replaced only by an event at a later position.

`chunk_rows(event)` (the event's lines, stored beside it in the event store),
`line_rows(event)` (an older event's lines, carried in the event),
`balance_rows(event)` and `decision_rows(event)` are pure; each gives no rows for
the other kind of event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from settlement.projections.model.envelope import Event, amount
from settlement.projections.model.errors import MalformedEvent
from settlement.projections.model.fastinit import fast_init

IMPORTED, DECIDED = "statement_imported", "statement_line_decided"
STATEMENT_EVENTS = frozenset({IMPORTED, DECIDED})
# A booked bank charge moves money: not a keyed event (see `changes.fold`), told
# apart from a repeat by the line's row in `bank_fees`.
BANK_FEE = "bank_fee_booked"


class StatementLineRow(NamedTuple):
    """A tuple in the table's column order (a statement brings lines by the
    thousand: they go to the table as they are)."""

    line_id: str
    statement_id: str
    account: str
    booked: date
    direction: str
    amount: Any  # Decimal
    currency: str
    counterparty: str
    reference: str
    kind: str
    time: datetime
    position: int


@fast_init
@dataclass(frozen=True, slots=True)
class StatementBalanceRow:
    balance_id: str  # account:day
    account: str
    day: date
    opening: Any  # Decimal
    closing: Any  # Decimal
    currency: str
    statement_id: str
    time: datetime
    position: int


@fast_init
@dataclass(frozen=True, slots=True)
class DecisionRow:
    line_id: str
    decision_id: str
    action: str
    targets: list[str]
    reason: str
    time: datetime
    position: int


def _list(event: Event, name: str) -> list[Any]:
    if event.name != IMPORTED:
        return []
    value = event.data.get(name)
    if not isinstance(value, list):
        raise MalformedEvent(f"position {event.position}: {event.name} without {name}")
    return value


@fast_init
@dataclass(frozen=True, slots=True)
class StatementChunkRow:
    """An event's lines, stored as rows of their own in the event store: the
    storage copies them into `statement_lines` with the event's columns
    (`storage.statements`), so no line goes through Python."""

    chunk: str  # the first line's id: the stored rows' `chunk`
    statement_id: str
    account: str
    time: datetime
    position: int


def chunk_rows(event: Event) -> list[StatementChunkRow]:
    """The event's stored lines (none for an event that carries its lines itself)."""
    if event.name != IMPORTED or "digest" not in event.data:
        return []
    data = event.data
    try:
        digest = data["digest"]
        if not digest["lines"]:
            return []
        return [StatementChunkRow(str(digest["first_line_id"]), data["statement_id"],
                                  data["account"], event.time, event.position)]
    except (KeyError, TypeError) as exc:
        raise MalformedEvent(f"position {event.position}: a malformed digest: {exc!r}") from exc


def line_rows(event: Event) -> list[StatementLineRow]:
    """The lines of an event stored before they had rows of their own."""
    if "lines" not in event.data:
        return []
    data = event.data
    try:
        return [StatementLineRow(line["line_id"], data["statement_id"], data["account"],
                                 date.fromisoformat(line["booked"]), line["direction"],
                                 amount(line["amount"]), line["amount"]["currency"],
                                 line["counterparty"], line["reference"], line.get("kind", ""),
                                 event.time, event.position)
                for line in _list(event, "lines")]
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEvent(f"position {event.position}: a malformed line: {exc!r}") from exc


def balance_rows(event: Event) -> list[StatementBalanceRow]:
    data = event.data
    try:
        return [StatementBalanceRow(b["balance_id"], data["account"],
                                    date.fromisoformat(b["day"]),
                                    amount(b["opening"]), amount(b["closing"]),
                                    b["closing"]["currency"], data["statement_id"], event.time,
                                    event.position)
                for b in _list(event, "balances")]
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedEvent(f"position {event.position}: a malformed balance: {exc!r}") from exc


def decision_rows(event: Event) -> list[DecisionRow]:
    if event.name != DECIDED:
        return []
    data = event.data
    try:
        return [DecisionRow(data["line_id"], data["decision_id"], data["action"],
                            list(data["targets"]), data["reason"], event.time, event.position)]
    except (KeyError, TypeError) as exc:
        raise MalformedEvent(f"position {event.position}: a malformed decision: {exc!r}") from exc


@fast_init
@dataclass(frozen=True, slots=True)
class BankFeeRow:
    line_id: str
    decision_id: str
    amount: Any  # Decimal
    currency: str
    reason: str
    time: datetime
    position: int


def is_bank_fee(event: Event) -> bool:
    return event.name == BANK_FEE


def fee_line_of(event: Event) -> str:
    try:
        return str(event.data["line_id"])
    except KeyError as exc:
        raise MalformedEvent(f"position {event.position}: a bank fee without line_id") from exc


def fee_lines(events: Iterable[Event]) -> list[str]:
    """The lines the batch's bank fee events name (to ask the store which are booked)."""
    return sorted({fee_line_of(e) for e in events if is_bank_fee(e)})


def bank_fee_row(event: Event) -> BankFeeRow:
    data = event.data
    try:
        return BankFeeRow(fee_line_of(event), data["decision_id"], amount(data["amount"]),
                          data["amount"]["currency"], data["reason"], event.time,
                          event.position)
    except (KeyError, TypeError) as exc:
        raise MalformedEvent(f"position {event.position}: a malformed bank fee: {exc!r}") from exc


def bank_fee_decision(event: Event) -> DecisionRow:
    """A booked charge is the line's decision too (it is matched as `bank_fee`)."""
    row = bank_fee_row(event)
    return DecisionRow(row.line_id, row.decision_id, "bank_fee", [], row.reason, row.time,
                       row.position)
