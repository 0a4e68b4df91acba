"""The state a job's events fold into: its view (kept as JSON in `job_views`) and
its items (kept as rows of `escrow_items`, read back only when an event names them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from settlement.projections.model.fastinit import fast_init

ZERO = Decimal(0)
MILESTONE, ENTRY, SUBMISSION = "milestone", "entry", "submission"
_SUMS = ("funded", "released", "refunded", "fees", "withheld")


@fast_init
@dataclass(frozen=True, slots=True)
class ItemView:
    item_id: str
    kind: str
    state: str
    amount: Decimal  # as the escrow holds it: an entry's is 0 until awarded
    worker_id: str | None
    delivered_at: datetime | None = None  # the 60-day payment deadline counts from here
    released: Decimal = ZERO  # gross released to the worker
    net: Decimal = ZERO  # what the worker is owed of it (after fees and withholding)


@fast_init
@dataclass(frozen=True, slots=True)
class JobView:
    job_id: str
    format: str
    state: str
    currency: str
    client_id: str
    worker_id: str | None  # a project's worker (its milestones' worker)
    unit_price: Decimal | None  # a task's (its submissions' amount)
    version: int
    opened_at: str
    updated_at: str
    funded: Decimal = ZERO  # excluding client fees
    released: Decimal = ZERO
    refunded: Decimal = ZERO
    fees: Decimal = ZERO  # client and worker fees with their consumption tax
    withheld: Decimal = ZERO

    @property
    def held(self) -> Decimal:
        return self.funded - self.released - self.refunded

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "format": self.format, "state": self.state,
            "currency": self.currency, "client_id": self.client_id, "worker_id": self.worker_id,
            "unit_price": None if self.unit_price is None else str(self.unit_price),
            "version": self.version, "opened_at": self.opened_at, "updated_at": self.updated_at,
            **{name: str(getattr(self, name)) for name in _SUMS},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobView:
        price = data["unit_price"]
        return cls(
            data["job_id"], data["format"], data["state"], data["currency"], data["client_id"],
            data["worker_id"], None if price is None else Decimal(price), data["version"],
            data["opened_at"], data["updated_at"],
            *(Decimal(data[name]) for name in _SUMS),
        )
