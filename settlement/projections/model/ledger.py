"""Ledger projection (SPEC §6): every posting of every event as an entry, and
the balance of every account per currency.

Balances "as of" a past instant are sums over the entries with `time ≤ as_of`
(see `queries`); the running `balances` rows are the same sums over all entries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from settlement.projections.model.envelope import AMOUNTS, Event, amount
from settlement.projections.model.errors import MalformedEvent, Unbalanced
from settlement.projections.model.fastinit import fast_init

_ZERO = Decimal(0)


@fast_init
@dataclass(frozen=True, slots=True)
class Entry:
    position: int
    line: int  # 1, 2, … in the order of the event's postings
    time: datetime
    job_id: str | None
    event_type: str
    account: str
    side: str
    amount: Decimal
    currency: str


@fast_init
@dataclass(frozen=True, slots=True)
class BalanceDelta:
    account: str
    currency: str
    debits: Decimal
    credits: Decimal


def entries(event: Event) -> list[Entry]:
    """The event's postings as entries, checked: positive amounts, known sides,
    debits equal to credits in every currency."""
    rows: list[Entry] = []
    append = rows.append
    position, time, job_id, type_ = event.position, event.time, event.job_id, event.type
    # Summed per currency and side as the entries are made (one pass; no negation).
    debits: dict[str, Decimal] = {}
    credits: dict[str, Decimal] = {}
    line = 0
    for posting in event.data.get("postings") or ():
        line += 1
        try:
            account, side, currency = posting["account"], posting["side"], posting["currency"]
        except (KeyError, TypeError) as exc:
            raise MalformedEvent(f"position {event.position}: bad posting {posting!r}") from exc
        raw = posting.get("amount")
        # `amount` inlined where the text was seen before (the fold's most frequent call).
        value = AMOUNTS.get(raw) if raw.__class__ is str else None
        if value is None:
            value = amount(posting)  # raises the error
        if side == "debit":
            sums = debits
        elif side == "credit":
            sums = credits
        else:
            raise Unbalanced(f"position {position} line {line}: {side} {value}")
        if value <= _ZERO:
            raise Unbalanced(f"position {position} line {line}: {side} {value}")
        sums[currency] = sums[currency] + value if currency in sums else value
        append(Entry(position, line, time, job_id, type_, account, side, value, currency))
    if debits != credits:  # every sum is positive: equal dicts are balanced currencies
        unbalanced = {currency: debits.get(currency, _ZERO) - credits.get(currency, _ZERO)
                      for currency in {**debits, **credits}}
        raise Unbalanced(f"position {position}: postings do not balance: "
                         f"{ {c: t for c, t in unbalanced.items() if t != 0} }")
    return rows


def balance_deltas(rows: Iterable[Entry]) -> list[BalanceDelta]:
    """What `rows` add to each (account, currency) balance, in key order (writers
    lock balance rows in one order, so two of them never deadlock)."""
    sums: dict[tuple[str, str], list[Decimal]] = {}
    for row in rows:
        pair = sums.setdefault((row.account, row.currency), [Decimal(0), Decimal(0)])
        pair[0 if row.side == "debit" else 1] += row.amount
    return [BalanceDelta(account, currency, debits, credits)
            for (account, currency), (debits, credits) in sorted(sums.items())]
