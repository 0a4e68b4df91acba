"""Topic names (SPEC §3, §4): the only place they are spelled out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TopicKind = Literal["jobs", "payouts"]


@dataclass(frozen=True)
class Topics:
    """Every topic the service reads or writes, under a configurable prefix."""

    prefix: str = ""

    @property
    def jobs(self) -> str:
        return f"{self.prefix}marketplace.job-events"

    @property
    def jobs_dlq(self) -> str:
        return f"{self.prefix}marketplace.job-events.dlq"

    @property
    def payouts(self) -> str:
        return f"{self.prefix}payments.payout-results"

    @property
    def payouts_dlq(self) -> str:
        return f"{self.prefix}payments.payout-results.dlq"

    @property
    def events(self) -> str:
        return f"{self.prefix}settlement.events"

    @property
    def rejections(self) -> str:
        return f"{self.prefix}settlement.rejections"

    @property
    def all(self) -> tuple[str, ...]:
        return (self.jobs, self.jobs_dlq, self.payouts, self.payouts_dlq, self.events,
                self.rejections)

    def input(self, kind: TopicKind) -> str:
        """The input topic of `kind`."""
        return self.jobs if kind == "jobs" else self.payouts

    def dlq(self, kind: TopicKind) -> str:
        """The dead-letter topic of the input topic of `kind`."""
        return self.jobs_dlq if kind == "jobs" else self.payouts_dlq
