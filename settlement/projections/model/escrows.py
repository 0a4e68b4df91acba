"""Escrow summaries (SPEC §7 `GET /v1/escrows/{job_id}`): one row per job and
one per item, straight from the job's view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from settlement.projections.model.fastinit import fast_init
from settlement.projections.model.views import ItemView, JobView


@fast_init
@dataclass(frozen=True, slots=True)
class EscrowRow:
    job_id: str
    format: str
    state: str
    currency: str
    client_id: str
    funded: Decimal
    held: Decimal
    released: Decimal
    refunded: Decimal
    fees: Decimal
    withholding: Decimal
    version: int
    opened_at: datetime
    updated_at: datetime


@fast_init
@dataclass(frozen=True, slots=True)
class ItemRow:
    job_id: str
    item_id: str
    kind: str
    state: str
    amount: Decimal
    currency: str
    worker_id: str | None
    delivered_at: datetime | None
    released: Decimal
    net: Decimal


def escrow_row(job: JobView) -> EscrowRow:
    return EscrowRow(
        job.job_id, job.format, job.state, job.currency, job.client_id, job.funded, job.held,
        job.released, job.refunded, job.fees, job.withheld, job.version,
        datetime.fromisoformat(job.opened_at), datetime.fromisoformat(job.updated_at),
    )


def item_row(job: JobView, item: ItemView) -> ItemRow:
    return ItemRow(job.job_id, item.item_id, item.kind, item.state, item.amount, job.currency,
                   item.worker_id, item.delivered_at, item.released, item.net)


def item_view(row: ItemRow) -> ItemView:
    """The item as the fold needs it, read back from its row."""
    return ItemView(row.item_id, row.kind, row.state, row.amount, row.worker_id,
                    row.delivered_at, row.released, row.net)
