"""Handlers of dispute events, for an item of any format."""

from __future__ import annotations

from settlement.application.handlers.inputs import cause
from settlement.core.commands import Command, ident, split_amount, text
from settlement.escrow import Escrow


def open_dispute(escrow: Escrow, cmd: Command) -> None:
    data = cmd.data
    escrow.open_dispute(ident(data, "item_id"), text(data, "opened_by"), text(data, "reason"),
                        **cause(cmd))


def resolve_dispute(escrow: Escrow, cmd: Command) -> None:
    data = cmd.data
    escrow.resolve_dispute(ident(data, "item_id"), split_amount(data, "worker_amount"),
                           split_amount(data, "client_amount"), **cause(cmd))
