"""Topic names (SPEC §3, §4): the only place they are spelled out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TopicKind = Literal["jobs", "payouts", "parties"]
INPUT_KINDS: tuple[TopicKind, ...] = ("jobs", "payouts", "parties")


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
    def parties(self) -> str:
        return f"{self.prefix}marketplace.party-events"

    @property
    def parties_dlq(self) -> str:
        return f"{self.prefix}marketplace.party-events.dlq"

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every input topic the consumer reads (SPEC §3, §10)."""
        return tuple(self.input(kind) for kind in INPUT_KINDS)

    @property
    def events(self) -> str:
        return f"{self.prefix}settlement.events"

    @property
    def rejections(self) -> str:
        return f"{self.prefix}settlement.rejections"

    @property
    def all(self) -> tuple[str, ...]:
        return (self.jobs, self.jobs_dlq, self.payouts, self.payouts_dlq, self.parties,
                self.parties_dlq, self.events, self.rejections)

    def input(self, kind: TopicKind) -> str:
        """The input topic of `kind`."""
        return {"jobs": self.jobs, "payouts": self.payouts, "parties": self.parties}[kind]

    def dlq(self, kind: TopicKind) -> str:
        """The dead-letter topic of the input topic of `kind`."""
        return {"jobs": self.jobs_dlq, "payouts": self.payouts_dlq,
                "parties": self.parties_dlq}[kind]
