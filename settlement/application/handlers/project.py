"""Handlers of project events: the contract opens the escrow, then milestones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from settlement.application.handlers.inputs import cause, opening
from settlement.core.commands import Command, amount, ident, integer, required, tax, text
from settlement.core.errors import InvalidInput
from settlement.core.fees import FeePlan
from settlement.core.money import Money
from settlement.escrow import Escrow


def contract_project(cmd: Command, plans: Mapping[str, FeePlan]) -> Escrow:
    fields = opening(cmd, plans)
    milestones = _milestones(cmd.data, fields["plan"].currency)
    return Escrow.contract_project(
        worker_id=ident(cmd.data, "worker_id"), milestones=milestones,
        inspection_days=integer(cmd.data, "inspection_days", 1, 90, 14), **fields)


def _milestones(data: Mapping[str, Any], currency: str) -> list[tuple[str, Money, Money]]:
    raw = required(data, "milestones")
    if not isinstance(raw, list):
        raise InvalidInput("milestones must be a list", "invalid_field")
    return [(ident(m, "milestone_id"), amount(m, "amount"), tax(m, currency)) for m in raw]


def add_milestone(escrow: Escrow, cmd: Command) -> None:
    data = cmd.data
    escrow.add_milestone(ident(data, "milestone_id"), amount(data, "amount"),
                         tax(data, escrow.currency), **cause(cmd))


def fund_milestone(escrow: Escrow, cmd: Command) -> None:
    data = cmd.data
    escrow.fund_milestone(ident(data, "milestone_id"), amount(data, "amount"),
                          ident(data, "payment_ref"), **cause(cmd))


def deliver_milestone(escrow: Escrow, cmd: Command) -> None:
    escrow.deliver_milestone(ident(cmd.data, "milestone_id"), **cause(cmd))


def request_revision(escrow: Escrow, cmd: Command) -> None:
    data = cmd.data
    escrow.request_revision(ident(data, "milestone_id"), text(data, "reason"), **cause(cmd))


def accept_milestone(escrow: Escrow, cmd: Command) -> None:
    escrow.accept_milestone(ident(cmd.data, "milestone_id"), **cause(cmd))


def cancel_milestone(escrow: Escrow, cmd: Command) -> None:
    data = cmd.data
    escrow.cancel_milestone(ident(data, "milestone_id"), text(data, "reason"), **cause(cmd))
