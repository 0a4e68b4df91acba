"""Account codes of SPEC §6 (contract: lowercase, `:`-separated)."""

from __future__ import annotations

SAFEGUARDED_CASH = "assets:safeguarded_cash"
PAYOUTS_IN_TRANSIT = "liabilities:payouts_in_transit"
CONSUMPTION_TAX = "liabilities:consumption_tax"
REVENUE_WORKER_FEES = "revenue:platform_fees:worker"
REVENUE_CLIENT_FEES = "revenue:platform_fees:client"
REVENUE_TRANSFER_FEES = "revenue:transfer_fees"  # charged to payees, net of tax (Part II)
BANK_FEES = "expenses:bank_fees"  # charges the bank took, booked from reconciliation (Part II)


def escrow(job_id: str) -> str:
    return f"liabilities:escrow:{job_id}"


def worker_payable(worker_id: str) -> str:
    return f"liabilities:worker_payable:{worker_id}"


def client_refundable(client_id: str) -> str:
    return f"liabilities:client_refundable:{client_id}"


def withholding_tax(client_id: str) -> str:
    return f"liabilities:withholding_tax:{client_id}"


# Accounts whose balance is on the debit side (SPEC §6): assets, and expenses such
# as the bank's charges (`expenses:bank_fees`, SPEC §13).
DEBIT_SIDE = ("assets:", "expenses:")


def natural_sign(account: str) -> int:
    """+1 where the balance is debits − credits (assets, expenses), −1 where credits −
    debits (liabilities, revenue)."""
    return 1 if account.startswith(DEBIT_SIDE) else -1
