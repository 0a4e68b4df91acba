"""What a run does with one party's payable in one currency (SPEC §11): pure.

In this order: a hold (`parties.holds`: a returned transfer, no KYC, no bank
account, a holder name without a Zengin form) leaves it payable and says why;
an amount below the currency's minimum is carried over (`below_minimum`)
unless one of its items is due on or before the next closing's payment day;
anything else is paid into the bank account of the run's snapshot, less the
bank's charge where the party bears transfer fees.
"""

from __future__ import annotations

from dataclasses import dataclass

from settlement.banking.accounts import BankAccount
from settlement.core.money import Money, zero
from settlement.parties.holds import hold_reason
from settlement.parties.record import PartyRecord
from settlement.payouts.payable import Payable
from settlement.payouts.policy import PayoutPolicy
from settlement.payouts.schedule import RunWindow

BELOW_MINIMUM = "below_minimum"


@dataclass(frozen=True)
class Pay:
    bank_account: BankAccount | None
    fee: Money  # payee-borne, tax-included; zero where the platform bears it
    fee_tax: Money


@dataclass(frozen=True)
class Hold:
    reason: str  # a hold reason of `parties.holds`, or `below_minimum`


def decide(payable: Payable, record: PartyRecord | None, policy: PayoutPolicy,
           window: RunWindow) -> Pay | Hold:
    amount = payable.amount
    currency = amount.currency.code
    reason = hold_reason(record, currency)
    if reason is not None:
        return Hold(reason)
    assert record is not None and record.bank_account is not None  # else a hold reason
    if amount.amount < policy.minimum(currency) and window.carries(payable.due_by):
        return Hold(BELOW_MINIMUM)
    if record.transfer_fee_bearer != "payee":
        return Pay(record.bank_account, zero(currency), zero(currency))
    requester = policy.requester
    same_bank = requester is not None and requester.bank_code == record.bank_account.bank_code
    fee, fee_tax = policy.fees.fee(amount, same_bank)
    return Pay(record.bank_account, fee, fee_tax)
