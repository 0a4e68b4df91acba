"""Why a payout to a party must wait (SPEC §11 "Holds"): no payout without a
verified bank account, nor to an account a transfer came back from.

Checked in this order, the first that applies is the reason:

| reason | when |
|---|---|
| `bank_account_returned` | a transfer came back, no `party.updated` with an account since |
| `kyc_missing` | the party is not registered, or not `kyc_verified` |
| `bank_account_missing` | the party has no bank account |
| `name_not_representable` | (JPY) the holder's name has no Zengin form: the file would garble it |
"""

from __future__ import annotations

import functools

from settlement.banking.kana import HOLDER_NAME_BYTES_MAX, NameNotRepresentable, to_zengin
from settlement.parties.aggregate import BANK_ACCOUNT_RETURNED
from settlement.parties.record import PartyRecord

HOLDER_NAMES_CACHED_MAX = 262_144  # a closing's parties, at about 300 bytes each
KYC_MISSING = "kyc_missing"
BANK_ACCOUNT_MISSING = "bank_account_missing"
NAME_NOT_REPRESENTABLE = "name_not_representable"
HOLD_REASONS = (BANK_ACCOUNT_RETURNED, KYC_MISSING, BANK_ACCOUNT_MISSING,
                NAME_NOT_REPRESENTABLE)


@functools.lru_cache(maxsize=HOLDER_NAMES_CACHED_MAX)
def holder_name(holder_kana: str) -> str | None:
    """受取人名 of an account's holder in the Zengin set; None if it has none. Cached:
    a run asks it for the hold, then for the file (it empties the cache when done)."""
    try:
        return to_zengin(holder_kana, HOLDER_NAME_BYTES_MAX)
    except NameNotRepresentable:
        return None


def hold_reason(record: PartyRecord | None, currency: str) -> str | None:
    """Why `record`'s party may not be paid in `currency` now; None if it may."""
    if record is not None and record.hold is not None:
        return record.hold
    if record is None or not record.kyc_verified:
        return KYC_MISSING
    if record.bank_account is None:
        return BANK_ACCOUNT_MISSING
    if currency == "JPY" and holder_name(record.bank_account.holder_kana) is None:
        return NAME_NOT_REPRESENTABLE
    return None
