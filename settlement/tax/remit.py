"""`settlement tax remit` and `settlement tax confirm` (SPEC §12): remit a month's
withheld tax per client, and confirm a remittance the tax office received.

What a month withheld is read from the event store (the authority, not a
projection): every posting crediting `liabilities:withholding_tax:<client>` in
a release event whose `time` is in the month (JST). Each client's remittances
are stored in one transaction with the others of the command; a second run of
the same month finds everything covered and stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError

from settlement.core.commands import identifier
from settlement.core.errors import Conflict, NotFound
from settlement.core.money import Money
from settlement.core.months import Month
from settlement.ledger import accounts
from settlement.payouts.raw import ESCROW, kind_of, parse_raw
from settlement.tax.remittance import (
    ClientWithholding,
    remittance_stream_id,
    stream_of_remittance,
)
from settlement.tax.results import load_remittances
from settlement.tax.withholding import due_date

LOG_PAGE_EVENTS = 1_000
_WITHHOLDING = accounts.withholding_tax("")


@dataclass(frozen=True)
class Remitted:
    client_id: str
    month: str
    currency: str
    withheld: Decimal  # the month's total
    remitted: Decimal  # by this command (0: covered already)
    remittance_id: str | None
    due_date: str


def _credits(app: Application[UUID], month: Month) -> Iterator[tuple[str, str, Decimal]]:
    """(client id, currency, amount) of every withholding credit in `month`."""
    position, end = 0, app.recorder.max_notification_id() or 0
    while position < end:
        page = app.recorder.select_notifications(position + 1, LOG_PAGE_EVENTS, stop=end)
        if not page:
            break
        for notification in page:
            if kind_of(notification.topic)[0] != ESCROW:
                continue  # only releases credit a withholding account
            raw = parse_raw(notification.state)
            if raw is not None:
                if month.start <= raw.timestamp() < month.end:
                    for account, side, amount, currency in raw.postings((_WITHHOLDING,)):
                        if side == "credit":
                            yield account[len(_WITHHOLDING):], currency, amount
                continue
            event: Any = app.mapper.to_domain_event(notification)
            if month.start <= event.timestamp < month.end:
                for p in event.postings:
                    if p.account.startswith(_WITHHOLDING) and p.side == "credit":
                        yield (p.account[len(_WITHHOLDING):], p.amount.currency.code,
                               p.amount.amount)
        position = page[-1].id


def withheld(app: Application[UUID], month: Month,
             client_id: str | None = None) -> dict[tuple[str, str], Decimal]:
    """Per (client, currency): what `month`'s releases withheld."""
    totals: dict[tuple[str, str], Decimal] = {}
    for client, currency, amount in _credits(app, month):
        if client_id is None or client == client_id:
            totals[(client, currency)] = totals.get((client, currency), Decimal(0)) + amount
    return totals


def load_stream(app: Application[UUID], stream_id: UUID) -> ClientWithholding | None:
    return load_remittances(app.repository, stream_id)


def remit_month(app: Application[UUID], month: Month, now: datetime,
                client_id: str | None = None) -> list[Remitted]:
    """Remit what each client's month withheld beyond its earlier remittances,
    all in one transaction; one line per client and currency, by client."""
    if client_id is not None:
        identifier(client_id, "client_id")
    results: list[Remitted] = []
    changed: dict[UUID, ClientWithholding] = {}
    for (client, currency), total in sorted(withheld(app, month, client_id).items()):
        stream_id = remittance_stream_id(client)
        stream = changed.get(stream_id) or load_stream(app, stream_id)
        amount = Money(total, currency)
        before = Decimal(0) if stream is None else stream.covered(month, currency).amount
        if stream is None:
            stream = ClientWithholding.open_remitting(client, month, amount, now)
            remittance_id: str | None = next(iter(stream.remittances))
        else:
            remittance_id = stream.remit(month, amount, now)
        if remittance_id is not None:
            changed[stream_id] = stream
        results.append(Remitted(client, str(month), currency, total, total - before,
                                remittance_id, due_date(month).isoformat()))
    if changed:
        try:
            app.save(*changed.values())
        except IntegrityError as exc:  # another remit stored first: nothing of this one is
            raise Conflict("another remittance of these clients was stored meanwhile: "
                           "run it again", "concurrent_remittance") from exc
    return results


def confirm(app: Application[UUID], remittance_id: str, bank_ref: str, at: datetime) -> str:
    """Confirm a remittance; returns its client. Rejections: unknown_remittance,
    remittance_already_confirmed, invalid_identifier (bank_ref)."""
    stream_id = stream_of_remittance(remittance_id)
    stream = None if stream_id is None else load_stream(app, stream_id)
    if stream is None:
        raise NotFound(f"unknown remittance {remittance_id}", "unknown_remittance")
    stream.confirm(remittance_id, bank_ref, causation_id=f"tax-confirm:{remittance_id}", at=at)
    app.save(stream)
    return stream.party_id
