"""Aggregates: the escrow of one marketplace job (all three formats and disputes)."""

from settlement.aggregates.escrow import Escrow, escrow_id

__all__ = ["Escrow", "escrow_id"]
