"""Broker data loss as the producer sees it: an offset acknowledged a second time.

Kafka never hands out an offset of a partition twice, however often a record is
retried; a broker that lost its data (the embedded one, restarted) starts again
at 0 and auto-creates the topic on the next metadata request, so the producer
carries on without an error. The acknowledged offsets are the only sign.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Regression:
    partition: int
    offset: int
    acknowledged_before: int


@dataclass
class OffsetWatch:
    last: dict[int, int] = field(default_factory=dict)  # partition → last acknowledged offset

    def regression(self, acks: Iterable[tuple[int, int]]) -> Regression | None:
        """Take (partition, offset) acknowledgements in send order; the first that
        does not move its partition forward, if any (the rest are not taken)."""
        for partition, offset in acks:
            before = self.last.get(partition, -1)
            if offset <= before:
                return Regression(partition, offset, before)
            self.last[partition] = offset
        return None
