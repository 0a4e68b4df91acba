"""Deterministic payout identifiers.

A payout id names its run, its party's payout stream and its currency:
`po-<run_id>-<stream uuid hex>-<currency>`. It is an identifier of SPEC §3
(at most 128 chars of `[A-Za-z0-9._:-]`), the same for every attempt of a run
(so a repeated run finds the payouts it already made), and a payout result,
which carries only the payout id, leads straight to the party's stream.
"""

from __future__ import annotations

import functools
import re
import uuid
from datetime import UTC, datetime

from settlement.core.commands import identifier
from settlement.core.errors import InvalidInput

PAYOUTS_NAMESPACE = uuid.UUID("027d3a42-c9e2-42be-aadd-169985f44287")
PAYOUT_ID_PREFIX = "po-"
# "po-" + run id + "-" + 32 hex digits + "-" + 3 letters = at most 128 chars.
RUN_ID_CHARS_MAX = 128 - len(PAYOUT_ID_PREFIX) - 1 - 32 - 1 - 3
_PAYOUT_ID = re.compile(rf"po-[A-Za-z0-9._:-]{{1,{RUN_ID_CHARS_MAX}}}-([0-9a-f]{{32}})-[A-Z]{{3}}")


@functools.lru_cache(maxsize=16_384)
def party_payouts_id(party_type: str, party_id: str) -> uuid.UUID:
    """The id of a party's payout stream (one per worker, one per client). Cached:
    asked three times per party by a run (a SHA-1 each)."""
    return uuid.uuid5(PAYOUTS_NAMESPACE, f"payouts:{party_type}:{party_id}")


def run_id_of(now: datetime) -> str:
    """The default run id of a payout run at `now`: `run-20261126T000000Z`."""
    return "run-" + now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def checked_run_id(run_id: str) -> str:
    identifier(run_id, "run_id")
    if len(run_id) > RUN_ID_CHARS_MAX:
        raise InvalidInput(f"run_id must be at most {RUN_ID_CHARS_MAX} chars", "invalid_identifier")
    return run_id


def payout_id_of(run_id: str, party_type: str, party_id: str, currency: str) -> str:
    stream = party_payouts_id(party_type, party_id).hex
    return f"{PAYOUT_ID_PREFIX}{checked_run_id(run_id)}-{stream}-{currency}"


def stream_of_payout(payout_id: str) -> uuid.UUID | None:
    """The payout stream a payout id names; None for anything not shaped like one."""
    match = _PAYOUT_ID.fullmatch(payout_id)
    return uuid.UUID(match.group(1)) if match else None
