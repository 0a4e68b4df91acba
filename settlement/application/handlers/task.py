"""Handlers of task events: opened, funded, submissions decided, closed."""

from __future__ import annotations

from collections.abc import Mapping

from settlement.application.handlers.inputs import cause, opening
from settlement.core.commands import Command, amount, ident, integer, tax, text
from settlement.core.fees import FeePlan
from settlement.escrow import Escrow


def open_task(cmd: Command, plans: Mapping[str, FeePlan]) -> Escrow:
    data, fields = cmd.data, opening(cmd, plans)
    return Escrow.open_task(
        unit_price=amount(data, "unit_price"), quantity=integer(data, "quantity", 1, 100_000),
        tax=tax(data, fields["plan"].currency),
        approval_days=integer(data, "approval_days", 1, 90, 14), **fields)


def fund_task(escrow: Escrow, cmd: Command) -> None:
    data = cmd.data
    escrow.fund_task(amount(data, "amount"), ident(data, "payment_ref"), **cause(cmd))


def receive_submission(escrow: Escrow, cmd: Command) -> None:
    data = cmd.data
    escrow.receive_submission(ident(data, "submission_id"), ident(data, "worker_id"),
                              **cause(cmd))


def approve_submission(escrow: Escrow, cmd: Command) -> None:
    escrow.approve_submission(ident(cmd.data, "submission_id"), **cause(cmd))


def reject_submission(escrow: Escrow, cmd: Command) -> None:
    data = cmd.data
    escrow.reject_submission(ident(data, "submission_id"), text(data, "reason"), **cause(cmd))


def close_task(escrow: Escrow, cmd: Command) -> None:
    escrow.close_task(**cause(cmd))
