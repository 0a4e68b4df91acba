"""A run's 総合振込 file (SPEC §11): one data record per JPY payout of the run,
paying the amount sent into the bank account its payout recorded (the run's
snapshot), in party order; the trailer's count and total are the run's.

Built from the payouts as stored, never from what one attempt decided, so a run
finished by a second attempt (or a second process) writes the same bytes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from settlement.banking.accounts import BANK_NAME_BYTES_MAX
from settlement.banking.kana import NameNotRepresentable, to_zengin
from settlement.banking.transfers import Requester, Transfer
from settlement.banking.zengin import file_sha256, write_zengin
from settlement.core.errors import SettlementError
from settlement.parties.holds import holder_name
from settlement.payouts.events import Payout

ZENGIN_CURRENCY = "JPY"


@dataclass(frozen=True)
class RunPayout:
    """A payout of the run with its party."""

    party_type: str
    party_id: str
    payout: Payout


@dataclass(frozen=True)
class BankFile:
    currency: str
    content: bytes
    sha256: str
    transfers: int
    total: int  # yen: the trailer's 合計金額

    def summary(self) -> dict[str, object]:
        return {"currency": self.currency, "sha256": self.sha256, "transfers": self.transfers,
                "total": str(self.total), "bytes": len(self.content)}


@functools.lru_cache(maxsize=4_096)
def _bank_name(name: str | None) -> str:
    """A bank or branch name in the Zengin set (few, and the same from row to row)."""
    return "" if name is None else to_zengin(name, BANK_NAME_BYTES_MAX)


def _holder(holder_kana: str) -> str:
    name = holder_name(holder_kana)
    if name is None:  # the run held such a party: a payout never records one
        raise NameNotRepresentable("a payout's holder has no Zengin name")
    return name


def _transfer(run_payout: RunPayout) -> Transfer:
    """`zengin.transfer_to` of the payout's account, bank names converted once each."""
    payout = run_payout.payout
    account = payout.bank_account
    if account is None:
        raise SettlementError(f"payout {payout.payout_id} records no bank account",
                              "payout_without_account")
    return Transfer(bank_code=account.bank_code, bank_name_kana=_bank_name(account.bank_name_kana),
                    branch_code=account.branch_code,
                    branch_name_kana=_bank_name(account.branch_name_kana),
                    account_type=account.account_type, account_number=account.account_number,
                    holder_name=_holder(account.holder_kana), amount_yen=int(payout.sent.amount))


def zengin_file(requester: Requester | None, payment_day: date,
                payouts: Sequence[RunPayout]) -> BankFile | None:
    """The file of the run's JPY payouts; None if it has none."""
    paid = sorted((p for p in payouts if p.payout.amount.currency.code == ZENGIN_CURRENCY),
                  key=lambda p: (p.party_type, p.party_id))
    if not paid:
        return None
    if requester is None:
        raise SettlementError("no requester (依頼人) is configured", "requester_missing")
    transfers = [_transfer(p) for p in paid]
    content = write_zengin(requester, payment_day, transfers)
    return BankFile(ZENGIN_CURRENCY, content, file_sha256(content), len(transfers),
                    sum(t.amount_yen for t in transfers))
