"""What a 総合振込 file carries (SPEC §11): who sends (the requester, 依頼人,
with the platform's own account, from configuration) and each transfer.

Plain values: every name is already in the Zengin set and every code is the
digits the bank expects; `zengin.write_zengin` checks them as it writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from settlement.banking.accounts import AccountType


@dataclass(frozen=True)
class Requester:
    """依頼人: the platform as the bank knows it, and the account paid from."""

    code: str                 # 依頼人コード: the bank-assigned code, up to 10 digits
    name_kana: str            # 依頼人名: up to 40 bytes
    bank_code: str            # 仕向銀行番号: 4 digits
    bank_name_kana: str       # 仕向銀行名: up to 15 bytes
    branch_code: str          # 仕向支店番号: 3 digits
    branch_name_kana: str     # 仕向支店名: up to 15 bytes
    account_type: AccountType
    account_number: str       # 7 digits


@dataclass(frozen=True)
class Transfer:
    """One payment into a party's account (a data record)."""

    bank_code: str            # 被仕向銀行番号: 4 digits
    branch_code: str          # 被仕向支店番号: 3 digits
    account_type: AccountType
    account_number: str       # 7 digits
    holder_name: str          # 受取人名: up to 30 bytes, already converted
    amount_yen: int           # 振込金額: 1 to 9,999,999,999
    bank_name_kana: str = ""  # 被仕向銀行名: up to 15 bytes, blank allowed
    branch_name_kana: str = ""  # 被仕向支店名: up to 15 bytes, blank allowed
    customer_code1: str | None = None  # 顧客コード1: up to 10 digits
    customer_code2: str | None = None  # 顧客コード2: up to 10 digits

    def __repr__(self) -> str:
        # Keeps the account number and the name out of logs and tracebacks.
        return f"Transfer({self.bank_code}-{self.branch_code} ****{self.account_number[-3:]}, " \
               f"{self.amount_yen} yen)"
