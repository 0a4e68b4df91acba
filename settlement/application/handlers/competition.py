"""Handlers of competition events: opened, funded, entries, awards, cancellation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from settlement.application.handlers.inputs import cause, opening
from settlement.core.commands import (
    Command,
    amount,
    boolean,
    ident,
    integer,
    required,
    tax,
    text,
    timestamp,
)
from settlement.core.errors import InvalidInput
from settlement.core.fees import FeePlan
from settlement.core.money import Money
from settlement.escrow import Escrow


def open_competition(cmd: Command, plans: Mapping[str, FeePlan]) -> Escrow:
    data, fields = cmd.data, opening(cmd, plans)
    return Escrow.open_competition(
        prize=amount(data, "prize"), tax=tax(data, fields["plan"].currency),
        guaranteed=boolean(data, "guaranteed"), entry_deadline=timestamp(data, "entry_deadline"),
        award_deadline=timestamp(data, "award_deadline"),
        min_entries=integer(data, "min_entries", 0, 10_000, 0), **fields)


def fund_competition(escrow: Escrow, cmd: Command) -> None:
    data = cmd.data
    escrow.fund_competition(amount(data, "amount"), ident(data, "payment_ref"), **cause(cmd))


def submit_entry(escrow: Escrow, cmd: Command) -> None:
    data = cmd.data
    escrow.submit_entry(ident(data, "entry_id"), ident(data, "worker_id"), **cause(cmd))


def award(escrow: Escrow, cmd: Command) -> None:
    escrow.award(_awards(cmd.data), **cause(cmd))


def _awards(data: Mapping[str, Any]) -> list[tuple[str, Money]]:
    raw = required(data, "awards")
    if not isinstance(raw, list):
        raise InvalidInput("awards must be a list", "invalid_field")
    return [(ident(a, "entry_id"), amount(a, "amount")) for a in raw]


def cancel_competition(escrow: Escrow, cmd: Command) -> None:
    escrow.cancel_competition(text(cmd.data, "reason"), **cause(cmd))
