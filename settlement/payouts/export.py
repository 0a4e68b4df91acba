"""A payout batch as CSV for the bank: `payout_id,party_type,party_id,amount,currency,account`.

Amounts are exact decimal strings at the currency's precision. A file is
written beside its destination and renamed into place, so the bank never picks
up half a batch.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from settlement.core.money import Money, format_amount
from settlement.documents import cells

CSV_COLUMNS = ("payout_id", "party_type", "party_id", "amount", "currency", "account")


@dataclass(frozen=True)
class PayoutLine:
    payout_id: str
    party_type: str
    party_id: str
    account: str
    amount: Money


def write_csv(lines: Iterable[PayoutLine], stream: TextIO) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        writer.writerow((cells.safe(line.payout_id), line.party_type, cells.safe(line.party_id),
                         format_amount(line.amount), line.amount.currency.code,
                         cells.safe(line.account)))


def export_csv(lines: Iterable[PayoutLine], path: Path) -> None:
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", encoding="utf-8", newline="") as stream:
        write_csv(lines, stream)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, path)
