"""Payouts: each party's payout stream, payout results, and what a run reads."""

from settlement.payouts.aggregate import PartyPayouts
from settlement.payouts.events import PayoutEvent, PayoutFailed, PayoutInitiated, PayoutSettled
from settlement.payouts.ids import party_payouts_id, payout_id_of, stream_of_payout
from settlement.payouts.results import PAYOUT_RESULT_TYPES, RETURNED, apply_payout_result

__all__ = [
    "PAYOUT_RESULT_TYPES", "RETURNED", "PartyPayouts", "PayoutEvent", "PayoutFailed",
    "PayoutInitiated", "PayoutSettled", "apply_payout_result", "party_payouts_id",
    "payout_id_of", "stream_of_payout",
]
