"""Typed errors with stable codes.

Every rejection the service can give carries a `code` that other systems match
on (the rejections topic, the DLQ, the API). Codes never change meaning; the
message is for people.
"""

from __future__ import annotations


class SettlementError(Exception):
    """Base of every error the service raises on purpose."""

    code = "error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidInput(SettlementError):
    """The input itself is malformed: money, identifiers, field values."""

    code = "invalid_input"


class InvalidMoney(InvalidInput):
    """An amount or currency that money rules refuse."""

    code = "invalid_amount"


class Rejected(SettlementError):
    """A valid command that breaks a business rule of the escrow."""

    code = "rejected"


class NotFound(Rejected):
    code = "not_found"


class Conflict(Rejected):
    """The same command id was seen before with different content."""

    code = "conflict"


class BelowMinimum(Rejected):
    """An offered item amount below its fee plan's `minimum_item` (the low-price
    guard, `settlement.core.floors`)."""

    code = "amount_below_minimum"


class LedgerError(SettlementError):
    """Postings that would break double entry; a programming error upstream."""

    code = "ledger_unbalanced"


class ConfigError(SettlementError, ValueError):
    """The configuration (environment, fee plan file) holds a value the service cannot
    run with."""

    code = "config_invalid"
